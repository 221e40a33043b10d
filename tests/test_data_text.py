import pytest
import torch

from contrastkit.data.arrays import collate_batches
from contrastkit.data.batch import Batch
from contrastkit.data.text import RetrievalTask, TextPairDataset
from contrastkit.train.loader import EpochBatches, fetch


def make_task(num_queries: int = 10) -> RetrievalTask:
    queries = {f"q{i}": f"query number {i}" for i in range(num_queries)}
    corpus = {f"d{i}": f"document number {i}" for i in range(num_queries + 5)}
    qrels = {f"q{i}": {f"d{i}": 1, f"d{i + 1}": 0} for i in range(num_queries)}
    return RetrievalTask(queries, corpus, qrels, name="toy")


# --------------------------------------------------------------------------------------
# RetrievalTask
# --------------------------------------------------------------------------------------


def test_retrieval_task_len_counts_judged_queries_only():
    task = RetrievalTask(
        {"q1": "a query", "q2": "an unjudged query"}, {"d1": "doc", "d2": "doc two"}, {"q1": {"d1": 2, "d2": 0}}
    )
    assert len(task) == 1 and task.query_ids == ["q1"]
    assert task.relevant("q1") == {"d1": 2}  # grade 0 is judged but not relevant
    assert "queries=1" in repr(task) and "corpus=2" in repr(task)


@pytest.mark.parametrize(
    ("queries", "corpus", "qrels", "message"),
    [
        ({}, {"d": "x"}, {"q": {"d": 1}}, "at least one entry in queries"),
        ({"q": "x"}, {}, {"q": {"d": 1}}, "at least one entry in corpus"),
        ({"q": "x"}, {"d": "x"}, {}, "non-empty dict"),
        ({"q": "x"}, {"d": "x"}, {"q": {"d": 1}, "zz": {"d": 1}, "yy": {"d": 1}}, r"not in queries: 'zz', 'yy'"),
        ({"q": "x"}, {"d": "x"}, {"q": {"d": 1, "missing": 1}}, r"not in the corpus: 'missing'"),
        ({"q": "  "}, {"d": "x"}, {"q": {"d": 1}}, r"empty text for id\(s\) 'q'"),
        ({"q": "x"}, {"d": "", "e": "ok"}, {"q": {"e": 1}}, r"in corpus.*empty text for id\(s\) 'd'"),
        ({"q": "x"}, {"d": 3}, {"q": {"d": 1}}, "got int"),
        ({"q": "x"}, {"d": "x"}, {"q": {"d": 1.5}}, "integer grade.*1.5"),
        ({"q": "x"}, {"d": "x"}, {"q": {}}, "at least one judged document"),
    ],
)
def test_retrieval_task_rejects_bad_input(queries, corpus, qrels, message):
    with pytest.raises(ValueError, match=message):
        RetrievalTask(queries, corpus, qrels)


def test_retrieval_task_subset_is_seeded_keeps_corpus_and_order():
    task = make_task(20)
    small = task.subset(5, seed=3)
    assert len(small) == 5 and small.corpus == task.corpus and small.name == "toy"
    assert set(small.queries) == set(small.qrels)
    positions = [task.query_ids.index(query_id) for query_id in small.query_ids]
    assert positions == sorted(positions)  # qrels order kept
    for query_id in small.query_ids:
        assert small.qrels[query_id] == task.qrels[query_id] and small.queries[query_id] == task.queries[query_id]
    assert task.subset(5, seed=3).query_ids == small.query_ids
    assert any(task.subset(5, seed=seed).query_ids != small.query_ids for seed in range(4, 8))
    assert task.subset(None) is task and task.subset(100) is task
    with pytest.raises(ValueError, match="max_queries >= 1"):
        task.subset(0)


# --------------------------------------------------------------------------------------
# TextPairDataset
# --------------------------------------------------------------------------------------


def test_pairs_getitems_matches_row_by_row_reference():
    queries = [f"q{i}" for i in range(7)]
    positives = [f"p{i}" for i in range(7)]
    negatives = [f"n{i}" for i in range(7)]
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    dataset = TextPairDataset(queries, positives, negatives, labels=labels, groups=list("abcabca"))
    indices = [5, 0, -1, 3]
    batch = dataset.__getitems__(indices)
    assert isinstance(batch, Batch)
    rows = [index % 7 for index in indices]
    assert batch.inputs == {
        "query": [queries[row] for row in rows],
        "positive": [positives[row] for row in rows],
        "negative": [negatives[row] for row in rows],
    }
    assert batch.labels.tolist() == [labels[row].item() for row in rows]
    assert batch.index.dtype == torch.long and batch.index.tolist() == rows
    single = dataset[2]
    assert single.inputs == {"query": "q2", "positive": "p2", "negative": "n2"}
    assert int(single.labels) == 2 and int(single.index) == 2
    assert dataset.has_negatives and dataset.num_classes == 3 and len(dataset) == 7
    with pytest.raises(IndexError, match="out of range"):
        dataset.__getitems__([7])


def test_pairs_without_negatives_or_labels():
    dataset = TextPairDataset(["a", "b"], ["c", "d"])
    batch = dataset.__getitems__([1, 0])
    assert batch.inputs == {"query": ["b", "a"], "positive": ["d", "c"]} and batch.labels is None
    assert not dataset.has_negatives and dataset.num_classes == 0
    assert collate_batches(batch) is batch


def test_pairs_subset_carries_labels_and_groups():
    dataset = TextPairDataset(["a", "b", "c"], ["x", "y", "z"], labels=torch.tensor([2, 0, 1]), groups=["g", "h", "i"])
    part = dataset.subset([2, 0])
    assert part.queries == ["c", "a"] and part.positives == ["z", "x"]
    assert part.labels.tolist() == [1, 2] and part.groups == ["i", "g"] and part.negatives is None


def test_trainer_batching_fetches_text_batches():
    dataset = TextPairDataset([f"q{i}" for i in range(10)], [f"p{i}" for i in range(10)])
    batches = EpochBatches(dataset, batch_size=4, seed=0)
    batch = batches.batch(0)
    assert len(batch.inputs["query"]) == 4
    assert [f"p{row}" for row in batch.index.tolist()] == batch.inputs["positive"]
    assert fetch(dataset, [1, 2]).inputs["query"] == ["q1", "q2"]


@pytest.mark.parametrize(
    ("arguments", "options", "message"),
    [
        ((["a", "b"], ["c"]), {}, "2 query texts, 1 positive texts"),
        ((["a"], ["c"], ["n", "m"]), {}, "1 query texts, 1 positive texts, 2 negative texts"),
        (([], []), {}, "at least one row"),
        ((["a", ""], ["c", "d"]), {}, "query of row 1, got an empty text"),
        ((["a", "b"], ["c", None]), {}, "positive of row 1, got NoneType"),
        ((["a"], ["c"], [" "]), {}, "negative of row 0"),
        ((["a"], ["c"]), {"labels": torch.tensor([0.5])}, "integer labels"),
        ((["a"], ["c"]), {"labels": torch.tensor([0, 1])}, "expected 1 labels"),
        ((["a"], ["c"]), {"groups": ["x", "y"]}, "expected 1 groups"),
    ],
)
def test_pairs_reject_bad_input(arguments, options, message):
    with pytest.raises(ValueError, match=message):
        TextPairDataset(*arguments, **options)

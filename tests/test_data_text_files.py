import json

import pytest

from contrastkit.data import (
    DatasetSplits,
    dataset_descriptions,
    load_dataset,
    register_dataset,
)
from contrastkit.data.registry import register_dataset_prefix
from contrastkit.data.text import RetrievalTask, TextPairDataset
from contrastkit.data.text_files import (
    beir_training_pairs,
    load_beir,
    load_parallel_text,
    load_text_pairs,
    retrieval_task_from_pairs,
)


def write_jsonl(path, rows):
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------
# JSONL pairs and triplets
# --------------------------------------------------------------------------------------


def test_load_pairs_with_aliases_labels_and_blank_lines(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", [
        {"query": "sort a list", "positive": "sorted(xs)", "label": 1, "id": "ignored"},
        "",
        {"anchor": "read a file", "document": "open(p).read()", "label": 0},
    ])  # fmt: skip
    pairs = load_text_pairs(path)
    assert pairs.queries == ["sort a list", "read a file"] and pairs.positives == ["sorted(xs)", "open(p).read()"]
    assert pairs.labels.tolist() == [1, 0] and not pairs.has_negatives


def test_load_triplets(tmp_path):
    path = write_jsonl(tmp_path / "triplets.jsonl", [
        {"query": "a", "positive": "b", "negative": "c"},
        {"query": "d", "positive": "e", "negative": "f"},
    ])  # fmt: skip
    batch = load_text_pairs(path).__getitems__([1])
    assert batch.inputs == {"query": ["d"], "positive": ["e"], "negative": ["f"]} and batch.labels is None


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"query": "a", "positive": "b"}', '{"query": "a", "positive": '], r"line 2: invalid JSON"),
        (['{"query": "a"}'], r"line 1: missing key 'positive' or 'document'"),
        (['{"positive": "a"}'], r"line 1: missing key 'query' or 'anchor'"),
        (['{"query": "a", "anchor": "b", "positive": "c"}'], r"line 1: expected one of 'query' or 'anchor', got both"),
        (['{"query": "", "positive": "b"}'], r"line 1: expected 'query' to be a non-empty string, got an empty string"),
        (['{"query": "a", "positive": 3}'], r"line 1: expected 'positive' to be a non-empty string, got int 3"),
        (['{"query": "a", "positive": "b", "negative": "  "}'], r"line 1: expected 'negative' to be a non-empty"),
        (['["a", "b"]'], r"line 1: expected a JSON object"),
        (
            ['{"query": "a", "positive": "b", "negative": "c"}', "", '{"query": "d", "positive": "e"}'],
            r"line 3: lacks 'negative' but line 1 has it",
        ),
        (['{"query": "a", "positive": "b"}', '{"query": "d", "positive": "e", "label": 1}'], r"line 2: has 'label' but line 1 lacks"),
        (['{"query": "a", "positive": "b", "label": -1}'], r"line 1: expected 'label' to be a non-negative integer"),
        (['{"query": "a", "positive": "b", "label": true}'], r"non-negative integer, got True"),
        (["", "  "], r"at least one JSON line"),
    ],
)
def test_load_pairs_errors_name_file_and_line(tmp_path, lines, message):
    path = write_jsonl(tmp_path / "bad.jsonl", lines)
    with pytest.raises(ValueError, match=message) as error:
        load_text_pairs(path)
    assert "bad.jsonl" in str(error.value)


def test_load_pairs_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        load_text_pairs(tmp_path / "missing.jsonl")


def test_parallel_text(tmp_path):
    (tmp_path / "q.txt").write_bytes(b"first query\r\nsecond query\r\n")
    (tmp_path / "d.txt").write_text("first doc\nsecond doc", encoding="utf-8")  # no final newline
    pairs = load_parallel_text(tmp_path / "q.txt", tmp_path / "d.txt")
    assert pairs.queries == ["first query", "second query"] and pairs.positives == ["first doc", "second doc"]
    (tmp_path / "d3.txt").write_text("a\nb\nc\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"mismatched pair files: .*q.txt has 2 lines but .*d3.txt has 3"):
        load_parallel_text(tmp_path / "q.txt", tmp_path / "d3.txt")
    (tmp_path / "gap.txt").write_text("a\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"gap.txt line 2 is empty"):
        load_parallel_text(tmp_path / "q.txt", tmp_path / "gap.txt")


def test_retrieval_task_from_pairs_matches_row_reference():
    pairs = TextPairDataset(
        ["q a", "q b", "q a", "q c"], ["doc 1", "doc 2", "doc 3", "doc 2"], ["doc 9", "doc 1", "doc 8", "doc 9"]
    )
    task = retrieval_task_from_pairs(pairs, name="toy")
    assert len(task) == 3 and len(task.corpus) == 5 and task.name == "toy"  # doc 1, 2, 3, 9, 8
    query_id = {text: identifier for identifier, text in task.queries.items()}
    doc_id = {text: identifier for identifier, text in task.corpus.items()}
    assert len(doc_id) == len(task.corpus)  # duplicate texts collapsed into one id
    for query, positive in zip(pairs.queries, pairs.positives):
        assert task.qrels[query_id[query]][doc_id[positive]] == 1
    assert sum(len(judged) for judged in task.qrels.values()) == 4
    assert doc_id["doc 8"] not in {doc for judged in task.qrels.values() for doc in judged}  # negatives: unjudged


def test_text_pairs_dataset_with_relative_paths(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"query": "a", "positive": "b"}, {"query": "c", "positive": "d"}])
    write_jsonl(tmp_path / "test.jsonl", [{"query": "x", "positive": "y"}, {"query": "z", "positive": "y"}])
    splits = load_dataset("text-pairs", data_dir=tmp_path, train="train.jsonl", test="test.jsonl")
    assert isinstance(splits, DatasetSplits) and splits.modality == "text" and splits.validation is None
    assert isinstance(splits.train, TextPairDataset) and len(splits.train) == 2
    assert isinstance(splits.test, RetrievalTask) and len(splits.test) == 2 and len(splits.test.corpus) == 1
    with pytest.raises(ValueError, match="train is required"):
        load_dataset("text-pairs", test=str(tmp_path / "test.jsonl"))
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        load_dataset("text-pairs", data_dir=tmp_path, train="train.jsonl", validation="nope.jsonl")


# --------------------------------------------------------------------------------------
# BEIR folders
# --------------------------------------------------------------------------------------


def write_qrels(path, rows, header=True):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = (["query-id\tcorpus-id\tscore"] if header else []) + ["\t".join(map(str, row)) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture()
def beir_folder(tmp_path):
    root = tmp_path / "toy"
    root.mkdir()
    write_jsonl(root / "corpus.jsonl", [
        {"_id": "d1", "title": "Sorting", "text": "Use sorted() to sort."},
        {"_id": "d2", "title": "", "text": "Open files with open()."},
        {"_id": "d3", "title": "Lists", "text": "Lists are mutable."},
        {"_id": "d4", "title": "", "text": "  "},
        {"_id": "d5", "text": "No title key at all."},
    ])  # fmt: skip
    write_jsonl(root / "queries.jsonl", [
        {"_id": "q1", "text": "how to sort"}, {"_id": "q2", "text": "how to read a file"},
        {"_id": "q3", "text": "what is a list"}, {"_id": "q4", "text": "unused query"},
    ])  # fmt: skip
    write_qrels(root / "qrels" / "test.tsv", [("q1", "d1", 2), ("q1", "d3", 0), ("q2", "d2", 1)])
    write_qrels(root / "qrels" / "train.tsv", [("q3", "d3", 1), ("q1", "d1", 1), ("q1", "d5", 0), ("q1", "d2", 1)])
    write_qrels(root / "qrels" / "dev.tsv", [("q3", "d3", 1)])
    return root


def test_load_beir_task(beir_folder):
    task = load_beir(beir_folder)
    assert task.queries == {"q1": "how to sort", "q2": "how to read a file"}  # only the split's queries
    assert task.corpus == {
        "d1": "Sorting Use sorted() to sort.", "d2": "Open files with open().",
        "d3": "Lists Lists are mutable.", "d5": "No title key at all.",
    }  # fmt: skip  (d4 is empty and unjudged: skipped)
    assert task.qrels == {"q1": {"d1": 2, "d3": 0}, "q2": {"d2": 1}}  # grades as given, 0 kept as judged
    assert task.name == "toy/test" and load_beir(beir_folder, split="dev").qrels == {"q3": {"d3": 1}}


def test_beir_training_pairs_keep_relevant_judgements_in_file_order(beir_folder):
    pairs = beir_training_pairs(beir_folder)
    assert pairs.queries == ["what is a list", "how to sort", "how to sort"]
    assert pairs.positives == ["Lists Lists are mutable.", "Sorting Use sorted() to sort.", "Open files with open()."]
    assert pairs.groups == ["q3", "q1", "q1"]


def test_beir_prefix_dataset(beir_folder, tmp_path):
    splits = load_dataset(f"beir:{beir_folder}")
    assert splits.name == f"beir:{beir_folder}" and splits.modality == "text" and splits.num_classes == 0
    assert len(splits.train) == 3 and len(splits.test) == 2 and splits.validation.qrels == {"q3": {"d3": 1}}
    relative = load_dataset("beir:toy", data_dir=tmp_path, max_test_queries=1, max_train=2, seed=0)
    assert len(relative.test) == 1 and len(relative.test.corpus) == 4 and len(relative.train) == 2
    assert "beir:PATH" in dataset_descriptions()

    (beir_folder / "qrels" / "train.tsv").unlink()
    (beir_folder / "qrels" / "dev.tsv").unlink()
    missing = load_dataset(f"beir:{beir_folder}")
    assert missing.train is None and missing.validation is None and len(missing.test) == 2
    with pytest.raises(FileNotFoundError, match=r"split 'dev' not found.*found qrels files: test.tsv"):
        load_dataset(f"beir:{beir_folder}", split="dev")
    with pytest.raises(ValueError, match=r"unexpected option\(s\) spilt"):
        load_dataset(f"beir:{beir_folder}", spilt="dev")
    with pytest.raises(ValueError, match=r"expected beir:PATH with a non-empty PATH"):
        load_dataset("beir:")


def test_beir_missing_folder_and_files(tmp_path, beir_folder):
    with pytest.raises(FileNotFoundError, match=r"folder not found: .*nowhere.*corpus.jsonl, queries.jsonl"):
        load_beir(tmp_path / "nowhere")
    (beir_folder / "corpus.jsonl").rename(beir_folder / "docs.jsonl")
    with pytest.raises(FileNotFoundError, match=r"corpus.jsonl not found .*found: docs.jsonl, qrels, queries.jsonl"):
        load_beir(beir_folder)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("q1", "d1")], r"test.tsv line 2: expected 3 tab-separated fields"),
        ([("q1", "d1", 1), ("q2", "d2", "high")], r"test.tsv line 3: expected an integer score, got 'high'"),
        ([("q1", "d1", 1), ("q9", "d1", 1), ("q8", "d2", 1)], r"line 3: query id 'q9' is not in queries.jsonl; unknown query ids: 'q9', 'q8'"),
        ([("q1", "dX", 1)], r"line 2: document id 'dX' is not in corpus.jsonl"),
        ([("q1", "d4", 1)], r"line 2: the document 'd4' is judged but its text is empty"),
        ([("q1", "d1", 1), ("q1", "d1", 2)], r"line 3: query 'q1' and document 'd1' were judged 1 on line 2 and 2 here"),
        ([], r"at least one judgement"),
    ],
)
def test_beir_bad_qrels(beir_folder, rows, message):
    write_qrels(beir_folder / "qrels" / "test.tsv", rows)
    with pytest.raises(ValueError, match=message):
        load_beir(beir_folder)


def test_beir_qrels_without_header_and_bad_corpus_lines(beir_folder):
    write_qrels(beir_folder / "qrels" / "test.tsv", [("q1", "d1", 1), ("q2", "d2", 1)], header=False)
    assert load_beir(beir_folder).qrels == {"q1": {"d1": 1}, "q2": {"d2": 1}}
    with (beir_folder / "corpus.jsonl").open("a", encoding="utf-8") as file:
        file.write(json.dumps({"_id": "d1", "text": "again"}) + "\n")
    with pytest.raises(ValueError, match=r"corpus.jsonl line 6: duplicate _id 'd1' \(first on line 1\)"):
        load_beir(beir_folder)
    write_jsonl(beir_folder / "corpus.jsonl", [{"title": "x", "text": "y"}])
    with pytest.raises(ValueError, match=r"corpus.jsonl line 1: expected a non-empty string '_id'"):
        load_beir(beir_folder)


# --------------------------------------------------------------------------------------
# The registry's prefix mechanism
# --------------------------------------------------------------------------------------


def test_register_dataset_prefix_passes_path_and_options():
    calls = []

    def load_toy(*, path, data_dir=None, size: int = 1) -> DatasetSplits:
        """Toy prefix family for tests."""
        calls.append((path, data_dir, size))
        pairs = TextPairDataset(["a"] * size, ["b"] * size)
        return DatasetSplits(train=pairs, test=None, num_classes=0, input_shape=(), modality="text")

    register_dataset_prefix("toyprefix", load_toy)
    splits = load_dataset("toyprefix:some/dir:with:colons", data_dir="/base", size=3)
    assert calls == [("some/dir:with:colons", "/base", 3)] and len(splits.train) == 3
    assert splits.description == "Toy prefix family for tests." and dataset_descriptions()["toyprefix:PATH"]
    with pytest.raises(ValueError, match=r"unexpected option\(s\) path"):
        load_dataset("toyprefix:x", path="y")
    with pytest.raises(ValueError, match=r"unknown dataset 'nothere:x'.*beir:PATH"):
        load_dataset("nothere:x")
    with pytest.raises(ValueError, match="already registered"):
        register_dataset_prefix("toyprefix", lambda *, path, data_dir=None: None)
    with pytest.raises(ValueError, match="must take a 'path' keyword"):
        register_dataset_prefix("other", lambda *, data_dir=None: None)
    with pytest.raises(ValueError, match="no ':'"):
        register_dataset_prefix("a:b", load_toy)


def test_exact_names_take_precedence_over_prefixes():
    def load_exact(*, data_dir=None) -> DatasetSplits:
        """Exact."""
        return DatasetSplits(train=TextPairDataset(["exact"], ["x"]), test=None, num_classes=0, input_shape=())

    def load_family(*, path, data_dir=None) -> DatasetSplits:
        """Family."""
        return DatasetSplits(train=TextPairDataset([path], ["x"]), test=None, num_classes=0, input_shape=())

    register_dataset("precedence:exact")(load_exact)
    register_dataset_prefix("precedence", load_family)
    assert load_dataset("precedence:exact").train.queries == ["exact"]
    assert load_dataset("precedence:other").train.queries == ["other"]

"""Retrieval metrics: hand-computed toy qrels, agreement with pytrec_eval, the torch path, MAP@R."""

from __future__ import annotations

import math
import random

import pytest
import pytrec_eval
import torch
import torch.nn.functional as F

from contrastkit.eval.retrieval import (
    _ranked_columns,
    dense_run,
    evaluate_run,
    map_at_r,
    ranking_metrics,
)

# ---------------------------------------------------------------- hand-computed toy qrels


def test_graded_relevance_hand_computed():
    qrels = {"q1": {"d1": 3, "d2": 2, "d3": 0, "d4": 1}}
    # trec order: d2 (grade 2), d5 (unjudged), d1 (grade 3), d4 (grade 1); d3 not retrieved.
    run = {"q1": {"d1": 0.7, "d2": 0.9, "d4": 0.1, "d5": 0.8}}
    result = evaluate_run(
        qrels, run, metrics=["ndcg@3", "ndcg@10", "recall@2", "mrr@10", "map", "precision@2", "map@2"]
    )
    # Linear gain (grade itself), discount log2(rank + 1); the ideal order is 3, 2, 1.
    dcg_3 = 2 / math.log2(2) + 0 / math.log2(3) + 3 / math.log2(4)
    ideal_3 = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    dcg_10 = dcg_3 + 1 / math.log2(5)
    assert result["ndcg@3"] == pytest.approx(dcg_3 / ideal_3, abs=1e-9)
    assert result["ndcg@10"] == pytest.approx(dcg_10 / ideal_3, abs=1e-9)
    assert result["recall@2"] == pytest.approx(1 / 3)  # d2 of {d1, d2, d4}
    assert result["mrr@10"] == pytest.approx(1.0)
    # relevant at ranks 1, 3, 4 -> precisions 1, 2/3, 3/4, divided by the 3 relevant docs
    assert result["map"] == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    assert result["precision@2"] == pytest.approx(0.5)
    assert result["map@2"] == pytest.approx(1 / 3)  # trec map_cut divides by all 3 relevant docs
    assert list(result) == ["ndcg@3", "ndcg@10", "recall@2", "mrr@10", "map", "precision@2", "map@2"]
    assert all(type(value) is float for value in result.values())


def test_linear_gain_not_exponential():
    qrels = {"q": {"a": 2, "b": 1}}
    run = {"q": {"b": 1.0, "a": 0.5}}  # worst order
    linear = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    exponential = (1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3))
    value = evaluate_run(qrels, run, metrics=["ndcg@10"])["ndcg@10"]
    assert value == pytest.approx(linear, abs=1e-9)
    assert abs(value - exponential) > 1e-3


def test_ties_are_ordered_by_doc_id_descending():
    # Same score: trec_eval puts "b" before "a", whatever order the run lists them in.
    for hits in ({"a": 0.5, "b": 0.5}, {"b": 0.5, "a": 0.5}):
        result = evaluate_run({"q": {"a": 1}}, {"q": hits}, metrics=["mrr@10", "mrr@1", "ndcg@1", "map"])
        assert result == pytest.approx({"mrr@10": 0.5, "mrr@1": 0.0, "ndcg@1": 0.0, "map": 0.5})
        result = evaluate_run({"q": {"b": 1}}, {"q": hits}, metrics=["mrr@1", "ndcg@1"])
        assert result == pytest.approx({"mrr@1": 1.0, "ndcg@1": 1.0})


def test_query_absent_from_run_counts_as_zero():
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 1}}
    run = {"q1": {"d1": 1.0}, "q3": {}, "unjudged": {"d9": 1.0}}  # q2 missing, q3 empty
    result = evaluate_run(qrels, run, metrics=["ndcg@10", "recall@100", "mrr@10", "map"])
    assert result == pytest.approx({"ndcg@10": 1 / 3, "recall@100": 1 / 3, "mrr@10": 1 / 3, "map": 1 / 3})
    per_query = evaluate_run(qrels, run, metrics=["mrr@10"], per_query=True)
    assert per_query == {"q1": {"mrr@10": 1.0}, "q2": {"mrr@10": 0.0}, "q3": {"mrr@10": 0.0}}


def test_query_without_relevant_hit_scores_zero():
    qrels = {"q1": {"d1": 1, "d2": 0}, "q2": {"d5": 0}}  # q2 has no relevant document at all
    run = {"q1": {"d2": 0.9, "d3": 0.8}, "q2": {"d5": 0.9}}
    result = evaluate_run(qrels, run, metrics=["ndcg@10", "recall@100", "mrr@10", "map", "precision@1"])
    assert result == {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0, "map": 0.0, "precision@1": 0.0}


def test_remove_self_hits():
    qrels = {"q1": {"d1": 1}, "d7": {"d8": 1}}
    run = {"q1": {"q1": 0.99, "d1": 0.5}, "d7": {"d7": 1.0, "d9": 0.9, "d8": 0.8}}
    kept = evaluate_run(qrels, run, metrics=["mrr@10", "recall@2"])
    removed = evaluate_run(qrels, run, metrics=["mrr@10", "recall@2"], remove_self_hits=True)
    assert kept == pytest.approx({"mrr@10": (1 / 2 + 1 / 3) / 2, "recall@2": 0.5})
    assert removed == pytest.approx({"mrr@10": (1 + 1 / 2) / 2, "recall@2": 1.0})


def test_negative_grades_gain_nothing():
    qrels = {"q": {"a": 2, "b": -2, "c": 1}}
    run = {"q": {"b": 0.9, "a": 0.5, "c": 0.4}}
    ideal = 2 + 1 / math.log2(3)
    result = evaluate_run(qrels, run, metrics=["ndcg@10", "mrr@10"])
    assert result["ndcg@10"] == pytest.approx((2 / math.log2(3) + 1 / math.log2(4)) / ideal)
    assert result["mrr@10"] == pytest.approx(0.5)


# ---------------------------------------------------------------- agreement with the maintained implementation


def _random_qrels_and_run(seed: int, queries: int = 15, docs: int = 60):
    rng = random.Random(seed)
    doc_ids = [f"d{j}" for j in range(docs)]
    qrels = {
        f"q{i}": {doc: rng.choice([0, 1, 1, 2, 3]) for doc in rng.sample(doc_ids, rng.randint(1, 8))}
        for i in range(queries)
    }
    run = {
        f"q{i}": {doc: round(rng.random(), 2) for doc in rng.sample(doc_ids, rng.randint(5, docs))}  # rounding -> ties
        for i in range(queries)
    }
    return qrels, run


@pytest.mark.parametrize("seed", [0, 1])
def test_agrees_with_pytrec_eval(seed):
    qrels, run = _random_qrels_and_run(seed)
    ours = evaluate_run(
        qrels, run, metrics=["ndcg@10", "ndcg@3", "recall@5", "recall@100", "map", "map@10", "precision@5"]
    )
    direct = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.3,10", "recall.5,100", "map", "map_cut.10", "P.5"})
    per_query = direct.evaluate(run)
    assert len(per_query) == len(qrels)
    names = {"ndcg@10": "ndcg_cut_10", "ndcg@3": "ndcg_cut_3", "recall@5": "recall_5", "recall@100": "recall_100",
             "map": "map", "map@10": "map_cut_10", "precision@5": "P_5"}  # fmt: skip
    for ours_name, trec_name in names.items():
        mean = sum(values[trec_name] for values in per_query.values()) / len(per_query)
        assert ours[ours_name] == pytest.approx(mean, abs=1e-12), ours_name
    # mrr@k = trec recip_rank on each ranking cut to its top k (cut here by an explicit loop)
    for k in (1, 3, 10):
        reciprocal = []
        for query_id, hits in run.items():
            ranking = [doc for doc, _ in sorted(hits.items(), key=lambda item: (item[1], item[0]), reverse=True)][:k]
            rank = next((r for r, doc in enumerate(ranking, 1) if qrels[query_id].get(doc, 0) > 0), None)
            reciprocal.append(0.0 if rank is None else 1 / rank)
        assert evaluate_run(qrels, run, metrics=[f"mrr@{k}"])[f"mrr@{k}"] == pytest.approx(sum(reciprocal) / len(run))


# ---------------------------------------------------------------- torch path


def _matrices(seed: int, queries: int = 12, docs: int = 40):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 6, (queries, docs), generator=generator).float() / 5  # many ties
    relevance = torch.randint(-1, 4, (queries, docs), generator=generator)
    relevance[relevance == 1] = 0  # fewer relevant docs: grades -1, 0, 2, 3
    relevance[0] = 0  # a query without any relevant document
    relevance[1, :] = 0
    relevance[1, -1] = 1  # a single relevant doc, at the highest column index
    return scores, relevance


def _as_run(scores: torch.Tensor, relevance: torch.Tensor):
    # zero-padded ids sort like the columns, so "doc id descending" == "higher column first"
    doc_ids = [f"d{j:04d}" for j in range(scores.shape[1])]
    qrels = {
        f"q{i}": {doc_ids[j]: int(relevance[i, j]) for j in range(scores.shape[1])} for i in range(scores.shape[0])
    }
    run = {f"q{i}": {doc_ids[j]: float(scores[i, j]) for j in range(scores.shape[1])} for i in range(scores.shape[0])}
    return qrels, run


def test_ranked_columns_matches_python_sort_with_ties():
    scores, _ = _matrices(3, docs=25)
    for depth in (1, 4, 25):
        ranked = _ranked_columns(scores, depth)
        for row in range(scores.shape[0]):
            values = scores[row].tolist()
            expected = sorted(range(len(values)), key=lambda j: (values[j], j), reverse=True)[:depth]
            assert ranked[row].tolist() == expected


@pytest.mark.parametrize(
    "metrics",
    [
        (
            "ndcg@5",
            "ndcg@10",
            "recall@5",
            "recall@20",
            "mrr@3",
            "mrr@10",
            "precision@5",
            "precision@50",
            "map",
            "map@10",
        ),
        ("ndcg@3", "mrr@1", "recall@7", "map@7"),  # no full map: exercises the exact top-k cut
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_ranking_metrics_agree_with_evaluate_run(metrics, seed):
    scores, relevance = _matrices(seed)
    qrels, run = _as_run(scores, relevance)
    expected = evaluate_run(qrels, run, metrics=metrics)
    got = ranking_metrics(scores, relevance, metrics=metrics, chunk_size=5)
    assert list(got) == list(metrics)
    for name in metrics:
        assert got[name] == pytest.approx(expected[name], abs=1e-9), name


def test_ranking_metrics_expands_bare_names_with_ks():
    scores, relevance = _matrices(4)
    got = ranking_metrics(scores, relevance, ks=(1, 5), metrics=("ndcg", "recall", "map"))
    assert list(got) == ["ndcg@1", "ndcg@5", "recall@1", "recall@5", "map"]
    qrels, run = _as_run(scores, relevance)
    expected = evaluate_run(qrels, run, metrics=list(got))
    assert got == pytest.approx(expected, abs=1e-9)


def test_dense_run_equals_brute_force_sort():
    generator = torch.Generator().manual_seed(0)
    queries, docs = torch.randn(7, 5, generator=generator), torch.randn(20, 5, generator=generator)
    query_ids, doc_ids = [f"q{i}" for i in range(7)], [f"d{j}" for j in range(20)]
    run = dense_run(queries, docs, query_ids, doc_ids, k=6, chunk_size=3)
    cosine = F.normalize(queries, dim=1) @ F.normalize(docs, dim=1).T
    for i, query_id in enumerate(query_ids):
        expected = sorted(range(20), key=lambda j: float(cosine[i, j]), reverse=True)[:6]
        assert list(run[query_id]) == [doc_ids[j] for j in expected]
        assert list(run[query_id].values()) == pytest.approx([float(cosine[i, j]) for j in expected], abs=1e-6)
    dot = dense_run(queries, docs, query_ids, doc_ids, k=100, normalize=False)
    assert all(len(hits) == 20 for hits in dot.values())  # k capped at N
    assert dot["q0"][doc_ids[3]] == pytest.approx(float(queries[0] @ docs[3]), abs=1e-5)


def _slow_map_at_r(embeddings: torch.Tensor, labels: list[int]) -> float:
    unit = F.normalize(embeddings, dim=1)
    scores = []
    for i in range(len(labels)):
        r = sum(1 for j in range(len(labels)) if j != i and labels[j] == labels[i])
        if r == 0:
            continue
        others = sorted((j for j in range(len(labels)) if j != i), key=lambda j: float(unit[i] @ unit[j]), reverse=True)
        hits, total = 0, 0.0
        for position, j in enumerate(others[:r], 1):
            if labels[j] == labels[i]:
                hits += 1
                total += hits / position
        scores.append(total / r)
    return sum(scores) / len(scores)


def test_map_at_r_against_slow_loop():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 6, (40,), generator=generator)
    labels[-1] = 99  # a singleton: skipped
    embeddings = torch.randn(40, 8, generator=generator) + 0.8 * F.one_hot(labels % 8, 8).float()
    expected = _slow_map_at_r(embeddings, labels.tolist())
    assert map_at_r(embeddings, labels, chunk_size=7) == pytest.approx(expected, abs=1e-9)
    assert map_at_r(embeddings, labels) == pytest.approx(expected, abs=1e-9)


def test_map_at_r_hand_computed():
    angles = torch.tensor([0.0, 20.0, 50.0, 90.0]) * math.pi / 180
    embeddings = torch.stack([angles.cos(), angles.sin()], dim=1)
    # item 0: R=2, ranks 20deg (same), 50deg (same) -> 1; item 1: 0deg, 50deg -> 1;
    # item 2: 20deg (same), 90deg (other) -> (1/2)(1/1) = 0.5; item 3: R=0, skipped.
    assert map_at_r(embeddings, torch.tensor([0, 0, 0, 1])) == pytest.approx((1 + 1 + 0.5) / 3)


# ---------------------------------------------------------------- bad input


def test_bad_input():
    with pytest.raises(ValueError, match="qrels"):
        evaluate_run({}, {"q": {"d": 1.0}})
    with pytest.raises(ValueError, match="unknown retrieval metric 'ndcg10'.*ndcg@k"):
        evaluate_run({"q": {"d": 1}}, {"q": {"d": 1.0}}, metrics=["ndcg10"])
    with pytest.raises(ValueError, match="k >= 1"):
        evaluate_run({"q": {"d": 1}}, {"q": {"d": 1.0}}, metrics=["recall@-5"])
    with pytest.raises(ValueError, match="needs a cutoff"):
        evaluate_run({"q": {"d": 1}}, {"q": {"d": 1.0}}, metrics=["ndcg"])
    with pytest.raises(ValueError, match="integer grade"):
        evaluate_run({"q": {"d": 0.5}}, {"q": {"d": 1.0}})
    with pytest.raises(ValueError, match="finite score"):
        evaluate_run({"q": {"d": 1}}, {"q": {"d": float("nan")}})
    with pytest.raises(ValueError, match="shape of scores"):
        ranking_metrics(torch.rand(2, 3), torch.ones(2, 4))
    with pytest.raises(ValueError, match="ks"):
        ranking_metrics(torch.rand(2, 3), torch.ones(2, 3), ks=(-1,), metrics=("ndcg",))
    with pytest.raises(ValueError, match="k: expected a positive integer"):
        dense_run(torch.rand(2, 3), torch.rand(4, 3), ["a", "b"], ["1", "2", "3", "4"], k=-1)
    with pytest.raises(ValueError, match="feature size"):
        dense_run(torch.rand(2, 5), torch.rand(4, 3), ["a", "b"], ["1", "2", "3", "4"])
    with pytest.raises(ValueError, match="unique ids"):
        dense_run(torch.rand(2, 3), torch.rand(2, 3), ["a", "b"], ["1", "1"])
    with pytest.raises(ValueError, match="labels"):
        map_at_r(torch.rand(4, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="all labels distinct"):
        map_at_r(torch.rand(3, 3), torch.tensor([0, 1, 2]))


def test_periodic_check_removes_self_hits_as_the_final_evaluation_does():
    """A query that is also a corpus document: its own hit is dropped, not a crash on -inf."""
    import torch

    from contrastkit.data.registry import DatasetSplits
    from contrastkit.data.text import RetrievalTask
    from contrastkit.eval.protocols.retrieval import RetrievalProtocol, RetrievalSettings

    corpus = {"d1": "alpha", "d2": "beta", "d3": "gamma"}
    task = RetrievalTask(queries={"d1": "alpha", "q2": "beta?"}, corpus=corpus,
                         qrels={"d1": {"d2": 1}, "q2": {"d2": 1}})
    splits = DatasetSplits(train=None, test=task, num_classes=0, input_shape=(), modality="text")

    class Fixed:  # query d1 is its own nearest document; d2 comes second
        vectors = {"alpha": [1.0, 0.0], "beta": [0.8, 0.6], "gamma": [0.0, 1.0], "beta?": [0.8, 0.6]}

        def encode_texts(self, texts, query=False, batch_size=64):
            return torch.tensor([self.vectors[text] for text in texts])

    settings = RetrievalSettings(remove_self_hits=True, retrieval_metrics=["mrr@10"], bm25=False)
    protocol = RetrievalProtocol(splits, settings, None, 0)
    scores = protocol.periodic(Fixed())
    assert scores == pytest.approx({"val_mrr@10": 1.0})  # with the self-hit kept, d1's MRR would be 1/2

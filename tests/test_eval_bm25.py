"""BM25 baseline: obvious rankings, the Lucene formula by hand, identifier splitting, k and errors."""

from __future__ import annotations

import math

import pytest

from contrastkit.eval.bm25 import BM25Index, bm25_run, expand_identifiers

CORPUS = {
    "cats": "The cat sat on the mat and the cat purred.",
    "dogs": "Dogs bark loudly at the mailman every morning.",
    "stocks": "The stock market fell as interest rates rose.",
    "rain": "Heavy rain flooded the streets of the old town.",
    "code": "def getUserName(user_record): return user_record.full_name",
}


def test_obvious_document_ranks_first():
    queries = {"q-cat": "a cat on a mat", "q-market": "stock market rates", "q-rain": "rain in the town streets"}
    run = bm25_run(CORPUS, queries, k=3)
    assert [next(iter(run[query])) for query in queries] == ["cats", "stocks", "rain"]


def test_scores_follow_the_lucene_formula():
    corpus = {"a": "apple banana apple", "b": "banana cherry", "c": "cherry date elder fig"}
    run = bm25_run(corpus, {"q": "apple cherry"}, k=3, split_identifiers=False, stopwords=None)
    lengths = {"a": 3, "b": 2, "c": 4}
    average = sum(lengths.values()) / 3
    k1, b = 1.5, 0.75

    def term(tf: int, df: int, length: int) -> float:
        idf = math.log(1 + (3 - df + 0.5) / (df + 0.5))
        return idf * tf / (tf + k1 * (1 - b + b * length / average))

    expected = {"a": term(2, 1, 3), "b": term(1, 2, 2), "c": term(1, 2, 4)}
    assert run["q"] == pytest.approx(expected, rel=1e-5)
    assert list(run["q"]) == sorted(expected, key=expected.get, reverse=True)


def test_identifier_splitting_helps_camel_case_query():
    corpus = {"target": "def getUserName(record): return record", "other": "def parse(text): return text.split()"}
    queries = {"q": "get user name"}
    split = bm25_run(corpus, queries, split_identifiers=True)
    plain = bm25_run(corpus, queries, split_identifiers=False)
    assert list(split["q"]) == ["target"]
    assert plain["q"] == {}  # without splitting nothing matches "getusername"
    assert expand_identifiers("getFooBar") == "getFooBar get foo bar"
    assert expand_identifiers("max_len = HTTPServer") == "max_len max len = HTTPServer http server"
    assert expand_identifiers("plain words stay") == "plain words stay"


def test_scores_descending_and_k_capped():
    index = BM25Index(CORPUS)
    assert len(index) == 5
    run = index.search({"q": "the cat and the dog bark at the stock market in the rain"}, k=100)
    scores = list(run["q"].values())
    assert len(scores) <= 5 and len(scores) >= 3
    assert scores == sorted(scores, reverse=True)
    assert all(type(score) is float and score > 0 for score in scores)
    assert len(index.search({"q": "cat bark stock rain user"}, k=2)["q"]) == 2
    assert index.search({"q": "zzz unknown"}, k=10) == {"q": {}}  # no shared term, no hits
    assert index.search({}, k=10) == {}


def test_errors():
    with pytest.raises(ValueError, match="empty corpus"):
        bm25_run({}, {"q": "cat"})
    with pytest.raises(ValueError, match="indexable word"):
        bm25_run({"a": "the a of", "b": ""}, {"q": "cat"})
    with pytest.raises(ValueError, match="k: expected a positive integer"):
        bm25_run(CORPUS, {"q": "cat"}, k=0)
    with pytest.raises(ValueError, match="method"):
        bm25_run(CORPUS, {"q": "cat"}, method="tfidf")
    with pytest.raises(ValueError, match="expected a string"):
        bm25_run({"a": 3}, {"q": "cat"})  # type: ignore[dict-item]

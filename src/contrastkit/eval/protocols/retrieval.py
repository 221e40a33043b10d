"""Dense retrieval with trec_eval conventions: the evaluation protocol of text runs.

The final score follows the BEIR protocol with trec_eval (``eval.retrieval.evaluate_run``):
the queries of the test task rank the whole corpus by cosine similarity, every query of
the qrels counts. Periodic evaluation during training uses the fast torch path
(``eval.retrieval.ranking_metrics``) on a sample of the validation queries. Baselines,
measured in the same run: BM25 (``bm25s``) and the encoder before training (zero-shot).

``embed`` exports the same encodings: tables ``corpus`` (the documents, by id, with their
texts) and ``queries`` (encoded as queries); text queries are encoded into that space too.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any, Protocol

import torch

from contrastkit.data.registry import DatasetSplits
from contrastkit.data.text import RetrievalTask, TextPairDataset
from contrastkit.eval.bm25 import bm25_run
from contrastkit.eval.protocols.base import (
    EmbeddingTable,
    EvaluationProtocol,
    Model,
    ProtocolSettings,
    merge_splits,
    split_parts,
)
from contrastkit.eval.retrieval import dense_run, evaluate_run, ranking_metrics
from contrastkit.utils.schema import bounded

#: Metrics of a text run, in the order tables show them.
DEFAULT_RETRIEVAL_METRICS = ("mrr@10", "ndcg@10", "recall@100", "map")


class TextModel(Model, Protocol):
    """A model that encodes texts (queries and documents) into ``[N, D]``."""

    def encode_texts(self, texts: list[str], *, query: bool = False, batch_size: int = 64) -> torch.Tensor: ...


@dataclasses.dataclass
class RetrievalSettings(ProtocolSettings):
    """The ``eval:`` keys of the retrieval protocol.

    Attributes:
        test_subset: at most this many test queries; ``None``: all.
        validation_queries: validation queries sampled for periodic evaluation.
        retrieval_metrics: trec_eval metrics to report (``ndcg@10``, ``mrr@10``,
            ``recall@100``, ``map``, ``map@k``, ``precision@k``); ``None``: MRR@10, nDCG@10,
            Recall@100 and MAP.
        remove_self_hits: drop a retrieved document whose id equals the query id
            (BEIR's ``--remove-query``, for corpora that contain the queries).
        bm25: also score BM25 as a baseline.
        encode_batch_size: texts per forward pass when encoding a corpus.
    """

    test_subset: int | None = bounded(None, minimum=1)
    validation_queries: int | None = bounded(500, minimum=1)
    retrieval_metrics: list[str] | None = None
    remove_self_hits: bool = False
    bm25: bool = True
    encode_batch_size: int = bounded(64, minimum=1)


def _task_or_error(value: Any, name: str, dataset: str) -> RetrievalTask:
    if not isinstance(value, RetrievalTask):
        raise ValueError(f"dataset {dataset!r}: text evaluation needs a RetrievalTask as its {name} split, "
                         f"got {type(value).__name__}")
    return value


class RetrievalProtocol(EvaluationProtocol):
    """Scores a text model by dense retrieval over a dataset's test (and validation) task.

    Args:
        splits: a text dataset (``splits.test`` is a :class:`~contrastkit.data.text.RetrievalTask`).
        settings: :class:`RetrievalSettings`.
        device: unused (the model's encoder tokenises onto its own device).
        seed: seeds the query sub-samples.
    """

    settings_type = RetrievalSettings

    def __init__(self, splits: DatasetSplits, settings: RetrievalSettings, device: torch.device | None,
                 seed: int) -> None:
        super().__init__(splits, settings, device, seed)
        self.metrics = tuple(settings.retrieval_metrics or DEFAULT_RETRIEVAL_METRICS)
        self.test = _task_or_error(splits.test, "test", splits.name).subset(settings.test_subset, seed=seed)
        validation = splits.validation if splits.validation is not None else splits.test
        self.validation = _task_or_error(validation, "validation", splits.name).subset(
            settings.validation_queries, seed=seed + 1
        )
        # The deepest cutoff any metric needs (trec_eval's default depth is 1000 like BEIR's runs).
        self.depth = max([1000] + [int(name.split("@")[1]) for name in self.metrics if "@" in name])

    def _encode(self, method: TextModel, texts: list[str], *, query: bool = False, progress: bool = False) -> torch.Tensor:
        """Documents (or queries, ``query=True``) as the protocol scores them.

        ``progress`` is passed only when set: the contrastkit text methods take it, a model that
        merely satisfies :class:`TextModel` need not.
        """
        extra = {"progress": True} if progress else {}
        return method.encode_texts(texts, query=query, batch_size=self.settings.encode_batch_size, **extra)

    def _embed(self, method: TextModel, task: RetrievalTask) -> tuple[torch.Tensor, torch.Tensor, list[str], list[str]]:
        doc_ids, query_ids = list(task.corpus), list(task.qrels)
        documents = self._encode(method, [task.corpus[i] for i in doc_ids])
        queries = self._encode(method, [task.queries[i] for i in query_ids], query=True)
        return queries, documents, query_ids, doc_ids

    def embed(self, method: TextModel, split: str) -> list[EmbeddingTable]:  # type: ignore[override]
        """Tables ``corpus`` and ``queries`` of the split.

        ``test``: the test task's whole corpus (document ids) and all its queries (query ids);
        ``train``: the training pairs, row ``i`` of ``corpus`` (the positive) paired with row
        ``i`` of ``queries`` (ids: row numbers, with the pairs' labels where they have some).
        """
        # Encoding a corpus can take minutes: a bar on a terminal, nothing in logs (as evaluation).
        progress = sys.stderr.isatty()
        tables = {}
        for part in split_parts(split):
            if part == "test":
                task = _task_or_error(self.splits.test, "test", self.splits.name)
                doc_ids, query_ids = list(task.corpus), list(task.queries)
                documents, questions, labels = [task.corpus[i] for i in doc_ids], [task.queries[i] for i in query_ids], None
            else:
                pairs = self.splits.train
                if not isinstance(pairs, TextPairDataset):
                    raise ValueError(f"dataset {self.splits.name!r} has no training pairs to export; "
                                     "export split 'test'")
                doc_ids = query_ids = list(range(len(pairs)))
                documents, questions, labels = pairs.positives, pairs.queries, pairs.labels
            tables[part] = [
                EmbeddingTable("corpus", self._encode(method, documents, progress=progress), doc_ids, labels=labels,
                               texts=documents, text_queries=True),
                EmbeddingTable("queries", self._encode(method, questions, query=True, progress=progress), query_ids,
                               labels=labels, texts=questions, text_queries=True),
            ]
        return merge_splits(tables)

    def encode_queries(self, model: TextModel, texts: list[str]) -> torch.Tensor:  # type: ignore[override]
        """Text queries encoded as the protocol encodes its queries (``query=True``)."""
        return self._encode(model, list(texts), query=True)

    def score(self, method: TextModel, task: RetrievalTask | None = None) -> dict[str, float]:
        """trec_eval metrics of dense retrieval on ``task`` (default: the test task)."""
        task = task or self.test
        started = time.perf_counter()
        queries, documents, query_ids, doc_ids = self._embed(method, task)
        run = dense_run(queries, documents, query_ids, doc_ids, k=min(self.depth, len(doc_ids)))
        scores = evaluate_run(task.qrels, run, metrics=self.metrics, remove_self_hits=self.settings.remove_self_hits)
        scores["eval_queries"] = float(len(query_ids))
        scores["encode_seconds"] = round(time.perf_counter() - started, 2)
        return scores

    def final(self, method: TextModel) -> tuple[dict[str, float], None]:  # type: ignore[override]
        """The end-of-run scores on the test task (no features to plot for text)."""
        return self.score(method), None

    def periodic(self, method: TextModel) -> dict[str, float]:  # type: ignore[override]
        """Periodic check on the validation sample with the torch metrics (no trec_eval round trip)."""
        queries, documents, query_ids, doc_ids = self._embed(method, self.validation)
        position = {doc_id: column for column, doc_id in enumerate(doc_ids)}
        relevance = torch.zeros(len(query_ids), len(doc_ids))
        for row, query_id in enumerate(query_ids):
            for doc_id, grade in self.validation.qrels[query_id].items():
                relevance[row, position[doc_id]] = float(grade)
        similarities = torch.nn.functional.normalize(queries, dim=1) @ torch.nn.functional.normalize(documents, dim=1).T
        if self.settings.remove_self_hits:
            for row, query_id in enumerate(query_ids):
                if query_id in position:
                    # ranking_metrics takes finite scores only: the lowest finite one ranks the
                    # self-hit last, and it no longer counts as relevant (as trec_eval after removal).
                    similarities[row, position[query_id]] = torch.finfo(similarities.dtype).min
                    relevance[row, position[query_id]] = 0.0
        scores = ranking_metrics(similarities, relevance, metrics=self.metrics)
        return {f"val_{name}": value for name, value in scores.items()}

    def bm25(self) -> dict[str, float]:
        """BM25 (bm25s, Lucene variant; code identifiers split) on the test task."""
        run = bm25_run(self.test.corpus, {q: self.test.queries[q] for q in self.test.qrels},
                       k=min(self.depth, len(self.test.corpus)))
        return evaluate_run(self.test.qrels, run, metrics=self.metrics, remove_self_hits=self.settings.remove_self_hits)

    def baselines(self, method: TextModel) -> dict[str, dict[str, float]]:  # type: ignore[override]
        """BM25 and the untrained encoder (zero-shot), on the same test queries."""
        out = {"zero_shot": self.score(method)}
        if self.settings.bm25:
            out["bm25"] = self.bm25()
        return out

    def columns(self) -> list[str]:
        return list(self.metrics)

    def describe(self) -> str:
        return f"dense retrieval, trec_eval; test queries {len(self.test)}"

    def evaluated_rows(self) -> dict[str, int | None]:
        return {"train": None, "test": len(self.test)}

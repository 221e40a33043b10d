"""Text data types: training pairs and retrieval tasks.

Two containers serve every text and code dataset of :mod:`contrastkit.data`:

- :class:`TextPairDataset` — training rows of ``(query, positive[, negative])`` texts.
  Its ``__getitems__`` returns one :class:`~contrastkit.data.batch.Batch` whose
  ``inputs`` is a dict of lists of strings (``{"query": [...], "positive": [...]}``,
  plus ``"negative"`` for triplets); tokenisation is the encoder's job.
- :class:`RetrievalTask` — an evaluation set in the BEIR layout: ``queries``
  (id -> text), ``corpus`` (id -> text) and graded ``qrels`` (query id -> {doc id: grade}).
  Following BEIR and trec_eval's ``-c``, every query in the qrels counts, and a grade
  of 0 marks a judged but non-relevant document.

A text dataset's :class:`~contrastkit.data.registry.DatasetSplits` holds a
``TextPairDataset`` as ``train`` and ``RetrievalTask`` objects as ``test`` and
``validation`` (``modality="text"``, ``num_classes=0``, ``input_shape=()``).

Example:
    >>> pairs = TextPairDataset(["how to sort", "read a file"], ["sorted(xs)", "open(p).read()"])
    >>> pairs.__getitems__([1, 0]).inputs
    {'query': ['read a file', 'how to sort'], 'positive': ['open(p).read()', 'sorted(xs)']}
    >>> task = RetrievalTask({"q1": "how to sort"}, {"d1": "sorted(xs)", "d2": "len(xs)"}, {"q1": {"d1": 1}})
    >>> len(task), len(task.corpus)
    (1, 2)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from contrastkit.data.batch import Batch


def _first_ids(ids: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(item) for item in ids[:limit])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > limit else "")


def _check_texts(what: str, texts: Mapping[str, object]) -> None:
    if not isinstance(texts, Mapping):
        raise ValueError(f"RetrievalTask: expected {what} as a dict {{id: text}}, got {type(texts).__name__}")
    if not texts:
        raise ValueError(f"RetrievalTask: expected at least one entry in {what}, got none")
    bad = [key for key, text in texts.items() if not isinstance(key, str) or not isinstance(text, str) or not text.strip()]
    if bad:
        first = bad[0]
        value = texts[first]
        got = "an empty text" if isinstance(value, str) else type(value).__name__
        raise ValueError(
            f"RetrievalTask: expected non-empty text strings keyed by string ids in {what}, "
            f"got {got} for id(s) {_first_ids(bad)}"
        )


@dataclass(repr=False)
class RetrievalTask:
    """An information-retrieval evaluation set: queries, a corpus and graded judgements.

    The layout is BEIR's (``queries.jsonl``, ``corpus.jsonl``, ``qrels/*.tsv``):
    ``qrels[query_id][doc_id]`` is an integer grade; ``> 0`` is relevant (the gain of
    nDCG is the grade, as in trec_eval), ``0`` (or less) is judged non-relevant.
    Evaluation averages over every query in ``qrels``; queries without judgements are
    not evaluated.

    Attributes:
        queries: ``{query_id: text}``; may hold queries not in ``qrels`` (not evaluated).
        corpus: ``{doc_id: text}``; every document is a retrieval candidate.
        qrels: ``{query_id: {doc_id: grade}}``, each query with at least one judgement.
        name: an optional name used in reports.

    Raises:
        ValueError: when ``queries``, ``corpus`` or ``qrels`` is empty; when a text is
            empty or not a string; when a grade is not an integer; when ``qrels`` names
            a query id missing from ``queries`` or a document id missing from
            ``corpus`` (the message names the first offending ids).
    """

    queries: dict[str, str]
    corpus: dict[str, str]
    qrels: dict[str, dict[str, int]]
    name: str = field(default="")

    def __post_init__(self) -> None:
        _check_texts("queries", self.queries)
        _check_texts("corpus", self.corpus)
        if not isinstance(self.qrels, Mapping) or not self.qrels:
            got = "none" if isinstance(self.qrels, Mapping) else type(self.qrels).__name__
            raise ValueError(f"RetrievalTask: expected qrels as a non-empty dict {{query_id: {{doc_id: grade}}}}, got {got}")
        unknown_queries = [query_id for query_id in self.qrels if query_id not in self.queries]
        if unknown_queries:
            raise ValueError(
                f"RetrievalTask: qrels name query id(s) that are not in queries: {_first_ids(unknown_queries)}"
            )
        unknown_docs: list[str] = []
        for query_id, judged in self.qrels.items():
            if not isinstance(judged, Mapping) or not judged:
                raise ValueError(
                    f"RetrievalTask: expected at least one judged document {{doc_id: grade}} for query {query_id!r}, got {judged!r}"
                )
            for doc_id, grade in judged.items():
                if isinstance(grade, bool) or not isinstance(grade, (int, np.integer)):
                    raise ValueError(
                        f"RetrievalTask: expected an integer grade for query {query_id!r}, document {doc_id!r}, got {grade!r}"
                    )
                if doc_id not in self.corpus:
                    unknown_docs.append(doc_id)
        if unknown_docs:
            raise ValueError(f"RetrievalTask: qrels name document id(s) that are not in the corpus: {_first_ids(unknown_docs)}")

    def __len__(self) -> int:
        """The number of evaluated queries (those with judgements)."""
        return len(self.qrels)

    @property
    def query_ids(self) -> list[str]:
        """The evaluated query ids, in ``qrels`` order."""
        return list(self.qrels)

    def relevant(self, query_id: str) -> dict[str, int]:
        """The documents judged relevant (grade ``> 0``) for ``query_id``, with their grades."""
        return {doc_id: grade for doc_id, grade in self.qrels[query_id].items() if grade > 0}

    def subset(self, max_queries: int | None, seed: int = 0) -> RetrievalTask:
        """A seeded sample of at most ``max_queries`` evaluated queries over the whole corpus.

        The corpus is kept whole (so the retrieval problem stays as hard); only the
        queries are sampled. The sampled queries keep their ``qrels`` order.

        Args:
            max_queries: how many queries to keep; ``None`` (or at least ``len(self)``)
                keeps all of them.
            seed: the random seed of the sample.

        Returns:
            A new task (the same object when nothing is dropped).

        Raises:
            ValueError: when ``max_queries < 1``.
        """
        if max_queries is None or int(max_queries) >= len(self):
            return self
        if int(max_queries) < 1:
            raise ValueError(f"RetrievalTask.subset: expected max_queries >= 1 (or None for all), got {max_queries}")
        query_ids = self.query_ids
        keep = np.sort(np.random.default_rng(seed).permutation(len(query_ids))[: int(max_queries)])
        chosen = [query_ids[int(position)] for position in keep]
        return RetrievalTask(
            queries={query_id: self.queries[query_id] for query_id in chosen},
            corpus=self.corpus,
            qrels={query_id: dict(self.qrels[query_id]) for query_id in chosen},
            name=self.name,
        )

    def __repr__(self) -> str:
        judgements = sum(len(judged) for judged in self.qrels.values())
        name = f"{self.name!r}, " if self.name else ""
        return f"RetrievalTask({name}queries={len(self)}, corpus={len(self.corpus)}, judgements={judgements})"


class TextPairDataset(Dataset):
    """Training rows of ``(query, positive[, negative])`` texts.

    Row ``i`` pairs ``queries[i]`` with its positive ``positives[i]`` (and, for
    triplets, a hard negative ``negatives[i]``); the other rows of a batch serve as
    in-batch negatives. Fetching a batch returns the raw strings: the encoder tokenises.

    Args:
        queries: the query (anchor) texts ``[N]``.
        positives: the positive (document) texts ``[N]``.
        negatives: optional hard-negative texts ``[N]``.
        labels: optional integer labels ``[N]`` (e.g. the package of a code snippet),
            used by supervised objectives and evaluation.
        groups: optional group names ``[N]`` (rows of one group are related, e.g. the same
            package or the same query), used to mask false negatives or to split.

    Raises:
        ValueError: when the lists differ in length, are empty, or hold an empty or
            non-string text (the message names the row and the column), or when
            ``labels``/``groups`` do not match the rows.
    """

    def __init__(
        self,
        queries: Sequence[str],
        positives: Sequence[str],
        negatives: Sequence[str] | None = None,
        *,
        labels: torch.Tensor | None = None,
        groups: Sequence[str] | None = None,
    ) -> None:
        columns = {"query": list(queries), "positive": list(positives)}
        if negatives is not None:
            columns["negative"] = list(negatives)
        lengths = {name: len(texts) for name, texts in columns.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(
                "TextPairDataset: expected the same number of rows in every column, got "
                + ", ".join(f"{count} {name} texts" for name, count in lengths.items())
            )
        if not columns["query"]:
            raise ValueError("TextPairDataset: expected at least one row, got none")
        for name, texts in columns.items():
            for row, text in enumerate(texts):
                if not isinstance(text, str) or not text.strip():
                    got = "an empty text" if isinstance(text, str) else type(text).__name__
                    raise ValueError(f"TextPairDataset: expected a non-empty string as the {name} of row {row}, got {got}")
        size = len(columns["query"])
        if labels is not None:
            if not isinstance(labels, torch.Tensor) or labels.dim() != 1:
                shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
                raise ValueError(f"TextPairDataset: expected labels as a 1-D tensor [N], got {shape}")
            if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
                raise ValueError(f"TextPairDataset: expected integer labels, got dtype {labels.dtype}")
            if labels.shape[0] != size:
                raise ValueError(f"TextPairDataset: expected {size} labels (one per row), got {labels.shape[0]}")
            labels = labels.long()
        if groups is not None:
            groups = list(groups)
            if len(groups) != size:
                raise ValueError(f"TextPairDataset: expected {size} groups (one per row), got {len(groups)}")
            bad = next((row for row, group in enumerate(groups) if not isinstance(group, str)), None)
            if bad is not None:
                raise ValueError(f"TextPairDataset: expected a string group for row {bad}, got {type(groups[bad]).__name__}")
        self.queries: list[str] = columns["query"]
        self.positives: list[str] = columns["positive"]
        self.negatives: list[str] | None = columns.get("negative")
        self.labels: torch.Tensor | None = labels
        self.groups: list[str] | None = groups

    def __len__(self) -> int:
        return len(self.queries)

    @property
    def has_negatives(self) -> bool:
        """Whether every row carries a hard negative (triplets)."""
        return self.negatives is not None

    @property
    def num_classes(self) -> int:
        """The number of label classes (``max(label) + 1``); 0 when unlabelled."""
        if self.labels is None:
            return 0
        return int(self.labels.max()) + 1

    def _row(self, index: int) -> int:
        row = int(index)
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(f"TextPairDataset: index {index} out of range for {len(self)} rows")
        return row

    def __getitem__(self, index: int) -> Batch:
        """One row as a :class:`Batch`: ``inputs`` maps each column to one string; scalar label and index."""
        row = self._row(index)
        inputs = {"query": self.queries[row], "positive": self.positives[row]}
        if self.negatives is not None:
            inputs["negative"] = self.negatives[row]
        return Batch(
            inputs=inputs,
            labels=None if self.labels is None else self.labels[row],
            index=torch.tensor(row, dtype=torch.long),
        )

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        """Many rows as one :class:`Batch`: ``inputs`` maps each column to a list of ``B`` strings.

        ``labels`` is ``[B]`` (or ``None``) and ``index`` the rows ``[B]``.
        """
        rows = [self._row(index) for index in indices]
        inputs = {"query": [self.queries[row] for row in rows], "positive": [self.positives[row] for row in rows]}
        if self.negatives is not None:
            inputs["negative"] = [self.negatives[row] for row in rows]
        index = torch.tensor(rows, dtype=torch.long)
        return Batch(inputs=inputs, labels=None if self.labels is None else self.labels[index], index=index)

    def subset(self, rows: torch.Tensor | Sequence[int]) -> TextPairDataset:
        """A new dataset with the given rows, in the given order (labels and groups follow)."""
        positions = [self._row(row) for row in torch.as_tensor(rows, dtype=torch.long).reshape(-1).tolist()]
        index = torch.tensor(positions, dtype=torch.long)
        return TextPairDataset(
            [self.queries[row] for row in positions],
            [self.positives[row] for row in positions],
            None if self.negatives is None else [self.negatives[row] for row in positions],
            labels=None if self.labels is None else self.labels[index],
            groups=None if self.groups is None else [self.groups[row] for row in positions],
        )

    def __repr__(self) -> str:
        kind = "triplets" if self.has_negatives else "pairs"
        labelled = ", labelled" if self.labels is not None else ""
        return f"TextPairDataset(n={len(self)}, {kind}{labelled})"

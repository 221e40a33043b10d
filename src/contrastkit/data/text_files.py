"""Your own text: JSONL pairs and triplets, line-aligned text files, and BEIR folders.

Three formats, all read with the standard library only:

- **JSONL pairs/triplets** (:func:`load_text_pairs`, dataset ``text-pairs``): one JSON
  object per line with ``query`` (or ``anchor``) and ``positive`` (or ``document``),
  optionally ``negative`` (a hard negative; every row or none) and ``label`` (a
  non-negative integer; every row or none). Other keys are ignored; blank lines are skipped.

  .. code-block:: text

      {"query": "how do I sort a list", "positive": "sorted(xs)", "negative": "len(xs)"}

- **Line-aligned text files** (:func:`load_parallel_text`): line ``i`` of the queries
  file pairs with line ``i`` of the documents file.
- **BEIR folders** (:func:`load_beir`, :func:`beir_training_pairs`, dataset
  ``beir:PATH``): ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
  (``_id``, ``text``) and ``qrels/{split}.tsv`` (a ``query-id<TAB>corpus-id<TAB>score``
  header, then one graded judgement per line), as in
  github.com/beir-cellar/beir. A document's text is ``title + " " + text`` (stripped),
  the join BEIR's dense-retrieval evaluation encodes. Only the queries of the split's
  qrels are kept (as BEIR's loader does), with every judgement and its grade as given
  (score 0 = judged non-relevant). An empty query or document is skipped unless a
  judgement uses it, which is an error.

Example:
    >>> splits = load_dataset("beir:/data/scifact")  # train from qrels/train.tsv, test from qrels/test.tsv
    >>> splits.test
    RetrievalTask('scifact/test', queries=300, corpus=5183, judgements=339)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch

from contrastkit.data.registry import (
    DatasetSplits,
    register_dataset,
    register_dataset_prefix,
)
from contrastkit.data.splits import subset_indices
from contrastkit.data.text import RetrievalTask, TextPairDataset

#: Accepted keys for the query and the positive of a JSONL row (first one is the canonical name).
QUERY_KEYS = ("query", "anchor")
POSITIVE_KEYS = ("positive", "document")

#: The header of a BEIR qrels file.
QRELS_HEADER = ("query-id", "corpus-id", "score")


def _resolve(value: str | Path, data_dir: str | Path | None) -> Path:
    path = Path(value).expanduser()
    if not path.is_absolute() and data_dir is not None:
        path = Path(data_dir).expanduser() / path
    return path


def _read_lines(path: Path, what: str) -> list[str]:
    """The file's lines without line endings (``\\n`` or ``\\r\\n``), UTF-8."""
    if not path.is_file():
        raise FileNotFoundError(f"{what}: file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: tolerate a byte-order mark from Windows editors
    except UnicodeDecodeError as error:
        raise ValueError(f"{what}: {path}: expected UTF-8 text ({error})") from error
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line, it does not start a new one
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _json_objects(path: Path, what: str) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` of every non-blank line of a JSONL file."""
    for number, line in enumerate(_read_lines(path, what), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{what}: {path} line {number}: invalid JSON ({error.msg} at column {error.colno})") from error
        if not isinstance(row, dict):
            raise ValueError(f"{what}: {path} line {number}: expected a JSON object {{...}}, got {type(row).__name__}")
        yield number, row


def _text_field(row: dict, keys: tuple[str, ...], where: str, *, required: bool = True) -> str | None:
    present = [key for key in keys if key in row]
    if not present:
        if not required:
            return None
        raise ValueError(f"{where}: missing key {' or '.join(repr(key) for key in keys)}; got keys {sorted(row)}")
    if len(present) > 1:
        raise ValueError(f"{where}: expected one of {' or '.join(repr(key) for key in keys)}, got both")
    value = row[present[0]]
    if not isinstance(value, str) or not value.strip():
        got = "an empty string" if isinstance(value, str) else f"{type(value).__name__} {value!r}"
        raise ValueError(f"{where}: expected {present[0]!r} to be a non-empty string, got {got}")
    return value


def load_text_pairs(path: str | Path) -> TextPairDataset:
    """Read (query, positive[, negative]) rows from a JSONL file.

    Args:
        path: the ``.jsonl`` file; one object per line with ``query``/``anchor``,
            ``positive``/``document``, optional ``negative`` and optional ``label``
            (a non-negative integer).

    Returns:
        The rows, in file order (labels when the file has them).

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: naming the file and line, for invalid JSON, a line that is not an
            object, a missing key, an empty or non-string text, a label that is not a
            non-negative integer, rows with and without ``negative`` (or ``label``)
            mixed, or a file without rows.
    """
    path = Path(path).expanduser()
    queries: list[str] = []
    positives: list[str] = []
    negatives: list[str] = []
    labels: list[int] = []
    first_row: tuple[int, bool, bool] | None = None  # (line, has negative, has label)
    for number, row in _json_objects(path, "text pairs"):
        where = f"text pairs: {path} line {number}"
        queries.append(_text_field(row, QUERY_KEYS, where))  # type: ignore[arg-type]
        positives.append(_text_field(row, POSITIVE_KEYS, where))  # type: ignore[arg-type]
        negative = _text_field(row, ("negative",), where, required=False)
        has_label = "label" in row
        if first_row is None:
            first_row = (number, negative is not None, has_label)
        for has, first_has, key in ((negative is not None, first_row[1], "negative"), (has_label, first_row[2], "label")):
            if has != first_has:
                raise ValueError(
                    f"{where}: {'has' if has else 'lacks'} {key!r} but line {first_row[0]} "
                    f"{'has' if first_has else 'lacks'} it; expected {key!r} in every row or in none"
                )
        if negative is not None:
            negatives.append(negative)
        if has_label:
            label = row["label"]
            if isinstance(label, bool) or not isinstance(label, int) or label < 0:
                raise ValueError(f"{where}: expected 'label' to be a non-negative integer, got {label!r}")
            labels.append(label)
    if first_row is None:
        raise ValueError(f"text pairs: {path}: expected at least one JSON line, got none")
    return TextPairDataset(
        queries,
        positives,
        negatives if first_row[1] else None,
        labels=torch.tensor(labels, dtype=torch.long) if first_row[2] else None,
    )


def load_parallel_text(queries_path: str | Path, documents_path: str | Path) -> TextPairDataset:
    """Pair line ``i`` of a queries file with line ``i`` of a documents file.

    Args:
        queries_path: a UTF-8 text file, one query per line.
        documents_path: a UTF-8 text file, one document per line.

    Returns:
        The pairs, in line order.

    Raises:
        FileNotFoundError: when a file does not exist.
        ValueError: when the files have different numbers of lines ("mismatched pair
            files"), or a line is empty (the message names the file and line).
    """
    queries_path, documents_path = Path(queries_path).expanduser(), Path(documents_path).expanduser()
    queries = _read_lines(queries_path, "parallel text")
    documents = _read_lines(documents_path, "parallel text")
    if len(queries) != len(documents):
        raise ValueError(
            f"parallel text: mismatched pair files: {queries_path} has {len(queries)} lines but {documents_path} "
            f"has {len(documents)}; expected line i of one to pair with line i of the other"
        )
    if not queries:
        raise ValueError(f"parallel text: {queries_path} and {documents_path} are empty; expected at least one line")
    for path, lines in ((queries_path, queries), (documents_path, documents)):
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                raise ValueError(f"parallel text: {path} line {number} is empty; expected one non-empty text per line")
    return TextPairDataset(queries, documents)


def retrieval_task_from_pairs(pairs: TextPairDataset, name: str = "") -> RetrievalTask:
    """Turn (query, positive[, negative]) rows into a retrieval task.

    Each distinct query text becomes one query (``q0``, ``q1``, ... in order of first
    appearance) whose relevant documents (grade 1) are the positives of its rows.
    Identical document texts collapse into one document (``d0``, ``d1``, ...);
    negatives join the corpus as unjudged distractors.

    Args:
        pairs: the rows.
        name: the task's name.

    Returns:
        The task.
    """
    query_ids: dict[str, str] = {}
    doc_ids: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}

    def doc_id(text: str) -> str:
        return doc_ids.setdefault(text, f"d{len(doc_ids)}")

    for row, (query, positive) in enumerate(zip(pairs.queries, pairs.positives)):
        query_id = query_ids.setdefault(query, f"q{len(query_ids)}")
        qrels.setdefault(query_id, {})[doc_id(positive)] = 1
        if pairs.negatives is not None:
            doc_id(pairs.negatives[row])
    return RetrievalTask(
        queries={query_id: query for query, query_id in query_ids.items()},
        corpus={identifier: text for text, identifier in doc_ids.items()},
        qrels=qrels,
        name=name,
    )


@register_dataset(
    "text-pairs",
    description="your own text pairs/triplets: train=PATH.jsonl ({query, positive[, negative]} per line), "
    "optional test=, validation= (JSONL pairs evaluated as retrieval)",
)
def load_text_pairs_dataset(
    *,
    data_dir: str | Path | None = None,
    train: str | Path | None = None,
    test: str | Path | None = None,
    validation: str | Path | None = None,
) -> DatasetSplits:
    """Your own (query, positive[, negative]) JSONL files for training and retrieval evaluation.

    The training file gives the pairs (see :func:`load_text_pairs`). The test and
    validation files are JSONL pairs too, turned into retrieval tasks by
    :func:`retrieval_task_from_pairs`: every query must find its own positive among all
    the file's positives (duplicate positives collapse into one document).

    Args:
        data_dir: a folder that relative paths are resolved against.
        train: the training JSONL file (required).
        test: the test JSONL file; ``None`` leaves ``test`` empty (``None``).
        validation: the validation JSONL file; ``None`` for none.

    Returns:
        ``DatasetSplits(train=TextPairDataset, test=RetrievalTask | None,
        validation=RetrievalTask | None, num_classes=0, input_shape=(), modality="text")``.

    Raises:
        FileNotFoundError: when a file does not exist.
        ValueError: when ``train`` is missing, or a file is malformed (see :func:`load_text_pairs`).
    """
    if train is None:
        raise ValueError("text-pairs: train is required (pass --set data.train=PATH, a JSONL file of {query, positive} rows)")
    train_pairs = load_text_pairs(_resolve(train, data_dir))

    def task(value: str | Path | None, role: str) -> RetrievalTask | None:
        if value is None:
            return None
        path = _resolve(value, data_dir)
        return retrieval_task_from_pairs(load_text_pairs(path), name=f"{path.stem}/{role}")

    return DatasetSplits(
        train=train_pairs,
        test=task(test, "test"),
        validation=task(validation, "validation"),
        num_classes=0,
        input_shape=(),
        modality="text",
    )


# --------------------------------------------------------------------------------------
# BEIR folders
# --------------------------------------------------------------------------------------


def _shown(items: list[str], limit: int = 5) -> str:
    return ", ".join(repr(item) for item in items[:limit]) + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def read_beir_texts(path: Path, *, join_title: bool) -> dict[str, str]:
    """``{_id: text}`` of a BEIR ``corpus.jsonl`` / ``queries.jsonl`` file (empty texts kept).

    With ``join_title`` the document text is ``title + " " + text``, as BEIR's dense
    evaluation encodes it. Errors name the file and line.
    """
    texts: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, row in _json_objects(path, "beir"):
        where = f"beir: {path} line {number}"
        identifier = row.get("_id")
        if isinstance(identifier, bool) or not isinstance(identifier, (str, int)) or str(identifier) == "":
            raise ValueError(f"{where}: expected a non-empty string '_id', got {identifier!r}")
        identifier = str(identifier)
        if identifier in lines:
            raise ValueError(f"{where}: duplicate _id {identifier!r} (first on line {lines[identifier]})")
        lines[identifier] = number
        text = row.get("text")
        title = row.get("title", "") if join_title else ""
        for key, value in (("text", text), ("title", title)):
            if not isinstance(value, str):
                raise ValueError(f"{where}: expected {key!r} to be a string, got {type(value).__name__} {value!r}")
        # BEIR's dense evaluation encodes (title + " " + text).strip() for every document.
        texts[identifier] = (title + " " + text).strip() if title else text.strip()  # type: ignore[operator,union-attr]
    if not texts:
        raise ValueError(f"beir: {path}: expected at least one line, got none")
    return texts


class _BeirFolder:
    """A BEIR folder whose corpus and queries are read once, on first use."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        if not self.path.is_dir():
            raise FileNotFoundError(
                f"beir: folder not found: {self.path}; expected a BEIR folder with corpus.jsonl, queries.jsonl "
                "and qrels/{split}.tsv"
            )
        self._corpus: dict[str, str] | None = None
        self._queries: dict[str, str] | None = None

    def _file(self, name: str) -> Path:
        path = self.path / name
        if not path.is_file():
            present = sorted(item.name for item in self.path.iterdir())
            raise FileNotFoundError(
                f"beir: {name} not found in {self.path}; expected corpus.jsonl, queries.jsonl and qrels/, "
                f"found: {', '.join(present) or '(nothing)'}"
            )
        return path

    def _read_texts(self, name: str, join_title: bool) -> dict[str, str]:
        return read_beir_texts(self._file(name), join_title=join_title)

    @property
    def corpus(self) -> dict[str, str]:
        """``{doc_id: text}`` of every document, empty ones included."""
        if self._corpus is None:
            self._corpus = self._read_texts("corpus.jsonl", join_title=True)
        return self._corpus

    @property
    def queries(self) -> dict[str, str]:
        """``{query_id: text}`` of every query, empty ones included."""
        if self._queries is None:
            self._queries = self._read_texts("queries.jsonl", join_title=False)
        return self._queries

    def qrels_path(self, split: str) -> Path:
        return self.path / "qrels" / f"{split}.tsv"

    def has_split(self, split: str) -> bool:
        return self.qrels_path(split).is_file()

    def qrels(self, split: str) -> dict[str, dict[str, int]]:
        """``{query_id: {doc_id: grade}}`` of ``qrels/{split}.tsv``, ids checked against the corpus and queries."""
        path = self.qrels_path(split)
        if not path.is_file():
            folder = self.path / "qrels"
            found = sorted(item.name for item in folder.glob("*.tsv")) if folder.is_dir() else []
            raise FileNotFoundError(
                f"beir: qrels for split {split!r} not found: {path}; "
                + (f"found qrels files: {', '.join(found)}" if found else f"found no qrels files in {folder}")
            )
        qrels: dict[str, dict[str, int]] = {}
        first_line: dict[tuple[str, str], int] = {}
        unknown: dict[str, list[tuple[int, str]]] = {"query": [], "document": []}
        empty: list[tuple[int, str, str]] = []
        corpus, queries = self.corpus, self.queries
        header_possible = True
        for number, line in enumerate(_read_lines(path, "beir"), start=1):
            if not line.strip():
                continue
            first_row, header_possible = header_possible, False
            fields = line.split("\t")
            if len(fields) != 3:
                raise ValueError(
                    f"beir: {path} line {number}: expected 3 tab-separated fields (query-id, corpus-id, score), "
                    f"got {len(fields)}: {line[:80]!r}"
                )
            query_id, doc_id, score_text = (field.strip() for field in fields)
            try:
                score = int(score_text)
            except ValueError:
                if first_row:
                    continue  # the header line: query-id, corpus-id, score
                raise ValueError(f"beir: {path} line {number}: expected an integer score, got {score_text!r}") from None
            if not query_id or not doc_id:
                raise ValueError(f"beir: {path} line {number}: expected non-empty query and corpus ids, got {line!r}")
            key = (query_id, doc_id)
            if key in first_line:
                if qrels[query_id][doc_id] != score:
                    raise ValueError(
                        f"beir: {path} line {number}: query {query_id!r} and document {doc_id!r} were judged "
                        f"{qrels[query_id][doc_id]} on line {first_line[key]} and {score} here; expected one grade"
                    )
                continue
            first_line[key] = number
            if query_id not in queries:
                unknown["query"].append((number, query_id))
            elif not queries[query_id]:
                empty.append((number, "query", query_id))
            if doc_id not in corpus:
                unknown["document"].append((number, doc_id))
            elif not corpus[doc_id]:
                empty.append((number, "document", doc_id))
            qrels.setdefault(query_id, {})[doc_id] = score
        for kind, source in (("query", "queries.jsonl"), ("document", "corpus.jsonl")):
            if unknown[kind]:
                number, identifier = unknown[kind][0]
                distinct = list(dict.fromkeys(item for _, item in unknown[kind]))
                raise ValueError(
                    f"beir: {path} line {number}: {kind} id {identifier!r} is not in {source}; "
                    f"unknown {kind} ids: {_shown(distinct)}"
                )
        if empty:
            number, kind, identifier = empty[0]
            raise ValueError(f"beir: {path} line {number}: the {kind} {identifier!r} is judged but its text is empty")
        if not qrels:
            raise ValueError(f"beir: {path}: expected at least one judgement after the header, got none")
        return qrels

    def task(self, split: str) -> RetrievalTask:
        qrels = self.qrels(split)
        queries = self.queries
        return RetrievalTask(
            queries={query_id: queries[query_id] for query_id in qrels},
            corpus={doc_id: text for doc_id, text in self.corpus.items() if text},
            qrels=qrels,
            name=f"{self.path.name}/{split}",
        )

    def training_pairs(self, split: str) -> TextPairDataset:
        qrels = self.qrels(split)
        queries, corpus = self.queries, self.corpus
        rows = [(query_id, doc_id) for query_id, judged in qrels.items() for doc_id, grade in judged.items() if grade > 0]
        if not rows:
            raise ValueError(f"beir: {self.qrels_path(split)}: expected at least one relevant (score > 0) judgement, got none")
        return TextPairDataset(
            [queries[query_id] for query_id, _ in rows],
            [corpus[doc_id] for _, doc_id in rows],
            groups=[query_id for query_id, _ in rows],
        )


def load_beir(path: str | Path, split: str = "test") -> RetrievalTask:
    """A BEIR folder's retrieval task for one split.

    Args:
        path: the folder holding ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/{split}.tsv``.
        split: the qrels file to read, e.g. ``"test"``, ``"dev"``.

    Returns:
        The task: the queries of the split's qrels, the whole (non-empty) corpus, and
        every judgement with its grade as given (0 = judged non-relevant).

    Raises:
        FileNotFoundError: when the folder, ``corpus.jsonl``, ``queries.jsonl`` or the
            qrels file is missing (the message lists what was found).
        ValueError: naming the file and line, for invalid JSON, a missing or duplicate
            ``_id``, a qrels row without 3 tab-separated fields or with a non-integer
            score, conflicting grades for one pair, a judgement of an unknown or empty
            query or document.
    """
    return _BeirFolder(path).task(split)


def beir_training_pairs(path: str | Path, split: str = "train") -> TextPairDataset:
    """(query, relevant document) training rows from a BEIR folder's qrels.

    One row per judgement with score ``> 0``, in qrels file order; ``groups`` holds the
    query id of each row, so that rows sharing a query can be told apart from true negatives.

    Args:
        path: the BEIR folder.
        split: the qrels file to read (default ``"train"``).

    Returns:
        The rows.

    Raises:
        FileNotFoundError, ValueError: as :func:`load_beir`, and a ``ValueError`` when no
            judgement is relevant.
    """
    return _BeirFolder(path).training_pairs(split)


def load_beir_dataset(
    *,
    path: str | Path,
    data_dir: str | Path | None = None,
    split: str = "test",
    train_split: str | None = "train",
    validation_split: str | None = "dev",
    max_train: int | None = None,
    max_test_queries: int | None = None,
    max_validation_queries: int | None = None,
    seed: int = 0,
) -> DatasetSplits:
    """A BEIR-format folder: training pairs from the train qrels, retrieval tasks for evaluation.

    Args:
        path: the folder (relative paths resolve against ``data_dir`` when given).
        data_dir: a folder that a relative ``path`` is resolved against.
        split: the qrels file of the test task (required).
        train_split: the qrels file of the training pairs; when it is missing (or
            ``None``) ``train`` is ``None``, and training on it is the caller's error.
        validation_split: the qrels file of the validation task; missing gives ``None``.
        max_train: keep a seeded sample of this many training rows.
        max_test_queries: keep a seeded sample of this many test queries (whole corpus kept).
        max_validation_queries: the same for the validation task.
        seed: the seed of these samples.

    Returns:
        ``DatasetSplits(train=TextPairDataset | None, test=RetrievalTask,
        validation=RetrievalTask | None, num_classes=0, input_shape=(), modality="text")``.

    Raises:
        FileNotFoundError, ValueError: as :func:`load_beir`.
    """
    folder = _BeirFolder(_resolve(path, data_dir))
    test = folder.task(split).subset(max_test_queries, seed=seed)
    validation = None
    if validation_split is not None and validation_split != split and folder.has_split(validation_split):
        validation = folder.task(validation_split).subset(max_validation_queries, seed=seed)
    train = None
    if train_split is not None and folder.has_split(train_split):
        train = folder.training_pairs(train_split)
        if max_train is not None:
            train = train.subset(subset_indices(len(train), max_train, seed=seed).tolist())
    return DatasetSplits(
        train=train, test=test, validation=validation, num_classes=0, input_shape=(), modality="text"
    )


register_dataset_prefix(
    "beir",
    load_beir_dataset,
    description="a BEIR folder (corpus.jsonl, queries.jsonl, qrels/{train,dev,test}.tsv): train pairs from "
    "the train qrels, retrieval tasks for dev/test",
)

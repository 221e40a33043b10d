"""``stdlib-code-search``: docstring -> function retrieval over the running Python's standard library.

Every Python installation carries several thousand documented functions in its own
source, so this code-search benchmark needs no download and is the same on every
machine with the same Python version. It is built deterministically:

- **Functions.** Every ``def`` / ``async def`` of every module under
  ``sysconfig.get_paths()["stdlib"]`` at module or class level (also inside ``if`` /
  ``try`` / ``with`` blocks there), methods included, whose body starts with a docstring.
  Functions nested inside other functions are left out: their code is part of the
  enclosing function's document.
- **Query** = the first paragraph of the docstring (``inspect.cleandoc``, up to the
  first blank line, whitespace collapsed to single spaces).
- **Document** = the function's source from its first decorator to its last line,
  dedented by the ``def``'s own indentation (a line of a multi-line string that starts
  further left is kept as it is, so that every document parses), with exactly the
  docstring's lines removed.
- **Filters** (keyword options): a query of at least ``min_query_words`` words; a
  document of at least ``min_document_lines`` non-blank lines; a non-empty body once
  the docstring is gone; no docstring sharing a line with code; no test code (any
  folder or module named ``test``/``tests``, ``test_*`` or ``*_test``, e.g. ``test/``,
  ``idlelib/idle_test/``, ``lib2to3/tests/``) unless ``include_tests``; never
  ``site-packages``, ``__pycache__`` or a path that is not an importable module name.
  Files that cannot be decoded or parsed are skipped and counted
  (:func:`stdlib_code_summary`).
- **De-duplication**, in sorted (path, line) order: an exact duplicate document keeps its
  first occurrence; then a query shared by more than ``max_query_repeats`` functions
  (a boiler-plate docstring) is dropped with all of its functions.
- **Split by top-level package or module**: the top-level name (``email`` for
  ``email.mime.text``, ``textwrap`` for ``textwrap``) goes to train/dev/test by a stable
  hash (:func:`split_of`), so no module, indeed no package, crosses splits.

Ids are ``module.qualname`` (e.g. ``textwrap.dedent``), with ``:lineno`` appended to
every member of a group that would otherwise share an id (e.g. the two platform
variants of a function defined in an ``if``/``else``). In the retrieval tasks the
document id is the record id and the query id is ``"query:" + record id``, so that the
BEIR option to remove self-hits (doc id == query id) never removes the answer.

Example:
    >>> splits = load_dataset("stdlib-code-search", max_test_queries=500)
    >>> splits.train, splits.test
    (TextPairDataset(n=..., pairs, labelled), RetrievalTask(queries=500, corpus=..., judgements=500))
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import inspect
import os
import sysconfig
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from contrastkit.data.registry import DatasetSplits, register_dataset
from contrastkit.data.splits import subset_indices
from contrastkit.data.text import RetrievalTask, TextPairDataset

#: The split names :func:`split_of` returns, in the order of the fractions.
SPLIT_NAMES = ("train", "dev", "test")

#: The default (train, dev, test) fractions of top-level names.
# 70/15/15 of the top-level names: with 80/10/10 the held-out packages of Python 3.11 hold only
# 332 functions, too few for Recall@100 to mean anything; 70/15/15 gives ~950 test functions.
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)

#: Folders never read: installed third-party packages and byte-code caches.
_EXCLUDED_FOLDERS = frozenset({"site-packages", "dist-packages", "__pycache__"})

#: The prefix of a query id (the document id is the bare record id).
QUERY_ID_PREFIX = "query:"


@dataclass(frozen=True)
class CodeRecord:
    """One documented standard-library function: a (query, document) pair and where it comes from.

    Attributes:
        id: the unique id, ``module.qualname`` (``:lineno`` appended when needed).
        query: the first paragraph of the docstring, whitespace collapsed.
        document: the function's source without its docstring, dedented.
        module: the dotted module name, e.g. ``"email.mime.text"``.
        package: the top-level package or module, e.g. ``"email"``; the unit of the split.
        qualname: the qualified name inside the module, e.g. ``"TextWrapper.wrap"``.
        path: the file, relative to the standard-library folder, with ``/`` separators.
        lineno: the 1-based line of the ``def`` (decorators come before it).
    """

    id: str
    query: str
    document: str
    module: str
    package: str
    qualname: str
    path: str
    lineno: int


@dataclass(frozen=True)
class StdlibCodeSummary:
    """What a build read, skipped and kept (see :func:`stdlib_code_summary`).

    Attributes:
        stdlib_dir: the folder that was read.
        files_read: the number of modules that were parsed.
        files_failed: the modules that could not be decoded or parsed (relative paths).
        functions: the module- and class-level functions found in the parsed modules.
        documented: those of them with a docstring.
        dropped: how many documented functions each filter removed, by reason.
        records: the number of records kept.
        seconds: how long the build took (the first, uncached one).
    """

    stdlib_dir: str
    files_read: int
    files_failed: tuple[str, ...]
    functions: int
    documented: int
    dropped: dict[str, int] = field(hash=False)
    records: int
    seconds: float


def default_stdlib_dir() -> Path:
    """The running Python's standard-library folder (``sysconfig.get_paths()["stdlib"]``)."""
    return Path(sysconfig.get_paths()["stdlib"])


def _is_test_name(name: str) -> bool:
    return name in ("test", "tests") or name.startswith("test_") or name.endswith(("_test", "_tests"))


def _module_files(root: Path, include_tests: bool) -> list[tuple[str, tuple[str, ...]]]:
    """``(relative posix path, module name parts)`` of every module to read, sorted by path."""
    found = []
    for directory, folders, files in os.walk(root):
        # Pruning here keeps os.walk out of site-packages and the test suite entirely.
        folders[:] = [
            folder
            for folder in folders
            if folder not in _EXCLUDED_FOLDERS and folder.isidentifier() and (include_tests or not _is_test_name(folder))
        ]
        relative_dir = Path(directory).relative_to(root).parts
        for file in files:
            if not file.endswith(".py"):
                continue
            stem = file[:-3]
            if not stem.isidentifier() or (not include_tests and _is_test_name(stem)):
                continue
            parts = relative_dir if stem == "__init__" else (*relative_dir, stem)
            if not parts:
                continue  # an __init__.py at the root is not a module
            found.append(("/".join((*relative_dir, file)), parts))
    return sorted(found)


def _functions(node: ast.AST, prefix: str = ""):
    """``(qualname, node)`` of the functions at module or class level, in source order.

    Descends through classes and compound statements (``if``, ``try``, ``with``, ...)
    but not into function bodies.
    """
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + child.name, child
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.")
        elif isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case)):
            yield from _functions(child, prefix)


def first_paragraph(docstring: str) -> str:
    """The first paragraph of a docstring: ``inspect.cleandoc``, up to the first blank line, whitespace collapsed.

    Example:
        >>> first_paragraph("Return x.\\n\\n    More detail.")
        'Return x.'
    """
    lines = []
    for line in inspect.cleandoc(docstring).splitlines():
        if not line.strip():
            break
        lines.append(line)
    return " ".join(" ".join(lines).split())


def _is_blank(text: bytes) -> bool:
    return not text.strip()


def _function_document(lines: list[str], function: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """The function's source with its docstring's lines removed, dedented; ``None`` when that is impossible.

    ``lines`` are the module's lines. Column offsets in the AST are UTF-8 byte offsets,
    hence the byte slicing.
    """
    docstring = function.body[0]
    first = lines[docstring.lineno - 1].encode("utf-8")
    last = lines[docstring.end_lineno - 1].encode("utf-8")  # type: ignore[operator]
    after = last[docstring.end_col_offset :].strip()
    if not _is_blank(first[: docstring.col_offset]) or (after and not after.startswith(b"#")):
        return None  # the docstring shares a line with code: removing its lines would remove code
    start_node = min([function, *function.decorator_list], key=lambda node: (node.lineno, node.col_offset))
    start_line = start_node.lineno
    segment = [line.encode("utf-8") for line in lines[start_line - 1 : function.end_lineno]]
    segment[-1] = segment[-1][: function.end_col_offset]  # cut first: the start column is counted on the same line
    start_column = function.col_offset
    if start_node is not function:
        start_column = max(segment[0].rfind(b"@", 0, start_node.col_offset), 0)
    prefix = segment[0][:start_column]
    if not _is_blank(prefix):  # e.g. "class A: def f(self): ..." keeps only the def, indented as before
        segment[0] = b" " * len(prefix.decode("utf-8", errors="replace")) + segment[0][start_column:]
        prefix = b" " * len(prefix.decode("utf-8", errors="replace"))
    indent = prefix.decode("utf-8")
    removed = set(range(docstring.lineno, docstring.end_lineno + 1))  # type: ignore[operator]
    kept = []
    for number, raw in enumerate(segment, start=start_line):
        if number in removed:
            continue
        line = raw.decode("utf-8", errors="replace").rstrip()
        # Remove the def's own indentation (not textwrap.dedent's common margin): a line of a
        # multi-line string that starts further left stays as it is, and the code still parses.
        kept.append(line[len(indent) :] if line.startswith(indent) else line)
    return "\n".join(kept).strip("\n")


def _check_filters(min_query_words: int, min_document_lines: int, max_query_repeats: int) -> None:
    for name, value in (
        ("min_query_words", min_query_words),
        ("min_document_lines", min_document_lines),
        ("max_query_repeats", max_query_repeats),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "max_query_repeats" else 0):
            minimum = 1 if name == "max_query_repeats" else 0
            raise ValueError(f"stdlib-code-search: expected an integer {name} >= {minimum}, got {value!r}")


@functools.lru_cache(maxsize=8)
def _build(
    stdlib_dir: str, min_query_words: int, min_document_lines: int, max_query_repeats: int, include_tests: bool
) -> tuple[tuple[CodeRecord, ...], StdlibCodeSummary]:
    started = time.perf_counter()
    root = Path(stdlib_dir)
    candidates: list[CodeRecord] = []
    failed: list[str] = []
    dropped: Counter[str] = Counter()
    functions = documented = files_read = 0
    for relative, parts in _module_files(root, include_tests):
        try:
            source = importlib.util.decode_source((root / relative).read_bytes())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. SyntaxWarning for invalid escapes in old modules
                tree = ast.parse(source, filename=relative)
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError, LookupError, RecursionError, MemoryError):
            failed.append(relative)
            continue
        files_read += 1
        lines = source.split("\n")  # decode_source translated every newline to "\n", as the parser counts them
        module = ".".join(parts)
        for qualname, function in _functions(tree):
            functions += 1
            docstring = ast.get_docstring(function, clean=False)
            if docstring is None:
                continue
            documented += 1
            query = first_paragraph(docstring)
            if len(query.split()) < max(min_query_words, 1):
                dropped["short_query"] += 1
                continue
            if len(function.body) == 1:
                dropped["empty_body"] += 1
                continue
            document = _function_document(lines, function)
            if document is None:
                dropped["docstring_shares_line"] += 1
                continue
            if sum(1 for line in document.split("\n") if line.strip()) < min_document_lines:
                dropped["short_document"] += 1
                continue
            candidates.append(
                CodeRecord(
                    id="", query=query, document=document, module=module, package=parts[0],
                    qualname=qualname, path=relative, lineno=function.lineno,
                )  # fmt: skip
            )
    candidates.sort(key=lambda record: (record.path, record.lineno, record.qualname))

    seen_documents: set[str] = set()
    unique = []
    for record in candidates:
        if record.document in seen_documents:
            dropped["duplicate_document"] += 1
            continue
        seen_documents.add(record.document)
        unique.append(record)
    query_counts = Counter(record.query for record in unique)
    kept = [record for record in unique if query_counts[record.query] <= max_query_repeats]
    dropped["shared_query"] += len(unique) - len(kept)

    base_counts = Counter(f"{record.module}.{record.qualname}" for record in kept)
    records, used = [], set()
    for record in kept:
        base = f"{record.module}.{record.qualname}"
        record_id = base if base_counts[base] == 1 else f"{base}:{record.lineno}"
        if record_id in used:  # same module name from two files (e.g. x.py and x/__init__.py)
            record_id = f"{base}:{record.path}:{record.lineno}"
        used.add(record_id)
        records.append(CodeRecord(**{**record.__dict__, "id": record_id}))
    summary = StdlibCodeSummary(
        stdlib_dir=str(root),
        files_read=files_read,
        files_failed=tuple(failed),
        functions=functions,
        documented=documented,
        dropped={reason: count for reason, count in sorted(dropped.items()) if count},
        records=len(records),
        seconds=time.perf_counter() - started,
    )
    return tuple(records), summary


def _resolve_stdlib_dir(stdlib_dir: str | Path | None) -> str:
    root = default_stdlib_dir() if stdlib_dir is None else Path(stdlib_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"stdlib-code-search: expected a folder of Python modules, got {root} (not a folder)")
    return str(root.resolve())


def build_stdlib_code_records(
    stdlib_dir: str | Path | None = None,
    *,
    min_query_words: int = 3,
    min_document_lines: int = 3,
    max_query_repeats: int = 5,
    include_tests: bool = False,
) -> list[CodeRecord]:
    """The (query, function) records of a standard-library folder, sorted by path and line.

    The parse is cached in memory per folder and filter setting, so a second call is free.

    Args:
        stdlib_dir: the folder to read; ``None`` reads the running Python's standard library.
        min_query_words: the fewest words a query (the docstring's first paragraph) may have.
        min_document_lines: the fewest non-blank lines a document (code without docstring) may have.
        max_query_repeats: a query shared by more functions than this is dropped with all of them.
        include_tests: also read test code (``test/``, ``tests/``, ``test_*`` and ``*_test`` names).

    Returns:
        The records (a new list each call; the records themselves are immutable).

    Raises:
        FileNotFoundError: when ``stdlib_dir`` is not a folder.
        ValueError: for a negative or non-integer filter.
    """
    _check_filters(min_query_words, min_document_lines, max_query_repeats)
    records, _ = _build(_resolve_stdlib_dir(stdlib_dir), min_query_words, min_document_lines, max_query_repeats, bool(include_tests))
    return list(records)


def stdlib_code_summary(
    stdlib_dir: str | Path | None = None,
    *,
    min_query_words: int = 3,
    min_document_lines: int = 3,
    max_query_repeats: int = 5,
    include_tests: bool = False,
) -> StdlibCodeSummary:
    """What :func:`build_stdlib_code_records` read, skipped (files that failed to parse) and dropped (by filter).

    Takes the same arguments as :func:`build_stdlib_code_records` and shares its cache.
    """
    _check_filters(min_query_words, min_document_lines, max_query_repeats)
    _, summary = _build(_resolve_stdlib_dir(stdlib_dir), min_query_words, min_document_lines, max_query_repeats, bool(include_tests))
    return summary


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(value) for value in fractions)
    if len(values) != 3 or any(not 0.0 <= value <= 1.0 for value in values) or abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(
            f"stdlib-code-search: expected three (train, dev, test) fractions in [0, 1] summing to 1, got {tuple(fractions)}"
        )
    return values  # type: ignore[return-value]


def split_of(package: str, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> str:
    """The split (``"train"``, ``"dev"`` or ``"test"``) of a top-level package or module name.

    The name's SHA-256 hash, read as a number in ``[0, 1)``, falls into one of three
    consecutive intervals of the given widths; it is stable across runs, machines and
    Python versions, and a name keeps its split when other modules come or go.

    Args:
        package: the top-level name, e.g. ``"email"``.
        fractions: the (train, dev, test) fractions, summing to 1.

    Returns:
        The split name.

    Raises:
        ValueError: when the fractions are not three values in ``[0, 1]`` summing to 1.
    """
    train, dev, _ = _check_fractions(fractions)
    position = int.from_bytes(hashlib.sha256(package.encode("utf-8")).digest()[:8], "big") / 2.0**64
    if position < train:
        return "train"
    if position < train + dev:
        return "dev"
    return "test"


def retrieval_task_from_records(records: Sequence[CodeRecord], name: str = "") -> RetrievalTask:
    """Each record's query retrieves its own function among all the records' documents.

    Query ids are ``"query:" + record.id``, document ids the record ids; every query has
    exactly one relevant document (grade 1).
    """
    return RetrievalTask(
        queries={QUERY_ID_PREFIX + record.id: record.query for record in records},
        corpus={record.id: record.document for record in records},
        qrels={QUERY_ID_PREFIX + record.id: {record.id: 1} for record in records},
        name=name,
    )


@register_dataset(
    "stdlib-code-search",
    description="docstring -> function retrieval over this Python's standard library, split by top-level module "
    "(options: max_train, max_test_queries, max_validation_queries, seed)",
)
def load_stdlib_code_search(
    *,
    data_dir: str | Path | None = None,
    max_train: int | None = None,
    max_test_queries: int | None = None,
    max_validation_queries: int | None = None,
    seed: int = 0,
    train_fraction: float = DEFAULT_FRACTIONS[0],
    dev_fraction: float = DEFAULT_FRACTIONS[1],
    test_fraction: float = DEFAULT_FRACTIONS[2],
    min_query_words: int = 3,
    min_document_lines: int = 3,
    max_query_repeats: int = 5,
    include_tests: bool = False,
) -> DatasetSplits:
    """Docstring -> function retrieval over the running Python's standard library.

    See the module documentation for how records are built and filtered. The training
    split pairs each train-module function's query with its code (labels: the index of
    its top-level package among the sorted train packages; groups: the package names).
    The test and validation splits are retrieval tasks: each query's single relevant
    document is its own function, among all functions of that split's modules.

    Args:
        data_dir: a folder of Python modules to read instead of the running Python's
            standard library.
        max_train: keep a seeded, package-stratified sample of this many training pairs.
        max_test_queries: keep a seeded sample of this many test queries (the whole
            test corpus stays).
        max_validation_queries: the same for the validation (dev) split.
        seed: the seed of these samples.
        train_fraction: the share of top-level names in the training split.
        dev_fraction: the share in the dev (validation) split; 0 gives no validation split.
        test_fraction: the share in the test split.
        min_query_words: see :func:`build_stdlib_code_records`.
        min_document_lines: see :func:`build_stdlib_code_records`.
        max_query_repeats: see :func:`build_stdlib_code_records`.
        include_tests: see :func:`build_stdlib_code_records`.

    Returns:
        ``DatasetSplits(train=TextPairDataset, test=RetrievalTask, validation=RetrievalTask | None,
        num_classes=0, input_shape=(), modality="text")``.

    Raises:
        FileNotFoundError: when ``data_dir`` is not a folder.
        ValueError: for bad fractions or filters, or when the train or test split is empty.
    """
    fractions = _check_fractions((train_fraction, dev_fraction, test_fraction))
    records = build_stdlib_code_records(
        data_dir,
        min_query_words=min_query_words,
        min_document_lines=min_document_lines,
        max_query_repeats=max_query_repeats,
        include_tests=include_tests,
    )
    by_split: dict[str, list[CodeRecord]] = {split: [] for split in SPLIT_NAMES}
    split_cache: dict[str, str] = {}
    for record in records:
        if record.package not in split_cache:
            split_cache[record.package] = split_of(record.package, fractions)
        by_split[split_cache[record.package]].append(record)
    for split in ("train", "test"):
        if not by_split[split]:
            raise ValueError(
                f"stdlib-code-search: the {split} split is empty ({len(records)} records from {len(split_cache)} "
                f"top-level names, fractions {fractions}); expected at least one record there"
            )

    train_records = by_split["train"]
    packages = sorted({record.package for record in train_records})
    package_index = {package: index for index, package in enumerate(packages)}
    labels = np.array([package_index[record.package] for record in train_records], dtype=np.int64)
    keep = subset_indices(len(train_records), max_train, labels, seed=seed)
    train_records = [train_records[int(row)] for row in keep]
    train = TextPairDataset(
        [record.query for record in train_records],
        [record.document for record in train_records],
        labels=torch.from_numpy(labels[keep]),
        groups=[record.package for record in train_records],
    )
    test = retrieval_task_from_records(by_split["test"], "stdlib-code-search/test").subset(max_test_queries, seed=seed)
    validation = None
    if by_split["dev"]:
        validation = retrieval_task_from_records(by_split["dev"], "stdlib-code-search/dev").subset(
            max_validation_queries, seed=seed
        )
    return DatasetSplits(
        train=train, test=test, validation=validation, num_classes=0, input_shape=(), modality="text"
    )

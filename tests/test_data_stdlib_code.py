import ast
import hashlib
import shutil
import textwrap
from collections import Counter

import pytest

from contrastkit.data import load_dataset
from contrastkit.data.stdlib_code import (
    QUERY_ID_PREFIX,
    build_stdlib_code_records,
    first_paragraph,
    split_of,
    stdlib_code_summary,
)
from contrastkit.data.text import RetrievalTask, TextPairDataset


def first_name_in(split: str) -> str:
    return next(name for name in (f"mod{i}" for i in range(1000)) if split_of(name) == split)


TRAIN, DEV, TEST = first_name_in("train"), first_name_in("dev"), first_name_in("test")

TRAIN_INIT = '''
def top_level(x):
    """Compute the top level value of x.

    More text that is not part of the query.
    """
    y = x + 1
    return y * 2
'''

TRAIN_SUB = '''
import functools


class Widget:
    """A widget class (class docstrings are not queries)."""

    @functools.cache
    @staticmethod
    def build(size,
              colour):
        """Build   a widget
        of the given size.

        Args:
            size: the size.
        """
        total = size * 2
        # a comment that stays
        return total, colour

    async def fetch(self, url):
        """Fetch the widget description from url."""
        data = await self.get(url)
        data = data.strip()
        return data

    def only_docstring(self):
        """This body is only a docstring."""

    def shares_line(self):
        """The docstring shares its line."""; x = 1
        y = x
        return y

    def nested_outer(self):
        """Outer function with a nested helper."""
        def inner():
            """Inner helper is not a record on its own."""
            return 1
        return inner()


if True:
    def variant(a):
        """Return the platform variant number one."""
        a = a + 1
        return a
else:
    def variant(a):
        """Return the platform variant number two."""
        a = a - 1
        return a


def short_query(a):
    """Do it."""
    a = a + 1
    return a


def short_document(a):
    """Return a plus one quickly."""
    return a + 1
'''

SHARED = '''
def shared_{n}(a):
    """Return the thing requested."""
    value = a * {n}
    return value
'''

TEST_MOD = '''
def duplicate_first(a):
    """The first copy of duplicated code."""
    result = a * 3
    return result


def unicode_text():
    """Return the café greeting string."""
    text = "café"
    return text + "!"
'''

DEV_MOD = '''
def duplicate_first(a):
    """The second copy of duplicated code."""
    result = a * 3
    return result


def dev_function(a, b):
    """Add two numbers for the dev split."""
    total = a + b
    return total
'''

SKIPPED = '''
def skipped_function(a):
    """This function must never be read."""
    a = a + {n}
    return a
'''


def write(path, text, encoding="utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(textwrap.dedent(text).encode(encoding))


@pytest.fixture()
def fake_stdlib(tmp_path):
    root = tmp_path / "lib"
    write(root / TRAIN / "__init__.py", TRAIN_INIT)
    write(root / TRAIN / "sub.py", TRAIN_SUB)
    write(root / TRAIN / "shared.py", "".join(SHARED.format(n=n) for n in range(6)))
    write(root / f"{TEST}.py", TEST_MOD)
    write(root / f"{DEV}.py", DEV_MOD)
    for skipped in (
        "test/test_things.py", f"{TRAIN}/tests/helpers.py", "idlelib/idle_test/mock.py", "test_top.py",
        "site-packages/thirdparty/core.py", f"{TRAIN}/__pycache__/sub.py", "config-3.11-x86_64/python-config.py",
    ):  # fmt: skip
        write(root / skipped, SKIPPED.format(n=len(skipped)))  # distinct code: duplicates would be dropped
    (root / "broken.py").write_text("def broken(:\n    pass\n")
    (root / "badbytes.py").write_bytes(b'def f():\n    """caf\xe9 bytes."""\n    return 1\n')
    write(root / "latin.py", '# -*- coding: latin-1 -*-\ndef g(a):\n    """Return the caf\xe9 value now."""\n    a = 1\n    return a\n', "latin-1")
    return root


def by_id(records):
    return {record.id: record for record in records}


def test_records_queries_documents_and_ids(fake_stdlib):
    records = build_stdlib_code_records(fake_stdlib)
    found = by_id(records)
    assert sorted(found) == sorted([
        f"{TRAIN}.top_level", f"{TRAIN}.sub.Widget.build", f"{TRAIN}.sub.Widget.fetch",
        f"{TRAIN}.sub.Widget.nested_outer", f"{TRAIN}.sub.variant:45", f"{TRAIN}.sub.variant:50",
        f"{TEST}.duplicate_first", f"{TEST}.unicode_text", f"{DEV}.dev_function", "latin.g",
    ])  # fmt: skip
    build = found[f"{TRAIN}.sub.Widget.build"]
    assert build.query == "Build a widget of the given size."  # first paragraph only, whitespace collapsed
    assert build.document == (
        "@functools.cache\n@staticmethod\ndef build(size,\n          colour):\n"
        "    total = size * 2\n    # a comment that stays\n    return total, colour"
    )
    assert (build.module, build.package, build.qualname, build.path) == (f"{TRAIN}.sub", TRAIN, "Widget.build", f"{TRAIN}/sub.py")
    assert build.lineno == 10  # the def line; decorators come before it
    top = found[f"{TRAIN}.top_level"]
    assert top.query == "Compute the top level value of x." and top.module == TRAIN and top.path == f"{TRAIN}/__init__.py"
    assert top.document == "def top_level(x):\n    y = x + 1\n    return y * 2"
    assert found[f"{TRAIN}.sub.Widget.fetch"].document.startswith("async def fetch(self, url):\n    data = await")
    outer = found[f"{TRAIN}.sub.Widget.nested_outer"].document
    assert "Outer function" not in outer and '"""Inner helper is not a record on its own."""' in outer
    assert found["latin.g"].query == "Return the café value now."
    assert found[f"{TEST}.unicode_text"].document.endswith('text = "café"\n    return text + "!"')
    for record in records:
        function = ast.parse(record.document).body[0]
        assert isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
        assert ast.get_docstring(function) is None
    assert [(record.path, record.lineno) for record in records] == sorted((record.path, record.lineno) for record in records)


def test_summary_counts_failed_files_and_drops(fake_stdlib):
    summary = stdlib_code_summary(fake_stdlib)
    assert summary.files_failed == ("badbytes.py", "broken.py")
    assert summary.files_read == 6 and summary.records == 10
    assert summary.dropped == {
        "docstring_shares_line": 1, "duplicate_document": 1, "empty_body": 1,
        "shared_query": 6, "short_document": 1, "short_query": 1,
    }  # fmt: skip


def test_filter_options(fake_stdlib):
    loose = by_id(build_stdlib_code_records(fake_stdlib, min_query_words=2, min_document_lines=2, max_query_repeats=6))
    assert f"{TRAIN}.sub.short_query" in loose and f"{TRAIN}.sub.short_document" in loose
    assert sum(record.query == "Return the thing requested." for record in loose.values()) == 6
    strict = build_stdlib_code_records(fake_stdlib, min_query_words=7)
    assert all(len(record.query.split()) >= 7 for record in strict) and len(strict) == 3
    with_tests = by_id(build_stdlib_code_records(fake_stdlib, include_tests=True))
    assert "test.test_things.skipped_function" in with_tests and f"{TRAIN}.tests.helpers.skipped_function" in with_tests
    assert not any("thirdparty" in record_id or "python-config" in record_id for record_id in with_tests)
    with pytest.raises(ValueError, match="min_query_words >= 0"):
        build_stdlib_code_records(fake_stdlib, min_query_words=-1)
    with pytest.raises(FileNotFoundError, match="expected a folder"):
        build_stdlib_code_records(fake_stdlib / "missing")


def test_duplicate_document_keeps_first_in_sorted_order(fake_stdlib):
    records = by_id(build_stdlib_code_records(fake_stdlib))
    # DEV's copy is dropped when its path sorts after TEST's, and vice versa.
    kept = f"{TEST}.duplicate_first" if f"{TEST}.py" < f"{DEV}.py" else f"{DEV}.duplicate_first"
    assert [record_id for record_id in records if record_id.endswith("duplicate_first")] == [kept]


def test_build_is_deterministic_across_copies(fake_stdlib, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(fake_stdlib, copy)
    assert build_stdlib_code_records(copy) == build_stdlib_code_records(fake_stdlib)


def test_split_of_is_sha256_interval_and_follows_fractions():
    names = [f"package_{i}" for i in range(2000)]
    for name in names[:50]:
        position = int(hashlib.sha256(name.encode()).hexdigest()[:16], 16) / 2**64
        expected = "train" if position < 0.7 else "dev" if position < 0.85 else "test"
        assert split_of(name) == expected
    counts = Counter(split_of(name, (0.5, 0.2, 0.3)) for name in names)
    assert abs(counts["train"] / 2000 - 0.5) < 0.04 and abs(counts["test"] / 2000 - 0.3) < 0.04
    assert {split_of(name, (1.0, 0.0, 0.0)) for name in names[:100]} == {"train"}
    with pytest.raises(ValueError, match="summing to 1"):
        split_of("x", (0.5, 0.2, 0.2))


def test_first_paragraph():
    assert first_paragraph("\n    Line one\n    continues  here.\n\n    Second.\n") == "Line one continues here."
    assert first_paragraph("Single line.") == "Single line."


def test_loader_on_fake_stdlib_splits_by_package(fake_stdlib):
    records = build_stdlib_code_records(fake_stdlib)
    in_split = {split: [record for record in records if split_of(record.package) == split] for split in ("train", "dev", "test")}
    splits = load_dataset("stdlib-code-search", data_dir=fake_stdlib)
    assert splits.modality == "text" and splits.num_classes == 0 and splits.input_shape == ()
    assert isinstance(splits.train, TextPairDataset) and isinstance(splits.test, RetrievalTask)
    assert splits.train.queries == [record.query for record in in_split["train"]]
    assert splits.train.positives == [record.document for record in in_split["train"]]
    assert splits.train.groups == [record.package for record in in_split["train"]]
    for task, split in ((splits.test, "test"), (splits.validation, "dev")):
        assert task.corpus == {record.id: record.document for record in in_split[split]}
        assert task.qrels == {QUERY_ID_PREFIX + record.id: {record.id: 1} for record in in_split[split]}
        assert task.queries == {QUERY_ID_PREFIX + record.id: record.query for record in in_split[split]}
    assert {record.package for record in in_split["test"]} >= {TEST} and {record.package for record in in_split["dev"]} >= {DEV}

    no_dev = load_dataset("stdlib-code-search", data_dir=fake_stdlib, train_fraction=0.9, dev_fraction=0.0, test_fraction=0.1)
    assert no_dev.validation is None and len(no_dev.test) >= len(splits.test)
    with pytest.raises(ValueError, match="the test split is empty"):
        load_dataset("stdlib-code-search", data_dir=fake_stdlib, train_fraction=1.0, dev_fraction=0.0, test_fraction=0.0)
    small = load_dataset("stdlib-code-search", data_dir=fake_stdlib, max_train=2, seed=0)
    assert len(small.train) == 2 and set(small.train.queries) <= set(splits.train.queries)


@pytest.fixture(scope="module")
def real_splits():
    return load_dataset("stdlib-code-search", max_test_queries=50, seed=1)


def test_real_stdlib_known_function_and_disjoint_packages(real_splits):
    records = by_id(build_stdlib_code_records())  # cached: the loader already parsed the stdlib
    dedent = records["textwrap.dedent"]
    assert dedent.query == "Remove any common leading whitespace from every line in `text`."
    assert dedent.document.startswith("def dedent(text):\n    # Look for the longest leading string")
    assert "common leading whitespace" not in dedent.document and '"""' not in dedent.document
    assert records["json.dumps"].query == "Serialize ``obj`` to a JSON formatted ``str``."
    for record in records.values():  # every document is a function that parses, without a docstring
        function = ast.parse(record.document).body[0]
        assert isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)) and ast.get_docstring(function) is None
    assert not any(record.path.startswith(("test/", "site-packages/")) or "/test/" in record.path for record in records.values())

    train_packages = set(real_splits.train.groups)
    test_packages = {records[doc_id].package for doc_id in real_splits.test.corpus}
    dev_packages = {records[doc_id].package for doc_id in real_splits.validation.corpus}
    assert not (train_packages & test_packages) and not (train_packages & dev_packages) and not (test_packages & dev_packages)
    assert len(real_splits.train) > 2000 and len(real_splits.test) == 50 and len(real_splits.test.corpus) > 100
    for query_id, judged in real_splits.test.qrels.items():
        assert judged == {query_id.removeprefix(QUERY_ID_PREFIX): 1}
        assert real_splits.test.queries[query_id] == records[query_id.removeprefix(QUERY_ID_PREFIX)].query
    labels = real_splits.train.labels.tolist()
    package_of_label = {}
    for label, package in zip(labels, real_splits.train.groups):
        assert package_of_label.setdefault(label, package) == package
    assert len(package_of_label) == len(train_packages)

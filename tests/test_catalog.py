"""The seed-paper catalog: complete, consistent with the code, and the generated docs are not stale."""

from __future__ import annotations

import importlib
import runpy
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contrastkit.catalog import (
    PAPERS,
    check_summary,
    methods_markdown,
    paper,
    paper_names,
)
from contrastkit.catalog.papers import STATUSES, VERDICTS
from contrastkit.catalog.render import check_results
from contrastkit.cli import app

ROOT = Path(__file__).resolve().parent.parent


def _resolve(path: str) -> object:
    module_path, _, attribute = f"contrastkit.{path}".rpartition(".")
    return getattr(importlib.import_module(module_path), attribute)


def test_every_seed_paper_is_listed_once_in_order():
    assert [p.number for p in PAPERS] == list(range(1, 60))
    assert len(set(paper_names())) == 59
    assert all(p.name == p.name.lower() and " " not in p.name for p in PAPERS)


def test_entries_are_consistent():
    for p in PAPERS:
        assert p.verdict in VERDICTS and p.status in STATUSES, p
        if p.status in ("implemented", "partly implemented"):
            assert p.components and p.issue is not None, p
        else:
            assert not p.components and not p.checks, p
        if p.verdict == "OUT":
            assert p.status == "out of scope" and p.note, p
        if p.status == "not implemented":
            assert p.note, f"{p.name}: say why it is not implemented"


@pytest.mark.parametrize("entry", [p for p in PAPERS if p.components], ids=lambda p: p.name)
def test_components_exist_in_the_code(entry):
    for path in entry.components:
        assert _resolve(path) is not None


def test_issue_6_full_rows_have_checks_and_every_check_row_has_a_paper():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        seed_checks = importlib.import_module("seed_checks")
        keys = {row["key"] for name in seed_checks.CHECKS for row in seed_checks.load_check(name).ROWS}
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    claimed = {key for p in PAPERS for key in p.checks}
    assert claimed == keys
    for p in PAPERS:
        if p.issue == 6 and p.verdict == "FULL":
            assert p.checks, p.name


def test_check_results_cover_the_checks_and_show_in_the_summary():
    results = check_results()
    for p in PAPERS:
        for key in p.checks:
            assert key in results, f"{key}: run benchmarks/seed_checks.py"
            assert results[key]["verdict"] in check_summary(p)


def test_docs_methods_md_is_generated_from_the_registry():
    text = (ROOT / "docs" / "methods.md").read_text(encoding="utf-8")
    assert text == methods_markdown(), "docs/methods.md is stale: run python scripts/generate_methods_doc.py"
    script = runpy.run_path(str(ROOT / "scripts" / "generate_methods_doc.py"), run_name="generate_methods_doc")
    assert script["main"](["--check"]) == 0


def test_list_papers_prints_every_paper():
    result = CliRunner().invoke(app, ["list", "--papers"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 60
    for p in PAPERS:
        assert any(line.split()[:2] == [str(p.number), p.name] for line in lines), p.name


def test_unknown_paper_names_the_known_ones():
    assert paper("mochi").number == 1
    with pytest.raises(ValueError, match="unknown paper 'moco-hard'.*mochi"):
        paper("moco-hard")

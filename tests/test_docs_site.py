"""The documentation site builds strictly, and its build-time helpers do what the site relies on.

The strict build fails on a broken link between pages, a docstring cross-reference to nothing, or a
griffe warning (a documented parameter the signature lacks), so a stale docstring fails CI here.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import generate_api_pages  # noqa: E402


def _require_docs_extra() -> None:
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python", "griffe_inherited_docstrings", "mathjax"):
        pytest.importorskip(module, reason=f"{module} is absent: the docs extra is not installed (pip install -e '.[docs]')")


def test_public_modules_follow_the_source_tree(tmp_path):
    package = tmp_path / "pkg"
    for relative in ("__init__.py", "__main__.py", "a.py", "_private.py", "sub/__init__.py", "sub/b.py",
                     "_hidden/__init__.py", "_hidden/c.py", "assets/loose.py"):
        (package / relative).parent.mkdir(parents=True, exist_ok=True)
        (package / relative).write_text('"""Doc of %s.\n\nMore."""\n' % relative, encoding="utf-8")
    modules = generate_api_pages.public_modules(tmp_path, "pkg")
    assert modules == ["pkg", "pkg.a", "pkg.sub", "pkg.sub.b"]
    pages = generate_api_pages.api_pages(tmp_path, "pkg")
    assert sorted(pages) == ["api/a.md", "api/index.md", "api/sub/b.md", "api/sub/index.md"]
    assert pages["api/sub/b.md"].startswith("::: pkg.sub.b")
    assert "[`b`](b.md) | Doc of sub/b.py. |" in pages["api/sub/index.md"]
    assert generate_api_pages.api_nav(modules, tmp_path) == [
        {"pkg": "api/index.md"}, {"a": "api/a.md"}, {"sub": [{"pkg.sub": "api/sub/index.md"}, {"b": "api/sub/b.md"}]}
    ]


def test_every_contrastkit_module_gets_one_page():
    modules = generate_api_pages.public_modules()
    expected = set()
    for path in (ROOT / "src" / "contrastkit").rglob("*.py"):
        parts = path.relative_to(ROOT / "src").with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        if not any(part.startswith("_") for part in parts) and (path.parent / "__init__.py").is_file():
            expected.add(".".join(parts))
    assert set(modules) == expected and "contrastkit.functional.contrastive" in modules
    paths = [generate_api_pages.page_path(m) for m in modules]
    assert len(set(paths)) == len(paths)


def test_links_out_of_docs_are_rewritten_and_broken_ones_kept():
    pytest.importorskip("mkdocs", reason="mkdocs is absent: the docs extra is not installed")
    import mkdocs_hooks

    docs = PurePosixPath("docs")
    text = (
        "[README](../README.md) [b](../BENCHMARKS.md#text) [core](../src/contrastkit/functional/core.py) "
        "[`benchmarks/image_ssl.py`](../benchmarks/image_ssl.py) [gone](../nowhere.md) [guide](guide.md)\n"
        "```\n[README](../README.md)\n```\n"
    )
    out = mkdocs_hooks.rewrite_links(text, docs / "text.md", "text.md", docs)
    assert "[README](index.md)" in out and "[b](benchmarks.md#text)" in out
    assert "[core](api/functional/core.md)" in out and "`benchmarks/image_ssl.py`" in out
    assert "[gone](../nowhere.md)" in out and "[guide](guide.md)" in out
    assert out.endswith("```\n[README](../README.md)\n```\n")  # code is left alone
    readme = mkdocs_hooks.rewrite_links("[g](docs/guide.md#x)", PurePosixPath("README.md"), "index.md", docs)
    assert readme == "[g](guide.md#x)"


def test_docstring_roles_resolve_and_stale_ones_warn(caplog):
    griffe = pytest.importorskip("griffe", reason="griffe is absent: the docs extra is not installed")
    import griffe_sphinx_docstrings as ext

    package = griffe.load("contrastkit", search_paths=[str(ROOT / "src")], resolve_aliases=False)
    obj = package["functional.contrastive.info_nce"]
    with caplog.at_level(logging.WARNING):
        out = ext.to_markdown(obj, ":func:`nt_xent` :func:`~contrastkit.functional.info_nce` :mod:`torch.nn` :math:`\\tau`")
    assert out == "[`nt_xent`][contrastkit.functional.contrastive.nt_xent] " \
                  "[`info_nce`][contrastkit.functional.contrastive.info_nce] `torch.nn` $\\tau$"
    assert not caplog.records
    with caplog.at_level(logging.WARNING):
        ext.to_markdown(obj, "See :func:`contrastkit.functional.no_such_loss`.")
    assert any("no_such_loss" in record.getMessage() for record in caplog.records)
    split = ext.to_markdown(obj, "Args:\n    a, b: the inputs.\n\nExample:\n    >>> 1\n    1")
    assert split == "Args:\n    a: the inputs.\n    b: the inputs.\n\nExamples:\n    >>> 1\n    1"


def test_public_modules_classes_and_functions_have_docstrings():
    pytest.importorskip("griffe", reason="griffe is absent: the docs extra is not installed")
    import check_docstrings

    totals, missing = check_docstrings.undocumented()
    assert totals["function"] > 100 and totals["class"] > 50
    assert {kind: missing[kind] for kind in ("module", "class", "function")} == {"module": [], "class": [], "function": []}


def test_site_builds_strictly(tmp_path):
    _require_docs_extra()
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    warnings = [line for line in (result.stdout + result.stderr).splitlines() if "WARNING" in line or "ERROR" in line]
    assert result.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(warnings[:40])
    contrastive = (site / "api" / "functional" / "contrastive" / "index.html").read_text(encoding="utf-8")
    assert 'id="contrastkit.functional.contrastive.info_nce"' in contrastive and 'class="arithmatex"' in contrastive
    assert ":func:" not in contrastive
    assert (site / "assets" / "mathjax" / "tex-svg-full.js").stat().st_size > 100_000
    assert "Benchmarks" in (site / "benchmarks" / "index.html").read_text(encoding="utf-8")

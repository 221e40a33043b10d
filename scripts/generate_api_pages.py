"""The API reference pages of the documentation site: one Markdown page per public module of contrastkit.

The list of modules comes from the source tree (``src/contrastkit``), so a new module gets a page
without anyone editing a list. A module is public when no part of its dotted path starts with an
underscore (``__init__`` stands for its package; ``__main__`` is left out). Each page holds one
mkdocstrings directive (``::: contrastkit.x.y``) that renders the module's docstrings; a package's
page renders its own docstring and a table of its submodules, not the names it re-exports (those are
documented once, on the page of the module that defines them).

The documentation build calls :func:`api_pages` from ``scripts/mkdocs_hooks.py``, so the pages are
never committed and cannot go stale. Run this file to write them to a folder and look at them::

    python scripts/generate_api_pages.py --out /tmp/api   # writes /tmp/api/**/*.md
    python scripts/generate_api_pages.py --list           # prints the public modules
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src"
PACKAGE = "contrastkit"
API_DIR = "api"  # the pages' folder inside the docs site


def public_modules(source: Path = SOURCE, package: str = PACKAGE) -> list[str]:
    """Return the dotted names of the public modules under ``source/package``, packages first in each folder.

    Args:
        source: The folder that holds the package (``src``).
        package: The top-level package name.

    Returns:
        Sorted dotted module names, e.g. ``["contrastkit", "contrastkit.cli", "contrastkit.data", ...]``.
    """
    root = source / package
    if not (root / "__init__.py").is_file():
        raise FileNotFoundError(f"{root / '__init__.py'}: expected the package {package!r} there, found no such file")
    names = []
    for path in root.rglob("*.py"):
        parts = path.relative_to(source).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(part.startswith("_") for part in parts):
            continue
        if not (path.parent / "__init__.py").is_file():
            continue  # a loose script in a data folder, not an importable module
        names.append(".".join(parts))
    return sorted(names, key=lambda name: name.split("."))


def is_package(module: str, source: Path = SOURCE) -> bool:
    """Whether ``module`` (dotted) is a package (a folder with ``__init__.py``) rather than a file."""
    return (source.joinpath(*module.split(".")) / "__init__.py").is_file()


def page_path(module: str, source: Path = SOURCE) -> str:
    """The page of ``module`` inside the docs site: ``api/functional/index.md``, ``api/functional/core.md``."""
    parts = module.split(".")[1:]
    if not parts or is_package(module, source):
        return "/".join([API_DIR, *parts, "index.md"])
    return "/".join([API_DIR, *parts]) + ".md"


def summary_line(module: str, source: Path = SOURCE) -> str:
    """The first paragraph of ``module``'s docstring on one line (empty when it has none), read without importing it."""
    path = source.joinpath(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))) or ""
    summary = " ".join(docstring.strip().split("\n\n")[0].split())
    # reST roles as inline code: :class:`~a.b.C` -> `C`, :func:`f` -> `f`, :math:`x` -> `x`.
    return re.sub(r":[a-z:]+:`~?([^`]+)`", lambda m: "`" + (m[1].rsplit(".", 1)[-1] if "~" in m[0] else m[1]) + "`", summary)


def _relative_link(from_page: str, to_page: str) -> str:
    return os.path.relpath(to_page, os.path.dirname(from_page)).replace(os.sep, "/")


def _children(package: str, modules: list[str]) -> list[str]:
    return [m for m in modules if "." in m and m.rsplit(".", 1)[0] == package]


def page_text(module: str, modules: list[str], source: Path = SOURCE) -> str:
    """The Markdown of ``module``'s page; a package's page also lists its direct submodules with links."""
    lines = [f"::: {module}"]  # its heading (level 1, the module's path) is the page's title and anchor
    if is_package(module, source):
        lines += ["    options:", "      members: false"]
        children = _children(module, modules)
        if children:
            here = page_path(module, source)
            lines += ["", "## Modules", "", "| module | what it holds |", "|---|---|"]
            for child in children:
                summary = summary_line(child, source).replace("|", "\\|")
                lines.append(f"| [`{child.rsplit('.', 1)[1]}`]({_relative_link(here, page_path(child, source))}) | {summary} |")
    return "\n".join(lines) + "\n"


def api_pages(source: Path = SOURCE, package: str = PACKAGE) -> dict[str, str]:
    """Every API page of the site: a mapping from the page's path inside the docs site to its Markdown."""
    modules = public_modules(source, package)
    return {page_path(module, source): page_text(module, modules, source) for module in modules}


def api_nav(modules: list[str], source: Path = SOURCE) -> list:
    """The MkDocs ``nav`` entries of the API pages, nested by package (a package's own page first in its section)."""

    def section(package: str) -> list:
        entries: list = [{package: page_path(package, source)}]
        for child in _children(package, modules):
            short = child.rsplit(".", 1)[1]
            entries.append({short: section(child) if is_package(child, source) else page_path(child, source)})
        return entries

    return section(modules[0])


def write_pages(out: Path, pages: dict[str, str]) -> None:
    """Write ``pages`` under ``out`` (each file atomically: a temporary file renamed into place)."""
    for relative, text in pages.items():
        target = out / Path(relative).relative_to(API_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=target.parent, delete=False, suffix=".tmp") as f:
            f.write(text)
        os.replace(f.name, target)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``--list`` prints the public modules, ``--out DIR`` writes the pages there."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--list", action="store_true", help="print the public modules, one a line")
    group.add_argument("--out", type=Path, help="write the API pages under this folder")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(public_modules()))
    else:
        pages = api_pages()
        write_pages(args.out, pages)
        print(f"wrote {len(pages)} pages under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

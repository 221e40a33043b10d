"""MkDocs hooks that assemble the documentation site from files that live outside ``docs/``.

Listed under ``hooks:`` in mkdocs.yml; nothing here is written into the source tree. At build time they:

* add the repository's README.md as the home page (``index.md``) and BENCHMARKS.md as ``benchmarks.md``,
  read fresh on every build, so the site never holds a second copy that could drift;
* add the API reference, one page per public module (``scripts/generate_api_pages.py``), and its
  section of the navigation, so a new module gets a page without anyone editing a list;
* add MathJax (from the ``django-static-mathjax`` package of the ``docs`` extra) and its configuration to
  the site, so the docstrings' formulas render without a CDN;
* rewrite the Markdown links that point out of ``docs/`` (``../README.md``, ``docs/guide.md`` from the
  README, ``../src/contrastkit/x.py``) to the page that now holds the target, and a link to any other file
  of the repository (a script, a recipe) to that file's path as inline code. The Markdown files keep
  their relative links, which work where the repository is browsed; a link whose target exists nowhere
  is left alone, so ``mkdocs build --strict`` still fails on it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path, PurePosixPath

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate_api_pages  # noqa: E402  (the sibling script; scripts/ is not a package)

ROOT = Path(__file__).resolve().parents[1]
# Pages made from files at the repository root: the page's path in the site -> the file it is read from.
ROOT_PAGES = {"index.md": ROOT / "README.md", "benchmarks.md": ROOT / "BENCHMARKS.md"}
API_SECTION = "API reference"
MATHJAX_FILE = "es5/tex-svg-full.js"  # one self-contained file: SVG output needs no font files
# The site paths of MathJax and of its configuration; mkdocs.yml's extra_javascript names both, config first.
MATHJAX_SITE_PATH = "assets/mathjax/tex-svg-full.js"
MATHJAX_CONFIG_SITE_PATH = "assets/mathjax/config.js"
# pymdownx.arithmatex (generic mode) wraps formulas in \\( \\) and \\[ \\] inside class "arithmatex".
MATHJAX_CONFIG = """window.MathJax = {
  tex: {inlineMath: [["\\\\(", "\\\\)"]], displayMath: [["\\\\[", "\\\\]"]], processEscapes: true, processEnvironments: true},
  options: {ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex"}
};
"""

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
_LINK = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]\n]*)\]\((?P<target>[^)\s]+)(?P<title>\s+\"[^\"]*\")?\)")


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Append the API reference, nested by package, to the navigation of mkdocs.yml."""
    nav = config.nav if config.nav is not None else []
    if not any(isinstance(entry, dict) and API_SECTION in entry for entry in nav):
        nav.append({API_SECTION: generate_api_pages.api_nav(generate_api_pages.public_modules())})
    config.nav = nav
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the pages built from the repository root and the API pages to the site's files."""
    generated = {uri: path.read_text(encoding="utf-8") for uri, path in ROOT_PAGES.items()}
    generated.update(generate_api_pages.api_pages())
    for uri, content in generated.items():
        if files.get_file_from_path(uri) is not None:
            raise PluginError(
                f"docs/{uri}: this page is generated at build time (scripts/mkdocs_hooks.py); "
                "expected no such file in docs/, found one: remove it"
            )
        files.append(File.generated(config, uri, content=content))
    files.append(File.generated(config, MATHJAX_SITE_PATH, abs_src_path=str(_mathjax_source())))
    files.append(File.generated(config, MATHJAX_CONFIG_SITE_PATH, content=MATHJAX_CONFIG))
    return files


def _mathjax_source() -> Path:
    """The MathJax file shipped by the django-static-mathjax package (the docs extra)."""
    spec = importlib.util.find_spec("mathjax")
    source = Path(spec.origin).parent / "static" / "mathjax" / MATHJAX_FILE if spec and spec.origin else None
    if source is None or not source.is_file():
        raise PluginError(
            "MathJax: expected the django-static-mathjax package (the docs extra: pip install -e '.[docs]'), "
            f"found {'no package named mathjax' if source is None else 'no file ' + str(source)}"
        )
    return source


def _repository_path(page: Page, config: MkDocsConfig) -> PurePosixPath:
    """Where the page's Markdown lives in the repository, relative to its root."""
    uri = page.file.src_uri
    if uri in ROOT_PAGES:
        return PurePosixPath(ROOT_PAGES[uri].relative_to(ROOT).as_posix())
    return PurePosixPath(Path(config.docs_dir).resolve().relative_to(ROOT).as_posix()) / uri


def _site_uri_of(repo_path: PurePosixPath, docs: PurePosixPath, modules: set[str]) -> str | None:
    """The page of the site that holds the repository file ``repo_path``, or None when no page does."""
    for uri, path in ROOT_PAGES.items():
        if repo_path == PurePosixPath(path.relative_to(ROOT).as_posix()):
            return uri
    if docs in repo_path.parents:
        return repo_path.relative_to(docs).as_posix()
    source = PurePosixPath(generate_api_pages.SOURCE.relative_to(ROOT).as_posix())
    if source in repo_path.parents and repo_path.suffix == ".py":
        parts = list(repo_path.relative_to(source).with_suffix("").parts)
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if module in modules:
            return generate_api_pages.page_path(module)
    return None


def rewrite_links(markdown: str, page_repo_path: PurePosixPath, page_uri: str, docs: PurePosixPath) -> str:
    """Rewrite the links of ``markdown`` (a page at ``page_repo_path``) that leave ``docs`` (see the module doc)."""
    modules = set(generate_api_pages.public_modules())

    def rewrite(match: re.Match) -> str:
        target = match["target"]
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith(("#", "/")):
            return match[0]
        path, _, fragment = target.partition("#")
        repo_path = PurePosixPath(os.path.normpath((page_repo_path.parent / path).as_posix()))
        if docs in repo_path.parents and docs in page_repo_path.parents:
            return match[0]  # a link between docs pages: MkDocs checks it as it is
        if not (ROOT / repo_path).exists():
            return match[0]  # broken: left for --strict to report
        site_uri = _site_uri_of(repo_path, docs, modules)
        if site_uri is None:
            code = f"`{repo_path.as_posix()}`"
            return code if match["text"].strip("`") == repo_path.as_posix() else f"{match['text']} ({code})"
        relative = os.path.relpath(site_uri, os.path.dirname(page_uri) or ".").replace(os.sep, "/")
        return f"{match['bang']}[{match['text']}]({relative}{'#' + fragment if fragment else ''}{match['title'] or ''})"

    pieces, last = [], 0
    for fence in _FENCE.finditer(markdown):  # links inside fenced code are not links
        pieces += [_LINK.sub(rewrite, markdown[last : fence.start()]), fence[0]]
        last = fence.end()
    pieces.append(_LINK.sub(rewrite, markdown[last:]))
    return "".join(pieces)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Rewrite the page's links out of ``docs/`` before MkDocs renders and validates them."""
    docs = PurePosixPath(Path(config.docs_dir).resolve().relative_to(ROOT).as_posix())
    return rewrite_links(markdown, _repository_path(page, config), page.file.src_uri, docs)

"""The layering rule of docs/architecture.md: no module imports from a layer above its own.

Every module under ``src/contrastkit`` is parsed with :mod:`ast` (nothing is imported), and
every ``import`` / ``from ... import`` in it -- at top level, inside a function or under
``if TYPE_CHECKING`` -- is resolved to the contrastkit sub-package it names (relative imports
included). An import from a package of a higher layer fails the test with the file, line
and both layers. Imports within one layer are allowed (``eval/protocols`` uses ``eval/knn``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "contrastkit"

#: Layer per top-level part of the package, lowest first (docs/architecture.md, "Layers").
LAYERS: dict[str, int] = {
    "utils": 0,
    "functional": 1,
    "recipes": 1,
    "data": 2,
    "rl": 2,  # contrastkit.rl (issue 17): trajectory data, shipped environments, preference bandits
    "views": 3,
    "nn": 4,
    "negatives": 4,
    "losses": 5,
    "eval": 5,
    "methods": 6,
    "modalities": 7,
    "catalog": 8,
    "train": 8,
    "cli": 9,
    # integrations with other libraries (issue 20): they drive train/ like the command line does
    "sklearn": 9,
    "aeon": 9,
    "lightning": 9,
    "__main__": 10,
    "__init__": 10,  # the package's own __init__ (re-exports only)
}


def module_name(path: Path, root: Path = PACKAGE) -> str:
    """``contrastkit.eval.protocols.base`` for ``.../contrastkit/eval/protocols/base.py``."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def part_of(module: str) -> str | None:
    """The top-level part of a contrastkit module (``None`` for other packages)."""
    parts = module.split(".")
    if parts[0] != "contrastkit":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """``(line, module)`` for every import in ``source``, relative ones resolved against ``module``."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # "from contrastkit import functional" names the sub-package, not the package itself.
            if target == "contrastkit" or (node.level and not node.module):
                found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
    return found


def violations(root: Path = PACKAGE) -> list[str]:
    """Every upward import under ``root``, as ``file:line: part (layer) -> module (layer)``."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        own = "__init__" if module == "contrastkit" else part_of(module)
        if own not in LAYERS:
            problems.append(f"{path}: {own!r} has no layer; add it to LAYERS and docs/architecture.md")
            continue
        for line, target in imported_modules(path.read_text("utf-8"), module, path.name == "__init__.py"):
            other = part_of(target)
            if other is None:
                continue
            if other not in LAYERS:
                problems.append(f"{path}:{line}: imports {target}, whose part {other!r} has no layer")
            elif LAYERS[other] > LAYERS[own]:
                problems.append(f"{path}:{line}: {own} (layer {LAYERS[own]}) imports {target} "
                                f"({other}, layer {LAYERS[other]})")  # fmt: skip
    return problems


def test_no_module_imports_from_a_higher_layer():
    assert violations() == []


def test_every_part_of_the_package_has_a_layer():
    parts = {path.name if path.is_dir() else path.stem for path in PACKAGE.iterdir()
             if path.name != "__pycache__" and (path.is_dir() or path.suffix == ".py")}  # fmt: skip
    assert parts - set(LAYERS) == set()


@pytest.mark.parametrize(
    ("relative_path", "source", "expected"),
    [
        # top level, absolute
        ("data/fake.py", "from contrastkit.train.run import run\n", "data (layer 2) imports contrastkit.train.run"),
        # inside a function
        ("nn/fake.py", "def f():\n    import contrastkit.methods.simclr\n", "nn (layer 4) imports contrastkit.methods"),
        # relative, two levels up
        ("eval/protocols/fake.py", "from ...modalities import base\n", "eval (layer 5) imports contrastkit.modalities"),
        # the package-level form of an absolute import
        ("functional/fake.py", "from contrastkit import losses\n", "functional (layer 1) imports contrastkit.losses"),
        # a package's __init__ importing relative to itself
        ("utils/__init__.py", "from .. import cli\n", "utils (layer 0) imports contrastkit.cli"),
    ],
)
def test_the_walker_finds_an_upward_import(tmp_path, relative_path, source, expected):
    root = tmp_path / "contrastkit"
    path = root / relative_path
    path.parent.mkdir(parents=True)
    path.write_text(source)
    found = violations(root)
    assert len(found) == 1 and expected in found[0], found


def test_the_walker_allows_downward_and_same_layer_imports(tmp_path):
    root = tmp_path / "contrastkit"
    (root / "eval").mkdir(parents=True)
    (root / "eval" / "fake.py").write_text(
        "import torch\nfrom contrastkit.utils.checks import fail\nfrom . import knn\nfrom contrastkit.losses import x\n"
        "def f():\n    from contrastkit.functional import info_nce\n"
    )
    assert violations(root) == []

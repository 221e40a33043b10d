"""List the public objects of contrastkit that have no docstring, so the API reference has nothing blank.

Read statically with griffe (nothing is imported). Public: every part of the dotted path after
``contrastkit`` has no leading underscore; names imported from elsewhere are skipped (they are
documented where they are defined). A method without a docstring that overrides a documented method
of a contrastkit base class counts as documented: the site shows the base's text
(griffe-inherited-docstrings), as ``inspect.getdoc`` would.

    python scripts/check_docstrings.py            # counts, and every undocumented object
    python scripts/check_docstrings.py --strict   # exit 1 when a public module, class or function has none
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import griffe

SOURCE = Path(__file__).resolve().parents[1] / "src"
KINDS = ("module", "class", "function", "method")


def _private(path: str) -> bool:
    return any(part.startswith("_") for part in path.split(".")[1:])


def _inherits_docstring(cls: griffe.Class, name: str) -> bool:
    try:
        bases = cls.mro()
    except (ValueError, griffe.AliasResolutionError):
        return False
    return any(name in base.members and base.members[name].docstring is not None for base in bases)


def undocumented(package: str = "contrastkit", source: Path = SOURCE) -> tuple[Counter, dict[str, list[str]]]:
    """Count the public objects of ``package`` by kind and list those without a docstring.

    Returns:
        ``(totals, missing)``: how many public modules, classes, functions and methods there are, and
        for each kind the dotted paths of those that have no docstring.
    """
    root = griffe.load(package, search_paths=[str(source)], resolve_aliases=False)
    totals: Counter = Counter()
    missing: dict[str, list[str]] = {kind: [] for kind in KINDS}
    stack: list[griffe.Object] = [root]
    while stack:
        obj = stack.pop()
        if obj.is_module:
            kind = "module"
        elif obj.is_class:
            kind = "class"
        elif obj.is_function:
            kind = "method" if obj.parent is not None and obj.parent.is_class else "function"
        else:
            continue
        totals[kind] += 1
        if obj.docstring is None and not (kind == "method" and _inherits_docstring(obj.parent, obj.name)):
            missing[kind].append(obj.path)
        if kind in ("module", "class"):
            stack.extend(m for m in obj.members.values() if not m.is_alias and not _private(m.path))
    return totals, {kind: sorted(paths) for kind, paths in missing.items()}


def main(argv: list[str] | None = None) -> int:
    """Print the counts and the undocumented objects; with ``--strict`` fail on modules, classes, functions."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true", help="exit 1 if a public module, class or function has no docstring")
    args = parser.parse_args(argv)
    totals, missing = undocumented()
    for kind in KINDS:
        print(f"{kind + ('es' if kind == 'class' else 's')}: {totals[kind]} public, {len(missing[kind])} without a docstring")
        for path in missing[kind]:
            print(f"  {path}")
    return 1 if args.strict and any(missing[kind] for kind in ("module", "class", "function")) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Regenerate docs/methods.md from the seed-paper registry (``contrastkit.catalog``).

    .venv/bin/python scripts/generate_methods_doc.py          # write docs/methods.md
    .venv/bin/python scripts/generate_methods_doc.py --check  # exit 1 if the committed file is stale

tests/test_catalog.py runs the check, so the document cannot drift from the code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from contrastkit.catalog import methods_markdown
from contrastkit.utils.atomic import atomic_write_text

DOC = Path(__file__).resolve().parent.parent / "docs" / "methods.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when docs/methods.md is stale")
    args = parser.parse_args(argv)
    text = methods_markdown()
    if args.check:
        current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
        if current != text:
            print(f"{DOC} is stale: run python scripts/generate_methods_doc.py", file=sys.stderr)
            return 1
        return 0
    atomic_write_text(DOC, text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Each benchmark script owns one marked section of BENCHMARKS.md and rewrites only that."""

from __future__ import annotations

from pathlib import Path

from contrastkit.utils.atomic import atomic_write_text

HEADER = "# Benchmarks\n\nWritten by the scripts in `benchmarks/`; each owns one marked section.\n\n"


def update_section(path: Path, name: str, section: str) -> None:
    """Replace the ``<!-- name:start -->`` ... ``<!-- name:end -->`` block of ``path`` (or append it), atomically."""
    start_mark, end_mark = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start_mark}\n{section}\n{end_mark}"
    if path.exists():
        text = path.read_text(encoding="utf-8")
        start, end = text.find(start_mark), text.find(end_mark)
        if start != -1 and end != -1 and end > start:
            text = text[:start] + block + text[end + len(end_mark):]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
    else:
        text = HEADER + block + "\n"
    atomic_write_text(path, text)

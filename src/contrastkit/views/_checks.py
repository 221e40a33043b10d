"""Argument checks shared by the view modules: one error wording for every view."""

from __future__ import annotations


def fail(owner: str, what: str, got: object) -> None:
    """Raise ``ValueError("{owner}: expected {what}, got {got!r}")``."""
    raise ValueError(f"{owner}: expected {what}, got {got!r}")


def check_int(owner: str, name: str, value: int, minimum: int) -> int:
    """``value`` as an ``int`` when it is an integer (not a bool) ``>= minimum``; else a clear error."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        fail(owner, f"an int {name} >= {minimum}", value)
    return int(value)

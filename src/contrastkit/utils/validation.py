"""Whether value checks run: the data-dependent input checks that cost a host synchronisation.

Shape, dtype and name checks are free and always run. The checks that read tensor *values*
(every entry finite, an index in range, a scalar tensor positive) make the host wait for the
device on a GPU, several times per loss call. They are on by default for CPU tensors and off
for accelerator tensors (``"auto"``); :func:`validation` switches them for a block of code,
:func:`set_validation` for the process, and ``CONTRASTKIT_VALIDATE=1|0|auto`` sets the default.
With checks off a bad input is not reported here: the trainer still refuses a non-finite loss.

Example:
    >>> import torch
    >>> from contrastkit.utils.validation import validation, validating
    >>> validating(torch.zeros(1))
    True
    >>> with validation(False):
    ...     validating(torch.zeros(1))
    False
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

__all__ = ["set_validation", "validating", "validation", "validation_mode"]

Mode = bool | str


def _parse(value: object) -> Mode:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "on", "yes"):
        return True
    if text in ("0", "false", "off", "no"):
        return False
    if text == "auto":
        return "auto"
    raise ValueError(f"validation: expected True, False or 'auto' (CONTRASTKIT_VALIDATE=1|0|auto), got {value!r}")


_MODE: ContextVar[Mode] = ContextVar("contrastkit_validation", default=_parse(os.environ.get("CONTRASTKIT_VALIDATE",
                                                                                          "auto")))


def validation_mode() -> Mode:
    """The current mode: ``True``, ``False`` or ``"auto"``."""
    return _MODE.get()


def set_validation(mode: Mode) -> None:
    """Set the mode for the rest of this context (``True``, ``False`` or ``"auto"``)."""
    _MODE.set(_parse(mode))


@contextmanager
def validation(mode: Mode) -> Iterator[None]:
    """Run a block with value checks on (``True``), off (``False``) or by device (``"auto"``)."""
    token = _MODE.set(_parse(mode))
    try:
        yield
    finally:
        _MODE.reset(token)


def validating(tensor: object = None) -> bool:
    """Whether value checks run for ``tensor`` now (``"auto"``: only for CPU tensors and plain numbers)."""
    mode = _MODE.get()
    if mode != "auto":
        return bool(mode)
    return not isinstance(tensor, torch.Tensor) or tensor.device.type == "cpu"

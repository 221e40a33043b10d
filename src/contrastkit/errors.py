"""Shared input checks that raise clear errors.

Every layer validates its inputs with these helpers so that a wrong shape, a
non-finite value or an unknown name produces one consistent message: what was
expected and what came.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def check_embeddings(name: str, tensor: torch.Tensor, *, dim: int | None = None, min_rows: int = 1) -> None:
    """Raise ``ValueError`` unless ``tensor`` is a finite float ``[N, D]`` batch.

    Args:
        name: the argument's name, used in the message.
        tensor: the embedding batch to check.
        dim: the expected feature size ``D``; ``None`` accepts any.
        min_rows: the smallest acceptable ``N``.
    """
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor of shape [N, D], got {type(tensor).__name__}")
    if tensor.dim() != 2:
        raise ValueError(f"{name}: expected shape [N, D], got {tuple(tensor.shape)}")
    if not tensor.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor, got dtype {tensor.dtype}")
    if dim is not None and tensor.shape[1] != dim:
        raise ValueError(f"{name}: expected feature size D={dim}, got shape {tuple(tensor.shape)}")
    if tensor.shape[0] < min_rows:
        raise ValueError(f"{name}: expected at least {min_rows} rows, got shape {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        bad = int((~torch.isfinite(tensor)).sum())
        raise ValueError(f"{name}: expected finite values, got {bad} NaN/inf entries in shape {tuple(tensor.shape)}")


def unknown_name_error(kind: str, name: str, known: Iterable[str]) -> ValueError:
    """Build the error for a name that is not in a registry."""
    known_list = ", ".join(sorted(known)) or "(none registered)"
    return ValueError(f"unknown {kind} {name!r}; expected one of: {known_list}")

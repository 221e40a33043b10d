"""Private input checks shared by the functional objectives."""

from __future__ import annotations

import torch

from contrastkit.errors import check_embeddings

Scalar = float | torch.Tensor

REDUCTIONS = ("mean", "sum", "none")


def check_positive_scalar(name: str, value: Scalar) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number (or 0-d / 1-element tensor) > 0."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name}: expected a positive scalar, got a tensor of shape {tuple(value.shape)}")
        number = float(value.detach())
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        raise ValueError(f"{name}: expected a positive float, got {type(value).__name__}")
    if not number > 0 or number == float("inf"):
        raise ValueError(f"{name}: expected a finite value > 0, got {number}")


def check_finite_scalar(name: str, value: Scalar) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number (or 1-element tensor)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name}: expected a scalar, got a tensor of shape {tuple(value.shape)}")
        number = float(value.detach())
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        raise ValueError(f"{name}: expected a float, got {type(value).__name__}")
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"{name}: expected a finite value, got {number}")


def check_reduction(reduction: str) -> None:
    """Raise ``ValueError`` unless ``reduction`` is one of 'mean', 'sum', 'none'."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {', '.join(REDUCTIONS)}, got {reduction!r}")


def check_pair(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor, *, min_rows: int = 1) -> None:
    """Check two paired embedding batches: both finite float ``[B, D]`` with the same ``B`` and ``D``."""
    check_embeddings(name_a, a, min_rows=min_rows)
    check_embeddings(name_b, b, dim=a.shape[1], min_rows=min_rows)
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{name_b}: expected the same number of rows as {name_a} ({a.shape[0]}, paired rows), "
            f"got shape {tuple(b.shape)}"
        )


def check_masked_prediction(prediction: object, target: object, mask: object, layout: str = "[B, N, D]") -> None:
    """Raise ``ValueError`` unless ``prediction`` is ``[B, N, D]``, ``target`` the same shape and
    ``mask`` ``[B, N]`` (masked-token losses: MMC's patches, masked slice embeddings)."""

    def shape(value: object) -> object:
        return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__

    if not isinstance(prediction, torch.Tensor) or prediction.dim() != 3:
        raise ValueError(f"prediction: expected a {layout} tensor, got {shape(prediction)}")
    if not isinstance(target, torch.Tensor) or target.shape != prediction.shape:
        raise ValueError(f"target: expected shape {tuple(prediction.shape)}, got {shape(target)}")
    if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != tuple(prediction.shape[:2]):
        raise ValueError(f"mask: expected a bool tensor of shape {tuple(prediction.shape[:2])}, got {shape(mask)}")


def reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply a 'mean' | 'sum' | 'none' reduction to per-row losses."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss

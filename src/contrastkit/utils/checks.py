"""Argument checks that raise clear errors: the one home for input validation.

Every layer validates its inputs with these helpers so that a wrong shape, a
non-finite value, a bad label or edge tensor or an unknown name produces one
consistent ``ValueError``: the argument's name, what was expected and what came.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from contrastkit.utils.validation import validating

Scalar = float | torch.Tensor

REDUCTIONS = ("mean", "sum", "none")


def fail(owner: str, what: str, got: object) -> None:
    """Raise ``ValueError("{owner}: expected {what}, got {got!r}")``."""
    raise ValueError(f"{owner}: expected {what}, got {got!r}")


class NonFiniteError(ValueError):
    """A tensor that should be finite holds NaN or inf (in training: the run diverged)."""


def unknown_name_error(kind: str, name: str, known: Iterable[str]) -> ValueError:
    """Build the error for a name that is not in a registry."""
    from contrastkit.utils.schema import closest

    known = sorted(known)
    hint = f" (did you mean {match!r}?)" if (match := closest(name, known)) else ""
    known_list = ", ".join(known) or "(none registered)"
    return ValueError(f"unknown {kind} {name!r}{hint}; expected one of: {known_list}")


def check_int(owner: str, name: str, value: int, minimum: int) -> int:
    """``value`` as an ``int`` when it is an integer (not a bool) ``>= minimum``; else a clear error."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        fail(owner, f"an int {name} >= {minimum}", value)
    return int(value)


def check_positive_scalar(name: str, value: Scalar) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number (or 0-d / 1-element tensor) > 0."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name}: expected a positive scalar, got a tensor of shape {tuple(value.shape)}")
        if not validating(value):  # reading the value would wait for the device
            return
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
        if not validating(value):
            return
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
    if validating(tensor) and not torch.isfinite(tensor).all():
        bad = int((~torch.isfinite(tensor)).sum())
        raise NonFiniteError(
            f"{name}: expected finite values, got {bad} NaN/inf entries in shape {tuple(tensor.shape)}"
        )


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


def check_labels(
    name: str,
    labels: object,
    rows: int | None = None,
    *,
    allow_bool: bool = True,
    non_negative: bool = False,
) -> torch.Tensor:
    """Return ``labels`` as ``long`` when it is a 1-D integer tensor, one label per row; else a clear error.

    Args:
        name: the argument's name, used in the message (``"labels"``, ``"train_labels"``).
        labels: the tensor to check.
        rows: the expected length (the number of embedding rows); ``None`` accepts any.
        allow_bool: whether a bool tensor counts as integer labels.
        non_negative: whether a label below 0 is an error.
    """
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or (rows is not None and labels.shape[0] != rows):
        got = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        expected = f"[{rows}]" if rows is not None else "[N]"
        raise ValueError(f"{name}: expected integer labels of shape {expected} (one label per row), got {got}")
    if labels.is_floating_point() or labels.is_complex() or (not allow_bool and labels.dtype == torch.bool):
        raise ValueError(f"{name}: expected integer labels, got dtype {labels.dtype}")
    if non_negative and labels.numel() and validating(labels) and int(labels.min()) < 0:
        raise ValueError(f"{name}: expected non-negative labels, got minimum {int(labels.min())}")
    return labels.long()


def check_edge_index(
    name: str,
    edge_index: object,
    num_nodes: int | None = None,
    *,
    dtype: torch.dtype | None = torch.long,
    min_nodes: int = 0,
    min_edges: int = 0,
) -> torch.Tensor:
    """Return ``edge_index`` as ``long`` when it is a ``[2, E]`` tensor of node ids; else a clear error.

    Args:
        name: what the message names (``"edge_index"``, ``"drop_edges: edge_index"``).
        edge_index: the tensor to check: row 0 sources, row 1 targets.
        num_nodes: node ids must lie in ``[0, num_nodes)``; ``None`` checks only that they are ``>= 0``.
        dtype: the required dtype; ``None`` accepts any integer (non-float, non-complex) dtype.
        min_nodes: the smallest acceptable ``num_nodes``.
        min_edges: the smallest acceptable ``E``.
    """
    if not isinstance(edge_index, torch.Tensor) or edge_index.dim() != 2 or edge_index.shape[0] != 2:
        got = tuple(edge_index.shape) if isinstance(edge_index, torch.Tensor) else type(edge_index).__name__
        raise ValueError(f"{name}: expected a tensor of node ids of shape [2, E], got {got}")
    if dtype is None and (edge_index.is_floating_point() or edge_index.is_complex()):
        raise ValueError(f"{name}: expected integer node ids, got dtype {edge_index.dtype}")
    if dtype is not None and edge_index.dtype != dtype:
        want = "torch.long" if dtype == torch.long else str(dtype)
        raise ValueError(f"{name}: expected dtype {want}, got {edge_index.dtype}")
    if num_nodes is not None and num_nodes < min_nodes:
        raise ValueError(f"{name}: expected num_nodes >= {min_nodes}, got {num_nodes}")
    if edge_index.shape[1] < min_edges:
        raise ValueError(f"{name}: expected at least {min_edges} pairs, got {edge_index.shape[1]}")
    if edge_index.numel():
        low, high = int(edge_index.min()), int(edge_index.max())
        if num_nodes is None and low < 0:
            raise ValueError(f"{name}: expected non-negative node ids, got minimum {low}")
        if num_nodes is not None and (low < 0 or high >= num_nodes):
            raise ValueError(f"{name}: expected node ids in [0, {num_nodes}), got range [{low}, {high}]")
    return edge_index.long()

"""Cross-device negatives: gather a batch from every process, with a stated gradient policy.

Under data parallelism each process embeds its own ``B`` rows. Contrasting them
with the rows of the other processes gives every anchor ``world * B - 1``
in-batch negatives instead of ``B - 1``. How the gradient then flows back across
processes is a *policy*, and it decides whether a run with ``world`` processes
of ``B`` rows takes the same step as one process with ``world * B`` rows.

Policies (``world`` processes in the group, ``B`` local rows; DDP averages the
parameter gradients over the ``world`` processes):

========== ============================== =========================================
policy     the caller computes            parameter gradient after DDP's averaging
========== ============================== =========================================
none       the loss over its local batch  the gradient of the mean of the local
                                          losses (a different objective: fewer
                                          negatives)
no_grad    the full loss on the gathered  exactly ``1 / world`` times the
           batch                          single-process gradient (multiply the
                                          loss by ``world`` to recover it)
with_grad  the full loss on the gathered  exactly the single-process gradient
           batch
local_loss its local rows against the     exactly the single-process gradient
           gathered columns (mean over
           local rows)
========== ============================== =========================================

The derivation, examples and the ``torchrun`` recipe are in ``docs/scaling.md``
("Cross-device negatives"). This module is the only place in contrastkit that
calls collectives, and only on the group it is given (``None``: the default
group); creating and destroying the process group belongs to the caller.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from contrastkit.utils.checks import unknown_name_error

POLICIES: tuple[str, ...] = ("none", "no_grad", "with_grad", "local_loss")
"""The gather policies, in order of increasing communication."""


def _check_policy(policy: str) -> None:
    if policy not in POLICIES:
        raise unknown_name_error("gather policy", policy, POLICIES)


def is_distributed(group: Any = None) -> bool:
    """Whether ``torch.distributed`` is initialised with more than one process in ``group``."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size(group) > 1


def world_size(group: Any = None) -> int:
    """The number of processes in ``group``; 1 when ``torch.distributed`` is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(group)
    return 1


def rank(group: Any = None) -> int:
    """This process's rank within ``group``; 0 when ``torch.distributed`` is not initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(group)
    return 0


def rank_slice(batch_size: int, group: Any = None) -> slice:
    """The rows of this process in a tensor returned by :func:`gather` (rank-major order).

    Args:
        batch_size: the local batch size ``B`` (every process must have the same).
        group: the process group given to :func:`gather`.

    Returns:
        ``slice(rank * B, (rank + 1) * B)``; ``slice(0, B)`` without a process group.

    Example:
        >>> z_local_again = gather(z, "with_grad")[rank_slice(z.shape[0])]
    """
    if batch_size < 1:
        raise ValueError(f"rank_slice: expected a positive batch size, got {batch_size}")
    start = rank(group) * batch_size
    return slice(start, start + batch_size)


def local_positive_mask(
    batch_size: int, group: Any = None, *, device: torch.device | str | None = None
) -> torch.Tensor:
    """Positives for the ``local_loss`` policy: local row ``i`` with gathered column ``rank * B + i``.

    Pass it as ``pos_mask`` to :func:`contrastkit.functional.info_nce` with the
    local rows as queries and the gathered rows as keys.

    Args:
        batch_size: the local batch size ``B``.
        group: the process group given to :func:`gather`.
        device: where to build the mask.

    Returns:
        A bool ``[B, world * B]`` mask (the identity without a process group).

    Example:
        >>> keys = gather(key, "local_loss")
        >>> loss = info_nce(query, keys, pos_mask=local_positive_mask(query.shape[0], device=query.device))
    """
    rows = rank_slice(batch_size, group)
    mask = torch.zeros(batch_size, world_size(group) * batch_size, dtype=torch.bool, device=device)
    mask[:, rows] = torch.eye(batch_size, dtype=torch.bool, device=device)
    return mask


# torch 2.13 renamed the single-buffer collectives (the old names still work, with a FutureWarning).
_all_gather_single = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
_reduce_scatter_single = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor


class _AllGatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward sums the incoming gradient over the group.

    Forward: ``[B, ...]`` on every rank -> ``[world * B, ...]`` (rank-major), one
    single-buffer all-gather. Backward: a reduce-scatter (sum) of the gradient
    ``[world * B, ...]``, so row ``i`` of rank ``r`` receives
    ``sum_s dL_s / dZ[r * B + i]``, the derivative of the *sum* of every rank's loss;
    each rank receives only its ``B`` rows (half the traffic of an all-reduce; NCCL
    and, since torch 2.x, gloo both run it).
    """

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, group: Any) -> torch.Tensor:  # type: ignore[override]
        ctx.group = group
        z = z.contiguous()
        out = z.new_empty((dist.get_world_size(group) * z.shape[0], *z.shape[1:]))
        _all_gather_single(out, z, group=group)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        grad = grad.contiguous()
        out = grad.new_empty((grad.shape[0] // dist.get_world_size(ctx.group), *grad.shape[1:]))
        _reduce_scatter_single(out, grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return out, None


def gather(z: torch.Tensor, policy: str = "with_grad", group: Any = None) -> torch.Tensor:
    """Gather ``z [B, ...]`` from every process of ``group`` into ``[world * B, ...]`` (rank-major).

    Row ``rank * B + i`` of the result is row ``i`` of process ``rank``
    (:func:`rank_slice` gives this process's rows). Every process must call it
    with the same ``B`` (use ``drop_last=True`` in the loader) and the same
    policy, and — for ``with_grad`` and ``local_loss`` — every process must run
    the backward pass, which holds a collective.

    Policies:

    * ``"none"``: no communication, ``z`` is returned as is (in-batch negatives
      of the local batch only).
    * ``"no_grad"``: the other processes' rows are constants; this process's
      rows are ``z`` itself and keep their gradient. If every process computes
      the full loss on the result, DDP's averaged parameter gradient is exactly
      ``1 / world`` times the single-process (``world * B`` rows) gradient. With a
      local loss (local rows against these columns) it is *not* a rescaled
      single-process gradient: the terms through which the other processes'
      losses depend on this process's rows are missing.
    * ``"with_grad"``: an all-gather whose backward sums the gradient over the
      processes and keeps this process's rows. If every process computes the
      full loss on the result, each process's rows receive ``world`` times their
      single-process gradient, and DDP's division by ``world`` makes the step
      equal to one process with ``world * B`` rows.
    * ``"local_loss"``: the same gather as ``with_grad``; the caller computes the
      loss of its local rows (``z`` itself, or the result's :func:`rank_slice`)
      against all gathered columns, as a mean over local rows (see
      :func:`local_positive_mask`). The average of the local means is the global
      mean and the backward delivers the other processes' terms, so the step
      again equals one process with ``world * B`` rows — with ``world`` times
      less loss compute per process than ``with_grad``.

    Without an initialised process group, or with a group of one process, every
    policy returns ``z`` unchanged.

    Args:
        z: the local batch ``[B, ...]`` (embeddings ``[B, D]``, or labels ``[B]``
            with ``no_grad``).
        policy: one of ``none``, ``no_grad``, ``with_grad`` (default), ``local_loss``.
        group: the process group (``None``: the default group).

    Returns:
        ``[world * B, ...]``, or ``z`` itself (policy ``none``, or not distributed).

    Raises:
        ValueError: an unknown policy, or ``z`` not a tensor with at least one dimension.

    Example:
        >>> z_a, z_b = model(x_a), model(x_b)            # [B, D] each, on every process
        >>> loss = info_nce(gather(z_a), gather(z_b))   # full loss over world * B rows
        >>> loss.backward()                             # DDP then averages: same step as 1 x (world * B)
    """
    _check_policy(policy)
    if not isinstance(z, torch.Tensor) or z.dim() < 1:
        got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ValueError(f"gather: expected a tensor [B, ...] with at least one dimension, got {got}")
    if policy == "none" or not is_distributed(group):
        return z
    if policy == "no_grad":
        with torch.no_grad():
            parts = [torch.empty_like(z) for _ in range(dist.get_world_size(group))]
            dist.all_gather(parts, z.detach().contiguous(), group=group)
        parts[dist.get_rank(group)] = z
        return torch.cat(parts, dim=0)
    return _AllGatherWithGrad.apply(z, group)

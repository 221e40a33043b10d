"""Rank-q randomized SVD of a sparse matrix: LightGCL's SVD view of the user-item graph.

Cai et al., ICLR 2023, "LightGCL: Simple Yet Effective Graph Contrastive Learning for
Recommendation": the normalised user-item adjacency
(:func:`contrastkit.utils.graph_index.normalized_bipartite_adjacency`) is approximated once
as ``U_q S_q V_qᵀ``, and the SVD view propagates through the factors, so no dense matrix is
ever formed (used by ``methods/recommendation.py``). Plain torch, no torch-geometric.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NamedTuple

import torch

from contrastkit.utils.checks import check_int as _check_int, fail as _fail

__all__ = ["LowRank", "low_rank_factors"]


class LowRank(NamedTuple):
    """A rank-q factorisation ``A ≈ u @ diag(s) @ v.T``: ``u [R, q]``, ``s [q]``, ``v [C, q]``."""

    u: torch.Tensor
    s: torch.Tensor
    v: torch.Tensor


@contextlib.contextmanager
def _seeded_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Seed the RNG of ``device`` inside the block and restore its state afterwards."""
    if device.type == "cpu":
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            yield
    elif device.type == "cuda":
        with torch.random.fork_rng(devices=[device]), torch.cuda.device(device):
            torch.cuda.manual_seed(seed)
            yield
    else:  # other accelerators: fork every RNG torch knows of for that device type
        with torch.random.fork_rng(device_type=device.type):
            torch.manual_seed(seed)
            yield


def low_rank_factors(
    indices: torch.Tensor,
    values: torch.Tensor,
    shape: tuple[int, int],
    rank: int = 5,
    *,
    niter: int = 4,
    seed: int | None = 0,
    oversample: int = 0,
) -> LowRank:
    """Rank-``q`` randomized SVD of a sparse matrix: LightGCL's SVD view.

    Cai et al., ICLR 2023, "LightGCL: Simple Yet Effective Graph Contrastive Learning
    for Recommendation", Section 3.3 and HKUDS/LightGCL ``main.py``: the normalised
    user-item adjacency ``Ã`` is approximated once as ``Ã ≈ U_q S_q V_qᵀ`` with
    ``torch.svd_lowrank`` (Halko et al.'s randomized range finder), ``q = 5`` by default.
    The SVD view then propagates ``(U_q S_q)(V_qᵀ E)`` so no dense ``R x C`` matrix is
    ever formed, here neither: the sparse matrix only meets ``[C, q]`` / ``[R, q]`` blocks.

    LightGCL calls ``torch.svd_lowrank`` with its default ``niter = 2``; the default here
    is 4 subspace iterations, which costs two more sparse products and brings the factors
    closer to the exact truncated SVD (the best rank-q approximation, Eckart-Young).
    ``oversample`` extra columns in the random test matrix (Halko et al. suggest 5-10;
    LightGCL uses none) sharpen the factors further when the spectrum decays slowly;
    the result is still cut to ``rank``.

    Args:
        indices: ``[2, nnz]`` long (row, column) positions; duplicates are summed.
        values: ``[nnz]`` float entries.
        shape: ``(R, C)``, the matrix size.
        rank: ``q``, the number of singular triplets (LightGCL: 5); at most ``min(R, C)``.
        niter: subspace (power) iterations of the randomized SVD.
        seed: seeds the random test matrix (the caller's RNG state is restored after);
            ``None`` draws it from torch's global RNG for the matrix's device.
        oversample: extra random columns, ``0 <= rank + oversample <= min(R, C)``.

    Returns:
        ``LowRank(u [R, q], s [q], v [C, q])`` with ``s`` descending; ``u`` and ``v`` have
        orthonormal columns, on the device and dtype of ``values``.

    Raises:
        ValueError: wrong shapes or dtypes, indices out of range, non-finite values, or
            ``rank`` outside ``[1, min(R, C)]``.

    Example:
        >>> indices, values, shape = normalized_bipartite_adjacency(pairs, 600, 400)
        >>> u, s, v = low_rank_factors(indices, values, shape, rank=5)
        >>> u_mul_s, v_mul_s = u * s, v * s  # LightGCL's propagation factors
    """
    owner = "low_rank_factors"
    try:
        rows, cols = (int(n) for n in shape)
    except (TypeError, ValueError):
        _fail(owner, "shape as a pair (R, C)", shape)
    if rows < 1 or cols < 1:
        _fail(owner, "a shape (R, C) with R, C >= 1", shape)
    if not isinstance(indices, torch.Tensor) or indices.dim() != 2 or indices.shape[0] != 2:
        got = tuple(indices.shape) if isinstance(indices, torch.Tensor) else type(indices).__name__
        raise ValueError(f"{owner}: expected indices of shape [2, nnz], got {got}")
    if indices.dtype != torch.long:
        raise ValueError(f"{owner}: expected indices of dtype torch.long, got {indices.dtype}")
    if not isinstance(values, torch.Tensor) or values.shape != (indices.shape[1],) or not values.is_floating_point():
        got = f"{tuple(values.shape)} {values.dtype}" if isinstance(values, torch.Tensor) else type(values).__name__
        raise ValueError(f"{owner}: expected float values of shape [nnz] = [{indices.shape[1]}], got {got}")
    if not torch.isfinite(values).all():
        raise ValueError(f"{owner}: expected finite values, got {int((~torch.isfinite(values)).sum())} NaN/inf")
    if indices.numel() and (int(indices.min()) < 0 or int(indices[0].max()) >= rows or int(indices[1].max()) >= cols):
        raise ValueError(f"{owner}: expected indices inside the shape {(rows, cols)}, got some outside")
    rank = _check_int(owner, "rank", rank, 1)
    if rank > min(rows, cols):
        raise ValueError(f"{owner}: expected rank <= min(R, C) = {min(rows, cols)}, got {rank}")
    niter = _check_int(owner, "niter", niter, 0)
    oversample = _check_int(owner, "oversample", oversample, 0)
    if rank + oversample > min(rows, cols):
        raise ValueError(
            f"{owner}: expected rank + oversample <= min(R, C) = {min(rows, cols)}, got {rank + oversample}"
        )
    if seed is not None:
        seed = _check_int(owner, "seed", seed, 0)
    # indices were checked above, so skip torch's own invariant check
    matrix = torch.sparse_coo_tensor(indices.to(values.device), values, (rows, cols), check_invariants=False).coalesce()
    if seed is None:
        u, s, v = torch.svd_lowrank(matrix, q=rank + oversample, niter=niter)
    else:
        with _seeded_rng(values.device, seed):
            u, s, v = torch.svd_lowrank(matrix, q=rank + oversample, niter=niter)
    return LowRank(u[:, :rank], s[:rank], v[:, :rank])

"""Graph index utilities in plain torch: node pairs as integer keys, non-edge sampling, adjacency.

Used by data, views, eval and nn alike, so it lives on the ground floor (torch-geometric is
optional and not imported here). Link prediction needs non-edges as negatives
(:func:`contrastkit.data.graph_splits.split_edges`) and D-SLA's perturbation adds random
non-edges (:func:`contrastkit.views.graph.perturb_edges`); both draw them here. A pair
``(u, v)`` of an ``N``-node graph is the key ``u * N + v`` (``u = min``, ``v = max`` when the
graph is undirected), so set operations on edges are sorted-tensor operations.
:func:`normalized_bipartite_adjacency` builds the normalised user-item adjacency of
LightGCN and LightGCL.
"""

from __future__ import annotations

import torch

from contrastkit.utils.checks import check_int as _check_int

#: Up to this many possible pairs, non-edges are listed in full and a random subset taken;
#: beyond it, rejection sampling (the graph is then large and, in practice, sparse).
ENUMERATE_PAIRS_UP_TO = 2_000_000


def pair_keys(source: torch.Tensor, target: torch.Tensor, num_nodes: int, undirected: bool) -> torch.Tensor:
    """One int64 key per pair: ``u * N + v``, with ``u = min, v = max`` when undirected."""
    if undirected:
        source, target = torch.minimum(source, target), torch.maximum(source, target)
    return source * num_nodes + target


def unique_in_order(values: torch.Tensor) -> torch.Tensor:
    """The distinct entries of ``values`` in order of first appearance (sorting would favour small ids)."""
    unique, inverse = torch.unique(values, return_inverse=True)
    first = torch.full((unique.numel(),), values.numel(), dtype=torch.long, device=values.device)
    first.scatter_reduce_(0, inverse, torch.arange(values.numel(), device=values.device), reduce="amin")
    return unique[torch.argsort(first)]


def sample_non_edges(
    edge_keys: torch.Tensor,
    count: int,
    num_nodes: int,
    *,
    undirected: bool,
    generator: torch.Generator | None = None,
    owner: str = "sample_non_edges",
) -> torch.Tensor:
    """``count`` distinct keys of uniformly random pairs that are neither self loops nor in ``edge_keys``.

    Args:
        edge_keys: the existing pairs' keys (:func:`pair_keys`), sorted, on the device the
            result should live on.
        count: how many non-edges to draw.
        num_nodes: ``N``.
        undirected: draw unordered pairs (``u < v``).
        generator: optional ``torch.Generator``; by default torch's global RNG.
        owner: the caller's name, for the error message.

    Returns:
        ``[count]`` int64 keys, in random order, on ``edge_keys``' device.

    Raises:
        ValueError: when the graph has fewer than ``count`` non-edges.
    """
    device = edge_keys.device
    draw_device = generator.device if generator is not None else device
    possible = num_nodes * (num_nodes - 1) // (2 if undirected else 1)
    available = possible - edge_keys.numel()
    if count > available:
        raise ValueError(
            f"{owner}: expected at least {count} non-edges (node pairs that are not edges), the graph has {available}"
        )
    if count == 0:
        return torch.zeros(0, dtype=torch.long, device=device)
    if possible <= ENUMERATE_PAIRS_UP_TO:
        # Small or dense graphs: list every non-edge and take a random subset.
        if undirected:
            source, target = torch.triu_indices(num_nodes, num_nodes, offset=1, device=device)
        else:
            grid = torch.arange(num_nodes, device=device)
            source, target = grid.repeat_interleave(num_nodes), grid.repeat(num_nodes)
            off_diagonal = source != target
            source, target = source[off_diagonal], target[off_diagonal]
        keys = source * num_nodes + target
        keys = keys[~torch.isin(keys, edge_keys)]
        order = torch.randperm(keys.numel(), generator=generator, device=draw_device).to(device)
        return keys[order[:count]]
    # Large sparse graphs: rejection sampling. The first `count` distinct accepted draws of a
    # uniform stream form a uniform random subset of the non-edges.
    found = torch.zeros(0, dtype=torch.long, device=device)
    while found.numel() < count:
        size = (2, 2 * (count - found.numel()) + 64)
        draws = torch.randint(0, num_nodes, size, generator=generator, device=draw_device).to(device)
        draws = draws[:, draws[0] != draws[1]]
        keys = pair_keys(draws[0], draws[1], num_nodes, undirected)
        keys = keys[~torch.isin(keys, edge_keys)]
        found = unique_in_order(torch.cat([found, keys]))
    return found[:count]


def normalized_bipartite_adjacency(
    pairs: torch.Tensor, num_rows: int, num_cols: int, *, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """LightGCL's normalised user-item adjacency ``Ã = D_u^{-1/2} A D_i^{-1/2}`` in COO form.

    Cai et al., ICLR 2023 (HKUDS/LightGCL ``main.py``): the binary interaction matrix
    ``A [R, C]`` (duplicate pairs count once) gets value ``1 / sqrt(deg_row * deg_col)``
    on each interaction, with the degrees of its row (user) and column (item).

    Args:
        pairs: ``[2, T]`` long (row, column) interactions, e.g. (user, item).
        num_rows: ``R`` (users).
        num_cols: ``C`` (items).
        dtype: floating dtype of the values.

    Returns:
        ``(indices [2, nnz], values [nnz], (R, C))``, coalesced (sorted by row, then
        column; no duplicates), on the device of ``pairs``.

    Raises:
        ValueError: wrong shape or dtype, or ids outside ``[0, R)`` / ``[0, C)``.

    Example:
        >>> pairs = torch.tensor([[0, 0, 1], [0, 1, 1]])
        >>> normalized_bipartite_adjacency(pairs, 2, 2)[1]  # 1/sqrt(2*1), 1/sqrt(2*2), 1/sqrt(1*2)
        tensor([0.7071, 0.5000, 0.7071])
    """
    owner = "normalized_bipartite_adjacency"
    num_rows = _check_int(owner, "num_rows", num_rows, 1)
    num_cols = _check_int(owner, "num_cols", num_cols, 1)
    if not isinstance(pairs, torch.Tensor) or pairs.dim() != 2 or pairs.shape[0] != 2:
        got = tuple(pairs.shape) if isinstance(pairs, torch.Tensor) else type(pairs).__name__
        raise ValueError(f"{owner}: expected pairs of shape [2, T] (row, column), got {got}")
    if pairs.dtype != torch.long:
        raise ValueError(f"{owner}: expected pairs of dtype torch.long, got {pairs.dtype}")
    if not dtype.is_floating_point:
        raise ValueError(f"{owner}: expected a floating dtype, got {dtype}")
    if pairs.numel() and (int(pairs.min()) < 0 or int(pairs[0].max()) >= num_rows or int(pairs[1].max()) >= num_cols):
        raise ValueError(
            f"{owner}: expected rows in [0, {num_rows}) and columns in [0, {num_cols}), "
            f"got rows up to {int(pairs[0].max())} and columns up to {int(pairs[1].max())}"
        )
    keys = torch.unique(pairs[0] * num_cols + pairs[1])  # sorted: coalesced order
    rows, cols = keys // num_cols, keys % num_cols
    row_degree = torch.bincount(rows, minlength=num_rows).to(dtype)
    col_degree = torch.bincount(cols, minlength=num_cols).to(dtype)
    values = (row_degree[rows] * col_degree[cols]).rsqrt()
    return torch.stack([rows, cols]), values, (num_rows, num_cols)

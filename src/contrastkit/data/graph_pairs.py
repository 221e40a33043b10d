"""Node pairs as integer keys, and uniform sampling of non-edges.

Link prediction needs non-edges as negatives (:func:`contrastkit.eval.graph.split_edges`)
and D-SLA's perturbation adds random non-edges (:func:`contrastkit.views.graph.perturb_edges`);
both draw them here. A pair ``(u, v)`` of an ``N``-node graph is the key ``u * N + v``
(``u = min``, ``v = max`` when the graph is undirected), so set operations on edges are
sorted-tensor operations.
"""

from __future__ import annotations

import torch

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

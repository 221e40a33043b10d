"""Mini-batches of large graphs by layer-wise neighbour sampling (GraphSAGE), in pure torch.

Hamilton et al., "Inductive Representation Learning on Large Graphs" (NeurIPS 2017):
a node's ``L``-layer representation only depends on its ``L``-hop in-neighbourhood, so a
mini-batch of seed nodes is expanded hop by hop, keeping at most ``num_neighbors[h]``
incoming edges per node at hop ``h``. This is the semantics of PyG's ``NeighborLoader``,
which needs the compiled ``pyg-lib`` or ``torch-sparse`` packages; neither installs from
PyPI beside current torch, so :class:`NeighborSampler` does the same with vectorised
torch ops on a CSC index (no per-node Python loop).

The output follows ``NeighborLoader``'s layout:

- ``n_id`` ``[n]``: the global ids of the sampled nodes, unique; the seeds come first, in the
  given order, then the nodes found at hop 1 in order of first appearance, then hop 2, ...
- ``edge_index`` ``[2, m]`` in local ids (positions in ``n_id``): sampled edges
  ``neighbour -> node`` (row 0 = source), grouped hop by hop and, inside a hop, by target.
- ``e_id`` ``[m]``: the global ids (columns of the input ``edge_index``) of those edges.
- ``batch_size``: the number of seeds; the first ``batch_size`` rows are the seeds.
- ``num_sampled_nodes`` / ``num_sampled_edges``: per-hop counts (``[B, new@1, new@2, ...]``
  and ``[edges@1, edges@2, ...]``), as PyG reports them.
- ``x`` and every other node attribute indexed by ``n_id``; edge attributes by ``e_id``.

Only the nodes discovered at hop ``h - 1`` are expanded at hop ``h`` (a node is sampled
once), so with ``-1`` (all neighbours) at every hop and ``L`` hops the subgraph holds the
complete in-neighbourhood of every node within ``L - 1`` hops of a seed. A mean or sum
aggregator (SAGEConv, GINConv) with ``L`` layers then gives exactly the full-graph output at
the seeds; GCN's symmetric normalisation also reads the degree of the source nodes, so an
``L``-layer GCN needs ``L + 1`` full hops (or normalisation weights computed once on the full
graph and gathered with ``e_id``).

Example:
    >>> sampler = NeighborSampler(edge_index, num_nodes, [10, 10], x=features)
    >>> sub = sampler.sample(torch.tensor([3, 7, 42]))
    >>> out = gnn(sub.x, sub.edge_index)[: sub.batch_size]  # the seeds' representations
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch_geometric.data import Data

_UNSEEN = torch.iinfo(torch.long).max


class NeighborSampler:
    """Samples the ``len(num_neighbors)``-hop incoming neighbourhood of seed nodes.

    Sampling is uniform without replacement among a node's incoming edges (``replace=False``):
    a node of in-degree ``d`` keeps ``min(k, d)`` of them, each ``k``-subset equally likely.
    With ``replace=True`` a node of in-degree ``d > 0`` draws exactly ``k`` edges with
    replacement (duplicates possible), as PyG does. ``-1`` keeps all incoming edges.
    A hop costs time linear in the summed in-degree of its frontier, plus one sort of the
    incoming edges of the frontier nodes with more than ``k`` of them; nothing is ``O(N)``.

    Randomness comes from ``generator`` when given, otherwise from torch's global RNG.
    The sampler keeps two ``[num_nodes]`` scratch buffers that it restores after each call, so
    one instance must not be sampled from by two threads at once (DataLoader worker
    processes each get their own copy).

    Args:
        edge_index: ``[2, E]`` long edges, row 0 = source, row 1 = target (message flow
            source -> target: a node's neighbours are the sources of its incoming edges).
            Undirected graphs store both directions.
        num_nodes: the number of nodes ``N``.
        num_neighbors: per hop, the most incoming edges kept per node (``-1``: all).
        x: optional node features ``[N, F]``.
        replace: sample with replacement.
        edge_attributes: optional edge-level tensors ``[E, ...]`` (e.g. ``{"edge_weight": w}``),
            returned indexed by ``e_id``.
        **node_attributes: further node-level tensors ``[N, ...]`` (labels ``y``, masks),
            returned indexed by ``n_id``.

    Raises:
        ValueError: on a malformed ``edge_index``, node ids outside ``[0, N)``, a hop size below
            ``-1``, or attributes whose first dimension is not ``N`` (nodes) or ``E`` (edges).
    """

    def __init__(
        self,
        edge_index: torch.Tensor,
        num_nodes: int,
        num_neighbors: Sequence[int],
        *,
        x: torch.Tensor | None = None,
        replace: bool = False,
        edge_attributes: Mapping[str, torch.Tensor] | None = None,
        **node_attributes: torch.Tensor,
    ) -> None:
        if not isinstance(edge_index, torch.Tensor) or edge_index.dim() != 2 or edge_index.shape[0] != 2:
            shape = tuple(edge_index.shape) if isinstance(edge_index, torch.Tensor) else type(edge_index).__name__
            raise ValueError(f"NeighborSampler: expected edge_index of shape [2, E], got {shape}")
        if edge_index.is_floating_point() or edge_index.is_complex():
            raise ValueError(f"NeighborSampler: expected an integer edge_index, got dtype {edge_index.dtype}")
        num_nodes = int(num_nodes)
        if num_nodes < 1:
            raise ValueError(f"NeighborSampler: expected num_nodes >= 1, got {num_nodes}")
        edge_index = edge_index.long()
        if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
            raise ValueError(
                f"NeighborSampler: expected node ids in [0, {num_nodes}), "
                f"got range [{int(edge_index.min())}, {int(edge_index.max())}]"
            )
        hops = [int(k) for k in num_neighbors]
        if any(k < -1 for k in hops):
            raise ValueError(f"NeighborSampler: expected num_neighbors entries >= -1 (-1 = all), got {hops}")
        self.num_nodes = num_nodes
        self.num_neighbors = hops
        self.replace = bool(replace)
        self.num_edges = int(edge_index.shape[1])
        device = edge_index.device

        # CSC: incoming edges grouped by target; a stable sort keeps the input order inside a node.
        source, target = edge_index[0], edge_index[1]
        order = torch.argsort(target, stable=True)
        self._sources = source[order]
        self._edge_ids = order
        self._degree = torch.bincount(target, minlength=num_nodes)
        self._pointer = torch.zeros(num_nodes + 1, dtype=torch.long, device=device)
        self._pointer[1:] = torch.cumsum(self._degree, dim=0)
        # Scratch buffers indexed by global id, restored after every call so that a call costs
        # O(sampled) rather than O(N): the local id in the current sample (-1 = not sampled), and
        # the first position at which a node turns up among a hop's new sources.
        self._local = torch.full((num_nodes,), -1, dtype=torch.long, device=device)
        self._first = torch.full((num_nodes,), _UNSEEN, dtype=torch.long, device=device)

        self.node_attributes: dict[str, torch.Tensor] = {}
        for name, value in ({"x": x} | dict(node_attributes)).items():
            if value is None:
                continue
            if not isinstance(value, torch.Tensor) or value.dim() == 0 or value.shape[0] != num_nodes:
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(
                    f"NeighborSampler: expected node attribute {name!r} of shape [{num_nodes}, ...], got {shape}"
                )
            self.node_attributes[name] = value
        self.edge_attributes: dict[str, torch.Tensor] = {}
        for name, value in dict(edge_attributes or {}).items():
            if not isinstance(value, torch.Tensor) or value.dim() == 0 or value.shape[0] != self.num_edges:
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(
                    f"NeighborSampler: expected edge attribute {name!r} of shape [{self.num_edges}, ...], got {shape}"
                )
            self.edge_attributes[name] = value

    @classmethod
    def from_data(cls, data: Data, num_neighbors: Sequence[int], *, replace: bool = False) -> "NeighborSampler":
        """A sampler over a PyG ``Data`` graph, carrying its node- and edge-level tensors along.

        Args:
            data: the graph (``edge_index``, ``num_nodes``, optional ``x``, ``y``, masks, ``edge_weight`` ...).
            num_neighbors: per hop, the most incoming edges kept per node (``-1``: all).
            replace: sample with replacement.

        Returns:
            The sampler.
        """
        if not isinstance(data, Data) or data.edge_index is None:
            raise ValueError(
                f"NeighborSampler.from_data: expected a torch_geometric Data with edge_index, got {data!r}"
            )
        node_attributes: dict[str, torch.Tensor] = {}
        edge_attributes: dict[str, torch.Tensor] = {}
        for key, value in data.items():
            if key == "edge_index" or not isinstance(value, torch.Tensor):
                continue
            if data.is_edge_attr(key):
                edge_attributes[key] = value
            elif data.is_node_attr(key):
                node_attributes[key] = value
        return cls(
            data.edge_index, int(data.num_nodes), num_neighbors,
            replace=replace, edge_attributes=edge_attributes, **node_attributes,
        )  # fmt: skip

    def sample(self, seeds: torch.Tensor, generator: torch.Generator | None = None) -> Data:
        """The sampled subgraph around ``seeds``.

        Args:
            seeds: ``[B]`` distinct global node ids.
            generator: optional random generator (on the graph's device); default torch's global RNG.

        Returns:
            A ``Data`` with ``n_id``, ``edge_index`` (local ids), ``e_id``, ``batch_size``,
            ``num_sampled_nodes``, ``num_sampled_edges``, ``num_nodes`` and every node/edge attribute
            gathered (see the module docstring for the layout).

        Raises:
            ValueError: when ``seeds`` is not a 1-D integer tensor of distinct ids in ``[0, N)``.
        """
        device = self._local.device
        if not isinstance(seeds, torch.Tensor):
            seeds = torch.as_tensor(seeds)
        if seeds.dim() != 1 or seeds.is_floating_point() or seeds.is_complex():
            raise ValueError(
                f"NeighborSampler.sample: expected seeds as a 1-D integer tensor, got {seeds.dtype} "
                f"{tuple(seeds.shape)}"
            )
        seeds = seeds.to(device=device, dtype=torch.long)
        batch_size = int(seeds.numel())
        if batch_size and (int(seeds.min()) < 0 or int(seeds.max()) >= self.num_nodes):
            raise ValueError(
                f"NeighborSampler.sample: expected seed ids in [0, {self.num_nodes}), "
                f"got range [{int(seeds.min())}, {int(seeds.max())}]"
            )

        local = self._local
        node_parts = [seeds]
        rows: list[torch.Tensor] = []
        columns: list[torch.Tensor] = []
        edge_parts: list[torch.Tensor] = []
        num_sampled_nodes = [batch_size]
        num_sampled_edges: list[int] = []
        try:
            seed_local = torch.arange(batch_size, device=device)
            local[seeds] = seed_local
            if not bool((local[seeds] == seed_local).all()):  # a repeated seed keeps only its last position
                raise ValueError("NeighborSampler.sample: expected distinct seed ids, got duplicates")
            frontier, frontier_local, total = seeds, seed_local, batch_size
            for k in self.num_neighbors:
                positions, counts = self._sample_hop(frontier, k, generator)
                sources = self._sources[positions]
                source_local = local[sources]
                unseen = source_local < 0
                unseen_sources = sources[unseen]
                new_nodes = self._first_appearances(unseen_sources)
                new_local = torch.arange(total, total + new_nodes.numel(), device=device)
                node_parts.append(new_nodes)  # before marking, so that `finally` resets them
                local[new_nodes] = new_local
                source_local[unseen] = local[unseen_sources]
                rows.append(source_local)
                columns.append(torch.repeat_interleave(frontier_local, counts, output_size=int(positions.numel())))
                edge_parts.append(self._edge_ids[positions])
                num_sampled_nodes.append(int(new_nodes.numel()))
                num_sampled_edges.append(int(positions.numel()))
                frontier, frontier_local, total = new_nodes, new_local, total + int(new_nodes.numel())
        finally:
            local[torch.cat(node_parts)] = -1

        n_id = torch.cat(node_parts)
        empty = torch.zeros(0, dtype=torch.long, device=device)
        edge_index = torch.stack([torch.cat(rows or [empty]), torch.cat(columns or [empty])])
        e_id = torch.cat(edge_parts or [empty])
        out = Data(edge_index=edge_index, num_nodes=int(n_id.numel()))
        out.n_id = n_id
        out.e_id = e_id
        out.batch_size = batch_size
        out.num_sampled_nodes = num_sampled_nodes
        out.num_sampled_edges = num_sampled_edges
        for name, value in self.node_attributes.items():
            out[name] = value[n_id.to(value.device)]
        for name, value in self.edge_attributes.items():
            out[name] = value[e_id.to(value.device)]
        return out

    def _sample_hop(
        self, frontier: torch.Tensor, k: int, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """CSC positions of the edges kept for ``frontier`` (grouped by frontier node, in order) and counts per node."""
        start = self._pointer[frontier]
        degree = self._degree[frontier]
        if k < 0:
            return _expand(start, degree), degree
        if self.replace:
            counts = torch.where(degree > 0, torch.full_like(degree, k), torch.zeros_like(degree))
            total = int(counts.sum())
            node_degree = torch.repeat_interleave(degree, counts, output_size=total)
            node_start = torch.repeat_interleave(start, counts, output_size=total)
            draw = torch.rand(total, generator=generator, device=degree.device, dtype=torch.float64)
            offsets = torch.minimum((draw * node_degree).long(), node_degree - 1)
            return node_start + offsets, counts
        counts = degree.clamp(max=k)
        large = degree > k
        if not bool(large.any()):
            return _expand(start, degree), counts
        device = frontier.device
        # Output slots: node i's edges go to [slot[i], slot[i] + counts[i]), in frontier order.
        slot = torch.cumsum(counts, dim=0) - counts
        positions = torch.empty(int(counts.sum()), dtype=torch.long, device=device)
        small = ~large  # degree <= k: every incoming edge
        positions[_expand(slot[small], degree[small])] = _expand(start[small], degree[small])
        # degree > k: the first k of a uniformly random order of the node's edges. Sorting by
        # (node, random 31-bit key) puts each node's edges together in random order in one sort;
        # equal keys inside a node (probability ~ degree^2 / 2^32) only break ties by position.
        big = torch.nonzero(large).flatten()
        big_degree = degree[big]
        total = int(big_degree.sum())
        candidates = _expand(start[big], big_degree)
        owner = torch.repeat_interleave(torch.arange(big.numel(), device=device), big_degree, output_size=total)
        noise = torch.randint(0, 1 << 31, (total,), generator=generator, device=device)
        order = torch.argsort(owner * (1 << 31) + noise)
        first = torch.cumsum(big_degree, dim=0) - big_degree
        rank = torch.arange(total, device=device) - torch.repeat_interleave(first, big_degree, output_size=total)
        chosen = candidates[order[rank < k]]  # k per node, grouped by node in frontier order
        destination = torch.repeat_interleave(slot[big], k) + torch.arange(k, device=device).repeat(big.numel())
        positions[destination] = chosen
        return positions, counts

    def _first_appearances(self, values: torch.Tensor) -> torch.Tensor:
        """The distinct entries of ``values`` (global ids) in order of first appearance, without sorting."""
        if values.numel() == 0:
            return values
        first = self._first
        order = torch.arange(values.numel(), device=values.device)
        first.scatter_reduce_(0, values, order, reduce="amin")
        distinct = values[first[values] == order]
        first[values] = _UNSEEN
        return distinct

    def __repr__(self) -> str:
        return (
            f"NeighborSampler(num_nodes={self.num_nodes}, num_edges={self.num_edges}, "
            f"num_neighbors={self.num_neighbors}, replace={self.replace})"
        )


def _expand(start: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """``cat([arange(s, s + c) for s, c in zip(start, counts)])`` without a Python loop."""
    total = int(counts.sum())
    offsets = torch.cumsum(counts, dim=0) - counts
    shift = torch.repeat_interleave(start - offsets, counts, output_size=total)
    return shift + torch.arange(total, device=start.device)


__all__ = ["NeighborSampler"]

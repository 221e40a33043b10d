"""A synthetic bank of small random graphs from four generator families, for graph-level methods.

Graph-level contrastive methods (GraphCL, You et al., NeurIPS 2020; D-SLA, Kim et al.,
NeurIPS 2022, METHODS #20) pretrain on many small graphs and are probed on graph labels.
Molecule and protein benchmarks need downloads; this bank stands in for them (a proxy:
numbers on it show that a method works and which way an effect goes, not the papers'
results). Every graph comes from one of four random-graph families, and the family is
the label a probe must recover from structure:

- ``"er"``  Erdős–Rényi ``G(n, p)``: every pair independently with probability ``p``.
- ``"ba"``  Barabási–Albert preferential attachment: each new node links to ``m`` distinct
  earlier nodes chosen with probability proportional to their degree.
- ``"ws"``  Watts–Strogatz small world: a ring lattice where each node links to its ``k / 2``
  nearest neighbours on each side, each edge's far end rewired with probability ``beta``.
- ``"sbm"`` stochastic block model: 2–4 equal blocks, dense inside, sparse across.

The families share one expected average degree (``average_degree``, default 4), node counts
drawn uniformly from ``[min_nodes, max_nodes]`` and a random relabelling of the nodes, so
neither the size, the edge count nor the node order gives the family away. Node features are
``log(1 + degree)`` in column 0 and standard Gaussian noise in the others: structure is the only
signal. Every graph is undirected (both directions stored, each edge once per direction) and
has no self loops.

The generators are written here with an explicit ``torch.Generator`` rather than taken from
``torch_geometric.utils``: PyG's ``erdos_renyi_graph`` and ``stochastic_blockmodel_graph`` draw
from torch's global RNG (which the trainer owns), and its ``barabasi_albert_graph`` draws from
NumPy's global RNG with replacement, so a node can end up with fewer than ``m`` edges.

Example:
    >>> graphs = synthetic_graph_bank(600, seed=0)
    >>> dataset = GraphSetDataset(graphs)
    >>> batch = dataset.__getitems__([0, 1, 2])  # Batch(inputs=torch_geometric Batch, labels=[3], index=[3])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset
from torch_geometric.data import Batch as GraphBatch
from torch_geometric.data import Data

from contrastkit.data.batch import Batch

#: The generator families, in label order when all are used.
FAMILIES: tuple[str, ...] = ("er", "ba", "ws", "sbm")

#: Share of an SBM node's expected degree that stays inside its block.
_SBM_INTRA_FRACTION = 0.8


# ----------------------------------------------------------------------------- generators


def erdos_renyi_edges(
    num_nodes: int, edge_probability: float, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Edges of an Erdős–Rényi graph ``G(n, p)``: every pair independently with probability ``p``.

    Args:
        num_nodes: ``n`` (>= 1).
        edge_probability: ``p`` in ``[0, 1]``.
        generator: optional random generator; default torch's global RNG.

    Returns:
        ``[2, E]`` long undirected edges (both directions, no self loops).
    """
    _check_nodes("erdos_renyi_edges", num_nodes, 1)
    if not 0.0 <= edge_probability <= 1.0:
        raise ValueError(f"erdos_renyi_edges: expected edge_probability in [0, 1], got {edge_probability}")
    pairs = torch.triu_indices(num_nodes, num_nodes, offset=1)
    keep = torch.rand(pairs.shape[1], generator=generator) < edge_probability
    return _both_directions(pairs[:, keep], num_nodes)


def barabasi_albert_edges(
    num_nodes: int, edges_per_node: int, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Edges of a Barabási–Albert graph grown from a complete graph on ``m + 1`` nodes.

    Every later node links to ``m`` distinct earlier nodes, each chosen with probability
    proportional to its current degree, so every node has degree at least ``m`` and the
    graph has ``m (m + 1) / 2 + (n - m - 1) m`` edges.

    Args:
        num_nodes: ``n`` (> ``m``).
        edges_per_node: ``m`` (>= 1).
        generator: optional random generator; default torch's global RNG.

    Returns:
        ``[2, E]`` long undirected edges (both directions, no self loops).
    """
    m = int(edges_per_node)
    if m < 1:
        raise ValueError(f"barabasi_albert_edges: expected edges_per_node >= 1, got {edges_per_node}")
    _check_nodes("barabasi_albert_edges", num_nodes, m + 1)
    seed_pairs = torch.triu_indices(m + 1, m + 1, offset=1)
    degree = torch.zeros(num_nodes)
    degree[: m + 1] = m
    sources, targets = [seed_pairs[0]], [seed_pairs[1]]
    # One draw per new node: attachment depends on the degrees the previous nodes left behind.
    for node in range(m + 1, num_nodes):
        chosen = torch.multinomial(degree[:node], m, replacement=False, generator=generator)
        degree[chosen] += 1
        degree[node] = m
        sources.append(chosen)
        targets.append(torch.full((m,), node, dtype=torch.long))
    return _both_directions(torch.stack([torch.cat(sources), torch.cat(targets)]), num_nodes)


def watts_strogatz_edges(
    num_nodes: int, neighbors: int, rewire_probability: float, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Edges of a Watts–Strogatz small-world graph.

    Node ``i`` of a ring links to ``i + 1, ..., i + k/2`` (mod ``n``). Each of these ``n k / 2``
    edges ``(i, j)`` is, with probability ``beta``, replaced by ``(i, w)`` for a uniform random
    ``w``; a replacement that would be a self loop, an edge of the lattice or a duplicate of
    another replacement is dropped and the edge stays as it was. The edge count stays ``n k / 2``
    (mean degree exactly ``k``) and every node keeps degree ``>= k / 2``.

    Args:
        num_nodes: ``n`` (> ``k``).
        neighbors: ``k``, even, >= 2.
        rewire_probability: ``beta`` in ``[0, 1]``.
        generator: optional random generator; default torch's global RNG.

    Returns:
        ``[2, E]`` long undirected edges (both directions, no self loops).
    """
    k = int(neighbors)
    if k < 2 or k % 2:
        raise ValueError(f"watts_strogatz_edges: expected an even number of neighbours >= 2, got {neighbors}")
    _check_nodes("watts_strogatz_edges", num_nodes, k + 1)
    if not 0.0 <= rewire_probability <= 1.0:
        raise ValueError(f"watts_strogatz_edges: expected rewire_probability in [0, 1], got {rewire_probability}")
    ring = torch.arange(num_nodes)
    source = ring.repeat(k // 2)
    target = (source + torch.arange(1, k // 2 + 1).repeat_interleave(num_nodes)) % num_nodes
    lattice_keys = _keys(source, target, num_nodes)
    rewire = torch.rand(source.numel(), generator=generator) < rewire_probability
    new_target = torch.randint(0, num_nodes, (source.numel(),), generator=generator)
    new_keys = _keys(source, new_target, num_nodes)
    accept = rewire & (new_target != source) & ~torch.isin(new_keys, lattice_keys)
    # among accepted replacements, only the first of equal pairs survives
    candidate = torch.nonzero(accept).flatten()
    _, inverse = torch.unique(new_keys[candidate], return_inverse=True)
    first = torch.full((int(inverse.max()) + 1 if inverse.numel() else 0,), candidate.numel(), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(candidate.numel()), reduce="amin")
    accept[candidate[first[inverse] != torch.arange(candidate.numel())]] = False
    target = torch.where(accept, new_target, target)
    return _both_directions(torch.stack([source, target]), num_nodes)


def stochastic_block_edges(
    block_sizes: Sequence[int],
    intra_probability: float,
    inter_probability: float,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Edges of a stochastic block model; nodes ``0 .. sizes[0] - 1`` form block 0, and so on.

    Args:
        block_sizes: the size of each block (each >= 1).
        intra_probability: edge probability for two nodes of the same block.
        inter_probability: edge probability for two nodes of different blocks.
        generator: optional random generator; default torch's global RNG.

    Returns:
        ``[2, E]`` long undirected edges (both directions, no self loops).
    """
    sizes = [int(size) for size in block_sizes]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"stochastic_block_edges: expected one or more block sizes >= 1, got {list(block_sizes)}")
    for name, value in (("intra_probability", intra_probability), ("inter_probability", inter_probability)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"stochastic_block_edges: expected {name} in [0, 1], got {value}")
    num_nodes = sum(sizes)
    block = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    pairs = torch.triu_indices(num_nodes, num_nodes, offset=1)
    same = block[pairs[0]] == block[pairs[1]]
    probability = torch.where(same, torch.tensor(float(intra_probability)), torch.tensor(float(inter_probability)))
    keep = torch.rand(pairs.shape[1], generator=generator) < probability
    return _both_directions(pairs[:, keep], num_nodes)


# ----------------------------------------------------------------------------- the bank


def synthetic_graph_bank(
    num_graphs: int = 600,
    *,
    families: Sequence[str] = FAMILIES,
    min_nodes: int = 12,
    max_nodes: int = 40,
    feature_dim: int = 8,
    average_degree: float = 4.0,
    rewire_probability: float = 0.2,
    seed: int = 0,
) -> list[Data]:
    """A list of random graphs, as balanced as possible across ``families``, labelled by family.

    Per graph: ``n`` uniform in ``[min_nodes, max_nodes]``; ER with ``p = d / (n - 1)``; BA with
    ``m = max(1, round(d / 2))``; WS with ``k = max(2, 2 round(d / 2))`` and ``beta = rewire_probability``;
    SBM with ``b`` blocks (uniform in ``2 .. min(4, n // 6)``, sizes differing by at most one),
    80% of the expected degree ``d`` inside the block. Node ids are then randomly permuted.

    Args:
        num_graphs: the number of graphs.
        families: which generator families to use (from ``"er", "ba", "ws", "sbm"``); the label
            of a graph is its family's position in this sequence.
        min_nodes: the smallest node count (>= 6).
        max_nodes: the largest node count.
        feature_dim: node feature size ``F`` (column 0 is ``log(1 + degree)``, the rest noise).
        average_degree: the expected mean degree ``d`` shared by all families (>= 1).
        rewire_probability: the Watts–Strogatz ``beta``.
        seed: everything is drawn from one generator seeded with this; the global RNG is untouched.

    Returns:
        ``num_graphs`` ``Data`` objects with ``x [n, F]`` float32, ``edge_index [2, E]`` long,
        ``y [1]`` long (the family label) and ``num_nodes``.

    Raises:
        ValueError: on an unknown or repeated family, or sizes, degrees or dimensions out of range.
    """
    families = tuple(families)
    unknown = [family for family in families if family not in FAMILIES]
    if not families or unknown or len(set(families)) != len(families):
        raise ValueError(f"synthetic_graph_bank: expected distinct families from {FAMILIES}, got {families}")
    if int(num_graphs) < 1:
        raise ValueError(f"synthetic_graph_bank: expected num_graphs >= 1, got {num_graphs}")
    if not 6 <= int(min_nodes) <= int(max_nodes):
        raise ValueError(f"synthetic_graph_bank: expected 6 <= min_nodes <= max_nodes, got {min_nodes} and {max_nodes}")
    if int(feature_dim) < 1:
        raise ValueError(f"synthetic_graph_bank: expected feature_dim >= 1, got {feature_dim}")
    degree = float(average_degree)
    edges_per_node = max(1, round(degree / 2))
    lattice_neighbors = max(2, 2 * round(degree / 2))
    if not 1.0 <= degree < min_nodes - 1 or lattice_neighbors >= min_nodes:
        raise ValueError(f"synthetic_graph_bank: expected 1 <= average_degree < min_nodes - 1, got {average_degree}")

    generator = torch.Generator().manual_seed(int(seed))
    labels = (torch.arange(int(num_graphs)) % len(families))[torch.randperm(int(num_graphs), generator=generator)]
    graphs = []
    for label in labels.tolist():
        num_nodes = int(torch.randint(int(min_nodes), int(max_nodes) + 1, (1,), generator=generator))
        family = families[label]
        if family == "er":
            edges = erdos_renyi_edges(num_nodes, degree / (num_nodes - 1), generator=generator)
        elif family == "ba":
            edges = barabasi_albert_edges(num_nodes, edges_per_node, generator=generator)
        elif family == "ws":
            edges = watts_strogatz_edges(num_nodes, lattice_neighbors, rewire_probability, generator=generator)
        else:
            num_blocks = int(torch.randint(2, max(2, min(4, num_nodes // 6)) + 1, (1,), generator=generator))
            sizes = [num_nodes // num_blocks + (b < num_nodes % num_blocks) for b in range(num_blocks)]
            block_size = num_nodes / num_blocks
            intra = min(1.0, _SBM_INTRA_FRACTION * degree / (block_size - 1))
            inter = min(1.0, (1 - _SBM_INTRA_FRACTION) * degree / (num_nodes - block_size))
            edges = stochastic_block_edges(sizes, intra, inter, generator=generator)
        # a random relabelling: node order (BA hubs first, ring order, blocks) carries no signal
        relabel = torch.randperm(num_nodes, generator=generator)
        edges = relabel[edges]
        node_degree = torch.bincount(edges[0], minlength=num_nodes).float()
        x = torch.randn(num_nodes, int(feature_dim), generator=generator)
        x[:, 0] = torch.log1p(node_degree)
        graphs.append(Data(x=x, edge_index=edges, y=torch.tensor([label]), num_nodes=num_nodes))
    return graphs


class GraphSetDataset(Dataset):
    """A dataset of whole graphs whose batches are PyG ``Batch`` objects (disjoint unions).

    Args:
        graphs: the graphs; graph-level labels come from each graph's ``y`` (one integer) when every
            graph has one, otherwise the dataset is unlabelled. ``y`` is kept out of the batched
            inputs: labels travel in :attr:`Batch.labels` only.

    Raises:
        ValueError: when ``graphs`` is empty or holds something other than ``Data``, or a ``y`` is
            not a single integer.
    """

    def __init__(self, graphs: Sequence[Data]) -> None:
        graphs = list(graphs)
        if not graphs or not all(isinstance(graph, Data) for graph in graphs):
            kinds = sorted({type(graph).__name__ for graph in graphs})
            raise ValueError(
                f"GraphSetDataset: expected a non-empty list of torch_geometric Data, got {kinds or 'nothing'}"
            )
        self.graphs = graphs
        self.labels: torch.Tensor | None = None
        if all(getattr(graph, "y", None) is not None for graph in graphs):
            for position, graph in enumerate(graphs):
                y = graph.y
                if not isinstance(y, torch.Tensor) or y.numel() != 1 or y.is_floating_point():
                    raise ValueError(f"GraphSetDataset: expected graph {position}'s y to be one integer, got {y!r}")
            self.labels = torch.cat([graph.y.reshape(1).long() for graph in graphs])

    def __len__(self) -> int:
        return len(self.graphs)

    def _rows(self, indices: Sequence[int]) -> torch.Tensor:
        rows = torch.as_tensor(list(indices), dtype=torch.long).reshape(-1)
        rows = torch.where(rows < 0, rows + len(self), rows)
        if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= len(self)):
            raise IndexError(f"GraphSetDataset: indices out of range for {len(self)} graphs")
        return rows

    def __getitem__(self, index: int) -> Batch:
        """One graph as a :class:`Batch` (``inputs`` a ``Data``, scalar label and index)."""
        row = int(self._rows([index])[0])
        return Batch(
            inputs=self.graphs[row],
            labels=None if self.labels is None else self.labels[row],
            index=torch.tensor(row, dtype=torch.long),
        )

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        """Many graphs as one :class:`Batch`: ``inputs`` a PyG ``Batch`` of ``B`` graphs, ``labels``, ``index [B]``."""
        rows = self._rows(indices)
        inputs = GraphBatch.from_data_list([self.graphs[row] for row in rows.tolist()], exclude_keys=["y"])
        return Batch(inputs=inputs, labels=None if self.labels is None else self.labels[rows], index=rows)

    @property
    def num_classes(self) -> int:
        """The number of classes (``max(label) + 1``); 0 when unlabelled."""
        return 0 if self.labels is None else int(self.labels.max()) + 1

    @property
    def num_features(self) -> int:
        """The node feature size ``F`` of the first graph (0 without ``x``)."""
        x = self.graphs[0].x
        return 0 if x is None else int(x.shape[1])

    def subset(self, rows: torch.Tensor | Sequence[int]) -> "GraphSetDataset":
        """A new dataset with the given graphs (shared, not copied), in the given order."""
        return GraphSetDataset([self.graphs[row] for row in self._rows(rows).tolist()])

    def __repr__(self) -> str:
        labelled = f", {self.num_classes} classes" if self.labels is not None else ""
        return f"GraphSetDataset(n={len(self)}{labelled})"


def _check_nodes(name: str, num_nodes: int, smallest: int) -> None:
    if int(num_nodes) < smallest:
        raise ValueError(f"{name}: expected at least {smallest} nodes, got {num_nodes}")


def _keys(source: torch.Tensor, target: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """One key per unordered pair."""
    return torch.minimum(source, target) * num_nodes + torch.maximum(source, target)


def _both_directions(pairs: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """``[2, E]`` one direction per edge -> ``[2, 2E]`` both directions, sorted by (source, target)."""
    edges = torch.cat([pairs, pairs.flip(0)], dim=1)
    order = torch.argsort(edges[0] * num_nodes + edges[1])
    return edges[:, order].long()


__all__ = [
    "FAMILIES",
    "GraphSetDataset",
    "barabasi_albert_edges",
    "erdos_renyi_edges",
    "stochastic_block_edges",
    "synthetic_graph_bank",
    "watts_strogatz_edges",
]

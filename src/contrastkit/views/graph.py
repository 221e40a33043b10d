"""Graph augmentations (views) for graph contrastive learning, on PyG ``Data`` graphs.

A graph is a ``torch_geometric.data.Data`` with ``x [N, F]`` float node features,
``edge_index [2, E]`` long (message flow source -> target, row 0 = source) and
optionally ``edge_weight [E]``; an undirected graph stores both directions. Every
Data-level view returns a *new* ``Data`` (a shallow copy whose changed tensors are
new tensors, so the input is never modified) that carries every other attribute
(``y``, ``batch_size``, ``n_id``, masks, ...) over unchanged; edge-level attributes
(``edge_weight``, ``edge_attr``, ``e_id``, ...) follow the edges that are kept.

Node-removing views keep the node count and the node order: a removed node is
*isolated* (its edges go, its features become zero) and ``node_mask [N]`` (``True`` =
kept) says which nodes remain. So the seed rows of a node-level batch (the first
``batch_size`` nodes of a neighbour-sampled subgraph) stay aligned across views, and a
graph-level readout can skip the removed nodes.

What is here, with the paper each follows:

* :func:`drop_edges` - edge removal (GRACE, Zhu et al. 2020; BGRL, Thakoor et al. 2022;
  GraphCL, You et al. 2020).
* :func:`mask_features` - GRACE / BGRL feature masking (whole columns), or per entry.
* :func:`drop_nodes` - GraphCL's node dropping.
* :func:`random_walk_subgraph` - GraphCL's subgraph view, grown by random walks.
* :func:`ppr_diffusion` - MVGRL's personalised-PageRank diffusion view (Hassani &
  Khasahmadi, ICML 2020), by sparse power iteration with top-k sparsification.
* :func:`perturb_edges` - D-SLA's edge perturbation (Kim et al., NeurIPS 2022): remove a
  fraction of edges, add as many non-edges, report the edits (the edit distance).
* :class:`GraphAugment`, :class:`PPRDiffusion` - ``nn.Module`` views;
  :func:`build_graph_views` builds a named preset's pair (``grace``, ``bgrl``,
  ``graphcl``, ``ppr``, ``none``).

Randomness comes from torch's global RNG for the data's device, or from an optional
``torch.Generator`` (drawn on the generator's device and moved to the data's): the same
seed gives the same views on the same device.
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import torch
from torch import nn
from torch_geometric.data import Data
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import is_undirected
from torch_geometric.utils import subgraph as pyg_subgraph

from contrastkit.utils.checks import (
    check_edge_index,
    unknown_name_error,
)
from contrastkit.utils.checks import (
    check_int as _check_int,
)
from contrastkit.utils.checks import (
    fail as _fail,
)
from contrastkit.utils.graph_index import sample_non_edges
from contrastkit.utils.registry import Registry

__all__ = [
    "GRAPH_VIEW_PRESETS",
    "FEATURE_MASK_MODES",
    "GraphAugment",
    "PPRDiffusion",
    "build_graph_views",
    "drop_edges",
    "drop_nodes",
    "graph_view_preset_names",
    "mask_features",
    "perturb_edges",
    "ppr_diffusion",
    "random_walk_subgraph",
]

FEATURE_MASK_MODES = ("column", "entry")

# Edge-level attributes that always follow the kept edges (PyG's ``is_edge_attr`` finds the
# others by shape; these names are listed so a graph with as many nodes as edges is handled).
EDGE_KEYS = ("edge_weight", "edge_attr", "edge_type", "e_id")


# -- checks and random numbers ----------------------------------------------------------


def _check_probability(owner: str, name: str, value: float, *, allow_one: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(owner, f"a number {name}", value)
    if not (0.0 <= value <= 1.0 if allow_one else 0.0 <= value < 1.0):
        _fail(owner, f"{name} in [0, 1{']' if allow_one else ')'}", value)
    return float(value)


def _check_data(owner: str, data: object, *, needs_x: bool = False) -> int:
    """Validate a homogeneous graph and return its node count."""
    if not isinstance(data, Data):
        raise ValueError(f"{owner}: expected a torch_geometric.data.Data graph, got {type(data).__name__}")
    if "edge_index" not in data or data.edge_index is None:
        raise ValueError(f"{owner}: expected a graph with edge_index [2, E], got none")
    x = data.x if "x" in data else None
    # Only masking needs float features; node removal also zeroes integer (categorical) ones.
    if x is not None and (not isinstance(x, torch.Tensor) or x.dim() != 2 or (needs_x and not x.is_floating_point())):
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        want = "a float tensor [N, F]" if needs_x else "a tensor [N, F]"
        raise ValueError(f"{owner}: expected node features x as {want}, got {got}")
    if needs_x and x is None:
        raise ValueError(f"{owner}: expected node features x [N, F], got a graph without x")
    num_nodes = data.num_nodes
    if num_nodes is None:
        raise ValueError(f"{owner}: cannot tell the node count: expected x [N, F] or num_nodes on the graph")
    check_edge_index(f"{owner}: edge_index", data.edge_index, int(num_nodes))
    weight = data.edge_weight if "edge_weight" in data else None
    if weight is not None and (not isinstance(weight, torch.Tensor) or weight.shape != (data.edge_index.shape[1],)):
        got = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"{owner}: expected edge_weight of shape [E] = [{data.edge_index.shape[1]}], got {got}")
    return int(num_nodes)


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Uniform [0, 1) float32 of ``shape`` on ``device``."""
    if generator is None:
        return torch.rand(shape, device=device)
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def _below(high: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Per-entry integers uniform in ``[0, high)`` for an int64 tensor ``high >= 1``."""
    # float64 keeps the draw uniform for ``high`` beyond float32's 2**24 integers.
    draw = _uniform(tuple(high.shape), generator, high.device).double()
    return torch.minimum((draw * high).long(), high - 1).clamp(min=0)


def _check_generator(owner: str, generator: object) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"{owner}: expected generator to be a torch.Generator or None, got {type(generator).__name__}")
    return generator


# -- Data bookkeeping --------------------------------------------------------------------


def _edge_keys(data: Data) -> list[str]:
    """The edge-level attributes of ``data`` (other than ``edge_index``) that follow kept edges."""
    keys = []
    for key in data.keys():
        if key == "edge_index" or not isinstance(data[key], torch.Tensor):
            continue
        if key in EDGE_KEYS or data.is_edge_attr(key):
            keys.append(key)
    return keys


def _with_edges(data: Data, edge_mask: torch.Tensor) -> Data:
    """A shallow copy of ``data`` keeping the edges where ``edge_mask`` (and their attributes)."""
    keys = _edge_keys(data)
    out = copy.copy(data)
    out.edge_index = data.edge_index[:, edge_mask]
    for key in keys:
        out[key] = data[key][edge_mask]
    return out


def _isolate(data: Data, node_mask: torch.Tensor) -> Data:
    """Remove the nodes where ``node_mask`` is False, keeping N: drop their edges, zero their features."""
    if "node_mask" in data and isinstance(data.node_mask, torch.Tensor):
        # A node removed by an earlier view stays removed.
        node_mask = node_mask & data.node_mask.to(node_mask.device, torch.bool)
    _, _, edge_mask = pyg_subgraph(
        node_mask, data.edge_index, relabel_nodes=False, num_nodes=node_mask.numel(), return_edge_mask=True
    )
    out = _with_edges(data, edge_mask)
    if "x" in data and data.x is not None:
        out.x = data.x.masked_fill(~node_mask.unsqueeze(1), 0)
    out.node_mask = node_mask
    return out


def _graph_ids(data: Data, num_nodes: int, device: torch.device) -> tuple[torch.Tensor, int]:
    """``batch [N]`` (the graph of each node; all zeros for a single graph) and the graph count."""
    batch = data.batch if "batch" in data else None
    if isinstance(batch, torch.Tensor) and batch.shape == (num_nodes,) and num_nodes > 0:
        batch = batch.to(device=device, dtype=torch.long)
        return batch, int(batch.max()) + 1
    return torch.zeros(num_nodes, dtype=torch.long, device=device), 1


def _rank_within_groups(groups: torch.Tensor, scores: torch.Tensor, num_groups: int) -> torch.Tensor:
    """Rank of each entry among the entries of its group, by ascending ``scores`` (0 = smallest)."""
    order = torch.argsort(scores, stable=True)
    order = order[torch.argsort(groups[order], stable=True)]
    counts = torch.bincount(groups, minlength=num_groups)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel(), device=order.device) - starts[groups[order]]
    return rank


# -- edges and features --------------------------------------------------------------------


def drop_edges(
    edge_index: torch.Tensor,
    p: float,
    *,
    force_undirected: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Remove each edge independently with probability ``p`` (GRACE / BGRL / GraphCL).

    GRACE (Zhu et al., 2020, "Deep Graph Contrastive Representation Learning") and
    BGRL (Thakoor et al., ICLR 2022) drop edges with PyG's ``dropout_adj`` at rates
    ``p_e`` per view (GRACE on Cora: 0.2 and 0.4); this is the same Bernoulli mask, with
    an optional generator and the kept-edge mask as a boolean ``[E]`` also when
    ``force_undirected`` (PyG's ``dropout_edge`` then returns edge ids of a rebuilt edge
    list instead).

    Args:
        edge_index: ``[2, E]`` long.
        p: drop probability in ``[0, 1)``.
        force_undirected: decide once per node pair ``{u, v}``: both stored directions
            are kept or dropped together (an undirected input stays undirected).
        generator: optional ``torch.Generator``; by default torch's global RNG.

    Returns:
        ``(edge_index [2, E'], kept_mask [E] bool)``: the kept edges in their input
        order, ``edge_index[:, kept_mask]``; index ``edge_weight`` / ``edge_attr`` with
        ``kept_mask``.

    Raises:
        ValueError: wrong shape or dtype, or ``p`` outside ``[0, 1)``.

    Example:
        >>> kept_edges, kept = drop_edges(data.edge_index, 0.2)
        >>> kept_weight = data.edge_weight[kept]
    """
    owner = "drop_edges"
    check_edge_index(f"{owner}: edge_index", edge_index, None)
    p = _check_probability(owner, "p", p)
    _check_generator(owner, generator)
    num_edges = edge_index.shape[1]
    if force_undirected and num_edges:
        low, high = edge_index.min(dim=0).values, edge_index.max(dim=0).values
        # one draw per unordered pair: both directions share their canonical key
        keys, pair = torch.unique(low * (int(high.max()) + 1) + high, return_inverse=True)
        kept = _uniform((keys.numel(),), generator, edge_index.device)[pair] >= p
    else:
        kept = _uniform((num_edges,), generator, edge_index.device) >= p
    return edge_index[:, kept], kept


def mask_features(
    x: torch.Tensor, p: float, *, mode: str = "column", generator: torch.Generator | None = None
) -> torch.Tensor:
    """Zero node features at random (GRACE / BGRL feature masking).

    GRACE (Zhu et al., 2020) and BGRL (Thakoor et al., ICLR 2022) draw one Bernoulli
    ``p`` per feature *column* and zero that column for every node (``mode="column"``,
    their ``drop_feature``; GRACE on Cora: 0.3 and 0.4). ``mode="entry"`` zeroes each
    entry independently (PyG's ``mask_feature(mode="all")``).

    Args:
        x: node features ``[N, F]`` float.
        p: masking probability in ``[0, 1]``.
        mode: ``"column"`` (default) or ``"entry"``.
        generator: optional ``torch.Generator``; by default torch's global RNG.

    Returns:
        The masked features ``[N, F]`` (a new tensor; ``x`` is untouched).

    Raises:
        ValueError: wrong shape or dtype, ``p`` outside ``[0, 1]``, or unknown mode.

    Example:
        >>> x_view = mask_features(data.x, 0.3)  # ~30% of the columns are zero
    """
    owner = "mask_features"
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or not x.is_floating_point():
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{owner}: expected float node features [N, F], got {got}")
    p = _check_probability(owner, "p", p, allow_one=True)
    _check_generator(owner, generator)
    if mode == "column":
        mask = (_uniform((x.shape[1],), generator, x.device) < p).unsqueeze(0)
    elif mode == "entry":
        mask = _uniform(tuple(x.shape), generator, x.device) < p
    else:
        raise unknown_name_error("feature mask mode", mode, FEATURE_MASK_MODES)
    return x.masked_fill(mask, 0)


# -- node removal ------------------------------------------------------------------------


def _node_drop_mask(data: Data, num_nodes: int, p: float, generator: torch.Generator | None) -> torch.Tensor:
    device = data.edge_index.device
    batch, num_graphs = _graph_ids(data, num_nodes, device)
    counts = torch.bincount(batch, minlength=num_graphs)
    to_drop = torch.floor(counts.double() * p).long()  # GraphCL: int(node_num * aug_ratio)
    rank = _rank_within_groups(batch, _uniform((num_nodes,), generator, device), num_graphs)
    return rank >= to_drop[batch]


def drop_nodes(data: Data, p: float = 0.2, *, generator: torch.Generator | None = None) -> Data:
    """GraphCL's node dropping, keeping the node count: removed nodes are isolated.

    You et al., NeurIPS 2020, "Graph Contrastive Learning with Augmentations": drop
    ``int(n * aug_ratio)`` nodes of each graph uniformly at random (``aug_ratio = 0.2``),
    with their edges. A batch of graphs (``data.batch``) drops that many nodes per graph.
    Instead of removing the rows (GraphCL relabels the nodes), a dropped node loses all
    its edges and its features become zero, so node ``i`` of the view is node ``i`` of the
    input and ``node_mask`` says who remains.

    Args:
        data: a graph (``x [N, F]``, ``edge_index [2, E]``, optional ``batch [N]``).
        p: the fraction of nodes to drop, in ``[0, 1)``.
        generator: optional ``torch.Generator``; by default torch's global RNG.

    Returns:
        A new ``Data`` with the same ``N``: ``edge_index`` (and edge attributes) without
        the edges touching dropped nodes, ``x`` zero on dropped rows, and
        ``node_mask [N]`` bool (``True`` = kept; combined with an existing ``node_mask``).

    Raises:
        ValueError: not a graph, or ``p`` outside ``[0, 1)``.

    Example:
        >>> view = drop_nodes(data, 0.2)
        >>> int((~view.node_mask).sum()) == int(0.2 * data.num_nodes)
        True
    """
    owner = "drop_nodes"
    num_nodes = _check_data(owner, data)
    p = _check_probability(owner, "p", p)
    _check_generator(owner, generator)
    return _isolate(data, _node_drop_mask(data, num_nodes, p, generator))


def _random_walk_mask(
    data: Data,
    num_nodes: int,
    fraction: float,
    walk_length: int | None,
    num_walkers: int | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    device = data.edge_index.device
    batch, num_graphs = _graph_ids(data, num_nodes, device)
    counts = torch.bincount(batch, minlength=num_graphs)
    target = torch.minimum(torch.floor(counts.double() * fraction).long().clamp(min=1), counts)
    visited = torch.zeros(num_nodes, dtype=torch.bool, device=device)
    if num_nodes == 0:
        return visited
    if data.edge_index.shape[1] == 0:  # no edges: each graph keeps its start node only
        walk_length = 0
    # Out-neighbours in CSR form (sorted by source), to step every walker at once.
    source, destination = data.edge_index
    order = torch.argsort(source, stable=True)
    neighbours = destination[order]
    degree = torch.bincount(source, minlength=num_nodes)
    offsets = torch.cumsum(degree, 0) - degree
    # One start node per graph, uniform among its nodes.
    start_rank = _rank_within_groups(batch, _uniform((num_nodes,), generator, device), num_graphs)
    starts = torch.nonzero(start_rank == 0).flatten()
    start_graph = batch[starts]
    visited[starts] = True
    size = torch.zeros(num_graphs, dtype=torch.long, device=device)
    size[start_graph] = 1
    largest = int(target.max())
    walkers = num_walkers if num_walkers is not None else max(1, math.ceil(math.sqrt(largest)))
    position = starts.repeat_interleave(walkers)
    walker_graph = start_graph.repeat_interleave(walkers)
    # Without a length limit, stop when no walker has found a new node for a while (the
    # start's component may hold fewer nodes than the target); the hard cap is a backstop.
    patience = 64
    limit = walk_length if walk_length is not None else 16 * largest + patience
    idle = 0
    for _ in range(limit):
        done = size >= target
        if bool(done.all()):
            break
        active = ~done[walker_graph]
        walker_degree = degree[position]
        step = _below(walker_degree.clamp(min=1), generator)
        moved = neighbours[(offsets[position] + step).clamp(max=max(neighbours.numel() - 1, 0))]
        position = torch.where((walker_degree > 0) & active, moved, position)
        fresh = torch.unique(position[active & ~visited[position]])
        # Keep at most the nodes each graph still needs (random ties): every kept node was
        # reached from a node kept earlier, so the kept set stays connected. A walker left on
        # a node refused here belongs to a graph that is now done and never moves again.
        fresh_graph = batch[fresh]
        fresh_rank = _rank_within_groups(fresh_graph, _uniform((fresh.numel(),), generator, device), num_graphs)
        accepted = fresh[fresh_rank < (target - size)[fresh_graph]]
        if accepted.numel() == 0:
            idle += 1
            if walk_length is None and idle >= patience:
                break
            continue
        idle = 0
        visited[accepted] = True
        size += torch.bincount(batch[accepted], minlength=num_graphs)
    return visited


def random_walk_subgraph(
    data: Data,
    fraction: float = 0.8,
    *,
    walk_length: int | None = None,
    num_walkers: int | None = None,
    generator: torch.Generator | None = None,
) -> Data:
    """GraphCL's subgraph view: keep a connected set of nodes grown by random walks.

    You et al., NeurIPS 2020 ("Subgraph: samples a subgraph from G using random walk").
    GraphCL's code grows the set from a random start node by adding random neighbours
    of the set until it holds ``(1 - aug_ratio)`` of the nodes (``aug_ratio = 0.2``: 80%
    kept; the first unsupervised-TU release kept 20%). Here ``num_walkers`` random
    walkers per graph leave a random start node together, all stepping at once
    (vectorised over walkers and over the graphs of a batch); each newly visited node
    joins until the graph holds ``floor(fraction * n)`` nodes (at least one). Every kept
    node is reached from a kept node, so the kept set is connected (along edge
    directions). Walkers follow out-edges (``edge_index[0] -> edge_index[1]``); one at a
    node without out-edges stays there.

    The other nodes are isolated as in :func:`drop_nodes` (N and node order stay).

    Args:
        data: a graph (optional ``batch [N]`` for a batch of graphs: one walk per graph).
        fraction: the fraction of each graph's nodes to keep, in ``(0, 1]``.
        walk_length: at most this many steps per walker. By default the walk ends when
            every graph holds its share, or when no walker found a new node in 64 steps
            (a start component smaller than the share: fewer nodes are kept).
        num_walkers: walkers per graph; default ``ceil(sqrt(target))`` for the largest
            graph's target (one walker traces a path; many grow a ball).
        generator: optional ``torch.Generator``; by default torch's global RNG.

    Returns:
        A new ``Data`` with the same ``N``, the edges among kept nodes only, ``x`` zero
        on removed rows and ``node_mask [N]`` bool (``True`` = kept).

    Raises:
        ValueError: not a graph, ``fraction`` outside ``(0, 1]`` or bad walk options.

    Example:
        >>> view = random_walk_subgraph(data, 0.8)
        >>> view.node_mask.sum() <= int(0.8 * data.num_nodes)
        tensor(True)
    """
    owner = "random_walk_subgraph"
    num_nodes = _check_data(owner, data)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction <= 1.0:
        _fail(owner, "fraction (of nodes kept) in (0, 1]", fraction)
    if walk_length is not None:
        walk_length = _check_int(owner, "walk_length", walk_length, 0)
    if num_walkers is not None:
        num_walkers = _check_int(owner, "num_walkers", num_walkers, 1)
    _check_generator(owner, generator)
    mask = _random_walk_mask(data, num_nodes, float(fraction), walk_length, num_walkers, generator)
    return _isolate(data, mask)


# -- MVGRL's diffusion view ------------------------------------------------------------------


def _top_k_per_row(matrix: torch.Tensor, k: int) -> torch.Tensor:
    """The CSR ``matrix`` keeping the ``k`` largest entries of each row.

    Rows longer than ``k`` are padded into dense blocks by power-of-two length (at most
    twice their entries) and cut with ``topk``: linear in the entries, no global sort.
    """
    crow, col, values = matrix.crow_indices(), matrix.col_indices(), matrix.values()
    num_rows = crow.numel() - 1
    lengths = crow.diff()
    rows = torch.repeat_interleave(torch.arange(num_rows, device=crow.device), lengths)
    keep = (lengths <= k)[rows]
    long_rows = torch.nonzero(lengths > k).flatten()
    if long_rows.numel():
        widths = torch.ceil(torch.log2(lengths[long_rows].double())).long()
        for width in torch.unique(widths).tolist():
            chosen = long_rows[widths == width]
            span = torch.arange(1 << width, device=crow.device)
            position = crow[chosen].unsqueeze(1) + span
            inside = span < lengths[chosen].unsqueeze(1)
            block = values[position.clamp(max=values.numel() - 1)].masked_fill(~inside, -math.inf)
            keep[position.gather(1, block.topk(k, dim=1).indices).flatten()] = True
    counts = torch.bincount(rows[keep], minlength=num_rows)
    crow = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
    return torch.sparse_csr_tensor(crow, col[keep], values[keep], matrix.shape, check_invariants=False)


def ppr_diffusion(
    data: Data,
    alpha: float = 0.2,
    *,
    top_k: int | None = 32,
    iterations: int = 10,
    add_self_loops: bool = True,
) -> Data:
    """MVGRL's personalised-PageRank diffusion view, by sparse power iteration.

    Hassani & Khasahmadi, ICML 2020, "Contrastive Multi-View Representation Learning on
    Graphs": the second view is the PPR diffusion ``S = α (I - (1 - α) T)^{-1}`` of
    ``T = D^{-1/2} (A + I) D^{-1/2}`` (``compute_ppr`` in kavehhassani/mvgrl: ``α = 0.2``,
    self-loops added). MVGRL inverts the dense ``N x N`` matrix; here the series
    ``α Σ_t ((1 - α) T)^t`` is summed by ``iterations`` sparse steps
    ``S ← α I + (1 - α) T S`` from ``S = α I``; the terms left out weigh
    ``(1 - α)^(iterations + 1)`` in all (10 steps at ``α = 0.2``: 8.6%). To keep memory
    at ``O(N · top_k)``, each row of ``S`` keeps its ``top_k`` largest entries after
    every step (top-k sparsification as in Klicpera et al.'s GDC, NeurIPS 2019), which
    makes the kept entries slight under-estimates; ``top_k=None`` keeps everything
    (the exact truncated series, dense fill: small graphs only). A graph of 63k nodes
    and 300k edges takes seconds per step on one CPU core.

    ``T`` comes from PyG's ``gcn_norm`` (self-loops added where missing, degrees at the
    target node, ``edge_weight`` used when present). Entry ``S[i, j]`` becomes the edge
    ``j -> i`` with weight ``S[i, j]``, so node ``i`` aggregates from its ``top_k``
    strongest diffusion neighbours (itself included).

    Args:
        data: a graph.
        alpha: teleport (restart) probability ``α`` in ``(0, 1)`` (MVGRL: 0.2).
        top_k: entries kept per node (row), or ``None`` for no sparsification.
        iterations: power-iteration steps (>= 0).
        add_self_loops: use ``A + I`` as MVGRL does.

    Returns:
        A new ``Data`` with the diffusion graph as ``edge_index`` and ``edge_weight``
        (sorted by target node); node attributes are carried over; the input's other
        edge attributes (``edge_attr``, ``e_id``, ...) are dropped, as they describe edges
        that are no longer there.

    Raises:
        ValueError: not a graph, ``alpha`` outside ``(0, 1)``, bad ``top_k`` or
            ``iterations``.

    Example:
        >>> diffused = ppr_diffusion(data, 0.2, top_k=32)
        >>> gcn(diffused.x, diffused.edge_index, diffused.edge_weight)
    """
    owner = "ppr_diffusion"
    num_nodes = _check_data(owner, data)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < alpha < 1.0:
        _fail(owner, "alpha in (0, 1)", alpha)
    if top_k is not None:
        top_k = _check_int(owner, "top_k", top_k, 1)
    iterations = _check_int(owner, "iterations", iterations, 0)
    device = data.edge_index.device
    weight = data.edge_weight if "edge_weight" in data else None
    dtype = weight.dtype if weight is not None and weight.is_floating_point() else torch.float32
    edge_index, norm = gcn_norm(
        data.edge_index, weight, num_nodes, add_self_loops=add_self_loops, flow="source_to_target", dtype=dtype
    )
    size = (num_nodes, num_nodes)
    nodes = torch.arange(num_nodes, device=device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        # transition[target, source] = (1 - α) T: one step of message passing as a matrix product.
        transition = (
            torch.sparse_coo_tensor(edge_index.flip(0), (1 - alpha) * norm, size, check_invariants=False)
            .coalesce()
            .to_sparse_csr()
        )
        restart = torch.sparse_coo_tensor(
            torch.stack([nodes, nodes]), torch.full((num_nodes,), alpha, dtype=dtype, device=device), size,
            check_invariants=False,
        ).coalesce().to_sparse_csr()  # fmt: skip
        state = restart
        for _ in range(iterations):
            # CSR @ CSR sums duplicates with a per-row accumulator (no sort), on CPU and GPU.
            state = transition @ state + restart
            if top_k is not None:
                state = _top_k_per_row(state, top_k)
        crow, col, values = state.crow_indices(), state.col_indices(), state.values()
    rows = torch.repeat_interleave(nodes, crow.diff())
    out = copy.copy(data)
    for key in _edge_keys(data):
        del out[key]
    out.edge_index = torch.stack([col, rows])  # row i of S (target) aggregates from column j (source)
    out.edge_weight = values
    return out


# -- D-SLA's perturbation ------------------------------------------------------------------


def _unpack(keys: torch.Tensor, num_nodes: int) -> torch.Tensor:
    return torch.stack([keys // num_nodes, keys % num_nodes])


def perturb_edges(
    edge_index: torch.Tensor,
    num_nodes: int,
    strength: float = 0.2,
    *,
    undirected: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """D-SLA's edge perturbation: remove a fraction of edges, add as many random non-edges.

    Kim et al., NeurIPS 2022, "Graph Self-supervised Learning with Accurate Discrepancy
    Learning": each perturbed graph removes ``int(strength * E)`` edges chosen uniformly
    and adds the same number of node pairs that are not edges of the input (no
    self-loops, no duplicates), with ``strength = 0.2`` by default. The number of edited
    edges is the graph edit distance D-SLA's loss scales embedding distances by.

    With ``undirected=True`` the input must store both directions of every edge; the
    edits then act on node pairs ``{u, v}`` (``int(strength * pairs)`` of them; a pair is
    removed or added in both directions, and self-loops are never removed), so the output
    stays undirected.

    Args:
        edge_index: ``[2, E]`` long, without duplicate edges.
        num_nodes: ``N`` (node ids are in ``[0, N)``).
        strength: the fraction of edges (pairs) to edit, in ``[0, 1]``.
        undirected: edit pairs symmetrically (see above).
        generator: optional ``torch.Generator``; by default torch's global RNG.

    Returns:
        ``(edge_index [2, E], edited [2, K])``: the kept edges in input order followed by
        the added ones (same ``E``), and the removed edges followed by the added ones
        (both stored directions in undirected mode), i.e. the symmetric difference of the
        input and output edge sets. The edit distance is ``K`` (``K // 2`` pairs when
        undirected).

    Raises:
        ValueError: wrong shapes, duplicate edges, an asymmetric input with
            ``undirected=True``, ``strength`` outside ``[0, 1]``, or too few non-edges.

    Example:
        >>> perturbed, edited = perturb_edges(data.edge_index, data.num_nodes, 0.2)
        >>> edit_distance = edited.shape[1]
    """
    owner = "perturb_edges"
    num_nodes = _check_int(owner, "num_nodes", num_nodes, 1)
    check_edge_index(f"{owner}: edge_index", edge_index, num_nodes)
    strength = _check_probability(owner, "strength", strength, allow_one=True)
    _check_generator(owner, generator)
    device = edge_index.device
    source, target = edge_index
    keys = source * num_nodes + target
    existing = torch.unique(keys)
    if existing.numel() != keys.numel():
        raise ValueError(f"{owner}: expected no duplicate edges, got {keys.numel() - existing.numel()} duplicates")
    if undirected:
        if not is_undirected(edge_index, num_nodes=num_nodes):
            raise ValueError(
                f"{owner}: undirected=True expects both directions of every edge stored, got a directed graph"
            )
        low, high = torch.minimum(source, target), torch.maximum(source, target)
        pair_keys = low * num_nodes + high
        candidates = torch.unique(pair_keys[low != high])  # removable pairs, self-loops excluded
        count = int(candidates.numel() * strength)
        removed_pairs = candidates[torch.argsort(_uniform((candidates.numel(),), generator, device))[:count]]
        removed = torch.isin(pair_keys, removed_pairs) & (low != high)
        added = _unpack(sample_non_edges(torch.unique(pair_keys), count, num_nodes, undirected=True,
                                         generator=generator, owner=owner), num_nodes)
        added = torch.stack([added, added.flip(0)], dim=2).reshape(2, -1)  # (u, v), (v, u), ...
    else:
        count = int(keys.numel() * strength)
        removed = torch.zeros(keys.numel(), dtype=torch.bool, device=device)
        removed[torch.argsort(_uniform((keys.numel(),), generator, device))[:count]] = True
        added = _unpack(sample_non_edges(existing, count, num_nodes, undirected=False, generator=generator, owner=owner),
                        num_nodes)
    perturbed = torch.cat([edge_index[:, ~removed], added], dim=1)
    edited = torch.cat([edge_index[:, removed], added], dim=1)
    return perturbed, edited


# -- modules and presets -------------------------------------------------------------------


class GraphAugment(nn.Module):
    """A graph view: node dropping / subgraph, then edge dropping, then feature masking.

    One module covers the random views of GRACE (edge drop + column feature mask; Cora
    defaults 0.2/0.3 and 0.4/0.4 for the two views), BGRL (the same two augmentations,
    Amazon Computers: 0.5/0.2 and 0.4/0.1) and GraphCL (node dropping or subgraph at
    ``aug_ratio`` 0.2). Every rate defaults to 0, where that augmentation is skipped;
    with all rates 0 the view is the identity (a shallow copy).

    Args:
        edge_drop: probability of removing each edge (:func:`drop_edges`), in ``[0, 1)``.
        feature_mask: feature masking probability (:func:`mask_features`), in ``[0, 1]``.
        node_drop: fraction of nodes dropped per graph (:func:`drop_nodes`), in ``[0, 1)``.
        subgraph: fraction of nodes *removed* by the random-walk subgraph
            (:func:`random_walk_subgraph` keeps ``1 - subgraph``), in ``[0, 1)``.
        feature_mask_mode: ``"column"`` (GRACE / BGRL) or ``"entry"``.
        force_undirected: drop both directions of an edge together.
        pick_one: when both ``node_drop`` and ``subgraph`` are set, apply one of them per
            graph, drawn uniformly (GraphCL's ``random2``), instead of both.
        generator: optional ``torch.Generator``; by default torch's global RNG.

    Example:
        >>> view = GraphAugment(edge_drop=0.2, feature_mask=0.3)
        >>> augmented = view(data)  # data itself is untouched
    """

    def __init__(
        self,
        edge_drop: float = 0.0,
        feature_mask: float = 0.0,
        node_drop: float = 0.0,
        subgraph: float = 0.0,
        feature_mask_mode: str = "column",
        *,
        force_undirected: bool = False,
        pick_one: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        owner = "GraphAugment"
        self.edge_drop = _check_probability(owner, "edge_drop", edge_drop)
        self.feature_mask = _check_probability(owner, "feature_mask", feature_mask, allow_one=True)
        self.node_drop = _check_probability(owner, "node_drop", node_drop)
        self.subgraph = _check_probability(owner, "subgraph", subgraph)
        if feature_mask_mode not in FEATURE_MASK_MODES:
            raise unknown_name_error("feature mask mode", feature_mask_mode, FEATURE_MASK_MODES)
        self.feature_mask_mode = feature_mask_mode
        self.force_undirected = bool(force_undirected)
        self.pick_one = bool(pick_one)
        self.generator = _check_generator(owner, generator)

    def extra_repr(self) -> str:
        return (
            f"edge_drop={self.edge_drop}, feature_mask={self.feature_mask}, node_drop={self.node_drop}, "
            f"subgraph={self.subgraph}, feature_mask_mode={self.feature_mask_mode!r}, pick_one={self.pick_one}"
        )

    def forward(self, data: Data) -> Data:
        """Return a new augmented ``Data`` (``data`` itself is not modified)."""
        owner = "GraphAugment"
        num_nodes = _check_data(owner, data, needs_x=self.feature_mask > 0)
        generator = self.generator
        out = copy.copy(data)
        node_mask = None
        if self.node_drop > 0:
            node_mask = _node_drop_mask(data, num_nodes, self.node_drop, generator)
        if self.subgraph > 0:
            walk_mask = _random_walk_mask(data, num_nodes, 1.0 - self.subgraph, None, None, generator)
            if node_mask is None:
                node_mask = walk_mask
            elif self.pick_one:
                batch, num_graphs = _graph_ids(data, num_nodes, data.edge_index.device)
                use_walk = _uniform((num_graphs,), generator, batch.device) < 0.5
                node_mask = torch.where(use_walk[batch], walk_mask, node_mask)
            else:
                node_mask = node_mask & walk_mask
        if node_mask is not None:
            out = _isolate(out, node_mask)
        if self.edge_drop > 0:
            _, kept = drop_edges(out.edge_index, self.edge_drop, force_undirected=self.force_undirected,
                                 generator=generator)  # fmt: skip
            out = _with_edges(out, kept)
        if self.feature_mask > 0:
            out.x = mask_features(out.x, self.feature_mask, mode=self.feature_mask_mode, generator=generator)
        return out


class PPRDiffusion(nn.Module):
    """MVGRL's diffusion view as a module: :func:`ppr_diffusion` of the input graph.

    Hassani & Khasahmadi, ICML 2020 (``α = 0.2``). Deterministic; on a fixed large graph
    compute it once with :func:`ppr_diffusion` rather than every step.

    Args:
        alpha: teleport probability (MVGRL: 0.2).
        top_k: diffusion neighbours kept per node (``None``: all).
        iterations: power-iteration steps.
        add_self_loops: use ``A + I`` (MVGRL).
    """

    def __init__(
        self, alpha: float = 0.2, top_k: int | None = 32, iterations: int = 10, add_self_loops: bool = True
    ) -> None:
        super().__init__()
        owner = "PPRDiffusion"
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < alpha < 1.0:
            _fail(owner, "alpha in (0, 1)", alpha)
        if top_k is not None:
            _check_int(owner, "top_k", top_k, 1)
        _check_int(owner, "iterations", iterations, 0)
        self.alpha, self.top_k, self.iterations = float(alpha), top_k, iterations
        self.add_self_loops = bool(add_self_loops)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, top_k={self.top_k}, iterations={self.iterations}"

    def forward(self, data: Data) -> Data:
        return ppr_diffusion(
            data, self.alpha, top_k=self.top_k, iterations=self.iterations, add_self_loops=self.add_self_loops
        )


# Per preset: the GraphAugment options of view a and view b ("ppr": view b is PPRDiffusion).
GRAPH_VIEW_PRESETS: Registry[tuple[dict[str, Any], dict[str, Any]]] = Registry("graph view preset", {
    # GRACE, Zhu et al. 2020, config.yaml (Cora): drop_edge_rate 0.2 / 0.4, drop_feature_rate 0.3 / 0.4.
    "grace": ({"edge_drop": 0.2, "feature_mask": 0.3}, {"edge_drop": 0.4, "feature_mask": 0.4}),
    # BGRL, Thakoor et al. 2022, config/amazon-computers.cfg: drop_edge_p 0.5 / 0.4, drop_feat_p 0.2 / 0.1.
    "bgrl": ({"edge_drop": 0.5, "feature_mask": 0.2}, {"edge_drop": 0.4, "feature_mask": 0.1}),
    # GraphCL, You et al. 2020: per graph, node dropping or subgraph (random2), aug_ratio 0.2.
    "graphcl": (
        {"node_drop": 0.2, "subgraph": 0.2, "pick_one": True},
        {"node_drop": 0.2, "subgraph": 0.2, "pick_one": True},
    ),
    # MVGRL, Hassani & Khasahmadi 2020: the graph itself against its PPR diffusion (alpha 0.2).
    "ppr": ({}, {"alpha": 0.2, "top_k": 32, "iterations": 10}),
    "none": ({}, {}),
})

_AUGMENT_OPTIONS = ("edge_drop", "feature_mask", "node_drop", "subgraph", "feature_mask_mode", "force_undirected",
                    "pick_one")  # fmt: skip
_PPR_OPTIONS = ("alpha", "top_k", "iterations", "add_self_loops")


def graph_view_preset_names() -> list[str]:
    """The names :func:`build_graph_views` accepts."""
    return GRAPH_VIEW_PRESETS.names()


def build_graph_views(preset: str, **overrides: Any) -> tuple[nn.Module, nn.Module]:
    """Build the two graph views of a named preset.

    Presets (paper, defaults):

    * ``"grace"`` - GRACE (Zhu et al., 2020), Cora config: view a drops 20% of edges and
      30% of feature columns, view b 40% and 40%.
    * ``"bgrl"`` - BGRL (Thakoor et al., ICLR 2022), Amazon Computers config: view a
      drops 50% of edges and 20% of feature columns, view b 40% and 10% (other data sets:
      WikiCS 0.2/0.2 and 0.3/0.1; Amazon Photos 0.4/0.1 and 0.1/0.2).
    * ``"graphcl"`` - GraphCL (You et al., NeurIPS 2020), ``random2``: each view applies,
      per graph, node dropping or a random-walk subgraph at ``aug_ratio = 0.2``.
    * ``"ppr"`` - MVGRL (Hassani & Khasahmadi, ICML 2020): view a is the graph itself,
      view b its PPR diffusion (``α = 0.2``, top 32 per node, 10 iterations).
    * ``"none"`` - two identity views.

    Args:
        preset: one of ``graph_view_preset_names()``.
        **overrides: a :class:`GraphAugment` option (``edge_drop``, ``feature_mask``,
            ``node_drop``, ``subgraph``, ``feature_mask_mode``, ``force_undirected``,
            ``pick_one``) for both views, or suffixed ``_1`` / ``_2`` for view a / view b
            (GRACE's naming: ``edge_drop_1=0.2``); for ``"ppr"`` these reach view a
            only (no ``_2``), and ``alpha``, ``top_k``, ``iterations``,
            ``add_self_loops`` set the diffusion view; ``generator`` is shared by both.

    Returns:
        ``(view_a, view_b)``: modules mapping a ``Data`` to a new, augmented ``Data``.

    Raises:
        ValueError: unknown preset, unknown option or invalid value.

    Example:
        >>> view_a, view_b = build_graph_views("grace", edge_drop_2=0.3)
        >>> a, b = view_a(data), view_b(data)
    """
    GRAPH_VIEW_PRESETS[preset]  # an unknown preset: the registry's error
    overrides = dict(overrides)
    generator = _check_generator("build_graph_views", overrides.pop("generator", None))
    # "ppr": view b is the deterministic diffusion, so augmentation options reach view a only.
    sides = (1,) if preset == "ppr" else (1, 2)
    ppr_allowed = _PPR_OPTIONS if preset == "ppr" else ()
    known = {*_AUGMENT_OPTIONS, *(f"{name}_{side}" for name in _AUGMENT_OPTIONS for side in sides), *ppr_allowed}
    from contrastkit.utils.schema import Parameter, callable_parameters, check_section

    # Each key typed by the option it sets (edge_drop_1 as GraphAugment's edge_drop), named as in the recipe.
    augment, _ = callable_parameters(GraphAugment, skip=("generator",))
    diffusion, _ = callable_parameters(PPRDiffusion)
    parameters = {key: (diffusion.get(key) if key in ppr_allowed else None)
                  or augment.get(key[:-2] if key.endswith(("_1", "_2")) else key) or Parameter() for key in known}
    overrides = check_section("views", overrides, parameters)
    first, second = (dict(options) for options in GRAPH_VIEW_PRESETS[preset])
    ppr_options = second if preset == "ppr" else {}
    if preset == "ppr":
        second = {}
    for key, value in overrides.items():
        if key in ppr_allowed:
            ppr_options[key] = value
        elif key.endswith("_1"):
            first[key[:-2]] = value
        elif key.endswith("_2"):
            second[key[:-2]] = value
        elif preset == "ppr":
            first[key] = value
        else:
            first[key] = second[key] = value
    view_a = GraphAugment(**first, generator=generator)
    if preset == "ppr":
        return view_a, PPRDiffusion(**ppr_options)
    return view_a, GraphAugment(**second, generator=generator)

"""POT's bound propagation: node-compactness scores of a GCN over edge-drop augmentations.

One job: given a GCN's weights, a graph, an edge-drop budget and the other view's
embeddings, compute a score ``f̃_i`` of each node's compactness (Yu et al., "Provable
Training for Graph Contrastive Learning", NeurIPS 2023,
https://github.com/VoidHaruhi/POT-GCL). The loss built on it lives in
:mod:`contrastkit.functional.pot`. For node ``i`` of view 1 the *node compactness* is

.. math::

    f_i(\\hat A) = z_i(\\hat A) \\cdot w_i, \\qquad
    w_i = \\bar z'_i - \\frac{1}{M - 1} \\sum_{j \\ne i} \\bar z'_j,

where ``z(Â)`` is the (un-normalised) GCN output on an augmentation ``Â`` of the graph
and ``z̄'`` are the L2-normalised embeddings of the other view (the encoder outputs,
no projection head, as in the official code).

What is bounded. An augmentation keeps the self-loops and drops, for every node
``i``, at most ``q_i`` of its incoming edges (``edge_index`` row 1 == ``i``); the GCN
sees ``Â = D̃'^{-1/2} (A' + I) D̃'^{-1/2}`` (torch_geometric ``GCNConv``: degrees
counted at the target, self-loops added). Each normalised entry then lies in a box:
``Â_ii ∈ [1/d̃_i, 1/(d̃_i - q_i)]`` and, for an edge ``j -> i``,
``Â_ij ∈ [0, 1/sqrt((d̃_i - min(q_i, d_i - 1)) (d̃_j - q_j))]`` (0 when dropped; a
kept edge means ``i`` lost at most ``d_i - 1`` others; the lower end is the clean
value ``1/sqrt(d̃_i d̃_j)`` when ``q_i = 0``).

Two variants, side by side:

* **The sound certificate (default).** :func:`gcn_bounds` +
  :func:`node_compactness_lower_bound` (interval bound propagation), and
  :func:`pot_node_compactness` with ``method="linear"`` (POT's CROWN-style relaxation of
  the last two layers over per-path coefficients, IBP intermediate bounds) or
  ``method="best"`` (default, the larger of the two). With no ``view_edge_index`` the
  value is a lower bound of ``f_i`` on *every* augmentation in the budget, and the budget
  ``rounding="ceil"`` (``ceil(drop_rate * d_i)``) covers every drop count random edge
  dropping makes at that rate. It is the default because it is what the paper's
  guarantee is about, and it is tested as a bound (sampled, adversarial and exhaustive
  augmentations). ``view_edge_index`` evaluates the linear function at one view instead
  (still a bound, for that view).
* **The official score.** ``method="pot"`` with ``view_edge_index`` (the sampled view)
  and ``rounding="pot"`` (``min(round(drop_rate * d_i), d_i - 1)``): the official
  ``Model.pot_loss`` / ``get_crown_weights`` (GRACE folder) computed the same way.

How the official code differs from the sound certificate (read line by line against
``GRACE/model.py`` and ``GRACE/my_utils.py`` at commit 19a3a5f):

1. Second-layer pre-activation bounds use the clean first-layer output ``H`` instead of
   bounds of it (``HW = conv[1].lin(H)``), so they do not hold under augmentation.
2. One weight vector per node: ``W̃2_i``, ``W̃1_i`` are derived for node ``i`` as a target
   from node ``i``'s own pre-activation bounds, and the score uses ``W̃1_l`` of the
   2-hop source ``l`` and ``b̃1_j`` of the middle node ``j`` on the path ``i <- j <- l``
   (``A' (x W̃1) + b̃1``), not per-path coefficients of target ``i``.
3. The score is the linear function evaluated at the sampled view's ``Â'``, not its
   minimum over the augmentation set.
4. Relaxation (``get_alpha_beta``): the unstable lower line has the chord slope (here
   CROWN's adaptive 0/1), and the upper intercept is ``(α-1) u l / (u - α l)`` (the chord's
   is ``/ (u - l)``: a looser, still valid, upper line).
5. Entry box: the off-diagonal lower end is 0 even where a node's budget is 0.
6. Budget ``min(round(p d_i), d_i - 1)`` (round half to even) instead of ``ceil(p d_i)``.
7. With a node subset (``pot_batch``) every adjacency is cropped to the subset; here
   the sound bound keeps the whole graph (``method="pot"`` crops, as the official code).
8. Degrees come from ``to_undirected(edge_index)`` and it aggregates with ``A`` rather
   than ``Aᵀ``; the same as here (``GCNConv``, in-degree at the target) on an
   undirected graph, which is all the official code is run on.
9. Only 2-layer GCNs (asserted); here the sound bound takes any depth.

1-3 make the official value a heuristic rather than a bound; 4-6 change its value.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from contrastkit.utils.checks import check_embeddings


__all__ = [
    "GCNLayer",
    "edge_drop_budget",
    "gcn_forward",
    "gcn_bounds",
    "compactness_weights",
    "node_compactness",
    "node_compactness_lower_bound",
    "pot_node_compactness",
]

GCNLayer = tuple[torch.Tensor, torch.Tensor | None]
"""One GCNConv layer as ``(weight [out, in], bias [out] or None)``: ``(conv.lin.weight, conv.bias)``."""

ACTIVATIONS = ("relu", "leaky_relu")
BUDGET_ROUNDINGS = ("ceil", "pot")
METHODS = ("best", "linear", "interval", "pot")

# ``ceil(rate * degree)`` must not round 0.3 * 10 = 3.0000000000000004 up to 4.
_CEIL_TOLERANCE = 1e-9


# --------------------------------------------------------------------------- checks


def _check_edge_index(edge_index: torch.Tensor, num_nodes: int, name: str = "edge_index") -> None:
    if not isinstance(edge_index, torch.Tensor) or edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"{name}: expected a tensor of shape [2, E], got {getattr(edge_index, 'shape', edge_index)!r}")
    if edge_index.dtype != torch.long:
        raise ValueError(f"{name}: expected dtype torch.long, got {edge_index.dtype}")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(
            f"{name}: expected node ids in [0, {num_nodes}), got range "
            f"[{int(edge_index.min())}, {int(edge_index.max())}]"
        )


def _check_layers(layers: Sequence[GCNLayer], in_dim: int, dtype: torch.dtype) -> None:
    if not isinstance(layers, (list, tuple)) or len(layers) == 0:
        raise ValueError("layers: expected a non-empty list of (weight [out, in], bias [out] or None)")
    width = in_dim
    for depth, layer in enumerate(layers):
        if not isinstance(layer, (list, tuple)) or len(layer) != 2:
            raise ValueError(f"layers[{depth}]: expected a (weight, bias) pair, got {type(layer).__name__}")
        weight, bias = layer
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
            raise ValueError(
                f"layers[{depth}]: expected weight of shape [out, in], got {getattr(weight, 'shape', weight)!r}"
            )
        if weight.shape[1] != width:
            raise ValueError(
                f"layers[{depth}]: expected weight of shape [out, {width}] (input width {width}), "
                f"got {tuple(weight.shape)}"
            )
        if weight.dtype != dtype:
            raise ValueError(f"layers[{depth}]: expected weight dtype {dtype} (the dtype of x), got {weight.dtype}")
        if bias is not None and (not isinstance(bias, torch.Tensor) or tuple(bias.shape) != (weight.shape[0],)):
            raise ValueError(
                f"layers[{depth}]: expected bias of shape [{weight.shape[0]}] or None, "
                f"got {getattr(bias, 'shape', bias)!r}"
            )
        width = weight.shape[0]


def _check_activation(activation: str, negative_slope: float | torch.Tensor) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    if activation == "leaky_relu":
        if isinstance(negative_slope, torch.Tensor):
            if negative_slope.numel() != 1:
                raise ValueError(
                    f"negative_slope: expected a float or a 1-element tensor (nn.PReLU(1).weight), "
                    f"got shape {tuple(negative_slope.shape)}"
                )
            value = float(negative_slope.detach())
        else:
            value = float(negative_slope)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"negative_slope: expected a value in [0, 1] (the bounds need it), got {value}")


def _check_graph(x: torch.Tensor, edge_index: torch.Tensor, layers: Sequence[GCNLayer]) -> None:
    check_embeddings("x", x)
    _check_edge_index(edge_index, x.shape[0])
    if edge_index.device != x.device:
        raise ValueError(f"edge_index: expected the device of x ({x.device}), got {edge_index.device}")
    _check_layers(layers, x.shape[1], x.dtype)


# ------------------------------------------------------------------ graph structure


def _simple_edges(edge_index: torch.Tensor, num_nodes: int, name: str = "edge_index") -> torch.Tensor:
    """The edges without self-loops (GCNConv re-adds them); duplicate edges are rejected."""
    keep = edge_index[0] != edge_index[1]
    edges = edge_index[:, keep]
    keys = edges[0] * num_nodes + edges[1]
    if torch.unique(keys).numel() != keys.numel():
        raise ValueError(f"{name}: expected no duplicate edges (coalesce the graph first), got duplicates")
    return edges


def _in_degree(edges: torch.Tensor, num_nodes: int) -> torch.Tensor:
    return torch.bincount(edges[1], minlength=num_nodes)


def edge_drop_budget(
    edge_index: torch.Tensor,
    num_nodes: int,
    drop_rate: float,
    *,
    rounding: str = "ceil",
) -> torch.Tensor:
    """Per-node budget ``q`` of droppable incoming edges for a drop rate.

    ``rounding="ceil"``: ``q_i = ceil(drop_rate * d_i)``, so a node may lose all its
    edges (what random edge dropping can do). ``rounding="pot"``: the official POT
    budget, ``q_i = min(round(drop_rate * d_i), max(d_i - 1, 0))`` (round half to even,
    as numpy; every node keeps one edge). ``d_i`` is the in-degree without self-loops.

    Args:
        edge_index: ``[2, E]`` edges (row 0 source, row 1 target).
        num_nodes: ``N``.
        drop_rate: in ``[0, 1]`` (GRACE's ``drop_edge_rate``).
        rounding: ``"ceil"`` (default) or ``"pot"``.

    Returns:
        ``[N]`` long tensor ``q`` with ``0 <= q_i <= d_i``.

    Raises:
        ValueError: on a bad ``edge_index``, ``drop_rate`` outside ``[0, 1]`` or an
            unknown ``rounding``.

    Example:
        >>> edge_index = torch.tensor([[1, 2, 3, 0, 0, 0], [0, 0, 0, 1, 2, 3]])
        >>> edge_drop_budget(edge_index, 4, 0.5)
        tensor([2, 1, 1, 1])
    """
    _check_edge_index(edge_index, num_nodes)
    if not isinstance(drop_rate, (int, float)) or isinstance(drop_rate, bool) or not 0.0 <= drop_rate <= 1.0:
        raise ValueError(f"drop_rate: expected a float in [0, 1], got {drop_rate!r}")
    if rounding not in BUDGET_ROUNDINGS:
        raise ValueError(f"rounding: expected one of {', '.join(BUDGET_ROUNDINGS)}, got {rounding!r}")
    degree = _in_degree(_simple_edges(edge_index, num_nodes), num_nodes)
    scaled = degree.double() * float(drop_rate)
    if rounding == "ceil":
        budget = torch.ceil(scaled - _CEIL_TOLERANCE).clamp_min(0).long()
    else:
        budget = torch.minimum(torch.round(scaled).long(), (degree - 1).clamp_min(0))
    return torch.minimum(budget, degree)


def _resolve_budget(
    edge_index: torch.Tensor,
    num_nodes: int,
    drop_rate: float | None,
    max_drops: torch.Tensor | None,
    rounding: str = "ceil",
) -> torch.Tensor:
    if (drop_rate is None) == (max_drops is None):
        raise ValueError("expected exactly one of drop_rate and max_drops, got "
                         + ("both" if drop_rate is not None else "neither"))
    if drop_rate is not None:
        return edge_drop_budget(edge_index, num_nodes, drop_rate, rounding=rounding).to(edge_index.device)
    if not isinstance(max_drops, torch.Tensor) or tuple(max_drops.shape) != (num_nodes,):
        shape = getattr(max_drops, "shape", None)
        raise ValueError(f"max_drops: expected a tensor of shape [{num_nodes}], got {shape}")
    if max_drops.is_floating_point() or max_drops.dtype == torch.bool or max_drops.is_complex():
        raise ValueError(f"max_drops: expected an integer tensor, got dtype {max_drops.dtype}")
    if max_drops.numel() and int(max_drops.min()) < 0:
        raise ValueError(f"max_drops: expected non-negative budgets, got minimum {int(max_drops.min())}")
    return max_drops.to(device=edge_index.device, dtype=torch.long)


def _view_edges(
    edge_index: torch.Tensor, view_edge_index: torch.Tensor, num_nodes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The view's simple edges and the incoming edges it dropped per node; it must be a subgraph."""
    _check_edge_index(view_edge_index, num_nodes, "view_edge_index")
    if view_edge_index.device != edge_index.device:
        raise ValueError(f"view_edge_index: expected the device of edge_index ({edge_index.device}), "
                         f"got {view_edge_index.device}")
    edges = _simple_edges(edge_index, num_nodes)
    view = _simple_edges(view_edge_index, num_nodes, "view_edge_index")
    if not torch.isin(view[0] * num_nodes + view[1], edges[0] * num_nodes + edges[1]).all():
        raise ValueError("view_edge_index: expected a subgraph of edge_index (only dropped edges), got new edges")
    return view, _in_degree(edges, num_nodes) - _in_degree(view, num_nodes)


class _Propagation:
    """The edges of ``Â`` (self-loops included) with clean, lower and upper weights.

    ``source``/``target`` are ``[P]``: entry ``Â[target, source]``. The self-loops come
    last, one per node.
    """

    def __init__(self, edge_index: torch.Tensor, num_nodes: int, budget: torch.Tensor, dtype: torch.dtype) -> None:
        edges = _simple_edges(edge_index, num_nodes)
        device = edge_index.device
        degree = _in_degree(edges, num_nodes)
        budget = torch.minimum(budget, degree)
        nodes = torch.arange(num_nodes, device=device)
        self.num_nodes = num_nodes
        self.num_edges = edges.shape[1]
        self.source = torch.cat([edges[0], nodes])
        self.target = torch.cat([edges[1], nodes])
        self.edge_keys = edges[0] * num_nodes + edges[1]
        self.degree = degree
        tilde = (degree + 1).to(dtype)  # d̃ = in-degree + self-loop
        self.clean = tilde[self.target].rsqrt() * tilde[self.source].rsqrt()
        # Lowest degrees an augmentation can reach; a kept edge j -> i leaves i at least that edge.
        low_target = tilde - torch.minimum(budget, (degree - 1).clamp_min(0)).to(dtype)
        low_any = tilde - budget.to(dtype)
        upper_edges = (low_target[edges[1]] * low_any[edges[0]]).rsqrt()
        # Only the target's budget can drop an edge; a kept edge is at least its clean value.
        droppable = budget[edges[1]] > 0
        lower_edges = torch.where(droppable, torch.zeros_like(upper_edges), self.clean[: edges.shape[1]])
        self.upper = torch.cat([upper_edges, 1.0 / low_any])
        self.lower = torch.cat([lower_edges, 1.0 / tilde])

    def view_weights(self, view: torch.Tensor) -> torch.Tensor:
        """``Â`` of one augmentation (simple edges of a checked subgraph) on these entries; 0 where dropped."""
        n = self.num_nodes
        view_keys = view[0] * n + view[1]
        kept = torch.cat([torch.isin(self.edge_keys, view_keys), torch.ones(n, dtype=torch.bool, device=view.device)])
        tilde = (_in_degree(view, n) + 1).to(self.clean.dtype)
        weight = tilde[self.target].rsqrt() * tilde[self.source].rsqrt()
        return torch.where(kept, weight, torch.zeros_like(weight))

    def aggregate(self, weight: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """``sum_j weight[i <- j] * values[j]`` for every node ``i``."""
        out = values.new_zeros(self.num_nodes, values.shape[1])
        return out.index_add(0, self.target, weight.unsqueeze(1) * values[self.source])


# --------------------------------------------------------------------- activations


def _activate(y: torch.Tensor, activation: str, negative_slope: float | torch.Tensor) -> torch.Tensor:
    if activation == "relu":
        return F.relu(y)
    if isinstance(negative_slope, torch.Tensor):
        return torch.where(y >= 0, y, y * negative_slope.reshape(()))  # keeps a PReLU weight's gradient
    return F.leaky_relu(y, negative_slope)


def _slope(activation: str, negative_slope: float | torch.Tensor) -> float | torch.Tensor:
    if activation == "relu":
        return 0.0
    return negative_slope.reshape(()) if isinstance(negative_slope, torch.Tensor) else float(negative_slope)


def _relaxation(
    lower: torch.Tensor, upper: torch.Tensor, coefficient: torch.Tensor, alpha: float | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Slope and intercept of a linear lower bound of ``coefficient * sigma(y)`` on ``y ∈ [lower, upper]``.

    ``sigma`` is (leaky) ReLU with negative slope ``alpha ∈ [0, 1]``. For a non-negative
    coefficient the lower line of ``sigma`` is used, else the upper line (the chord);
    returns ``(s, b)`` with ``coefficient * sigma(y) >= coefficient * (s * y + b)``.
    """
    active = lower >= 0
    inactive = upper <= 0
    unstable = ~(active | inactive)
    ones = torch.ones_like(lower)
    # The chord through (l, alpha*l) and (u, u); the denominator is guarded off the unstable set.
    width = torch.where(unstable, upper - lower, ones)
    chord = (upper - alpha * lower) / width
    chord_intercept = (alpha - 1.0) * upper * lower / width
    # CROWN's adaptive lower line through the origin.
    alpha_tensor = ones * alpha
    adaptive = torch.where(upper >= -lower, ones, alpha_tensor)
    stable_slope = torch.where(active, ones, alpha_tensor)
    lower_slope = torch.where(unstable, adaptive, stable_slope)
    upper_slope = torch.where(unstable, chord, stable_slope)
    upper_intercept = torch.where(unstable, chord_intercept, torch.zeros_like(lower))
    use_lower = coefficient >= 0
    slope = torch.where(use_lower, lower_slope, upper_slope)
    intercept = torch.where(use_lower, torch.zeros_like(lower), upper_intercept)
    return slope, intercept


# ------------------------------------------------------------------ forward, bounds


def gcn_forward(
    x: torch.Tensor,
    edge_index: torch.Tensor,
    layers: Sequence[GCNLayer],
    *,
    activation: str = "relu",
    negative_slope: float | torch.Tensor = 0.01,
    last_activation: bool = True,
) -> torch.Tensor:
    """A GCN stack with torch_geometric ``GCNConv`` semantics, from raw weights.

    ``H^{l+1} = act(Â H^l W_l^T + b_l)`` with ``Â = D̃^{-1/2}(A + I)D̃^{-1/2}``, degrees
    counted at the target; the activation follows every layer (GRACE's encoder) unless
    ``last_activation=False``. Self-loops in ``edge_index`` are replaced by one per node.

    Args:
        x: ``[N, F]`` node features.
        edge_index: ``[2, E]`` edges without duplicates.
        layers: ``[(weight [out, in], bias [out] or None), ...]``.
        activation: ``"relu"`` (default) or ``"leaky_relu"``.
        negative_slope: slope of ``leaky_relu`` (a float or ``nn.PReLU(1).weight``).
        last_activation: apply the activation after the last layer (default ``True``).

    Returns:
        ``[N, out]`` node embeddings.

    Raises:
        ValueError: on bad shapes, duplicate edges or an unknown activation.

    Example:
        >>> x, edge_index = torch.randn(4, 3), torch.tensor([[0, 1, 2], [1, 2, 3]])
        >>> layers = [(torch.randn(8, 3), torch.zeros(8)), (torch.randn(2, 8), None)]
        >>> gcn_forward(x, edge_index, layers).shape
        torch.Size([4, 2])
    """
    _check_graph(x, edge_index, layers)
    _check_activation(activation, negative_slope)
    budget = torch.zeros(x.shape[0], dtype=torch.long, device=edge_index.device)
    graph = _Propagation(edge_index, x.shape[0], budget, x.dtype)
    h = x
    for depth, (weight, bias) in enumerate(layers):
        h = graph.aggregate(graph.clean, h @ weight.t())
        if bias is not None:
            h = h + bias
        if depth < len(layers) - 1 or last_activation:
            h = _activate(h, activation, negative_slope)
    return h


def _interval_layer(
    graph: _Propagation, lower: torch.Tensor, upper: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pre-activation bounds of one layer; also returns the bounds of ``H W^T`` (before aggregation)."""
    center = (upper + lower) / 2 @ weight.t()
    radius = (upper - lower) / 2 @ weight.abs().t()
    product_lower, product_upper = center - radius, center + radius
    # Â_ij >= 0 within [a_lo, a_hi]: min of a*p is a_lo*p for p >= 0 and a_hi*p for p < 0.
    out_lower = graph.aggregate(graph.lower, product_lower.clamp_min(0)) + graph.aggregate(
        graph.upper, product_lower.clamp_max(0)
    )
    out_upper = graph.aggregate(graph.upper, product_upper.clamp_min(0)) + graph.aggregate(
        graph.lower, product_upper.clamp_max(0)
    )
    if bias is not None:
        out_lower, out_upper = out_lower + bias, out_upper + bias
    return out_lower, out_upper, product_lower, product_upper


def _interval_pass(
    x: torch.Tensor,
    graph: _Propagation,
    layers: Sequence[GCNLayer],
    activation: str,
    negative_slope: float | torch.Tensor,
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per layer: (pre-activation lower, upper, product lower, product upper)."""
    results = []
    lower = upper = x
    for depth, (weight, bias) in enumerate(layers):
        pre_lower, pre_upper, product_lower, product_upper = _interval_layer(graph, lower, upper, weight, bias)
        results.append((pre_lower, pre_upper, product_lower, product_upper))
        if depth < len(layers) - 1:
            # Monotone activation: the box maps endpoint to endpoint.
            lower = _activate(pre_lower, activation, negative_slope)
            upper = _activate(pre_upper, activation, negative_slope)
    return results


def gcn_bounds(
    x: torch.Tensor,
    edge_index: torch.Tensor,
    layers: Sequence[GCNLayer],
    *,
    drop_rate: float | None = None,
    max_drops: torch.Tensor | None = None,
    rounding: str = "ceil",
    activation: str = "relu",
    negative_slope: float | torch.Tensor = 0.01,
    last_activation: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sound elementwise bounds of a GCN's output over every edge-drop augmentation in a budget.

    Interval bound propagation: the normalised adjacency is a box per entry (see the
    module docstring), ``H W^T`` is bounded by centre and radius, the aggregation takes
    the worst entry for each sign, and the monotone activation maps endpoints. The set:
    node ``i`` loses at most ``q_i`` incoming edges, ``q`` from ``drop_rate`` (via
    :func:`edge_drop_budget`, ``ceil``) or given as ``max_drops``; self-loops stay.

    Args:
        x: ``[N, F]`` node features (fixed: POT bounds edge dropping only).
        edge_index: ``[2, E]`` edges of the original graph, without duplicates.
        layers: ``[(weight [out, in], bias [out] or None), ...]`` (``GCNConv``:
            ``(conv.lin.weight, conv.bias)``).
        drop_rate: budget ``q_i`` from :func:`edge_drop_budget` (``rounding``); exactly one
            of ``drop_rate`` and ``max_drops``.
        max_drops: ``[N]`` integer budget per node.
        rounding: how ``drop_rate`` becomes ``q``: ``"ceil"`` (default, every drop random
            edge dropping can make) or ``"pot"`` (the official ``min(round(·), d - 1)``).
        activation: ``"relu"`` (default) or ``"leaky_relu"`` (``negative_slope`` in ``[0, 1]``).
        negative_slope: slope of ``leaky_relu``.
        last_activation: the activation follows the last layer too (GRACE; default ``True``).

    Returns:
        ``(lower, upper)``, each ``[N, out]``, differentiable in ``x`` and the weights.
        With a zero budget both equal :func:`gcn_forward`.

    Raises:
        ValueError: on bad shapes, duplicate edges, a bad budget or activation.

    Example:
        >>> x, edge_index = torch.randn(4, 3), torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> layers = [(torch.randn(8, 3), torch.zeros(8)), (torch.randn(2, 8), torch.zeros(2))]
        >>> lower, upper = gcn_bounds(x, edge_index, layers, drop_rate=0.5)
    """
    _check_graph(x, edge_index, layers)
    _check_activation(activation, negative_slope)
    budget = _resolve_budget(edge_index, x.shape[0], drop_rate, max_drops, rounding)
    graph = _Propagation(edge_index, x.shape[0], budget, x.dtype)
    lower, upper = _interval_pass(x, graph, layers, activation, negative_slope)[-1][:2]
    if last_activation:
        lower = _activate(lower, activation, negative_slope)
        upper = _activate(upper, activation, negative_slope)
    return lower, upper


# --------------------------------------------------------------------- compactness


def compactness_weights(z_other: torch.Tensor) -> torch.Tensor:
    """POT's ``W^CL``: ``w_i = z̄'_i - mean_{j != i} z̄'_j`` with ``z̄' = normalize(z_other)``.

    Args:
        z_other: ``[M, D]`` other-view embeddings (at least 2 rows).

    Returns:
        ``[M, D]``; gradients flow into ``z_other`` (the official code does not detach).
    """
    check_embeddings("z_other", z_other, min_rows=2)
    normalized = F.normalize(z_other, dim=1)
    rows = normalized.shape[0]
    return normalized * (rows / (rows - 1)) - normalized.sum(0, keepdim=True) / (rows - 1)


def node_compactness(z: torch.Tensor, z_other: torch.Tensor) -> torch.Tensor:
    """Node compactness of given embeddings: ``f_i = z_i · (z̄'_i - mean_{j != i} z̄'_j)``.

    The value for one augmentation (``z`` its un-normalised GCN output); POT's bound is
    the minimum of this over the augmentation set.

    Args:
        z: ``[M, D]`` embeddings of the view being bounded.
        z_other: ``[M, D]`` embeddings of the other view (rows paired with ``z``).

    Returns:
        ``[M]``.

    Example:
        >>> z, z_other = torch.randn(5, 4), torch.randn(5, 4)
        >>> node_compactness(z, z_other).shape
        torch.Size([5])
    """
    weights = compactness_weights(z_other)
    check_embeddings("z", z, dim=z_other.shape[1])
    if z.shape[0] != z_other.shape[0]:
        raise ValueError(f"z: expected {z_other.shape[0]} rows (paired with z_other), got {tuple(z.shape)}")
    return (z * weights).sum(1)


def node_compactness_lower_bound(
    bounds: tuple[torch.Tensor, torch.Tensor], z_other: torch.Tensor
) -> torch.Tensor:
    """Lower bound of node compactness from output bounds: ``min_{z ∈ [l, u]} z_i · w_i``.

    ``= sum_k (w_ik^+ l_ik + w_ik^- u_ik)`` with ``w = compactness_weights(z_other)``
    (fixed other view). Sound whenever every augmentation's output lies in the box
    (:func:`gcn_bounds`).

    Args:
        bounds: ``(lower, upper)``, each ``[M, D]``.
        z_other: ``[M, D]`` other-view embeddings, rows paired with the bounds. For a
            node subset slice the bounds and ``z_other`` alike (the negatives are the
            other rows, as POT's ``pot_batch``).

    Returns:
        ``[M]`` lower bounds ``f̃``.

    Raises:
        ValueError: on mismatched shapes or ``lower > upper``.

    Example:
        >>> lower = torch.zeros(5, 4); upper = lower + 0.1
        >>> node_compactness_lower_bound((lower, upper), torch.randn(5, 4)).shape
        torch.Size([5])
    """
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise ValueError("bounds: expected a (lower, upper) pair")
    lower, upper = bounds
    weights = compactness_weights(z_other)
    for name, tensor in (("lower", lower), ("upper", upper)):
        check_embeddings(name, tensor, dim=z_other.shape[1])
        if tensor.shape[0] != z_other.shape[0]:
            raise ValueError(
                f"bounds {name}: expected {z_other.shape[0]} rows (paired with z_other), got {tuple(tensor.shape)}"
            )
    if (lower > upper).any():
        raise ValueError("bounds: expected lower <= upper everywhere, got lower > upper")
    return (weights.clamp_min(0) * lower + weights.clamp_max(0) * upper).sum(1)


def _linear_bound(
    x: torch.Tensor,
    graph: _Propagation,
    layers: Sequence[GCNLayer],
    passes: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]],
    weights: torch.Tensor,
    targets: torch.Tensor,
    alpha: float | torch.Tensor,
    last_activation: bool,
    view_weight: torch.Tensor | None,
) -> torch.Tensor:
    """CROWN-style lower bound of ``weights[r] · z[targets[r]]`` (see pot_node_compactness)."""
    num_targets = targets.shape[0]
    row_of_node = torch.full((graph.num_nodes,), -1, dtype=torch.long, device=targets.device)
    row_of_node[targets] = torch.arange(num_targets, device=targets.device)

    def worst(weight_lower: torch.Tensor, weight_upper: torch.Tensor, edge: torch.Tensor, value: torch.Tensor):
        # min over Â_e ∈ [lo, hi] (Â >= 0) of Â_e * value, or Â_e of the given view.
        if view_weight is not None:
            return view_weight[edge] * value
        return torch.minimum(weight_lower[edge] * value, weight_upper[edge] * value)

    # Last activation: coefficient Λ on the last pre-activation, constant c.
    last_lower, last_upper = passes[-1][0][targets], passes[-1][1][targets]
    if last_activation:
        slope, intercept = _relaxation(last_lower, last_upper, weights, alpha)
        coefficient = weights * slope
        constant = (weights * intercept).sum(1)
    else:
        coefficient, constant = weights, weights.new_zeros(num_targets)
    weight_last, bias_last = layers[-1]
    if bias_last is not None:
        constant = constant + coefficient @ bias_last
    inner = coefficient @ weight_last  # [targets, in]: coefficient on H^{L-1}_j for every j -> i

    # Pairs (i <- j) with i a target.
    pair_rows = row_of_node[graph.target]
    pair_edges = (pair_rows >= 0).nonzero().squeeze(1)
    pair_rows = pair_rows[pair_edges]
    pair_sources = graph.source[pair_edges]
    pair_inner = inner[pair_rows]

    if len(layers) == 1:
        values = (pair_inner * x[pair_sources]).sum(1)
    else:
        # Activation of layer L-1 at node j, relaxed for the sign of the coefficient of target i.
        hidden_lower, hidden_upper = passes[-2][0][pair_sources], passes[-2][1][pair_sources]
        slope, intercept = _relaxation(hidden_lower, hidden_upper, pair_inner, alpha)
        pair_coefficient = pair_inner * slope
        pair_constant = (pair_inner * intercept).sum(1)
        weight_hidden, bias_hidden = layers[-2]
        if bias_hidden is not None:
            pair_constant = pair_constant + pair_coefficient @ bias_hidden
        # Paths i <- j <- l: the edges into each pair's source j.
        order = torch.argsort(graph.target, stable=True)
        counts = torch.bincount(graph.target, minlength=graph.num_nodes)
        starts = torch.cumsum(counts, 0) - counts
        path_counts = counts[pair_sources]
        path_pairs = torch.repeat_interleave(torch.arange(pair_edges.shape[0], device=x.device), path_counts)
        path_offsets = torch.arange(path_pairs.shape[0], device=x.device) - torch.repeat_interleave(
            torch.cumsum(path_counts, 0) - path_counts, path_counts
        )
        path_edges = order[starts[pair_sources][path_pairs] + path_offsets]
        path_sources = graph.source[path_edges]
        # Bounds of (H^{L-2} W_{L-1}^T)_l (exact for L == 2): min over the box for the coefficient's sign.
        product_lower, product_upper = passes[-2][2], passes[-2][3]
        coefficient_path = pair_coefficient[path_pairs]
        path_values = (
            coefficient_path.clamp_min(0) * product_lower[path_sources]
            + coefficient_path.clamp_max(0) * product_upper[path_sources]
        ).sum(1)
        path_terms = worst(graph.lower, graph.upper, path_edges, path_values)
        values = pair_constant.index_add(0, path_pairs, path_terms)
    pair_terms = worst(graph.lower, graph.upper, pair_edges, values)
    return constant.index_add(0, pair_rows, pair_terms)


def _official_relaxation(
    lower: torch.Tensor, upper: torch.Tensor, alpha: float | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The official ``get_alpha_beta``: one slope for both lines and the upper line's intercept.

    Slope 1 (active), ``alpha`` (inactive), and on the unstable set the chord slope
    ``(u - alpha l) / (u - l)`` for the lower line too (through the origin). The upper
    intercept is ``(alpha - 1) u l / (u - alpha l)``, as the official code writes it (the
    chord's is ``/ (u - l)``; this line lies above the chord, so it is looser but valid).
    """
    active = lower >= 0
    inactive = upper <= 0
    unstable = ~(active | inactive)
    ones = torch.ones_like(lower)
    rise = torch.where(unstable, upper - alpha * lower, ones)
    width = torch.where(unstable, upper - lower, ones)
    slope = torch.where(active, ones, torch.where(inactive, ones * alpha, rise / width))
    intercept = torch.where(unstable, (alpha - 1.0) * upper * lower / rise, torch.zeros_like(lower))
    return slope, intercept


def _official_score(
    x: torch.Tensor,
    graph: _Propagation,
    budget: torch.Tensor,
    layers: Sequence[GCNLayer],
    weights: torch.Tensor,
    targets: torch.Tensor,
    activation: str,
    negative_slope: float | torch.Tensor,
    view_weight: torch.Tensor,
) -> torch.Tensor:
    """The official ``Model.pot_loss`` score of a 2-layer GCN (see ``pot_node_compactness``, ``method="pot"``)."""
    (weight_1, bias_1), (weight_2, bias_2) = layers
    bias_1 = weight_1.new_zeros(weight_1.shape[0]) if bias_1 is None else bias_1
    bias_2 = weight_2.new_zeros(weight_2.shape[0]) if bias_2 is None else bias_2
    alpha = _slope(activation, negative_slope)
    n = graph.num_nodes
    # The official entry box: Â_ij <= 1/sqrt((d̃_i - q_i)(d̃_j - q_j)) on every edge and self-loop,
    # Â_ij >= 0 off the diagonal and the clean 1/d̃_i on it, whatever the budget.
    tilde = (graph.degree + 1).to(x.dtype)
    low = tilde - torch.minimum(budget, graph.degree).to(x.dtype)
    upper = (low[graph.target] * low[graph.source]).rsqrt()
    is_loop = torch.arange(graph.source.shape[0], device=x.device) >= graph.num_edges
    lower = torch.where(is_loop, 1.0 / tilde[graph.target], torch.zeros_like(upper))
    # The official code crops every adjacency to the scored nodes (``A[node_list][:, node_list]``).
    inside = torch.zeros(n, dtype=torch.bool, device=x.device)
    inside[targets] = True
    keep = inside[graph.source] & inside[graph.target]
    source, target = graph.source[keep], graph.target[keep]
    upper, lower, view = upper[keep], lower[keep], view_weight[keep]

    def aggregate(weight: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        out = values.new_zeros((n,) + values.shape[1:])
        shape = (-1,) + (1,) * (values.dim() - 1)
        return out.index_add(0, target, weight.reshape(shape) * values[source])

    center, radius = (upper + lower) / 2, (upper - lower) / 2
    # Layer 1: the box times the fixed X W1 (exact for the box).
    xw = x @ weight_1.t()
    lower_1 = aggregate(center, xw) - aggregate(radius, xw.abs()) + bias_1
    upper_1 = aggregate(center, xw) + aggregate(radius, xw.abs()) + bias_1
    # Layer 2: the box times H W2 with H the *clean* first-layer output on the whole graph.
    hidden = _activate(graph.aggregate(graph.clean, xw) + bias_1, activation, negative_slope)
    hw = hidden @ weight_2.t()
    lower_2 = aggregate(center, hw) - aggregate(radius, hw.abs()) + bias_2
    upper_2 = aggregate(center, hw) + aggregate(radius, hw.abs()) + bias_2
    # ``get_crown_weights``: one weight vector per scored node, from that node's own bounds.
    slope_2, intercept_2 = _official_relaxation(lower_2[targets], upper_2[targets], alpha)
    lambda_2 = slope_2 * weights
    delta_2 = torch.where(weights >= 0, torch.zeros_like(intercept_2), intercept_2)
    weight_tilde_2 = lambda_2 @ weight_2  # [M, hidden]
    bias_tilde_2 = (lambda_2 * (delta_2 + bias_2)).sum(1)
    slope_1, intercept_1 = _official_relaxation(lower_1[targets], upper_1[targets], alpha)
    lambda_1 = slope_1 * weight_tilde_2
    delta_1 = torch.where(weight_tilde_2 >= 0, torch.zeros_like(intercept_1), intercept_1)
    weight_tilde_1 = lambda_1 @ weight_1  # [M, F]
    bias_tilde_1 = (lambda_1 * (delta_1 + bias_1)).sum(1)
    # The score at the sampled view: Â' (x_l · W̃1_l) + b̃1, then Â' (·) + b̃2, node l's own W̃1.
    xw_tilde = x.new_zeros(n).index_put((targets,), (x[targets] * weight_tilde_1).sum(1))
    b1_tilde = x.new_zeros(n).index_put((targets,), bias_tilde_1)
    hidden_tilde = aggregate(view, xw_tilde) + b1_tilde
    return aggregate(view, hidden_tilde)[targets] + bias_tilde_2


def pot_node_compactness(
    x: torch.Tensor,
    edge_index: torch.Tensor,
    layers: Sequence[GCNLayer],
    z_other: torch.Tensor,
    *,
    drop_rate: float | None = None,
    max_drops: torch.Tensor | None = None,
    nodes: torch.Tensor | None = None,
    method: str = "best",
    view_edge_index: torch.Tensor | None = None,
    rounding: str = "ceil",
    activation: str = "relu",
    negative_slope: float | torch.Tensor = 0.01,
    last_activation: bool = True,
) -> torch.Tensor:
    """POT's node compactness ``f̃_i``: a lower bound of ``z_i(Â) · w_i`` over edge-drop augmentations.

    ``w = compactness_weights(z_other[nodes])`` (the other view, normalised, minus the
    mean of the other selected nodes); ``z(Â)`` is the GCN output on augmentation ``Â``.

    ``method="interval"``: :func:`gcn_bounds` then :func:`node_compactness_lower_bound`.
    ``method="linear"`` (POT's approach): the activations of the last two layers
    are replaced by linear lower/upper lines (CROWN), chosen by the sign of their
    coefficient, with interval bounds on the pre-activations; the result is linear in the
    entries of ``Â`` along the 2-hop paths ``i <- j <- l`` and is minimised entry by entry
    over the adjacency box (deeper layers enter through interval bounds).
    ``method="best"`` (default): the larger of the two per node (both are sound; the
    linear one is larger on most nodes). With ``view_edge_index`` the linear function is
    evaluated at that view's ``Â`` instead, as the official code scores the sampled view:
    a bound for that view only, tighter (where the view dropped more edges into a node
    than the budget allows, that node's budget is widened to the view's drops, so the
    value stays a bound for the view; random edge dropping can exceed any budget).

    ``method="pot"``: the official code's score (``Model.pot_loss`` and
    ``get_crown_weights`` of VoidHaruhi/POT-GCL, GRACE), which needs ``view_edge_index``,
    2 layers and ``last_activation``. It is *not* a bound (see the module docstring for
    why): the entry box is the official one, the second layer's pre-activation bounds use
    the clean first-layer output, every node gets one pair of weight vectors ``W̃1, W̃2``
    from its own bounds and the path ``i <- j <- l`` uses ``l``'s ``W̃1`` and ``j``'s
    ``b̃1``, the relaxation is the official ``get_alpha_beta``, and with ``nodes`` every
    adjacency is cropped to the selected nodes, all as the official code does. Pass
    ``rounding="pot"`` for its budget. The budget is not widened to the view here.

    Which to use. The default (``"best"``, no view, ``rounding="ceil"``) is the sound
    certificate: a lower bound of the compactness on *every* augmentation random edge
    dropping can produce, which is what the paper claims to train; it is the default
    because it is the only one of these that is a bound. ``method="pot"`` with the view
    and ``rounding="pot"`` reproduces the official training signal.

    Cost of ``"linear"``: ``O(T * hidden)`` memory with ``T`` the number of 2-hop paths
    ending at the selected nodes; pass ``nodes`` (POT's ``pot_batch``) on large graphs.

    Args:
        x: ``[N, F]`` node features.
        edge_index: ``[2, E]`` edges of the original graph, no duplicates.
        layers: ``[(weight [out, in], bias [out] or None), ...]``.
        z_other: ``[N, D]`` other-view embeddings (encoder outputs, no projection head).
        drop_rate: budget from :func:`edge_drop_budget` with ``rounding``; exactly one of
            this and ``max_drops``.
        max_drops: ``[N]`` integer budget per node.
        nodes: optional ``[M]`` node ids to score (distinct; default all nodes). The
            graph stays whole (``"pot"``: cropped to them); the negatives in ``w`` are the
            selected nodes.
        method: ``"best"`` (default), ``"linear"``, ``"interval"`` or ``"pot"``.
        view_edge_index: the sampled view (a subgraph of ``edge_index``): optional for
            ``"best"``/``"linear"``, required for ``"pot"``, not with ``"interval"``.
        rounding: ``"ceil"`` (default: ``ceil(drop_rate * d_i)``, so any node may lose every
            edge, as random dropping can) or ``"pot"`` (official: ``min(round(·), d_i - 1)``).
        activation: ``"relu"`` (default) or ``"leaky_relu"``.
        negative_slope: slope of ``leaky_relu`` in ``[0, 1]``.
        last_activation: the activation follows the last layer (default ``True``).

    Returns:
        ``[M]`` lower bounds, differentiable in ``x``, the weights and ``z_other``.

    Raises:
        ValueError: on bad shapes, a bad budget, a view that is not a subgraph, or an
            unknown method.

    Example:
        >>> x, edge_index = torch.randn(4, 3), torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
        >>> layers = [(torch.randn(8, 3), torch.zeros(8)), (torch.randn(2, 8), torch.zeros(2))]
        >>> bound = pot_node_compactness(x, edge_index, layers, torch.randn(4, 2), drop_rate=0.3)
        >>> loss = pot_loss(bound)
    """
    _check_graph(x, edge_index, layers)
    _check_activation(activation, negative_slope)
    if method not in METHODS:
        raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    if view_edge_index is not None and method == "interval":
        raise ValueError(
            "view_edge_index: expected method 'linear', 'best' or 'pot' (the interval bound covers the whole set)"
        )
    if method == "pot":
        if view_edge_index is None:
            raise ValueError("view_edge_index: method 'pot' scores the sampled view; expected its edges, got None")
        if len(layers) != 2 or not last_activation:
            raise ValueError(
                f"method 'pot': the official score is for a 2-layer GCN with the activation after both layers, "
                f"got {len(layers)} layers, last_activation={last_activation}"
            )
    num_nodes = x.shape[0]
    out_dim = layers[-1][0].shape[0]
    check_embeddings("z_other", z_other, dim=out_dim)
    if z_other.shape[0] != num_nodes:
        raise ValueError(f"z_other: expected {num_nodes} rows (one per node), got {tuple(z_other.shape)}")
    if nodes is None:
        targets = torch.arange(num_nodes, device=x.device)
    else:
        if not isinstance(nodes, torch.Tensor) or nodes.dim() != 1 or nodes.dtype != torch.long:
            raise ValueError(f"nodes: expected a 1-D long tensor of node ids, got {getattr(nodes, 'shape', nodes)!r}")
        if nodes.numel() and (int(nodes.min()) < 0 or int(nodes.max()) >= num_nodes):
            raise ValueError(f"nodes: expected ids in [0, {num_nodes}), got [{int(nodes.min())}, {int(nodes.max())}]")
        if torch.unique(nodes).numel() != nodes.numel():
            raise ValueError("nodes: expected distinct node ids, got duplicates")
        targets = nodes.to(x.device)
    weights = compactness_weights(z_other[targets])
    budget = _resolve_budget(edge_index, num_nodes, drop_rate, max_drops, rounding)
    view = None
    if view_edge_index is not None:
        view, dropped = _view_edges(edge_index, view_edge_index, num_nodes)
        if method != "pot":
            # A sampled view may drop more than the budget somewhere: widen the set there so it holds the view.
            budget = torch.maximum(budget, dropped)
    graph = _Propagation(edge_index, num_nodes, budget, x.dtype)
    if method == "pot":
        return _official_score(
            x, graph, budget, layers, weights, targets, activation, negative_slope, graph.view_weights(view)
        )
    passes = _interval_pass(x, graph, layers, activation, negative_slope)
    lower, upper = passes[-1][0][targets], passes[-1][1][targets]
    if last_activation:
        lower = _activate(lower, activation, negative_slope)
        upper = _activate(upper, activation, negative_slope)
    interval = (weights.clamp_min(0) * lower + weights.clamp_max(0) * upper).sum(1)
    if method == "interval":
        return interval
    view_weight = None if view is None else graph.view_weights(view)
    linear = _linear_bound(
        x, graph, layers, passes, weights, targets, _slope(activation, negative_slope), last_activation, view_weight
    )
    if method == "linear":
        return linear
    # Both are sound lower bounds, so their maximum is one too (the linear one wins on most nodes).
    return torch.maximum(linear, interval)

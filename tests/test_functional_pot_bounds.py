"""POT's bound propagation: soundness over sampled, adversarial and enumerated edge drops;
tightness; the linear bound and the official score against loops.

References are written independently of the module: a dense GCN forward (``Â`` built
entry by entry), a loop over every edge subset on a tiny graph, a greedy attack, a
per-node loop implementation of the linear (CROWN) bound, and a per-node loop of the
official code's score (``method="pot"``).
"""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.datasets import KarateClub
from torch_geometric.nn import GCNConv

from contrastkit.functional.pot import pot_loss
from contrastkit.functional.pot_bounds import (
    compactness_weights,
    edge_drop_budget,
    gcn_bounds,
    gcn_forward,
    node_compactness,
    node_compactness_lower_bound,
    pot_node_compactness,
)

TOL = 1e-9
METHODS = ("best", "linear", "interval")


# ----------------------------------------------------------------------------- graphs


def _karate():
    data = KarateClub()[0]
    return data.x.double(), data.edge_index


def _random_graph(num_nodes, probability, seed, directed=False):
    generator = torch.Generator().manual_seed(seed)
    mask = torch.rand(num_nodes, num_nodes, generator=generator) < probability
    mask.fill_diagonal_(False)
    if not directed:
        mask = torch.triu(mask, 1)
        mask = mask | mask.t()
    source, target = mask.nonzero(as_tuple=True)
    return torch.stack([source, target])


def _features(num_nodes, dim, seed):
    return torch.randn(num_nodes, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _layers(dims, seed, requires_grad=False):
    generator = torch.Generator().manual_seed(seed)
    layers = []
    for fan_in, fan_out in zip(dims[:-1], dims[1:]):
        weight = torch.randn(fan_out, fan_in, generator=generator, dtype=torch.float64) / math.sqrt(fan_in)
        bias = 0.3 * torch.randn(fan_out, generator=generator, dtype=torch.float64)
        layers.append((weight.requires_grad_(requires_grad), bias.requires_grad_(requires_grad)))
    return layers


# ----------------------------------------------------------------- dense reference


def _dense_forward(x, edge_index, layers, activation="relu", slope=0.0, last_activation=True):
    """``act(Â H W^T + b)`` with ``Â[i, j] = 1/sqrt(d̃_i d̃_j)`` for each edge j -> i and the self-loop."""
    n = x.shape[0]
    adjacency = torch.zeros(n, n, dtype=x.dtype)
    adjacency[edge_index[1], edge_index[0]] = 1.0
    adjacency.fill_diagonal_(1.0)
    degree = adjacency.sum(1)
    normalized = adjacency / torch.sqrt(degree[:, None] * degree[None, :])
    h = x
    for depth, (weight, bias) in enumerate(layers):
        h = normalized @ h @ weight.t() + bias
        if depth < len(layers) - 1 or last_activation:
            h = torch.where(h >= 0, h, slope * h) if activation == "leaky_relu" else torch.relu(h)
    return h


def _incoming(edge_index, node):
    return (edge_index[1] == node).nonzero().squeeze(1).tolist()


def _sample_view(edge_index, budget, generator, mode):
    """An augmentation inside the budget: directed random, directed maximal, or undirected pairs."""
    num_edges = edge_index.shape[1]
    keep = torch.ones(num_edges, dtype=torch.bool)
    n = budget.shape[0]
    if mode in ("directed", "maximal"):
        for node in range(n):
            incoming = _incoming(edge_index, node)
            count = int(budget[node])
            if mode == "directed":
                count = int(torch.randint(0, count + 1, (1,), generator=generator))
            order = torch.randperm(len(incoming), generator=generator)[:count].tolist()
            for position in order:
                keep[incoming[position]] = False
    else:
        left = budget.clone()
        position = {(s, t): e for e, (s, t) in enumerate(edge_index.t().tolist())}
        for e in torch.randperm(num_edges, generator=generator).tolist():
            source, target = edge_index[:, e].tolist()
            back = position.get((target, source))
            if source < target and back is not None and keep[e] and left[target] > 0 and left[source] > 0:
                if torch.rand(1, generator=generator) < 0.7:
                    keep[e] = keep[back] = False
                    left[target] -= 1
                    left[source] -= 1
    return edge_index[:, keep]


def _greedy_attack(x, edge_index, layers, z_other, budget, node):
    """Drop edges one at a time, each time the one that lowers ``node``'s compactness most."""
    weights = compactness_weights(z_other)[node]
    keep = torch.ones(edge_index.shape[1], dtype=torch.bool)
    left = budget.clone()

    def score(mask):
        return float(_dense_forward(x, edge_index[:, mask], layers)[node] @ weights)

    current = score(keep)
    for _ in range(8):  # a few greedy steps are enough to beat the clean graph
        best = None
        for e in keep.nonzero().squeeze(1).tolist():
            if left[edge_index[1, e]] == 0:
                continue
            trial = keep.clone()
            trial[e] = False
            value = score(trial)
            if value < current - 1e-12 and (best is None or value < best[0]):
                best = (value, e)
        if best is None:
            break
        current, e = best
        keep[e] = False
        left[edge_index[1, e]] -= 1
    return edge_index[:, keep]


# ---------------------------------------------------------------------------- forward


@pytest.mark.parametrize("graph", ["karate", "directed"])
def test_gcn_forward_matches_gcnconv(graph):
    if graph == "karate":
        x, edge_index = _karate()
    else:
        x, edge_index = _features(12, 5, 0), _random_graph(12, 0.3, 1, directed=True)
    torch.manual_seed(0)
    convs = [GCNConv(x.shape[1], 7).double(), GCNConv(7, 3).double()]
    for conv in convs:
        torch.nn.init.normal_(conv.bias, std=0.5)
    layers = [(conv.lin.weight, conv.bias) for conv in convs]
    expected = torch.relu(convs[1](torch.relu(convs[0](x, edge_index)), edge_index))
    torch.testing.assert_close(gcn_forward(x, edge_index, layers), expected)
    hidden = F.leaky_relu(convs[0](x, edge_index), 0.2)
    torch.testing.assert_close(
        gcn_forward(x, edge_index, layers, activation="leaky_relu", negative_slope=0.2, last_activation=False),
        convs[1](hidden, edge_index),
    )
    torch.testing.assert_close(gcn_forward(x, edge_index, layers), _dense_forward(x, edge_index, layers))


def test_gcn_forward_ignores_input_self_loops():
    x, edge_index = _features(6, 3, 0), _random_graph(6, 0.5, 2)
    layers = _layers([3, 4, 2], 0)
    looped = torch.cat([edge_index, torch.tensor([[0, 3], [0, 3]])], dim=1)
    torch.testing.assert_close(gcn_forward(x, looped, layers), gcn_forward(x, edge_index, layers))


# ----------------------------------------------------------------------------- budget


def test_edge_drop_budget_matches_loop():
    edge_index = _random_graph(30, 0.25, 3)
    degree = [len(_incoming(edge_index, node)) for node in range(30)]
    for rate in (0.0, 0.1, 0.3, 0.5, 1.0):
        ceil = [min(math.ceil(round(rate * d, 9)), d) for d in degree]
        pot = [min(round(rate * d), max(d - 1, 0)) for d in degree]  # Python's round is half-to-even, as numpy's
        assert edge_drop_budget(edge_index, 30, rate).tolist() == ceil
        assert edge_drop_budget(edge_index, 30, rate, rounding="pot").tolist() == pot
    # 0.3 * 10 is 3.0000000000000004 in floating point; the budget must still be 3.
    star = torch.stack([torch.arange(1, 11), torch.zeros(10, dtype=torch.long)])
    assert edge_drop_budget(star, 11, 0.3)[0] == 3


# ----------------------------------------------------------------------- soundness


def _check_view(x, view, layers, z_other, lower, upper, bounds, view_bound):
    output = _dense_forward(x, view, layers)
    assert (output >= lower - TOL).all() and (output <= upper + TOL).all()
    actual = node_compactness(output, z_other)
    for bound in bounds:
        assert (actual >= bound - TOL).all(), float((actual - bound).min())
    assert (actual >= view_bound - TOL).all(), float((actual - view_bound).min())
    assert (view_bound >= bounds[0] - TOL).all()  # the view's bound is at least the set's
    return actual


@pytest.mark.parametrize(("graph", "drop_rate"), [("karate", 0.3), ("directed", 0.5)])
def test_bounds_hold_for_sampled_augmentations(graph, drop_rate):
    if graph == "karate":
        x, edge_index = _karate()
    else:
        x, edge_index = _features(16, 6, 4), _random_graph(16, 0.3, 5, directed=True)
    n = x.shape[0]
    layers = _layers([x.shape[1], 12, 6], 6)
    z_other = _features(n, 6, 7)
    budget = edge_drop_budget(edge_index, n, drop_rate)
    lower, upper = gcn_bounds(x, edge_index, layers, drop_rate=drop_rate)
    clean = gcn_forward(x, edge_index, layers)
    assert (lower <= clean + TOL).all() and (clean <= upper + TOL).all()
    assert (lower < upper - 1e-6).any()  # the budget is not empty, so the box must be too
    bounds = [pot_node_compactness(x, edge_index, layers, z_other, drop_rate=drop_rate, method=m) for m in METHODS]
    torch.testing.assert_close(bounds[2], node_compactness_lower_bound((lower, upper), z_other))
    torch.testing.assert_close(bounds[0], torch.maximum(bounds[1], bounds[2]))
    generator = torch.Generator().manual_seed(8)
    modes = ("directed", "maximal") if graph == "directed" else ("directed", "maximal", "undirected")
    worst = node_compactness(clean, z_other)
    for sample in range(200):
        view = _sample_view(edge_index, budget, generator, modes[sample % len(modes)])
        view_bound = pot_node_compactness(
            x, edge_index, layers, z_other, drop_rate=drop_rate, view_edge_index=view
        )
        actual = _check_view(x, view, layers, z_other, lower, upper, bounds, view_bound)
        worst = torch.minimum(worst, actual)
    # Not vacuous: the bounds stay within a sane distance of the worst case seen.
    assert float((worst - bounds[0]).mean()) < 1.0


def test_bounds_hold_for_adversarial_augmentations():
    x, edge_index = _karate()
    n, drop_rate = x.shape[0], 0.4
    layers = _layers([x.shape[1], 10, 5], 9)
    z_other = _features(n, 5, 10)
    budget = edge_drop_budget(edge_index, n, drop_rate)
    lower, upper = gcn_bounds(x, edge_index, layers, drop_rate=drop_rate)
    best = pot_node_compactness(x, edge_index, layers, z_other, drop_rate=drop_rate)
    clean = node_compactness(gcn_forward(x, edge_index, layers), z_other)
    lowered = 0
    for node in (0, 16, 33):
        view = _greedy_attack(x, edge_index, layers, z_other, budget, node)
        output = _dense_forward(x, view, layers)
        assert (output >= lower - TOL).all() and (output <= upper + TOL).all()
        attacked = float(node_compactness(output, z_other)[node])
        assert attacked >= float(best[node]) - TOL
        view_bound = pot_node_compactness(x, edge_index, layers, z_other, drop_rate=drop_rate, view_edge_index=view)
        assert attacked >= float(view_bound[node]) - TOL
        lowered += attacked < float(clean[node]) - 1e-6
    assert lowered >= 2  # the attack does find worse augmentations, so the check has teeth


@pytest.mark.parametrize("directed", [False, True])
def test_bounds_hold_for_every_augmentation_of_a_tiny_graph(directed):
    x = _features(6, 3, 11)
    edge_index = _random_graph(6, 0.45, 12) if not directed else _random_graph(6, 0.35, 19, directed=True)
    n = x.shape[0]
    layers = _layers([3, 5, 4], 14)
    z_other = _features(n, 4, 15)
    max_drops = torch.tensor([1, 2, 1, 0, 2, 1])
    lower, upper = gcn_bounds(x, edge_index, layers, max_drops=max_drops)
    bounds = [pot_node_compactness(x, edge_index, layers, z_other, max_drops=max_drops, method=m) for m in METHODS]
    exact_min = torch.full((n,), math.inf, dtype=torch.float64)
    seen_lower = torch.full_like(lower, math.inf)
    seen_upper = torch.full_like(upper, -math.inf)
    views = 0
    for dropped in itertools.product([False, True], repeat=edge_index.shape[1]):
        dropped = torch.tensor(dropped)
        losses = torch.bincount(edge_index[1][dropped], minlength=n)
        if (losses > max_drops).any():
            continue
        views += 1
        output = _dense_forward(x, edge_index[:, ~dropped], layers)
        seen_lower, seen_upper = torch.minimum(seen_lower, output), torch.maximum(seen_upper, output)
        exact_min = torch.minimum(exact_min, node_compactness(output, z_other))
    assert views > 20
    assert (seen_lower >= lower - TOL).all() and (seen_upper <= upper + TOL).all()
    for bound in bounds:
        assert (exact_min >= bound - TOL).all()


def test_view_over_budget_widens_the_budget_and_stays_sound():
    x, edge_index = _karate()
    layers = _layers([x.shape[1], 8, 4], 45)
    z_other = _features(x.shape[0], 4, 46)
    generator = torch.Generator().manual_seed(47)
    view = edge_index[:, torch.rand(edge_index.shape[1], generator=generator) > 0.5]  # GRACE-style random drop
    budget = edge_drop_budget(edge_index, x.shape[0], 0.1)
    dropped = torch.bincount(edge_index[1], minlength=34) - torch.bincount(view[1], minlength=34)
    assert (dropped > budget).any()  # the sampled view is outside the 0.1 budget somewhere
    bound = pot_node_compactness(x, edge_index, layers, z_other, max_drops=budget, view_edge_index=view)
    widened = pot_node_compactness(
        x, edge_index, layers, z_other, max_drops=torch.maximum(budget, dropped), view_edge_index=view
    )
    torch.testing.assert_close(bound, widened)
    actual = node_compactness(_dense_forward(x, view, layers), z_other)
    assert (actual >= bound - TOL).all()


# ------------------------------------------------------------------------ tightness


def test_zero_budget_is_exact():
    x, edge_index = _karate()
    layers = _layers([x.shape[1], 8, 4], 16)
    z_other = _features(x.shape[0], 4, 17)
    clean = gcn_forward(x, edge_index, layers)
    lower, upper = gcn_bounds(x, edge_index, layers, drop_rate=0.0)
    torch.testing.assert_close(lower, clean)
    torch.testing.assert_close(upper, clean)
    actual = node_compactness(clean, z_other)
    for method in METHODS:
        bound = pot_node_compactness(x, edge_index, layers, z_other, drop_rate=0.0, method=method)
        torch.testing.assert_close(bound, actual)
    zero = torch.zeros(x.shape[0], dtype=torch.long)
    viewed = pot_node_compactness(x, edge_index, layers, z_other, max_drops=zero, view_edge_index=edge_index)
    torch.testing.assert_close(viewed, actual)


def test_linear_bound_is_tighter_than_interval_on_average():
    x, edge_index = _karate()
    layers = _layers([x.shape[1], 16, 8], 18)
    z_other = _features(x.shape[0], 8, 19)
    linear = pot_node_compactness(x, edge_index, layers, z_other, drop_rate=0.3, method="linear")
    interval = pot_node_compactness(x, edge_index, layers, z_other, drop_rate=0.3, method="interval")
    assert float(linear.mean()) > float(interval.mean()) + 0.05
    assert float((linear >= interval).double().mean()) > 0.8


# ------------------------------------------------------------ linear bound vs loops


def _relax(lower, upper, coefficient, alpha):
    """Scalar CROWN lines for ``coefficient * sigma(y)``: returns (slope, intercept)."""
    if lower >= 0:
        return 1.0, 0.0
    if upper <= 0:
        return alpha, 0.0
    if coefficient >= 0:
        return (1.0 if upper >= -lower else alpha), 0.0
    slope = (upper - alpha * lower) / (upper - lower)
    return slope, upper - slope * upper


def _entry_boxes(edge_index, n, budget):
    lower = torch.zeros(n, n, dtype=torch.float64)
    upper = torch.zeros(n, n, dtype=torch.float64)
    degree = [len(_incoming(edge_index, node)) for node in range(n)]
    for node in range(n):
        lower[node, node] = 1 / (degree[node] + 1)
        upper[node, node] = 1 / (degree[node] + 1 - budget[node])
    for source, target in edge_index.t().tolist():
        kept_target = degree[target] + 1 - min(budget[target], degree[target] - 1)
        upper[target, source] = 1 / math.sqrt(kept_target * (degree[source] + 1 - budget[source]))
        if budget[target] == 0:
            lower[target, source] = 1 / math.sqrt((degree[target] + 1) * (degree[source] + 1))
    return lower, upper


def _naive_linear_bound(x, edge_index, layers, z_other, budget, alpha=0.0):
    """Two-layer CROWN bound, one node, one neighbour, one path at a time."""
    n = x.shape[0]
    a_lo, a_hi = _entry_boxes(edge_index, n, budget)
    (w1, b1), (w2, b2) = [(w.detach(), b.detach()) for w, b in layers]
    product = x @ w1.t()
    hidden_lo = torch.minimum(a_lo[:, :, None] * product, a_hi[:, :, None] * product).sum(1) + b1
    hidden_hi = torch.maximum(a_lo[:, :, None] * product, a_hi[:, :, None] * product).sum(1) + b1

    def act(y):
        return torch.where(y >= 0, y, alpha * y)

    center = (act(hidden_lo) + act(hidden_hi)) / 2 @ w2.t()
    radius = (act(hidden_hi) - act(hidden_lo)) / 2 @ w2.abs().t()
    p_lo, p_hi = center - radius, center + radius
    out_lo = torch.minimum(a_lo[:, :, None] * p_lo, a_hi[:, :, None] * p_lo).sum(1) + b2
    out_hi = torch.maximum(a_lo[:, :, None] * p_hi, a_hi[:, :, None] * p_hi).sum(1) + b2
    weights = compactness_weights(z_other)
    result = []
    for i in range(n):
        coefficient, constant = torch.zeros(w2.shape[0], dtype=torch.float64), 0.0
        for k in range(w2.shape[0]):
            slope, intercept = _relax(float(out_lo[i, k]), float(out_hi[i, k]), float(weights[i, k]), alpha)
            coefficient[k] = weights[i, k] * slope
            constant += float(weights[i, k]) * intercept
        constant += float(coefficient @ b2)
        v = coefficient @ w2
        total = constant
        for j in range(n):
            if a_hi[i, j] == 0:
                continue
            u = torch.zeros_like(v)
            inner = 0.0
            for m in range(v.shape[0]):
                slope, intercept = _relax(float(hidden_lo[j, m]), float(hidden_hi[j, m]), float(v[m]), alpha)
                u[m] = v[m] * slope
                inner += float(v[m]) * intercept
            inner += float(u @ b1)
            for l in range(n):
                if a_hi[j, l] == 0:
                    continue
                t = float(u @ product[l])
                inner += min(float(a_lo[j, l]) * t, float(a_hi[j, l]) * t)
            total += min(float(a_lo[i, j]) * inner, float(a_hi[i, j]) * inner)
        result.append(total)
    return torch.tensor(result, dtype=torch.float64)


@pytest.mark.parametrize(("activation", "alpha"), [("relu", 0.0), ("leaky_relu", 0.2)])
def test_linear_bound_matches_naive_loop(activation, alpha):
    x, edge_index = _features(9, 4, 20), _random_graph(9, 0.35, 21, directed=True)
    layers = _layers([4, 6, 3], 22)
    z_other = _features(9, 3, 23)
    budget = torch.tensor([1, 0, 2, 1, 1, 0, 3, 1, 2])
    budget = torch.minimum(budget, torch.bincount(edge_index[1], minlength=9))
    got = pot_node_compactness(
        x, edge_index, layers, z_other, max_drops=budget, method="linear", activation=activation, negative_slope=alpha
    )
    expected = _naive_linear_bound(x, edge_index, layers, z_other, budget.tolist(), alpha)
    torch.testing.assert_close(got, expected)


# ---------------------------------------------------- the official score vs a loop


def _official_line(lower, upper, alpha):
    """The official ``get_alpha_beta`` for one scalar: (slope of both lines, upper intercept)."""
    if lower >= 0:
        return 1.0, 0.0
    if upper <= 0:
        return alpha, 0.0
    return (upper - alpha * lower) / (upper - lower), (alpha - 1) * upper * lower / (upper - alpha * lower)


def _normalized(edge_index, n):
    """Dense ``Â`` of a graph, entry by entry: ``1/sqrt(d̃_i d̃_j)`` for an edge j -> i and the self-loop."""
    degree = [len(_incoming(edge_index, node)) + 1 for node in range(n)]
    a = torch.zeros(n, n, dtype=torch.float64)
    for node in range(n):
        a[node, node] = 1 / degree[node]
    for source, target in edge_index.t().tolist():
        a[target, source] = 1 / math.sqrt(degree[target] * degree[source])
    return a


def _naive_official_score(x, edge_index, layers, z_other, budget, view, nodes, alpha=0.0):
    """The official POT score, written from its description one node and one entry at a time."""
    n = x.shape[0]
    (w1, b1), (w2, b2) = [(w.detach(), b.detach()) for w, b in layers]
    degree = [len(_incoming(edge_index, node)) for node in range(n)]
    # Official box: upper 1/sqrt((d̃_i - q_i)(d̃_j - q_j)) on edges and self-loops, lower 0 but the diagonal.
    a_hi = torch.zeros(n, n, dtype=torch.float64)
    a_lo = torch.zeros(n, n, dtype=torch.float64)
    for node in range(n):
        a_hi[node, node] = 1 / (degree[node] + 1 - budget[node])
        a_lo[node, node] = 1 / (degree[node] + 1)
    for source, target in edge_index.t().tolist():
        a_hi[target, source] = 1 / math.sqrt((degree[target] + 1 - budget[target]) * (degree[source] + 1 - budget[source]))
    a_view = _normalized(view, n)

    def act(y):
        return torch.where(y >= 0, y, alpha * y)

    hidden = act(_normalized(edge_index, n) @ x @ w1.t() + b1)  # the clean first layer, whole graph
    keep = nodes
    m = len(keep)
    a_hi, a_lo, a_view = (a[keep][:, keep] for a in (a_hi, a_lo, a_view))  # cropped to the scored nodes
    xw, hw = x[keep] @ w1.t(), hidden[keep] @ w2.t()

    def box(values, bias):
        lo = torch.zeros(m, values.shape[1], dtype=torch.float64)
        hi = torch.zeros_like(lo)
        for i in range(m):
            for k in range(values.shape[1]):
                lo[i, k] = bias[k] + sum(min(a_lo[i, j] * values[j, k], a_hi[i, j] * values[j, k]) for j in range(m))
                hi[i, k] = bias[k] + sum(max(a_lo[i, j] * values[j, k], a_hi[i, j] * values[j, k]) for j in range(m))
        return lo, hi

    l1, u1 = box(xw, b1)
    l2, u2 = box(hw, b2)
    wcl = compactness_weights(z_other[keep])
    w_tilde_1 = torch.zeros(m, w1.shape[1], dtype=torch.float64)
    b_tilde_1, b_tilde_2 = [0.0] * m, [0.0] * m
    for i in range(m):
        coefficient_2 = torch.zeros(w2.shape[0], dtype=torch.float64)
        for k in range(w2.shape[0]):
            slope, intercept = _official_line(float(l2[i, k]), float(u2[i, k]), alpha)
            coefficient_2[k] = slope * wcl[i, k]
            b_tilde_2[i] += float(coefficient_2[k]) * ((intercept if wcl[i, k] < 0 else 0.0) + float(b2[k]))
        w_tilde_2 = coefficient_2 @ w2
        coefficient_1 = torch.zeros(w1.shape[0], dtype=torch.float64)
        for k in range(w1.shape[0]):
            slope, intercept = _official_line(float(l1[i, k]), float(u1[i, k]), alpha)
            coefficient_1[k] = slope * w_tilde_2[k]
            b_tilde_1[i] += float(coefficient_1[k]) * ((intercept if w_tilde_2[k] < 0 else 0.0) + float(b1[k]))
        w_tilde_1[i] = coefficient_1 @ w1
    score = []
    for i in range(m):
        total = b_tilde_2[i]
        for j in range(m):
            inner = b_tilde_1[j] + sum(float(a_view[j, l] * (x[keep[l]] @ w_tilde_1[l])) for l in range(m))
            total += float(a_view[i, j]) * inner
        score.append(total)
    return torch.tensor(score, dtype=torch.float64)


@pytest.mark.parametrize(("activation", "alpha", "subset"), [("relu", 0.0, False), ("leaky_relu", 0.25, False),
                                                            ("relu", 0.0, True)])
def test_official_score_matches_naive_loop(activation, alpha, subset):
    n = 10
    x, edge_index = _features(n, 4, 60), _random_graph(n, 0.4, 61)
    layers = _layers([4, 6, 3], 62)
    z_other = _features(n, 3, 63)
    generator = torch.Generator().manual_seed(64)
    view = edge_index[:, torch.rand(edge_index.shape[1], generator=generator) > 0.3]
    budget = edge_drop_budget(edge_index, n, 0.4, rounding="pot")
    nodes = torch.tensor([7, 1, 2, 4, 5, 9, 0]) if subset else None
    got = pot_node_compactness(x, edge_index, layers, z_other, drop_rate=0.4, rounding="pot", method="pot",
                               view_edge_index=view, nodes=nodes, activation=activation, negative_slope=alpha)
    keep = list(range(n)) if nodes is None else nodes.tolist()
    expected = _naive_official_score(x, edge_index, layers, z_other, budget.tolist(), view, keep, alpha)
    torch.testing.assert_close(got, expected)


def test_official_score_is_differentiable():
    x, edge_index = _karate()
    layers = _layers([x.shape[1], 8, 4], 65, requires_grad=True)
    z_other = _features(34, 4, 66).requires_grad_(True)
    view = edge_index[:, torch.rand(edge_index.shape[1], generator=torch.Generator().manual_seed(67)) > 0.3]
    score = pot_node_compactness(x, edge_index, layers, z_other, drop_rate=0.3, rounding="pot", method="pot",
                                 view_edge_index=view)
    pot_loss(score).backward()
    assert all(torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for layer in layers for p in layer)
    assert z_other.grad.abs().sum() > 0


def test_pot_rounding_certificate_holds_and_the_official_score_is_no_bound():
    # Every edge-drop augmentation within the official budget of a tiny undirected graph, enumerated.
    n = 7
    x, edge_index = _features(n, 3, 70), _random_graph(n, 0.55, 71)
    layers = _layers([3, 5, 4], 72)
    z_other = _features(n, 4, 73)
    budget = edge_drop_budget(edge_index, n, 0.5, rounding="pot")
    assert budget.sum() > 4 and (budget <= torch.bincount(edge_index[1], minlength=n) - 1).all()
    certificate = pot_node_compactness(x, edge_index, layers, z_other, drop_rate=0.5, rounding="pot")
    torch.testing.assert_close(certificate, pot_node_compactness(x, edge_index, layers, z_other, max_drops=budget))
    views = above = 0
    for dropped in itertools.product([False, True], repeat=edge_index.shape[1]):
        dropped = torch.tensor(dropped)
        if (torch.bincount(edge_index[1][dropped], minlength=n) > budget).any():
            continue
        views += 1
        view = edge_index[:, ~dropped]
        actual = node_compactness(_dense_forward(x, view, layers), z_other)
        assert (actual >= certificate - TOL).all()  # the sound bound holds on every view
        official = pot_node_compactness(x, edge_index, layers, z_other, drop_rate=0.5, rounding="pot",
                                        method="pot", view_edge_index=view)
        above += int((official > actual + 1e-6).sum())
    assert views > 50
    assert above > 0  # the official score exceeds the true compactness of its own view somewhere


def test_rounding_reaches_gcn_bounds():
    x, edge_index = _karate()
    layers = _layers([x.shape[1], 8, 4], 74)
    for rounding in ("ceil", "pot"):
        budget = edge_drop_budget(edge_index, 34, 0.35, rounding=rounding)
        got = gcn_bounds(x, edge_index, layers, drop_rate=0.35, rounding=rounding)
        expected = gcn_bounds(x, edge_index, layers, max_drops=budget)
        torch.testing.assert_close(got, expected)
    assert not torch.equal(edge_drop_budget(edge_index, 34, 0.35), edge_drop_budget(edge_index, 34, 0.35, rounding="pot"))


# ------------------------------------------------------------- depth and activations


def test_three_layer_prelu_without_last_activation():
    x, edge_index = _features(14, 5, 24), _random_graph(14, 0.3, 25)
    layers = _layers([5, 8, 8, 4], 26)
    slope = torch.tensor([0.25], dtype=torch.float64, requires_grad=True)  # an nn.PReLU(1).weight
    z_other = _features(14, 4, 27)
    options = dict(activation="leaky_relu", negative_slope=slope, last_activation=False)
    lower, upper = gcn_bounds(x, edge_index, layers, drop_rate=0.4, **options)
    bounds = [
        pot_node_compactness(x, edge_index, layers, z_other, drop_rate=0.4, method=m, **options) for m in METHODS
    ]
    budget = edge_drop_budget(edge_index, 14, 0.4)
    generator = torch.Generator().manual_seed(28)
    detached = [(w, b) for w, b in layers]
    for sample in range(60):
        view = _sample_view(edge_index, budget, generator, ("directed", "maximal", "undirected")[sample % 3])
        output = _dense_forward(x, view, detached, "leaky_relu", 0.25, last_activation=False)
        assert (output >= lower - TOL).all() and (output <= upper + TOL).all()
        actual = node_compactness(output, z_other)
        for bound in bounds:
            assert (actual >= bound - TOL).all()
    (grad,) = torch.autograd.grad(bounds[0].sum(), slope)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    clean = gcn_forward(x, edge_index, layers, **options)
    exact = pot_node_compactness(x, edge_index, layers, z_other, drop_rate=0.0, **options)
    torch.testing.assert_close(exact, node_compactness(clean, z_other))


def test_one_layer_bound_is_sound():
    x, edge_index = _features(10, 4, 29), _random_graph(10, 0.4, 30)
    layers = _layers([4, 3], 31)
    z_other = _features(10, 3, 32)
    bound = pot_node_compactness(x, edge_index, layers, z_other, drop_rate=0.5, method="linear")
    budget = edge_drop_budget(edge_index, 10, 0.5)
    generator = torch.Generator().manual_seed(33)
    for sample in range(60):
        view = _sample_view(edge_index, budget, generator, ("directed", "maximal")[sample % 2])
        actual = node_compactness(_dense_forward(x, view, layers), z_other)
        assert (actual >= bound - TOL).all()


def test_node_subset_uses_subset_negatives_and_whole_graph():
    x, edge_index = _karate()
    layers = _layers([x.shape[1], 8, 4], 34)
    z_other = _features(x.shape[0], 4, 35)
    nodes = torch.tensor([3, 0, 17, 25, 30, 8])
    lower, upper = gcn_bounds(x, edge_index, layers, drop_rate=0.3)
    interval = pot_node_compactness(x, edge_index, layers, z_other, drop_rate=0.3, nodes=nodes, method="interval")
    torch.testing.assert_close(interval, node_compactness_lower_bound((lower[nodes], upper[nodes]), z_other[nodes]))
    best = pot_node_compactness(x, edge_index, layers, z_other, drop_rate=0.3, nodes=nodes)
    budget = edge_drop_budget(edge_index, x.shape[0], 0.3)
    generator = torch.Generator().manual_seed(36)
    for sample in range(40):
        view = _sample_view(edge_index, budget, generator, ("maximal", "undirected")[sample % 2])
        output = _dense_forward(x, view, layers)
        assert (node_compactness(output[nodes], z_other[nodes]) >= best - TOL).all()


# -------------------------------------------------------------------- optimisation


def test_bound_is_differentiable_and_training_raises_it():
    x, edge_index = _karate()
    layers = _layers([x.shape[1], 16, 8], 37, requires_grad=True)
    z_other = _features(x.shape[0], 8, 38)
    parameters = [tensor for layer in layers for tensor in layer]
    optimizer = torch.optim.Adam(parameters, lr=0.02)

    def bound():
        return pot_node_compactness(x, edge_index, layers, z_other, drop_rate=0.3)

    start = float(bound().detach().mean())
    for _ in range(15):
        optimizer.zero_grad()
        loss = pot_loss(bound())
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in parameters)
        optimizer.step()
    assert float(bound().detach().mean()) > start + 0.1


def test_node_compactness_matches_loop():
    z, z_other = _features(6, 3, 39), _features(6, 3, 40)
    expected = []
    for i in range(6):
        positive = z_other[i] / z_other[i].norm()
        negatives = [z_other[j] / z_other[j].norm() for j in range(6) if j != i]
        expected.append(float(z[i] @ (positive - sum(negatives) / 5)))
    torch.testing.assert_close(node_compactness(z, z_other), torch.tensor(expected, dtype=torch.float64))


# --------------------------------------------------------------------------- errors


def test_errors_name_what_was_expected():
    x, edge_index = _features(5, 3, 41), _random_graph(5, 0.6, 42)
    layers = _layers([3, 4, 2], 43)
    z_other = _features(5, 2, 44)
    with pytest.raises(ValueError, match=r"layers\[1\]: expected weight of shape \[out, 4\]"):
        gcn_forward(x, edge_index, [layers[0], (torch.zeros(2, 3, dtype=torch.float64), None)])
    with pytest.raises(ValueError, match="exactly one of drop_rate and max_drops, got neither"):
        gcn_bounds(x, edge_index, layers)
    with pytest.raises(ValueError, match="exactly one of drop_rate and max_drops, got both"):
        gcn_bounds(x, edge_index, layers, drop_rate=0.2, max_drops=torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="max_drops: expected non-negative"):
        gcn_bounds(x, edge_index, layers, max_drops=-torch.ones(5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"drop_rate: expected a float in \[0, 1\]"):
        gcn_bounds(x, edge_index, layers, drop_rate=1.5)
    with pytest.raises(ValueError, match="no duplicate edges"):
        gcn_forward(x, torch.cat([edge_index, edge_index[:, :1]], dim=1), layers)
    with pytest.raises(ValueError, match="activation: expected one of relu, leaky_relu"):
        gcn_forward(x, edge_index, layers, activation="tanh")
    with pytest.raises(ValueError, match=r"negative_slope: expected a value in \[0, 1\]"):
        gcn_forward(x, edge_index, layers, activation="leaky_relu", negative_slope=-0.1)
    with pytest.raises(ValueError, match="z_other: expected 5 rows"):
        pot_node_compactness(x, edge_index, layers, z_other[:4], drop_rate=0.2)
    with pytest.raises(ValueError, match="nodes: expected distinct"):
        pot_node_compactness(x, edge_index, layers, z_other, drop_rate=0.2, nodes=torch.tensor([0, 0]))
    existing = set(map(tuple, edge_index.t().tolist()))
    new_edge = next([s, t] for s in range(5) for t in range(5) if s != t and (s, t) not in existing)
    with_new_edge = torch.cat([edge_index, torch.tensor(new_edge).view(2, 1)], dim=1)
    with pytest.raises(ValueError, match="view_edge_index: expected a subgraph"):
        pot_node_compactness(x, edge_index, layers, z_other, drop_rate=0.2, view_edge_index=with_new_edge)
    with pytest.raises(ValueError, match="view_edge_index: expected method"):
        pot_node_compactness(
            x, edge_index, layers, z_other, drop_rate=0.2, method="interval", view_edge_index=edge_index
        )
    with pytest.raises(ValueError, match="view_edge_index: method 'pot' scores the sampled view"):
        pot_node_compactness(x, edge_index, layers, z_other, drop_rate=0.2, method="pot")
    with pytest.raises(ValueError, match="method 'pot': the official score is for a 2-layer GCN"):
        pot_node_compactness(x, edge_index, layers[:1], z_other[:, :4], drop_rate=0.2, method="pot",
                             view_edge_index=edge_index)
    with pytest.raises(ValueError, match="bounds: expected lower <= upper"):
        node_compactness_lower_bound((z_other + 1, z_other), z_other)
    with pytest.raises(ValueError, match=r"rounding: expected one of ceil, pot"):
        edge_drop_budget(edge_index, 5, 0.2, rounding="floor")

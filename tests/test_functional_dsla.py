"""D-SLA losses against per-graph loops, the edit-distance zero set, and receptive-field counts vs BFS."""

import itertools
import math
from collections import deque

import pytest
import torch
from torch_geometric.nn import GCNConv, GINConv

from contrastkit.functional.dsla import (
    dsla_loss,
    edit_distance_loss,
    graph_discrimination_loss,
    margin_loss,
    other_graph_distances,
    perturbation_distances,
    receptive_field_edit_counts,
)


def _randn(*shape, seed=0, requires_grad=False):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).requires_grad_(requires_grad)


def _edits(batch, count, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(1, 6, (batch, count), generator=generator)


def _distance(a, b):
    return torch.sqrt(sum((a[k] - b[k]) ** 2 for k in range(a.shape[0])))


# ---------------------------------------------------------------- naive references


def _naive_discrimination(scores):
    rows = []
    for row in scores:
        denominator = sum(torch.exp(value) for value in row)
        rows.append(-torch.log(torch.exp(row[0]) / denominator))
    return torch.stack(rows)


def _naive_edit(distances, edits):
    rows = []
    for d, e in zip(distances, edits):
        terms = [(d[i] / e[i] - d[j] / e[j]) ** 2 for i in range(len(d)) for j in range(i + 1, len(d))]
        rows.append(sum(terms) / len(terms))
    return torch.stack(rows)


def _naive_margin(distances, other, margin):
    rows = []
    for d, d_other in zip(distances, other):
        terms = [torch.clamp(margin + d[i] - d_other[j], min=0) for i in range(len(d)) for j in range(len(d_other))]
        rows.append(sum(terms) / len(terms))
    return torch.stack(rows)


def _naive_dsla(h0, h, scores, edits, lambda1, lambda2, margin, strong):
    batch, count = h.shape[:2]
    distances = torch.stack([torch.stack([_distance(h0[b], h[b, i]) for i in range(count)]) for b in range(batch)])
    other = torch.stack(
        [torch.stack([_distance(h0[b], h0[c]) for c in range(batch) if c != b]) for b in range(batch)]
    )
    ordinary = distances[:, : count - 1] if strong else distances
    return (
        _naive_discrimination(scores).mean()
        + lambda1 * _naive_edit(distances, edits.double()).mean()
        + lambda2 * _naive_margin(ordinary, other, margin).mean()
    )


# ------------------------------------------------------------------------ distances


def test_distances_match_loops():
    h0, h = _randn(5, 4, seed=1), _randn(5, 3, 4, seed=2)
    expected = torch.tensor([[float(_distance(h0[b], h[b, i])) for i in range(3)] for b in range(5)])
    torch.testing.assert_close(perturbation_distances(h0, h), expected.double())
    other = [[float(_distance(h0[b], h0[c])) for c in range(5) if c != b] for b in range(5)]
    torch.testing.assert_close(other_graph_distances(h0), torch.tensor(other, dtype=torch.float64))


# --------------------------------------------------------------------------- losses


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_graph_discrimination_matches_loop(reduction):
    scores = _randn(6, 4, seed=3, requires_grad=True)
    got = graph_discrimination_loss(scores, reduction=reduction)
    rows = _naive_discrimination(scores)
    expected = {"mean": rows.mean(), "sum": rows.sum(), "none": rows}[reduction]
    torch.testing.assert_close(got, expected)
    probe = torch.linspace(0.5, 1.5, 6, dtype=torch.float64) if reduction == "none" else 1.0
    (grad,) = torch.autograd.grad((got * probe).sum(), scores)
    (expected_grad,) = torch.autograd.grad((expected * probe).sum(), scores)
    torch.testing.assert_close(grad, expected_grad)
    # The original first: a dominant column 0 drives the loss to zero, a dominant column 1 does not.
    assert float(graph_discrimination_loss(torch.tensor([[50.0, 0.0, 0.0]]))) < 1e-12
    assert float(graph_discrimination_loss(torch.tensor([[0.0, 50.0, 0.0]]))) > 40


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_edit_distance_loss_matches_loop(reduction):
    distances = _randn(5, 4, seed=4).abs().requires_grad_(True)
    edits = _edits(5, 4, seed=5)
    got = edit_distance_loss(distances, edits, reduction=reduction)
    rows = _naive_edit(distances, edits.double())
    expected = {"mean": rows.mean(), "sum": rows.sum(), "none": rows}[reduction]
    torch.testing.assert_close(got, expected)
    (grad,) = torch.autograd.grad(got.sum(), distances)
    (expected_grad,) = torch.autograd.grad(expected.sum(), distances)
    torch.testing.assert_close(grad, expected_grad)


def test_edit_distance_loss_equals_official_pairwise_mse():
    # The official code: MSE between ratio[:, idx1] and ratio[:, idx2] over the pairs i < j of all graphs.
    distances, edits = _randn(4, 5, seed=6).abs(), _edits(4, 5, seed=7).double()
    ratio = distances / edits
    pairs = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    first, second = zip(*pairs)
    official = torch.nn.functional.mse_loss(ratio[:, list(first)], ratio[:, list(second)])
    torch.testing.assert_close(edit_distance_loss(distances, edits), official)


def test_edit_distance_loss_is_zero_iff_distances_are_proportional():
    generator = torch.Generator().manual_seed(8)
    for trial in range(50):
        batch, count = 1 + trial % 4, 2 + trial % 5
        edits = torch.randint(1, 9, (batch, count), generator=generator).double()
        scale = torch.rand(batch, 1, generator=generator, dtype=torch.float64) * 3 + 0.1
        proportional = scale * edits
        assert float(edit_distance_loss(proportional, edits)) < 1e-24
        # Moving one perturbation off the line makes the loss positive.
        bent = proportional.clone()
        row, column = trial % batch, trial % count
        bent[row, column] *= 1.0 + 0.1 * (1 + trial % 3)
        assert float(edit_distance_loss(bent, edits)) > 1e-6
        # Random distances are (almost surely) not proportional.
        random = torch.rand(batch, count, generator=generator, dtype=torch.float64) + 0.1
        is_proportional = torch.allclose(random / edits, (random / edits)[:, :1].expand(-1, count))
        assert (float(edit_distance_loss(random, edits)) < 1e-20) == is_proportional


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_margin_loss_matches_loop(reduction):
    distances = _randn(4, 3, seed=9).abs().requires_grad_(True)
    other = (_randn(4, 5, seed=10).abs() * 3).requires_grad_(True)
    got = margin_loss(distances, other, margin=2.0, reduction=reduction)
    rows = _naive_margin(distances, other, 2.0)
    expected = {"mean": rows.mean(), "sum": rows.sum(), "none": rows}[reduction]
    torch.testing.assert_close(got, expected)
    grads = torch.autograd.grad(got.sum(), (distances, other))
    expected_grads = torch.autograd.grad(expected.sum(), (distances, other))
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad)
    # Far-away other graphs: no loss.
    assert float(margin_loss(distances.detach(), other.detach() + 100.0, margin=2.0)) == 0.0


@pytest.mark.parametrize("strong", [False, True])
def test_dsla_loss_matches_loop(strong):
    h0 = _randn(5, 6, seed=11, requires_grad=True)
    h = _randn(5, 3, 6, seed=12, requires_grad=True)
    scores = _randn(5, 4, seed=13, requires_grad=True)
    edits = _edits(5, 3, seed=14)
    loss, parts = dsla_loss(h0, h, scores, edits, lambda1=0.7, lambda2=0.5, margin=5.0, strong_perturbation=strong)
    expected = _naive_dsla(h0, h, scores, edits, 0.7, 0.5, 5.0, strong)
    torch.testing.assert_close(loss, expected)
    grads = torch.autograd.grad(loss, (h0, h, scores))
    expected_grads = torch.autograd.grad(expected, (h0, h, scores))
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad)
    recombined = parts["discrimination"] + 0.7 * parts["edit_distance"] + 0.5 * parts["margin"]
    torch.testing.assert_close(recombined, loss.detach())
    accuracy = sum(int(scores[b].argmax() == 0) for b in range(5)) / 5
    assert float(parts["discrimination_accuracy"]) == pytest.approx(accuracy)
    assert all(not value.requires_grad for value in parts.values())


def test_strong_perturbation_is_left_out_of_the_margin_only():
    h0, h, scores, edits = _randn(4, 3, seed=15), _randn(4, 3, 3, seed=16), _randn(4, 4, seed=17), _edits(4, 3)
    far = h.clone()
    far[:, -1] = 1000.0  # a strong perturbation far away would dominate the margin term
    _, with_strong = dsla_loss(h0, far, scores, edits, strong_perturbation=True)
    _, reference = dsla_loss(h0, h[:, :2], scores[:, :3], edits[:, :2])
    torch.testing.assert_close(with_strong["margin"], reference["margin"])
    _, counted = dsla_loss(h0, far, scores, edits)
    assert float(counted["margin"]) > float(with_strong["margin"]) + 100


# --------------------------------------------------------------------------- errors


def test_shape_errors_name_what_was_expected():
    h0, h, scores, edits = _randn(4, 3), _randn(4, 2, 3), _randn(4, 3), _edits(4, 2)
    with pytest.raises(ValueError, match=r"h_perturbed: expected shape \[4, n >= 1, 3\]"):
        dsla_loss(h0, _randn(3, 2, 3), scores, edits)
    with pytest.raises(ValueError, match=r"h_perturbed: expected shape \[B, n, D\]"):
        perturbation_distances(h0, _randn(4, 3))
    with pytest.raises(ValueError, match=r"scores: expected shape \[4, 3\] \(the original and 2 perturbations\)"):
        dsla_loss(h0, h, _randn(4, 2), edits)
    with pytest.raises(ValueError, match=r"scores: expected 4 rows"):
        dsla_loss(h0, h, _randn(3, 3), edits)
    with pytest.raises(ValueError, match=r"edit_distances: expected shape \(4, 2\)"):
        dsla_loss(h0, h, scores, _edits(4, 3))
    with pytest.raises(ValueError, match="edit_distances: expected finite values > 0"):
        edit_distance_loss(_randn(4, 2).abs(), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="distances: expected at least 1 row and 2 column"):
        edit_distance_loss(_randn(4, 1).abs(), torch.ones(4, 1))
    with pytest.raises(ValueError, match="other_distances: expected 4 rows"):
        margin_loss(_randn(4, 2), _randn(3, 2))
    with pytest.raises(ValueError, match="margin: expected a finite float >= 0"):
        margin_loss(_randn(4, 2), _randn(4, 2), margin=-1.0)
    with pytest.raises(ValueError, match="scores: expected at least 1 row and 2 column"):
        graph_discrimination_loss(_randn(4, 1))
    with pytest.raises(ValueError, match="h0: expected at least 2 rows"):
        dsla_loss(_randn(1, 3), _randn(1, 2, 3), _randn(1, 3), _edits(1, 2))
    with pytest.raises(ValueError, match="reduction: expected one of"):
        margin_loss(_randn(4, 2), _randn(4, 2), reduction="max")


# ---------------------------------------------------------- receptive-field counts


def _random_edges(num_nodes, count, seed):
    generator = torch.Generator().manual_seed(seed)
    pairs = torch.randint(0, num_nodes, (2, count * 2), generator=generator)
    pairs = pairs[:, pairs[0] != pairs[1]]
    return torch.unique(pairs, dim=1)[:, :count]


def _bfs_counts(edited, edge_index, num_nodes, hops):
    """For each s: edited edges whose target reaches s within `hops` steps (BFS from each target)."""
    successors = {node: [] for node in range(num_nodes)}
    for source, target in edge_index.t().tolist():
        successors[source].append(target)
    counts = [0] * num_nodes
    for _, start in edited.t().tolist():
        seen = {start: 0}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            if seen[node] == hops:
                continue
            for nxt in successors[node]:
                if nxt not in seen:
                    seen[nxt] = seen[node] + 1
                    queue.append(nxt)
        for node in seen:
            counts[node] += 1
    return counts


@pytest.mark.parametrize(("num_layers", "degree_normalized"), list(itertools.product([1, 2, 3], [False, True])))
def test_receptive_field_counts_match_bfs(num_layers, degree_normalized):
    edge_index = _random_edges(25, 45, seed=18)
    edited = torch.cat([_random_edges(25, 12, seed=19), torch.tensor([[3, 4], [7, 7]])], dim=1)  # repeated target 7
    hops = num_layers - 1 + int(degree_normalized)
    expected = _bfs_counts(edited, edge_index, 25, hops)
    got = receptive_field_edit_counts(edited, edge_index, 25, num_layers, degree_normalized=degree_normalized)
    assert got.tolist() == expected


def _toggle(edge_index, edge):
    """Add ``edge`` if absent, remove it if present."""
    present = (edge_index[0] == edge[0]) & (edge_index[1] == edge[1])
    if present.any():
        return edge_index[:, ~present]
    return torch.cat([edge_index, torch.tensor(edge).view(2, 1)], dim=1)


@pytest.mark.parametrize("conv", ["gin", "gcn"])
def test_uncounted_edits_leave_the_output_unchanged(conv):
    torch.manual_seed(20)
    num_nodes, width = 18, 6
    edge_index = _random_edges(num_nodes, 30, seed=21)
    x = torch.randn(num_nodes, width, dtype=torch.float64)
    if conv == "gin":
        layers = [GINConv(torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.Tanh())).double() for _ in "ab"]
    else:
        layers = [GCNConv(width, width).double() for _ in "ab"]

    def forward(edges):
        h = x
        for layer in layers:
            h = torch.tanh(layer(h, edges))
        return h

    clean = forward(edge_index)
    changed_counted = 0
    candidates = _random_edges(num_nodes, 20, seed=22).t().tolist() + edge_index[:, :10].t().tolist()
    for edge in candidates:
        counted = receptive_field_edit_counts(
            torch.tensor(edge).view(2, 1), edge_index, num_nodes, 2, degree_normalized=conv == "gcn"
        ).bool()
        moved = (forward(_toggle(edge_index, edge)) - clean).abs().amax(1) > 1e-12
        assert not (moved & ~counted).any()  # an edit outside the receptive field changes nothing
        changed_counted += int((moved & counted).sum())
    assert changed_counted > 20
    if conv == "gcn":
        # Without the extra hop, GCN's degree normalisation leaks past the count: the flag is needed.
        leaked = 0
        for edge in candidates:
            counted = receptive_field_edit_counts(torch.tensor(edge).view(2, 1), edge_index, num_nodes, 2).bool()
            moved = (forward(_toggle(edge_index, edge)) - clean).abs().amax(1) > 1e-12
            leaked += int((moved & ~counted).sum())
        assert leaked > 0


def test_receptive_field_errors():
    edge_index = torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="num_layers: expected an int >= 1"):
        receptive_field_edit_counts(edge_index, edge_index, 3, 0)
    with pytest.raises(ValueError, match=r"edited: expected node ids in \[0, 3\)"):
        receptive_field_edit_counts(torch.tensor([[0], [5]]), edge_index, 3)
    with pytest.raises(ValueError, match=r"edited: expected shape \[2, K\]"):
        receptive_field_edit_counts(torch.tensor([0, 1]), edge_index, 3)
    assert receptive_field_edit_counts(torch.zeros(2, 0, dtype=torch.long), edge_index, 3).tolist() == [0, 0, 0]
    assert math.isclose(float(receptive_field_edit_counts(torch.tensor([[2], [0]]), edge_index, 3, 3).sum()), 3)

"""Tests for graph views: edge/feature/node augmentations, PPR diffusion, D-SLA edits."""

from __future__ import annotations

import math

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.utils import is_undirected, to_undirected

from contrastkit.views.graph import (
    GRAPH_VIEW_PRESETS,
    GraphAugment,
    PPRDiffusion,
    build_graph_views,
    drop_edges,
    drop_nodes,
    graph_view_preset_names,
    mask_features,
    perturb_edges,
    ppr_diffusion,
    random_walk_subgraph,
)


def random_graph(num_nodes: int, num_edges: int, seed: int = 0, *, features: int = 8) -> Data:
    """An undirected graph (both directions stored): a ring (connected) plus random chords."""
    generator = torch.Generator().manual_seed(seed)
    ring = torch.stack([torch.arange(num_nodes), (torch.arange(num_nodes) + 1) % num_nodes])
    chords = torch.randint(0, num_nodes, (2, num_edges), generator=generator)
    edges = torch.cat([ring, chords[:, chords[0] != chords[1]]], dim=1)
    edge_index = to_undirected(edges, num_nodes=num_nodes)
    x = torch.randn(num_nodes, features, generator=generator) + 5.0  # no zero entries
    return Data(x=x, edge_index=edge_index, num_nodes=num_nodes)


def edge_set(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return {(int(u), int(v)) for u, v in edge_index.t()}


def binomial_ok(count: int, trials: int, p: float, sigmas: float = 5.0) -> bool:
    return abs(count - trials * p) <= sigmas * math.sqrt(trials * p * (1 - p)) + 1


def connected_within(nodes: set[int], edge_index: torch.Tensor) -> bool:
    """Breadth-first search over the original edges, restricted to ``nodes``."""
    neighbours: dict[int, set[int]] = {n: set() for n in nodes}
    for u, v in edge_index.t().tolist():
        if u in nodes and v in nodes:
            neighbours[u].add(v)
    start = next(iter(nodes))
    seen, frontier = {start}, [start]
    while frontier:
        node = frontier.pop()
        for other in neighbours[node] - seen:
            seen.add(other)
            frontier.append(other)
    return seen == nodes


# -- drop_edges / mask_features ---------------------------------------------------------


def test_drop_edges_keeps_a_subset_in_order_at_rate_p():
    edge_index = torch.randint(0, 500, (2, 20000), generator=torch.Generator().manual_seed(1))
    kept_edges, kept = drop_edges(edge_index, 0.3, generator=torch.Generator().manual_seed(2))
    assert kept.dtype == torch.bool and kept.shape == (20000,)
    assert torch.equal(kept_edges, edge_index[:, kept])
    assert binomial_ok(int((~kept).sum()), 20000, 0.3)
    same, _ = drop_edges(edge_index, 0.3, generator=torch.Generator().manual_seed(2))
    other, _ = drop_edges(edge_index, 0.3, generator=torch.Generator().manual_seed(3))
    assert torch.equal(same, kept_edges) and not torch.equal(other, kept_edges)
    none_dropped, all_kept = drop_edges(edge_index, 0.0)
    assert torch.equal(none_dropped, edge_index) and bool(all_kept.all())


def test_drop_edges_force_undirected_keeps_symmetry():
    graph = random_graph(300, 3000, seed=3)
    pairs = graph.edge_index.shape[1] // 2
    kept_edges, kept = drop_edges(
        graph.edge_index, 0.4, force_undirected=True, generator=torch.Generator().manual_seed(0)
    )
    assert is_undirected(kept_edges, num_nodes=300)
    assert binomial_ok(pairs - kept_edges.shape[1] // 2, pairs, 0.4)
    # plain dropping breaks symmetry on a graph this size
    plain, _ = drop_edges(graph.edge_index, 0.4, generator=torch.Generator().manual_seed(0))
    assert not is_undirected(plain, num_nodes=300)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, True])
def test_drop_edges_rejects_bad_rate(p):
    with pytest.raises(ValueError, match="p"):
        drop_edges(torch.zeros(2, 3, dtype=torch.long), p)


def test_drop_edges_rejects_bad_edge_index():
    with pytest.raises(ValueError, match=r"\[2, E\]"):
        drop_edges(torch.zeros(3, 3, dtype=torch.long), 0.1)
    with pytest.raises(ValueError, match="torch.long"):
        drop_edges(torch.zeros(2, 3), 0.1)


def test_mask_features_column_mode_zeroes_whole_columns_at_rate_p():
    x = torch.randn(50, 4000, generator=torch.Generator().manual_seed(0)) + 5.0
    original = x.clone()
    out = mask_features(x, 0.3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(x, original)
    zero_columns = (out == 0).all(dim=0)
    untouched_columns = (out == x).all(dim=0)
    assert bool((zero_columns | untouched_columns).all())  # every column is all-zero or intact
    assert binomial_ok(int(zero_columns.sum()), 4000, 0.3)


def test_mask_features_entry_mode_masks_entries_independently():
    x = torch.randn(200, 100, generator=torch.Generator().manual_seed(0)) + 5.0
    out = mask_features(x, 0.25, mode="entry", generator=torch.Generator().manual_seed(1))
    masked = out == 0
    assert bool(((out == x) | masked).all())
    assert binomial_ok(int(masked.sum()), 20000, 0.25)
    assert not bool(masked.all(dim=0).any())  # no whole column (that would be column mode)
    with pytest.raises(ValueError, match="column"):
        mask_features(x, 0.2, mode="row")
    with pytest.raises(ValueError, match=r"\[N, F\]"):
        mask_features(torch.ones(5), 0.2)


# -- drop_nodes / random_walk_subgraph ---------------------------------------------------


def small_batch() -> Batch:
    graphs = [random_graph(n, 2 * n, seed=n) for n in (10, 23, 7, 40)]
    for graph in graphs:
        graph.edge_weight = torch.rand(graph.edge_index.shape[1])
    return Batch.from_data_list(graphs)


def test_drop_nodes_isolates_exactly_the_dropped_nodes_per_graph():
    batch = small_batch()
    batch.edge_weight = torch.arange(batch.edge_index.shape[1], dtype=torch.float)  # edge ids
    view = drop_nodes(batch, 0.3, generator=torch.Generator().manual_seed(0))
    assert view.num_nodes == batch.num_nodes and view.x.shape == batch.x.shape
    kept = view.node_mask
    for graph, size in enumerate((10, 23, 7, 40)):
        assert int((~kept[batch.batch == graph]).sum()) == int(size * 0.3)
    expected = [
        [u, v] for u, v in batch.edge_index.t().tolist() if bool(kept[u]) and bool(kept[v])
    ]  # slow reference: edges between kept nodes
    assert view.edge_index.t().tolist() == expected
    assert torch.equal(batch.edge_index[:, view.edge_weight.long()], view.edge_index)
    assert bool((view.x[~kept] == 0).all()) and torch.equal(view.x[kept], batch.x[kept])
    assert torch.equal(view.batch, batch.batch) and view.num_graphs == 4


def test_random_walk_subgraph_keeps_a_connected_share():
    graph = random_graph(120, 60, seed=5)
    for seed in range(4):
        view = random_walk_subgraph(graph, 0.4, generator=torch.Generator().manual_seed(seed))
        nodes = set(torch.nonzero(view.node_mask).flatten().tolist())
        assert len(nodes) == int(120 * 0.4)
        assert connected_within(nodes, graph.edge_index)
        assert bool((view.x[~view.node_mask] == 0).all())
        assert edge_set(view.edge_index) == {(u, v) for u, v in edge_set(graph.edge_index) if u in nodes and v in nodes}


def test_random_walk_subgraph_per_graph_in_a_batch():
    batch = small_batch()
    view = random_walk_subgraph(batch, 0.5, num_walkers=2, generator=torch.Generator().manual_seed(0))
    for graph, size in enumerate((10, 23, 7, 40)):
        nodes = set(torch.nonzero(view.node_mask & (batch.batch == graph)).flatten().tolist())
        assert len(nodes) == max(1, int(size * 0.5))
        assert connected_within(nodes, batch.edge_index)


def test_random_walk_subgraph_stops_in_a_small_component_and_honours_walk_length():
    # two components: a triangle and a 30-node ring; whichever holds the start, the set stays inside it
    triangle = torch.tensor([[0, 1, 2], [1, 2, 0]])
    ring = torch.stack([torch.arange(3, 33), torch.arange(4, 34) % 30 + 3])
    edge_index = to_undirected(torch.cat([triangle, ring], dim=1), num_nodes=33)
    graph = Data(x=torch.ones(33, 2), edge_index=edge_index)
    for seed in range(6):
        view = random_walk_subgraph(graph, 0.9, generator=torch.Generator().manual_seed(seed))
        nodes = set(torch.nonzero(view.node_mask).flatten().tolist())
        assert nodes <= {0, 1, 2} or nodes <= set(range(3, 33))
        assert connected_within(nodes, edge_index)
    start_only = random_walk_subgraph(graph, 0.9, walk_length=0)
    assert int(start_only.node_mask.sum()) == 1
    with pytest.raises(ValueError, match="fraction"):
        random_walk_subgraph(graph, 0.0)


# -- PPR diffusion -------------------------------------------------------------------------


def dense_ppr(edge_index: torch.Tensor, weight: torch.Tensor | None, num_nodes: int, alpha: float) -> torch.Tensor:
    """MVGRL's closed form alpha (I - (1 - alpha) D^-1/2 (A + I) D^-1/2)^-1, as [target, source]."""
    adjacency = torch.zeros(num_nodes, num_nodes, dtype=torch.float64)
    values = torch.ones(edge_index.shape[1], dtype=torch.float64) if weight is None else weight.double()
    adjacency.index_put_((edge_index[1], edge_index[0]), values, accumulate=True)
    adjacency += torch.eye(num_nodes, dtype=torch.float64)
    inverse_sqrt = adjacency.sum(dim=1).rsqrt()
    transition = inverse_sqrt[:, None] * adjacency * inverse_sqrt[None, :]
    return alpha * torch.linalg.inv(torch.eye(num_nodes, dtype=torch.float64) - (1 - alpha) * transition)


def diffusion_matrix(view: Data, num_nodes: int) -> torch.Tensor:
    dense = torch.zeros(num_nodes, num_nodes, dtype=torch.float64)
    dense[view.edge_index[1], view.edge_index[0]] = view.edge_weight.double()
    return dense


@pytest.mark.parametrize("weighted", [False, True])
def test_ppr_power_iteration_matches_the_dense_closed_form(weighted):
    graph = random_graph(15, 20, seed=7)
    if weighted:
        graph.edge_weight = torch.rand(graph.edge_index.shape[1], generator=torch.Generator().manual_seed(0)) + 0.5
        graph.edge_weight = to_undirected(graph.edge_index, graph.edge_weight, reduce="max")[1]
    expected = dense_ppr(graph.edge_index, graph.get("edge_weight"), 15, 0.2)
    view = ppr_diffusion(graph, 0.2, top_k=None, iterations=120)
    assert torch.allclose(diffusion_matrix(view, 15), expected, atol=1e-5)
    # few steps: the truncated series, whose missing tail is at most (1 - alpha)^(K + 1)
    short = diffusion_matrix(ppr_diffusion(graph, 0.2, top_k=None, iterations=3), 15)
    gap = (expected - short).abs().max().item()
    assert 1e-4 < gap <= 0.8**4 + 1e-6


def test_ppr_top_k_keeps_k_strongest_sources_per_node():
    graph = random_graph(60, 90, seed=8)
    graph.y = torch.arange(60)
    graph.e_id = torch.arange(graph.edge_index.shape[1])
    exact = dense_ppr(graph.edge_index, None, 60, 0.2)
    view = ppr_diffusion(graph, 0.2, top_k=6, iterations=30)
    assert torch.equal(torch.bincount(view.edge_index[1], minlength=60), torch.full((60,), 6))
    assert bool((view.edge_weight > 0).all())
    exact_top = exact.topk(6, dim=1).indices
    overlap = sum(
        len(set(exact_top[i].tolist()) & set(view.edge_index[0, view.edge_index[1] == i].tolist())) for i in range(60)
    )
    assert overlap >= 0.9 * 60 * 6
    assert torch.equal(view.y, graph.y) and torch.equal(view.x, graph.x) and "e_id" not in view
    assert torch.equal(PPRDiffusion(0.2, top_k=6, iterations=30)(graph).edge_index, view.edge_index)
    with pytest.raises(ValueError, match="alpha"):
        ppr_diffusion(graph, 1.0)


# -- D-SLA's perturbation ------------------------------------------------------------------


def test_perturb_edges_directed_edits_are_the_symmetric_difference():
    edge_index = torch.unique(torch.randint(0, 40, (2, 300), generator=torch.Generator().manual_seed(0)), dim=1)
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    perturbed, edited = perturb_edges(edge_index, 40, 0.2, generator=torch.Generator().manual_seed(1))
    before, after = edge_set(edge_index), edge_set(perturbed)
    assert perturbed.shape == edge_index.shape and len(after) == perturbed.shape[1]  # same count, no duplicates
    assert edited.shape[1] == 2 * int(0.2 * edge_index.shape[1])
    assert edge_set(edited) == before ^ after and len(edge_set(edited)) == edited.shape[1]
    assert all(u != v for u, v in after - before)


def test_perturb_edges_undirected_edits_pairs_symmetrically():
    graph = random_graph(50, 80, seed=2)
    perturbed, edited = perturb_edges(
        graph.edge_index, 50, 0.3, undirected=True, generator=torch.Generator().manual_seed(0)
    )
    before, after = edge_set(graph.edge_index), edge_set(perturbed)
    assert is_undirected(perturbed, num_nodes=50) and perturbed.shape == graph.edge_index.shape
    assert edge_set(edited) == before ^ after
    assert edited.shape[1] == 4 * int(0.3 * graph.edge_index.shape[1] // 2)


def test_perturb_edges_rejects_bad_input():
    directed = torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="both directions"):
        perturb_edges(directed, 3, 0.5, undirected=True)
    with pytest.raises(ValueError, match="duplicate"):
        perturb_edges(torch.tensor([[0, 0], [1, 1]]), 3, 0.5)
    complete = torch.tensor(
        [[u for u in range(4) for v in range(4) if u != v], [v for u in range(4) for v in range(4) if u != v]]
    )
    with pytest.raises(ValueError, match="non|not edges"):
        perturb_edges(complete, 4, 0.5)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        perturb_edges(torch.tensor([[0], [3]]), 3, 0.5)


# -- modules and presets -------------------------------------------------------------------


def node_batch() -> Data:
    graph = random_graph(80, 200, seed=4)
    graph.edge_weight = torch.arange(graph.edge_index.shape[1], dtype=torch.float)  # edge ids
    graph.e_id = torch.arange(graph.edge_index.shape[1]) + 1000
    graph.y = torch.arange(80) % 3
    graph.n_id = torch.arange(80) + 500
    graph.batch_size = 16
    return graph


def test_graph_augment_leaves_input_untouched_and_carries_attributes():
    data = node_batch()
    snapshot = {key: value.clone() for key, value in data.items() if isinstance(value, torch.Tensor)}
    view = GraphAugment(edge_drop=0.3, feature_mask=0.5, node_drop=0.2, generator=torch.Generator().manual_seed(0))
    out = view(data)
    assert out is not data
    for key, value in snapshot.items():
        assert torch.equal(data[key], value), key
    assert "node_mask" not in data
    assert out.batch_size == 16 and torch.equal(out.y, data.y) and torch.equal(out.n_id, data.n_id)
    assert out.x.shape == data.x.shape and out.num_nodes == data.num_nodes
    ids = out.edge_weight.long()
    assert torch.equal(data.edge_index[:, ids], out.edge_index) and torch.equal(out.e_id, ids + 1000)
    assert out.edge_index.shape[1] < data.edge_index.shape[1]
    kept_rows = out.x[out.node_mask]
    assert bool(((kept_rows == 0).all(dim=0) | (kept_rows == data.x[out.node_mask]).all(dim=0)).all())
    identity = GraphAugment()(data)
    assert torch.equal(identity.edge_index, data.edge_index) and torch.equal(identity.x, data.x)


def test_graphcl_preset_applies_one_node_view_per_graph():
    batch = small_batch()
    view_a, view_b = build_graph_views("graphcl", generator=torch.Generator().manual_seed(0))
    saw = set()
    for _ in range(6):
        out = view_a(batch)
        # sizes 23 and 7 tell the views apart: node dropping keeps n - floor(0.2 n), the subgraph floor(0.8 n)
        for graph, size in enumerate((10, 23, 7, 40)):
            nodes = set(torch.nonzero(out.node_mask & (batch.batch == graph)).flatten().tolist())
            assert len(nodes) in (size - int(size * 0.2), int(size * 0.8))
            if len(nodes) == int(size * 0.8):
                assert connected_within(nodes, batch.edge_index)
            if size in (23, 7):
                saw.add("subgraph" if len(nodes) == int(size * 0.8) else "drop")
    assert saw == {"drop", "subgraph"}


def test_build_graph_views_presets_and_overrides():
    assert graph_view_preset_names() == sorted(GRAPH_VIEW_PRESETS)
    view_a, view_b = build_graph_views("grace")
    assert (view_a.edge_drop, view_a.feature_mask, view_b.edge_drop, view_b.feature_mask) == (0.2, 0.3, 0.4, 0.4)
    view_a, view_b = build_graph_views("bgrl", edge_drop_2=0.1, feature_mask_mode="entry")
    assert (view_a.edge_drop, view_b.edge_drop, view_b.feature_mask_mode) == (0.5, 0.1, "entry")
    identity, diffusion = build_graph_views("ppr", top_k=4, feature_mask=0.1)
    assert isinstance(diffusion, PPRDiffusion) and diffusion.top_k == 4 and identity.feature_mask == 0.1
    data = node_batch()
    assert torch.equal(torch.bincount(diffusion(data).edge_index[1], minlength=80), torch.full((80,), 4))
    plain_a, plain_b = build_graph_views("none")
    assert torch.equal(plain_a(data).edge_index, data.edge_index) and torch.equal(plain_b(data).x, data.x)
    with pytest.raises(ValueError, match="grace"):
        build_graph_views("dgi")
    with pytest.raises(ValueError, match="edge_drop"):
        build_graph_views("grace", drop_rate=0.2)
    with pytest.raises(ValueError, match="unknown key"):
        build_graph_views("ppr", edge_drop_2=0.2)
    with pytest.raises(ValueError, match="edge_drop"):
        GraphAugment(edge_drop=1.0)


def test_views_reject_non_graphs():
    with pytest.raises(ValueError, match="Data"):
        drop_nodes(torch.zeros(3, 2), 0.1)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        GraphAugment(edge_drop=0.1)(Data(x=torch.ones(3, 2), edge_index=torch.tensor([[0], [5]])))
    categorical = Data(x=torch.ones(3, 2, dtype=torch.long), edge_index=torch.tensor([[0, 1], [1, 2]]))
    with pytest.raises(ValueError, match="float"):
        GraphAugment(feature_mask=0.1)(categorical)
    assert GraphAugment(node_drop=0.5)(categorical).x.dtype == torch.long  # dropping works on integer features
    with pytest.raises(ValueError, match=r"\[N, F\]"):
        drop_nodes(Data(x=torch.ones(3), edge_index=torch.tensor([[0], [1]])), 0.1)

"""The synthetic graph bank: generator properties, determinism, and batches the trainer can use."""

import math

import pytest
import torch
from torch_geometric.nn import GINConv, global_add_pool

from contrastkit.data.batch import Batch
from contrastkit.data.graph_bank import (
    FAMILIES,
    GraphSetDataset,
    barabasi_albert_edges,
    erdos_renyi_edges,
    stochastic_block_edges,
    synthetic_graph_bank,
    watts_strogatz_edges,
)
from contrastkit.train.loader import fetch


def _check_simple_undirected(edge_index, num_nodes):
    pairs = edge_index.t().tolist()
    assert len(set(map(tuple, pairs))) == len(pairs)  # no duplicate edge
    assert all(u != v for u, v in pairs)  # no self loop
    assert set(map(tuple, pairs)) == {(v, u) for u, v in pairs}  # both directions
    assert edge_index.dtype == torch.long and (edge_index.numel() == 0 or int(edge_index.max()) < num_nodes)


def _degree(edge_index, num_nodes):
    return torch.bincount(edge_index[0], minlength=num_nodes)


# ----------------------------------------------------------------------------- generators


def test_erdos_renyi_density_is_close_to_p():
    generator = torch.Generator().manual_seed(0)
    edges = erdos_renyi_edges(300, 0.05, generator=generator)
    _check_simple_undirected(edges, 300)
    density = edges.shape[1] / 2 / (300 * 299 / 2)
    assert abs(density - 0.05) < 4 * math.sqrt(0.05 * 0.95 / (300 * 299 / 2))  # 4 standard errors
    assert erdos_renyi_edges(10, 0.0).shape == (2, 0)
    assert erdos_renyi_edges(10, 1.0).shape == (2, 90)


def test_barabasi_albert_degrees():
    generator = torch.Generator().manual_seed(0)
    for m in (1, 2, 3):
        edges = barabasi_albert_edges(500, m, generator=generator)
        _check_simple_undirected(edges, 500)
        degree = _degree(edges, 500)
        assert int(degree.min()) >= m
        assert edges.shape[1] // 2 == m * (m + 1) // 2 + (500 - m - 1) * m
    # preferential attachment grows hubs of degree ~ m sqrt(n) (uniform attachment: ~ m log n = 12)
    assert int(_degree(barabasi_albert_edges(500, 2, generator=generator), 500).max()) > 25


@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0])
def test_watts_strogatz_degrees(beta):
    generator = torch.Generator().manual_seed(1)
    n, k = 200, 6
    edges = watts_strogatz_edges(n, k, beta, generator=generator)
    _check_simple_undirected(edges, n)
    degree = _degree(edges, n)
    assert edges.shape[1] == n * k  # n k / 2 edges, both directions: mean degree exactly k
    assert int(degree.min()) >= k // 2
    ring_distance = (edges[0] - edges[1]).abs()
    rewired = float((torch.minimum(ring_distance, n - ring_distance) > k // 2).float().mean())
    if beta == 0.0:
        assert bool((degree == k).all()) and rewired == 0.0
    else:  # most rewiring attempts land on a non-lattice pair (a few collide and are dropped)
        assert beta * 0.8 < rewired <= beta + 0.05


def test_stochastic_block_model_is_denser_inside_blocks():
    generator = torch.Generator().manual_seed(2)
    edges = stochastic_block_edges([100, 100, 50], 0.1, 0.01, generator=generator)
    _check_simple_undirected(edges, 250)
    block = torch.tensor([0] * 100 + [1] * 100 + [2] * 50)
    same = block[edges[0]] == block[edges[1]]
    intra_pairs = 100 * 99 / 2 * 2 + 50 * 49 / 2
    inter_pairs = 250 * 249 / 2 - intra_pairs
    assert abs(int(same.sum()) / 2 / intra_pairs - 0.1) < 0.015
    assert abs(int((~same).sum()) / 2 / inter_pairs - 0.01) < 0.004
    assert int(same.sum()) > int((~same).sum())


def test_generator_errors():
    with pytest.raises(ValueError, match="even"):
        watts_strogatz_edges(10, 3, 0.1)
    with pytest.raises(ValueError, match="at least 5 nodes"):
        watts_strogatz_edges(4, 4, 0.1)
    with pytest.raises(ValueError, match="at least 3 nodes"):
        barabasi_albert_edges(2, 2)
    with pytest.raises(ValueError, match="edge_probability"):
        erdos_renyi_edges(5, 1.5)


# ----------------------------------------------------------------------------- the bank


def test_bank_is_deterministic_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    first = synthetic_graph_bank(40, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    second = synthetic_graph_bank(40, seed=3)
    other = synthetic_graph_bank(40, seed=4)
    for a, b in zip(first, second):
        assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index) and torch.equal(a.y, b.y)
    assert any(a.num_nodes != b.num_nodes or not torch.equal(a.y, b.y) for a, b in zip(first, other))


def test_bank_graphs_are_valid_and_family_specific():
    graphs = synthetic_graph_bank(200, min_nodes=12, max_nodes=40, feature_dim=5, seed=0)
    labels = torch.cat([graph.y for graph in graphs])
    assert torch.bincount(labels, minlength=4).tolist() == [50, 50, 50, 50]  # balanced
    densities = []
    for graph in graphs:
        n = graph.num_nodes
        assert 12 <= n <= 40 and graph.x.shape == (n, 5) and graph.x.dtype == torch.float32
        _check_simple_undirected(graph.edge_index, n)
        degree = _degree(graph.edge_index, n)
        assert torch.allclose(graph.x[:, 0], torch.log1p(degree.float()))
        family = FAMILIES[int(graph.y)]
        if family == "ba":  # m = 2 for the default average degree 4
            assert int(degree.min()) >= 2 and graph.edge_index.shape[1] // 2 == 3 + (n - 3) * 2
        elif family == "ws":  # k = 4
            assert graph.edge_index.shape[1] == 4 * n and int(degree.min()) >= 2
        elif family == "er":
            densities.append((graph.edge_index.shape[1] / 2, n * (n - 1) / 2, 4.0 / (n - 1)))
    edges, pairs, expected = (torch.tensor(column) for column in zip(*densities))
    # summed over the ER graphs, the edge count matches sum p * pairs within 4 standard errors
    mean = float((expected * pairs).sum())
    assert abs(float(edges.sum()) - mean) < 4 * math.sqrt(float((expected * (1 - expected) * pairs).sum()))
    # every family has about the same mean degree, so the edge count does not give the family away
    mean_degree = [sum(g.edge_index.shape[1] / g.num_nodes for g in graphs if int(g.y) == c) / 50 for c in range(4)]
    assert max(mean_degree) - min(mean_degree) < 0.6, mean_degree


def test_bank_family_subset_and_errors():
    graphs = synthetic_graph_bank(12, families=("ws", "er"), seed=0)
    assert sorted(int(g.y) for g in graphs) == [0] * 6 + [1] * 6
    assert all(g.edge_index.shape[1] == 4 * g.num_nodes for g in graphs if int(g.y) == 0)  # label 0 = ws here
    with pytest.raises(ValueError, match="families"):
        synthetic_graph_bank(10, families=("er", "grid"))
    with pytest.raises(ValueError, match="min_nodes"):
        synthetic_graph_bank(10, min_nodes=30, max_nodes=20)


# ----------------------------------------------------------------------------- the dataset


def test_dataset_batches_collate_for_the_trainer():
    graphs = synthetic_graph_bank(20, seed=1)
    dataset = GraphSetDataset(graphs)
    assert len(dataset) == 20 and dataset.num_classes == 4 and dataset.num_features == 8
    rows = [5, 0, 19, 7]
    batch = fetch(dataset, rows)  # what the trainer's EpochBatches calls
    assert isinstance(batch, Batch) and len(batch) == 4
    assert batch.index.tolist() == rows
    assert batch.labels.tolist() == [int(graphs[i].y) for i in rows]
    graph_batch = batch.inputs
    assert graph_batch.num_graphs == 4 and "y" not in graph_batch  # labels travel outside the inputs
    assert torch.equal(graph_batch.x, torch.cat([graphs[i].x for i in rows]))
    assert torch.equal(torch.bincount(graph_batch.batch), torch.tensor([graphs[i].num_nodes for i in rows]))
    offsets = torch.tensor([0] + [graphs[i].num_nodes for i in rows[:-1]]).cumsum(0)
    expected_edges = torch.cat([graphs[i].edge_index + offsets[j] for j, i in enumerate(rows)], dim=1)
    assert torch.equal(graph_batch.edge_index, expected_edges)
    moved = batch.to("cpu")
    # a graph encoder embeds each graph of the batch: [B, D]
    torch.manual_seed(0)
    conv = GINConv(torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16)))
    pooled = global_add_pool(conv(moved.inputs.x, moved.inputs.edge_index), moved.inputs.batch)
    assert pooled.shape == (4, 16)
    alone = conv(graphs[0].x, graphs[0].edge_index).sum(0)
    torch.testing.assert_close(pooled[1], alone)  # graphs stay disjoint inside the batch


def test_dataset_single_items_subsets_and_errors():
    graphs = synthetic_graph_bank(6, seed=2)
    dataset = GraphSetDataset(graphs)
    item = dataset[-1]
    assert item.inputs is graphs[5] and int(item.labels) == int(graphs[5].y) and int(item.index) == 5
    subset = dataset.subset([3, 1])
    assert len(subset) == 2 and subset.labels.tolist() == [int(graphs[3].y), int(graphs[1].y)]
    with pytest.raises(IndexError):
        dataset.__getitems__([6])
    with pytest.raises(ValueError, match="non-empty list"):
        GraphSetDataset([])
    unlabelled = GraphSetDataset([graph.clone() for graph in graphs])
    for graph in unlabelled.graphs:
        del graph.y
    unlabelled = GraphSetDataset(unlabelled.graphs)
    assert unlabelled.labels is None and unlabelled.__getitems__([0, 1]).labels is None

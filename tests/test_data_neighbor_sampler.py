"""NeighborSampler against a breadth-first reference, full-graph GNN outputs, and sampling statistics."""

import time
from collections import defaultdict

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv, SAGEConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from contrastkit.data.neighbor_sampler import NeighborSampler


def _random_graph(num_nodes=300, num_edges=1500, seed=0):
    """A directed multigraph with skewed in-degrees (some nodes have many in-neighbours, some none)."""
    generator = torch.Generator().manual_seed(seed)
    source = torch.randint(0, num_nodes, (num_edges,), generator=generator)
    target = (torch.rand(num_edges, generator=generator) ** 2 * num_nodes).long()  # skewed towards low ids
    return torch.stack([source, target])


def _incoming(edge_index):
    """target -> [(source, edge id), ...] in edge order."""
    incoming = defaultdict(list)
    for e, (s, t) in enumerate(edge_index.t().tolist()):
        incoming[t].append((s, e))
    return incoming


def _reference_full(edge_index, seeds, hops):
    """Breadth-first expansion keeping every incoming edge, node by node (the -1 semantics)."""
    incoming = _incoming(edge_index)
    n_id = list(seeds)
    local = {s: i for i, s in enumerate(n_id)}
    frontier, edges = list(seeds), []
    for _ in range(hops):
        new = []
        for t in frontier:
            for s, e in incoming[t]:
                if s not in local:
                    local[s] = len(n_id)
                    n_id.append(s)
                    new.append(s)
                edges.append((local[s], local[t], e))
        frontier = new
    return n_id, edges


def _check_layout(out, edge_index, seeds):
    """Properties every sample must have, whatever the random draw."""
    n_id, e_id, local_edges = out.n_id, out.e_id, out.edge_index
    assert out.batch_size == len(seeds)
    assert n_id[: len(seeds)].tolist() == seeds.tolist()
    assert n_id.unique().numel() == n_id.numel()
    assert out.num_nodes == n_id.numel() == sum(out.num_sampled_nodes)
    assert local_edges.shape[1] == e_id.numel() == sum(out.num_sampled_edges)
    # every sampled edge is the input edge it claims to be
    assert torch.equal(n_id[local_edges[0]], edge_index[0, e_id])
    assert torch.equal(n_id[local_edges[1]], edge_index[1, e_id])
    # n_id lists new nodes in order of first appearance as sources, hop by hop
    seen, order = set(seeds.tolist()), seeds.tolist()
    for s in n_id[local_edges[0]].tolist():
        if s not in seen:
            seen.add(s)
            order.append(s)
    assert order == n_id.tolist()


@pytest.mark.parametrize("hops", [1, 2, 3])
def test_full_neighbourhood_matches_breadth_first_reference(hops):
    edge_index = _random_graph()
    seeds = torch.tensor([5, 0, 250, 17, 3])
    out = NeighborSampler(edge_index, 300, [-1] * hops).sample(seeds)
    n_id, edges = _reference_full(edge_index, seeds.tolist(), hops)
    assert out.n_id.tolist() == n_id
    got = list(zip(out.edge_index[0].tolist(), out.edge_index[1].tolist(), out.e_id.tolist()))
    assert got == edges
    _check_layout(out, edge_index, seeds)


@pytest.mark.parametrize("num_neighbors", [[3], [4, 2], [2, 5, 3], [0, 4]])
def test_sampled_edges_exist_and_counts_are_min_k_degree(num_neighbors):
    edge_index = _random_graph(seed=1)
    in_degree = torch.bincount(edge_index[1], minlength=300)
    seeds = torch.tensor([0, 1, 2, 7, 100, 299, 150])
    out = NeighborSampler(edge_index, 300, num_neighbors).sample(seeds, generator=torch.Generator().manual_seed(3))
    _check_layout(out, edge_index, seeds)
    assert out.e_id.unique().numel() == out.e_id.numel()  # without replacement: no edge twice
    node_start, edge_start = 0, 0
    for hop, k in enumerate(num_neighbors):
        frontier = out.n_id[node_start : node_start + out.num_sampled_nodes[hop]]
        hop_edges = out.edge_index[:, edge_start : edge_start + out.num_sampled_edges[hop]]
        targets = out.n_id[hop_edges[1]]
        for node in frontier.tolist():  # exactly min(k, deg) incoming edges for every frontier node
            assert int((targets == node).sum()) == min(k, int(in_degree[node]))
        assert set(targets.tolist()) <= set(frontier.tolist())  # only the frontier is expanded
        node_start += out.num_sampled_nodes[hop]
        edge_start += out.num_sampled_edges[hop]


def _gnn_outputs(model, edge_index, x, seeds, num_neighbors, **kwargs):
    full = model(x, edge_index, **({"edge_weight": kwargs["weight"]} if "weight" in kwargs else {}))[seeds]
    sampler = NeighborSampler(
        edge_index, x.shape[0], num_neighbors, x=x,
        edge_attributes={"edge_weight": kwargs["weight"]} if "weight" in kwargs else None,
    )  # fmt: skip
    sub = sampler.sample(seeds)
    extra = {"edge_weight": sub.edge_weight} if "weight" in kwargs else {}
    return full, model(sub.x, sub.edge_index, **extra)[: sub.batch_size]


class _TwoLayer(torch.nn.Module):
    def __init__(self, conv, **options):
        super().__init__()
        self.first, self.second = conv(8, 16, **options), conv(16, 4, **options)

    def forward(self, x, edge_index, edge_weight=None):
        extra = {} if edge_weight is None else {"edge_weight": edge_weight}
        return self.second(self.first(x, edge_index, **extra).relu(), edge_index, **extra)


def test_gcn_on_full_subgraph_equals_full_graph_output():
    torch.manual_seed(0)
    edge_index, x = _random_graph(seed=2), torch.randn(300, 8)
    seeds = torch.tensor([3, 40, 0, 299, 123, 8])
    gcn = _TwoLayer(GCNConv)
    # GCN's normalisation reads source degrees: 2 layers need 3 complete hops ...
    full, sampled = _gnn_outputs(gcn, edge_index, x, seeds, [-1, -1, -1])
    torch.testing.assert_close(sampled, full)
    # ... and 2 complete hops are not enough (the 2-hop nodes miss their in-edges) ...
    full, sampled = _gnn_outputs(gcn, edge_index, x, seeds, [-1, -1])
    assert not torch.allclose(sampled, full)
    # ... unless the weights come from the full graph, gathered with e_id.
    looped, weight = gcn_norm(edge_index, num_nodes=300, add_self_loops=True)
    fixed = _TwoLayer(GCNConv, normalize=False)
    full, sampled = _gnn_outputs(fixed, looped, x, seeds, [-1, -1], weight=weight)
    torch.testing.assert_close(sampled, full)


def test_mean_aggregation_needs_exactly_as_many_hops_as_layers():
    torch.manual_seed(1)
    edge_index, x = _random_graph(seed=4), torch.randn(300, 8)
    seeds = torch.tensor([1, 2, 50, 77])
    full, sampled = _gnn_outputs(_TwoLayer(SAGEConv), edge_index, x, seeds, [-1, -1])
    torch.testing.assert_close(sampled, full)


def test_generator_makes_samples_reproducible_and_leaves_global_rng_alone():
    edge_index = _random_graph(seed=5)
    sampler = NeighborSampler(edge_index, 300, [3, 3])
    seeds = torch.tensor([0, 1, 2, 3])
    state = torch.get_rng_state()
    first = sampler.sample(seeds, generator=torch.Generator().manual_seed(7))
    second = sampler.sample(seeds, generator=torch.Generator().manual_seed(7))
    other = sampler.sample(seeds, generator=torch.Generator().manual_seed(8))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first.n_id, second.n_id) and torch.equal(first.e_id, second.e_id)
    assert not torch.equal(first.e_id, other.e_id)
    torch.manual_seed(11)
    global_first = sampler.sample(seeds)
    torch.manual_seed(11)
    assert torch.equal(sampler.sample(seeds).e_id, global_first.e_id)


def test_sampling_is_uniform_over_subsets():
    # 400 targets share the same 20 in-neighbours; each keeps k=5, so each neighbour has probability 1/4.
    targets, pool, k = 400, 20, 5
    source = torch.arange(targets, targets + pool).repeat(targets)
    target = torch.arange(targets).repeat_interleave(pool)
    sampler = NeighborSampler(torch.stack([source, target]), targets + pool, [k])
    generator = torch.Generator().manual_seed(0)
    counts = torch.zeros(pool)
    for _ in range(10):
        out = sampler.sample(torch.arange(targets), generator=generator)
        picked = out.n_id[out.edge_index[0]] - targets
        counts += torch.bincount(picked, minlength=pool)
    frequency = counts / (10 * targets)
    # 4000 draws per neighbour: standard error sqrt(0.25 * 0.75 / 4000) = 0.007
    assert (frequency - k / pool).abs().max() < 0.03, frequency
    # and pairs: with degree 4 and k = 2 each of the 6 subsets has probability 1/6
    source = torch.arange(1000, 1004).repeat(1000)
    target = torch.arange(1000).repeat_interleave(4)
    out = NeighborSampler(torch.stack([source, target]), 1004, [2]).sample(torch.arange(1000), generator=generator)
    chosen = (out.n_id[out.edge_index[0]] - 1000).view(1000, 2).sort(dim=1).values
    pair_counts = torch.bincount(chosen[:, 0] * 4 + chosen[:, 1], minlength=16)
    pair_counts = pair_counts[pair_counts > 0]
    assert pair_counts.numel() == 6 and (pair_counts / 1000 - 1 / 6).abs().max() < 0.05, pair_counts


def test_with_replacement_draws_exactly_k():
    edge_index = _random_graph(seed=6)
    in_degree = torch.bincount(edge_index[1], minlength=300)
    seeds = torch.tensor([0, 1, 2, 298, 299])
    out = NeighborSampler(edge_index, 300, [6], replace=True).sample(seeds, generator=torch.Generator().manual_seed(0))
    _check_layout(out, edge_index, seeds)
    targets = out.n_id[out.edge_index[1]]
    for node in seeds.tolist():
        assert int((targets == node).sum()) == (6 if in_degree[node] > 0 else 0)


def test_attributes_follow_n_id_and_e_id():
    edge_index = _random_graph(seed=7)
    data = Data(
        x=torch.randn(300, 4), y=torch.arange(300), edge_index=edge_index,
        edge_weight=torch.rand(edge_index.shape[1]), train_mask=torch.rand(300) > 0.5,
    )  # fmt: skip
    sampler = NeighborSampler.from_data(data, [4, 4])
    out = sampler.sample(torch.tensor([9, 8, 7]), generator=torch.Generator().manual_seed(0))
    assert torch.equal(out.y, out.n_id)
    assert torch.equal(out.x, data.x[out.n_id]) and torch.equal(out.train_mask, data.train_mask[out.n_id])
    assert torch.equal(out.edge_weight, data.edge_weight[out.e_id])


def test_isolated_seeds_and_zero_hops():
    edge_index = torch.tensor([[0, 1], [1, 2]])  # node 3 has no edges
    out = NeighborSampler(edge_index, 4, [-1, -1]).sample(torch.tensor([3, 2]))
    assert out.n_id.tolist() == [3, 2, 1, 0]
    assert out.num_sampled_nodes == [2, 1, 1] and out.num_sampled_edges == [1, 1]
    out = NeighborSampler(edge_index, 4, []).sample(torch.tensor([3]))
    assert out.n_id.tolist() == [3] and out.edge_index.shape == (2, 0)


def test_bad_inputs_raise():
    edge_index = _random_graph()
    with pytest.raises(ValueError, match="shape \\[2, E\\]"):
        NeighborSampler(edge_index.t(), 300, [2])
    with pytest.raises(ValueError, match="node ids"):
        NeighborSampler(edge_index, 100, [2])
    with pytest.raises(ValueError, match=">= -1"):
        NeighborSampler(edge_index, 300, [-2])
    with pytest.raises(ValueError, match="node attribute 'x'"):
        NeighborSampler(edge_index, 300, [2], x=torch.randn(10, 3))
    sampler = NeighborSampler(edge_index, 300, [2])
    with pytest.raises(ValueError, match="distinct"):
        sampler.sample(torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="seed ids"):
        sampler.sample(torch.tensor([300]))
    # a failed call leaves the sampler usable, and every call restores its scratch buffers
    assert sampler.sample(torch.tensor([0, 1])).batch_size == 2
    assert bool((sampler._local == -1).all()) and bool((sampler._first == torch.iinfo(torch.long).max).all())


def test_speed_512_seeds_on_60k_nodes():
    generator = torch.Generator().manual_seed(0)
    num_nodes, num_edges = 60_000, 600_000
    sampler = NeighborSampler(torch.randint(0, num_nodes, (2, num_edges), generator=generator), num_nodes, [10, 10])
    seeds = torch.randperm(num_nodes, generator=generator)[:512]
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        out = sampler.sample(seeds, generator=generator)
        timings.append(time.perf_counter() - start)
    print(f"NeighborSampler: 512 seeds, [10, 10], 60k nodes / 600k edges: best {min(timings) * 1000:.1f} ms")
    assert out.num_sampled_edges[0] <= 5120
    assert min(timings) < 0.1

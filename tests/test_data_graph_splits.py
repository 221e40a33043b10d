"""Tests for graph hold-out splits: node splits and edge splits against brute-force set checks."""

import pytest
import torch

from contrastkit.data.graph_splits import node_split, split_edges


def test_node_split_covers_labelled_nodes_once_and_is_seeded():
    labels = torch.randint(0, 3, (1000,), generator=torch.Generator().manual_seed(0))
    labels[::7] = -1  # unlabelled nodes
    train, val, test = node_split(1000, labels, train_fraction=0.1, val_fraction=0.2, seed=3)
    labelled = int((labels >= 0).sum())
    assert train.numel() == round(0.1 * labelled) and val.numel() == round(0.2 * labelled)
    everything = torch.cat([train, val, test])
    assert everything.unique().numel() == everything.numel() == labelled  # disjoint and complete
    assert bool((labels[everything] >= 0).all())
    assert all(torch.equal(part, part.sort().values) for part in (train, val, test))
    again = node_split(1000, labels, train_fraction=0.1, val_fraction=0.2, seed=3)
    other = node_split(1000, labels, train_fraction=0.1, val_fraction=0.2, seed=4)
    assert all(torch.equal(a, b) for a, b in zip((train, val, test), again))
    assert not torch.equal(train, other[0])


def test_node_split_rejects_bad_fractions_and_labels():
    labels = torch.zeros(10, dtype=torch.long)
    with pytest.raises(ValueError, match="train_fraction"):
        node_split(10, labels, train_fraction=0.6, val_fraction=0.5)
    with pytest.raises(ValueError, match="shape \\[10\\]"):
        node_split(10, torch.zeros(9, dtype=torch.long))
    with pytest.raises(ValueError, match="at least one labelled"):
        node_split(10, torch.full((10,), -1))


def _undirected_graph(num_nodes=60, num_pairs=200, seed=0):
    generator = torch.Generator().manual_seed(seed)
    pairs = torch.randint(0, num_nodes, (2, num_pairs), generator=generator)
    loops = torch.tensor([[5, 9], [5, 9]])  # self loops stay in training
    return torch.cat([pairs, pairs.flip(0), loops], dim=1)


def _pair_set(edge_index, undirected=True):
    return {(min(u, v), max(u, v)) if undirected else (u, v) for u, v in edge_index.t().tolist()}


@pytest.mark.parametrize("num_nodes", [60, 3000])  # enumeration and rejection sampling of negatives
def test_split_edges_undirected(num_nodes):
    edge_index = _undirected_graph(num_nodes=num_nodes)
    split = split_edges(edge_index, num_nodes, val_fraction=0.1, test_fraction=0.2, seed=0)
    all_pairs = {p for p in _pair_set(edge_index) if p[0] != p[1]}
    val, test = _pair_set(split.val_pos), _pair_set(split.test_pos)
    assert split.val_pos.shape[1] == len(val) == round(0.1 * len(all_pairs))
    assert split.test_pos.shape[1] == len(test) == round(0.2 * len(all_pairs))
    assert bool((split.val_pos[0] < split.val_pos[1]).all())
    assert not val & test and (val | test) <= all_pairs
    train = _pair_set(split.train_edge_index)
    assert not train & (val | test)  # held-out pairs leave in both directions
    assert {p for p in train if p[0] != p[1]} | val | test == all_pairs  # nothing else is removed
    # the training graph keeps both directions of every kept pair, and the self loops
    directed = set(map(tuple, split.train_edge_index.t().tolist()))
    assert all((v, u) in directed for u, v in directed) and {(5, 5), (9, 9)} <= directed
    for positives, negatives in ((split.val_pos, split.val_neg), (split.test_pos, split.test_neg)):
        assert negatives.shape == positives.shape
        negative_pairs = _pair_set(negatives)
        assert len(negative_pairs) == negatives.shape[1]  # distinct
        assert not negative_pairs & all_pairs and all(u != v for u, v in negative_pairs)
    assert not _pair_set(split.val_neg) & _pair_set(split.test_neg)
    again = split_edges(edge_index, num_nodes, val_fraction=0.1, test_fraction=0.2, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(vars(split).values(), vars(again).values()))
    other = split_edges(edge_index, num_nodes, val_fraction=0.1, test_fraction=0.2, seed=1)
    assert not torch.equal(split.test_pos, other.test_pos)


def test_split_edges_directed_keeps_reverse_edges():
    edge_index = torch.tensor([[0, 1, 1, 2, 3, 4, 0, 2], [1, 0, 2, 3, 4, 0, 3, 4]])
    split = split_edges(edge_index, 5, val_fraction=0.0, test_fraction=0.5, seed=2, undirected=False)
    test = _pair_set(split.test_pos, undirected=False)
    train = _pair_set(split.train_edge_index, undirected=False)
    assert len(test) == 4 and not test & train and test | train == _pair_set(edge_index, undirected=False)
    negatives = _pair_set(split.test_neg, undirected=False)
    assert len(negatives) == 4 and not negatives & _pair_set(edge_index, undirected=False)
    assert split.val_pos.shape == split.val_neg.shape == (2, 0)


def test_negatives_are_uniform_over_non_edges():
    # a 4-cycle on 4 nodes has 2 non-edges, {0, 2} and {1, 3}: one negative picks each half the time
    cycle = torch.tensor([[0, 1, 2, 3, 1, 2, 3, 0], [1, 2, 3, 0, 0, 1, 2, 3]])
    picks = [
        tuple(split_edges(cycle, 4, val_fraction=0.0, test_fraction=0.25, seed=s).test_neg[:, 0].tolist())
        for s in range(200)
    ]
    assert set(picks) == {(0, 2), (1, 3)}
    assert 70 <= picks.count((0, 2)) <= 130


def test_split_edges_errors():
    complete = torch.tensor([[0, 0, 1], [1, 2, 2]])
    with pytest.raises(ValueError, match="non-edges"):
        split_edges(complete, 3, val_fraction=0.0, test_fraction=0.4)
    with pytest.raises(ValueError, match="no training pair"):
        split_edges(complete, 3, val_fraction=0.5, test_fraction=0.49)
    with pytest.raises(ValueError, match="\\[2, E\\]"):
        split_edges(complete.t(), 3)

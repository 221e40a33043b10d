"""LightGCN propagation against a dense loop-built reference; dropout, perturbation hook, state."""

from __future__ import annotations

import io
import itertools
import math

import pytest
import torch

from contrastkit.nn.lightgcn import LightGCN

PAIRS = torch.tensor([[0, 0, 1, 2, 2, 3, 4], [0, 1, 1, 2, 3, 0, 3]])  # 5 users, 4 items


def _dense_adjacency(pairs, num_users, num_items):
    """Ã[u, i] = 1 / sqrt(deg(u) deg(i)) for every training pair, built with Python loops."""
    edges = {(int(u), int(i)) for u, i in pairs.T}
    user_degree = {u: sum(1 for a, _ in edges if a == u) for u in range(num_users)}
    item_degree = {i: sum(1 for _, b in edges if b == i) for i in range(num_items)}
    dense = torch.zeros(num_users, num_items, dtype=torch.float64)
    for u, i in edges:
        dense[u, i] = 1.0 / math.sqrt(user_degree[u] * item_degree[i])
    return dense


def _reference(model, combination, include_input, perturb=None):
    dense = _dense_adjacency(PAIRS, 5, 4)
    users, items = [model.user_embedding.double()], [model.item_embedding.double()]
    for _ in range(model.num_layers):
        next_users, next_items = dense @ items[-1], dense.T @ users[-1]
        if perturb is not None:
            next_users, next_items = perturb(next_users), perturb(next_items)
        users.append(next_users)
        items.append(next_items)
    start = 0 if include_input else 1
    reduce = (lambda x: sum(x) / len(x)) if combination == "mean" else sum
    return reduce(users[start:]), reduce(items[start:])


@pytest.mark.parametrize("combination", ["mean", "sum"])
@pytest.mark.parametrize("include_input", [True, False])
@pytest.mark.parametrize("num_layers", [1, 3])
def test_propagation_matches_dense_reference(combination, include_input, num_layers):
    torch.manual_seed(0)
    model = LightGCN(5, 4, PAIRS, embedding_dim=6, num_layers=num_layers, layer_combination=combination,
                     include_input=include_input)  # fmt: skip
    users, items = model.propagate()
    expected_users, expected_items = _reference(model, combination, include_input)
    assert users.shape == (5, 6) and items.shape == (4, 6) and model.output_dim == 6
    torch.testing.assert_close(users.double(), expected_users, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(items.double(), expected_items, rtol=1e-5, atol=1e-6)
    assert torch.equal(model(torch.tensor([3, 0])), users[[3, 0]])


def test_overrides_per_call():
    model = LightGCN(5, 4, PAIRS, embedding_dim=3, num_layers=2)
    users, _ = model.propagate(layer_combination="sum", include_input=False)
    expected, _ = _reference(model, "sum", False)
    torch.testing.assert_close(users.double(), expected, rtol=1e-5, atol=1e-6)


def test_perturb_hook_applies_to_every_propagated_layer_and_feeds_the_next():
    model = LightGCN(5, 4, PAIRS, embedding_dim=3, num_layers=3, layer_combination="sum")
    calls = []

    def shift(e):
        calls.append(e.shape)
        return e + 1.0

    users, items = model.propagate(perturb=shift)
    assert len(calls) == 6  # 3 layers x (users, items); layer 0 untouched
    expected_users, expected_items = _reference(model, "sum", True, perturb=lambda e: e + 1.0)
    torch.testing.assert_close(users.double(), expected_users, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(items.double(), expected_items, rtol=1e-5, atol=1e-5)


def test_edge_dropout_zeroes_or_rescales_entries():
    model = LightGCN(5, 4, PAIRS, embedding_dim=2, num_layers=1)
    with torch.no_grad():
        model.item_embedding.fill_(1.0)
    dense = _dense_adjacency(PAIRS, 5, 4).float()
    torch.manual_seed(0)
    with torch.no_grad():
        user_layers, _ = model.layers(edge_dropout=0.5)
    # Each user row of layer 1 is a sum over kept edges of Ã[u, i] / (1 - p): a subset sum, scaled.
    for user in range(5):
        weights = dense[user][dense[user] > 0].tolist()
        subsets = {round(sum(w * 2 for w, keep in zip(weights, mask) if keep), 5)
                   for mask in itertools.product([0, 1], repeat=len(weights))}  # fmt: skip
        assert round(float(user_layers[1][user, 0]), 5) in subsets
    torch.manual_seed(1)
    with torch.no_grad():
        means = torch.stack([model.layers(edge_dropout=0.5)[0][1] for _ in range(400)]).mean(0)
        torch.testing.assert_close(means, model.layers()[0][1], atol=0.08, rtol=0.1)  # unbiased
    with pytest.raises(ValueError, match="edge_dropout"):
        model.layers(edge_dropout=1.0)


def test_initialisations():
    torch.manual_seed(0)
    normal = LightGCN(400, 300, PAIRS, embedding_dim=64)
    assert abs(float(normal.user_embedding.detach().std()) - 0.1) < 0.01
    xavier = LightGCN(400, 300, PAIRS, embedding_dim=64, init="xavier")
    bound = math.sqrt(6 / (400 + 64))
    largest = xavier.user_embedding.detach().abs().max().item()
    assert 0.9 * bound < largest <= bound


def test_gradients_reach_only_the_embeddings_and_state_is_embeddings_only():
    model = LightGCN(5, 4, PAIRS, embedding_dim=3, num_layers=2)
    users, items = model.propagate()
    (users.sum() + items.square().sum()).backward()
    assert model.user_embedding.grad is not None and model.item_embedding.grad is not None
    assert not model.adjacency.requires_grad and not model.adjacency_t.requires_grad
    assert set(model.state_dict()) == {"user_embedding", "item_embedding"}  # the graph is rebuilt, not saved
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    fresh = LightGCN(5, 4, PAIRS, embedding_dim=3, num_layers=2)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    torch.testing.assert_close(fresh.propagate()[0], model.propagate()[0])


def test_double_precision_module():
    model = LightGCN(5, 4, PAIRS, embedding_dim=3, num_layers=2).double()
    users, _ = model.propagate()
    assert users.dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    model = LightGCN(5, 4, PAIRS, embedding_dim=3, num_layers=2)
    expected = model.propagate()
    cuda = model.cuda()
    got = cuda.propagate(edge_dropout=0.0)
    torch.testing.assert_close(got[0].cpu(), expected[0]) and torch.testing.assert_close(got[1].cpu(), expected[1])
    cuda.propagate(edge_dropout=0.3)[0].sum().backward()
    assert cuda.user_embedding.grad.is_cuda


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"layer_combination": "max"}, "layer_combination"),
        ({"init": "zeros"}, "init"),
        ({"num_layers": -1}, "num_layers"),
        ({"num_layers": 0, "include_input": False}, "include_input"),
        ({"train_pairs": torch.tensor([0, 1])}, "shape \\[2, T\\]"),
        ({"train_pairs": torch.tensor([[0, 9], [0, 0]])}, "user ids < 5"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    options = {"train_pairs": PAIRS, **kwargs}
    with pytest.raises(ValueError, match=message):
        LightGCN(5, 4, **options)

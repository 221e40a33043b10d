"""LightGCN+BPR, SimGCL and LightGCL on planted graphs; MCLRec's augmenters and meta-gradient."""

from __future__ import annotations

import inspect
import io

import pytest
import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.data.interactions import interaction_splits
from contrastkit.functional.contrastive import info_nce
from contrastkit.functional.recommendation import bpr_loss, lightgcl_loss
from contrastkit.methods.recommendation import LightGCL, LightGCNBPR, SimGCL
from contrastkit.nn.augmenters import Augmenter, MetaAugmenters, meta_step
from contrastkit.nn.lightgcn import LightGCN
from contrastkit.eval.protocols.ranking import RankingProtocol, RankingSettings


def _planted(num_users=200, num_items=100, clusters=5, seed=0):
    """Users and items in planted clusters: 30 % interaction chance inside a cluster, 1 % outside."""
    generator = torch.Generator().manual_seed(seed)
    user_cluster = torch.randint(clusters, (num_users,), generator=generator)
    item_cluster = torch.randint(clusters, (num_items,), generator=generator)
    chance = torch.where(user_cluster[:, None] == item_cluster[None, :], 0.3, 0.01)
    pairs = (torch.rand(num_users, num_items, generator=generator) < chance).nonzero().T
    return interaction_splits(pairs, num_users, num_items, seed=seed, name="planted")


@pytest.fixture(scope="module")
def planted():
    return _planted()


def _encoder(splits, seed=0, **options):
    torch.manual_seed(seed)
    data = splits.test
    return LightGCN(data.num_users, data.num_items, data.train_pairs, **options)


def _train(method, dataset, steps, lr, batch_size=256, seed=0):
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(method.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        batch = dataset.__getitems__(torch.randint(len(dataset), (batch_size,)).tolist())
        output = method(batch)
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
        losses.append(output.loss.item())
    return losses


def test_lightgcn_bpr_beats_popularity_on_a_planted_graph(planted):
    evaluator = RankingProtocol(planted, RankingSettings(), torch.device("cpu"), seed=0)
    method = LightGCNBPR(_encoder(planted, embedding_dim=32), ())
    popularity = evaluator.popularity()["recall_at_20"]
    untrained = evaluator.score(method)["recall_at_20"]
    _train(method, planted.train, steps=200, lr=0.01)
    trained = evaluator.final(method)[0]["recall_at_20"]
    assert trained > popularity + 0.2, (trained, popularity)
    assert trained > untrained + 0.1, (trained, untrained)  # BPR learned, not just the propagation


@pytest.mark.parametrize("cls", [SimGCL, LightGCL])
def test_contrastive_methods_train_and_their_loss_drops(planted, cls):
    method = cls(_encoder(planted, embedding_dim=32, init="xavier"), ())
    losses = _train(method, planted.train, steps=60, lr=0.01)
    assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10 - 0.05, losses[::10]
    output = method(planted.train.__getitems__(list(range(64))))
    assert {"loss", "bpr", "cl", "reg"} <= set(output.logs)


def _receptive_field(pairs, users, items):
    """Rows of the ID tables a 1-layer LightGCN loss on (users, items) can depend on."""
    user_rows, item_rows = set(users), set(items)
    for u, i in pairs.T.tolist():
        if u in users:
            item_rows.add(i)
        if i in items:
            user_rows.add(u)
    return user_rows, item_rows


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_lightgcn_bpr_gradient_stays_in_the_receptive_field(planted, weight_decay):
    encoder = _encoder(planted, embedding_dim=8, num_layers=1)
    method = LightGCNBPR(encoder, (), weight_decay=weight_decay)
    batch = Batch(inputs=torch.tensor([[3, 7, 50], [9, 2, 11]]))
    method(batch).loss.backward()
    users, items = _receptive_field(planted.test.train_pairs, {3, 9}, {7, 50, 2, 11})
    user_grad = encoder.user_embedding.grad.abs().sum(1) > 0
    item_grad = encoder.item_embedding.grad.abs().sum(1) > 0
    assert set(user_grad.nonzero().flatten().tolist()) == users
    assert set(item_grad.nonzero().flatten().tolist()) == items


def test_lightgcn_bpr_loss_is_the_papers(planted):
    encoder = _encoder(planted, embedding_dim=8)
    method = LightGCNBPR(encoder, (), weight_decay=1e-3)
    triplets = torch.tensor([[3, 7, 50], [9, 2, 11], [3, 1, 0]])
    output = method(Batch(inputs=triplets))
    users, items = encoder.propagate()
    u, p, n = triplets.T
    reg = 1e-3 * 0.5 * (encoder.user_embedding[u].square().sum() + encoder.item_embedding[p].square().sum()
                        + encoder.item_embedding[n].square().sum()) / 3  # fmt: skip
    torch.testing.assert_close(output.loss, bpr_loss(users[u], items[p], items[n]) + reg)


def test_simgcl_parts(planted):
    encoder = _encoder(planted, embedding_dim=8, init="xavier")
    batch = Batch(inputs=torch.tensor([[3, 7, 50], [9, 2, 11], [3, 1, 0], [4, 7, 5]]))
    # eps = 0: both "noisy" views are the clean propagation over layers 1..L.
    method = SimGCL(encoder, (), eps=0.0, lambd=0.5, weight_decay=0.0)
    output = method(batch)
    users, items = encoder.propagate(layer_combination="mean", include_input=False)
    u, p, n = batch.inputs.T
    cl = info_nce(users[u.unique()], users[u.unique()], temperature=0.2) + info_nce(
        items[p.unique()], items[p.unique()], temperature=0.2
    )
    torch.testing.assert_close(output.loss, bpr_loss(users[u], items[p], items[n]) + 0.5 * cl)
    # eps > 0: the two views differ and the contrastive term grows.
    noisy = SimGCL(encoder, (), eps=0.1, lambd=0.5)
    torch.manual_seed(0)
    first = noisy._propagate(True)[0]
    assert not torch.allclose(first, noisy._propagate(True)[0])
    torch.testing.assert_close((first - users).norm(dim=1).max(), torch.tensor(0.1), atol=0.05, rtol=0)
    assert noisy(batch).logs["cl"] > output.logs["cl"]
    # Ranking embeddings: the clean mean over layers 1..L.
    torch.testing.assert_close(noisy.user_item_embeddings()[0], users)


def test_simgcl_l2_term_is_a_batch_mean(planted):
    """The L2 term is a batch mean like BPR (SELFRec's ``l2_reg_loss`` / B), not a sum over the batch."""
    encoder = _encoder(planted, embedding_dim=8, init="xavier")
    method = SimGCL(encoder, (), lambd=0.0, weight_decay=1e-2)
    triplets = torch.tensor([[3, 7, 50], [9, 2, 11], [3, 1, 0], [4, 7, 5]])
    single, repeated = method(Batch(inputs=triplets)), method(Batch(inputs=triplets.repeat(8, 1)))
    users, items = encoder.propagate(layer_combination="mean", include_input=False)
    u, p, n = triplets.T
    reg = 1e-2 * 0.5 * (users[u].square().sum() + items[p].square().sum() + items[n].square().sum()) / 4
    torch.testing.assert_close(torch.tensor(single.logs["reg"]), reg.detach())
    # The same triplets 8 times over: the same mean, so the same loss (a sum would be 8x).
    torch.testing.assert_close(torch.tensor(repeated.logs["reg"]), torch.tensor(single.logs["reg"]))
    torch.testing.assert_close(repeated.loss, single.loss)


@pytest.mark.parametrize(("weight_decay", "bound"), [(1e-4, 0.2), (1e-3, 0.6)])
def test_simgcl_bpr_learns_at_batch_1024(planted, weight_decay, bound):
    """Issue 15: with the L2 summed over the 3B rows (B times too heavy), BPR stayed near ln 2.

    Measured with that old scaling here: BPR 0.32 (weight_decay 1e-4) and 0.692 (1e-3)
    after 100 steps, seeds 0-2; with the batch mean: 0.10 in both.
    """
    method = SimGCL(_encoder(planted, embedding_dim=32, init="xavier"), (), lambd=0.02, weight_decay=weight_decay)
    _train(method, planted.train, steps=100, lr=0.01, batch_size=1024)
    torch.manual_seed(1)
    bpr = [method(planted.train.__getitems__(torch.randint(len(planted.train), (1024,)).tolist())).logs["bpr"]
           for _ in range(3)]  # fmt: skip
    assert sum(bpr) / 3 < bound, bpr


def test_lightgcl_full_rank_svd_view_is_the_graph_view():
    splits = _planted(num_users=12, num_items=9, clusters=2, seed=1)
    method = LightGCL(_encoder(splits, embedding_dim=4), (), q=9, svd_iterations=6)
    e_u, e_i, g_u, g_i = method.graph_and_svd_views()
    torch.testing.assert_close(g_u, e_u, atol=1e-4, rtol=1e-4)  # U S V^T = Ã when q = rank
    torch.testing.assert_close(g_i, e_i, atol=1e-4, rtol=1e-4)


def test_lightgcl_loss_is_the_codes(planted):
    encoder = _encoder(planted, embedding_dim=8, init="xavier")
    method = LightGCL(encoder, (), lambda_2=1e-3)
    e_u, e_i, g_u, g_i = method.graph_and_svd_views()
    # The SVD view against a dense reference: G = E0 + sum_l (U S V^T) E^(l-1) from the graph view's layers.
    low_rank = method.svd_u @ torch.diag(method.svd_s) @ method.svd_v.T
    user_layers, item_layers = encoder.layers()
    torch.testing.assert_close(g_u, user_layers[0] + sum(low_rank @ x for x in item_layers[:-1]))
    torch.testing.assert_close(g_i, item_layers[0] + sum(low_rank.T @ x for x in user_layers[:-1]))
    torch.testing.assert_close(e_u, sum(user_layers))
    triplets = torch.tensor([[3, 7, 50], [9, 2, 11], [3, 1, 0]])
    output = method(Batch(inputs=triplets))
    u, p, n = triplets.T
    reg = 1e-3 * (encoder.user_embedding.square().sum() + encoder.item_embedding.square().sum())
    expected = bpr_loss(e_u[u], e_i[p], e_i[n]) + 0.2 * lightgcl_loss(g_u, e_u, g_i, e_i, u, torch.cat([p, n])) + reg
    torch.testing.assert_close(output.loss, expected)
    output.loss.backward()
    assert [name for name, _ in method.named_parameters()] == ["encoder.user_embedding", "encoder.item_embedding"]
    assert not method.svd_u.requires_grad and method.svd_u.grad is None
    assert set(method.state_dict()) == {"encoder.user_embedding", "encoder.item_embedding"}


def test_lightgcl_checkpoint_round_trip(planted):
    method = LightGCL(_encoder(planted, embedding_dim=8, init="xavier"), ())
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    fresh = LightGCL(_encoder(planted, seed=5, embedding_dim=8, init="xavier"), ())
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    batch = Batch(inputs=torch.tensor([[3, 7, 50], [9, 2, 11]]))
    torch.testing.assert_close(fresh(batch).loss, method(batch).loss)  # same seeded SVD factors


@pytest.mark.parametrize("cls", [LightGCNBPR, SimGCL, LightGCL])
def test_method_contract(planted, cls):
    method = cls(_encoder(planted, embedding_dim=8), ())
    assert cls.modalities == frozenset({"interactions"})
    parameters = list(inspect.signature(cls.__init__).parameters.values())[3:]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters)
    users, items = method.user_item_embeddings()
    assert users.shape == (200, 8) and items.shape == (100, 8) and not users.requires_grad
    torch.testing.assert_close(method.embed(torch.tensor([4, 1])), users[[4, 1]])
    torch.testing.assert_close(method.embed(torch.tensor([[4, 0, 0], [1, 0, 0]])), users[[4, 1]])
    for bad, message in ((torch.zeros(3, 2, dtype=torch.long), "\\[B, 3\\]"), (torch.zeros(3, 3), "integer"),
                         (torch.zeros(0, 3, dtype=torch.long), "at least one")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            method(Batch(inputs=bad))


@pytest.mark.parametrize("cls", [LightGCNBPR, SimGCL, LightGCL])
def test_bf16_autocast_step(planted, cls):
    # The trainer's precision=bf16: sparse propagation must stay float32 under autocast.
    method = cls(_encoder(planted, embedding_dim=8), ())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = method(Batch(inputs=torch.tensor([[3, 7, 50], [9, 2, 11], [4, 1, 0]])))
    output.loss.backward()
    assert method.encoder.user_embedding.grad.dtype == torch.float32
    assert torch.isfinite(method.encoder.user_embedding.grad).all()


def test_methods_reject_other_encoders():
    with pytest.raises(ValueError, match="LightGCN encoder"):
        LightGCNBPR(nn.Linear(3, 3), ())


# ---------------------------------------------------------------- MCLRec augmenters


def test_augmenters_shapes():
    torch.manual_seed(0)
    augmenters = MetaAugmenters(16)
    h_a, h_b = torch.randn(5, 16), torch.randn(5, 16)
    out_a, out_b = augmenters(h_a, h_b)
    assert out_a.shape == out_b.shape == (5, 16)
    torch.testing.assert_close(out_a.norm(dim=1), torch.ones(5))
    assert not torch.allclose(augmenters.first(h_a), augmenters.second(h_a))  # two separate MLPs
    assert [layer.out_features for layer in Augmenter(64).layers] == [32, 16, 64]  # the code's Extractor
    with pytest.raises(ValueError, match="inputs"):
        augmenters.first(torch.randn(5, 8))


def _meta_problem():
    torch.manual_seed(0)
    encoder = nn.Linear(3, 2, bias=False).double()
    augmenter = nn.Linear(2, 2).double()
    x, y = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    x2 = torch.randn(4, 3, dtype=torch.float64)

    def inner(encode):
        return (augmenter(encode(x)) - y).square().mean()

    def outer(encode):
        h = encode(x2)
        return (augmenter(h) * h).sum().tanh() + encode(x).square().mean()

    return encoder, augmenter, x, y, x2, inner, outer


def _naive_meta(weight, augmenter_weight, augmenter_bias, x, y, x2, lr):
    """The same look-ahead written out with plain tensors."""
    inner = ((x @ weight.T) @ augmenter_weight.T + augmenter_bias - y).square().mean()
    (gradient,) = torch.autograd.grad(inner, weight, create_graph=True)
    lookahead = weight - lr * gradient
    h = x2 @ lookahead.T
    return ((h @ augmenter_weight.T + augmenter_bias) * h).sum().tanh() + (x @ lookahead.T).square().mean()


@pytest.mark.parametrize("lr", [0.0, 0.3])
def test_meta_step_matches_naive_autograd_and_finite_differences(lr):
    encoder, augmenter, x, y, x2, inner, outer = _meta_problem()
    before = encoder.weight.detach().clone()
    loss, grads = meta_step(encoder, augmenter.parameters(), inner, outer, inner_lr=lr)
    weight = encoder.weight.detach().clone().requires_grad_()
    a_w, a_b = augmenter.weight.detach().clone().requires_grad_(), augmenter.bias.detach().clone().requires_grad_()
    expected = _naive_meta(weight, a_w, a_b, x, y, x2, lr)
    torch.testing.assert_close(loss, expected.detach())
    expected_grads = torch.autograd.grad(expected, (a_w, a_b))
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(augmenter.weight.grad, expected_grads[0])  # accumulated for the optimiser
    # Central differences in the augmenter's weights (the second-order path included).
    step = 1e-6
    for index in [(0, 0), (1, 0), (0, 1)]:
        plus, minus = a_w.detach().clone(), a_w.detach().clone()
        plus[index] += step
        minus[index] -= step
        w = lambda: encoder.weight.detach().clone().requires_grad_()  # noqa: E731
        numeric = (_naive_meta(w(), plus, a_b, x, y, x2, lr) - _naive_meta(w(), minus, a_b, x, y, x2, lr)) / (2 * step)
        assert float(grads[0][index]) == pytest.approx(numeric.item(), rel=1e-5, abs=1e-8)
    assert torch.equal(encoder.weight, before) and encoder.weight.grad is None  # the encoder is left alone


def test_meta_step_second_order_term_matters_and_accumulates():
    encoder, augmenter, _, _, _, inner, outer = _meta_problem()
    _, first_order = meta_step(encoder, augmenter.parameters(), inner, outer, inner_lr=0.0, accumulate=False)
    _, second_order = meta_step(encoder, augmenter.parameters(), inner, outer, inner_lr=0.3, accumulate=False)
    assert not torch.allclose(first_order[0], second_order[0])
    assert augmenter.weight.grad is None
    meta_step(encoder, augmenter.parameters(), inner, outer, inner_lr=0.3)
    meta_step(encoder, augmenter.parameters(), inner, outer, inner_lr=0.3)
    torch.testing.assert_close(augmenter.weight.grad, 2 * second_order[0])
    with pytest.raises(ValueError, match="inner_lr"):
        meta_step(encoder, augmenter.parameters(), inner, outer, inner_lr=-1.0)

"""MoCHi method: the loss against a per-row reference, the warm-up, and a queue free of synthetic points."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import contrastkit.methods.mochi as mochi_module
from contrastkit.data import Batch
from contrastkit.methods.mochi import MoCHi
from contrastkit.methods.moco import MoCo
from contrastkit.nn.registry import build_encoder
from contrastkit.utils.seed import seed_everything
from contrastkit.views.image import build_views


def _method(**options) -> MoCHi:
    seed_everything(0)
    net = build_encoder("mlp", in_channels=1, image_size=8, hidden_dims=(64,), output_dim=32)
    views = build_views("simclr", image_size=8, channels=1)
    defaults = {"queue_size": 32, "num_hardest": 6, "num_mixed": 5, "num_query_mixed": 3, "mixing_start_step": 0}
    return MoCHi(net, views, **{**defaults, **options})


def _batch(n: int = 8, seed: int = 0) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    return Batch(torch.rand(n, 1, 8, 8, generator=generator), None)


def _step(method: MoCHi, seed: int) -> None:
    method(_batch(seed=seed)).loss.backward()
    method.on_step_end(int(method.steps_done), 100)


def _reference_loss(queries, keys, queue, temperature, num_hardest, num_mixed, num_query_mixed, generator):
    """The MoCHi loss, one row at a time, with the draws in mochi_negatives' documented order."""
    rows = queries.shape[0]
    hardest = min(num_hardest, queue.shape[0])
    first = torch.randint(hardest, (rows, num_mixed), generator=generator)
    second = torch.randint(hardest, (rows, num_mixed), generator=generator)
    alpha = torch.rand((rows, num_mixed), generator=generator)
    picks = torch.randint(hardest, (rows, num_query_mixed), generator=generator)
    beta = 0.5 * torch.rand((rows, num_query_mixed), generator=generator)
    all_sims = F.normalize(queries.detach(), dim=1) @ F.normalize(queue, dim=1).T
    losses = []
    for r in range(rows):
        q = queries[r] / queries[r].norm()
        bank = [n / n.norm() for n in queue]
        # The hardest-first order as the method computes it (near-ties among momentum keys would
        # otherwise be broken differently by float rounding); membership of the top N is
        # checked against a brute-force fit in test_negatives_hard_mixing.py.
        order = all_sims[r].topk(hardest).indices.tolist()
        columns = [k / k.norm() for k in keys] + bank
        for s in range(num_mixed):
            h = alpha[r, s] * bank[order[first[r, s]]] + (1 - alpha[r, s]) * bank[order[second[r, s]]]
            columns.append((h / h.norm()).detach())
        for s in range(num_query_mixed):
            h = beta[r, s] * q.detach() + (1 - beta[r, s]) * bank[order[picks[r, s]]]
            columns.append((h / h.norm()).detach())
        logits = torch.stack([q @ c for c in columns]) / temperature
        losses.append(-(logits[r] - torch.logsumexp(logits, dim=0)))
    return torch.stack(losses).mean()


@pytest.mark.parametrize("symmetric", [True, False])
def test_loss_equals_a_per_row_reference_with_the_same_generator(symmetric):
    method = _method(symmetric=symmetric)
    _step(method, seed=1)  # fill part of the queue
    _step(method, seed=2)
    batch = _batch(seed=3)
    embeddings = method.embeddings(batch)
    method.generator = torch.Generator().manual_seed(11)
    output = method.loss_from_embeddings(embeddings, batch)
    assert output.logs["mochi_active"] == 1.0
    queries, keys = torch.cat(embeddings[0::2]), torch.cat(embeddings[1::2])
    expected = _reference_loss(
        queries, keys, method.queue.negatives().clone(), method.temperature, 6, 5, 3, torch.Generator().manual_seed(11)
    )
    assert torch.allclose(output.loss, expected, atol=1e-5)
    # gradients of both reach the projector equally (synthetic columns are constants)
    grads = torch.autograd.grad(output.loss, method.projector.parameters(), retain_graph=True)
    ref_grads = torch.autograd.grad(expected, method.projector.parameters())
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads, ref_grads))


def test_loss_is_larger_than_moco_on_the_same_embeddings():
    # More (and harder) columns in the denominator can only raise the loss of every row.
    method = _method()
    _step(method, seed=1)
    batch = _batch(seed=2)
    embeddings = method.embeddings(batch)
    mochi = method.loss_from_embeddings(embeddings, batch)
    moco = MoCo.loss_from_embeddings(method, embeddings, batch)
    assert float(mochi.loss.detach()) > float(moco.loss.detach())


def test_warm_up_is_plain_moco_and_mixing_starts_at_the_given_step():
    method = _method(mixing_start_step=2)
    batch = _batch(seed=5)
    for step in range(3):
        embeddings = method.embeddings(batch)
        output = method.loss_from_embeddings(embeddings, batch)
        moco = MoCo.loss_from_embeddings(method, embeddings, batch)
        if step < 2:
            assert output.logs["mochi_active"] == 0.0
            assert torch.equal(output.loss, moco.loss)
        else:
            assert output.logs["mochi_active"] == 1.0
            assert not torch.allclose(output.loss, moco.loss)
        output.loss.backward()
        method.on_step_end(step, 10)
    assert int(method.steps_done) == 3
    assert "steps_done" in method.state_dict()


def test_empty_queue_falls_back_to_moco():
    method = _method(mixing_start_step=0)
    output = method(_batch())
    assert output.logs["mochi_active"] == 0.0 and math.isfinite(float(output.loss.detach()))


def test_synthetic_negatives_never_enter_the_queue(monkeypatch):
    produced = []
    original = mochi_module.mochi_negatives

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        produced.append(out.clone())
        return out

    monkeypatch.setattr(mochi_module, "mochi_negatives", spy)
    method = _method(queue_size=64)
    _step(method, seed=1)
    before = method.queue.negatives().clone()
    output = method(_batch(seed=2))
    pending = method._pending_keys.clone()
    output.loss.backward()
    method.on_step_end(1, 100)
    after = method.queue.negatives()
    assert produced and after.shape[0] == before.shape[0] + 8  # one key per image, nothing else
    assert torch.equal(after[: before.shape[0]], before)
    assert torch.equal(after[before.shape[0] :], pending)
    synthetic = produced[-1].reshape(-1, after.shape[1])
    # (a mixture with i == j is a copy of an old queue row, so compare with the new rows only)
    assert torch.cdist(after[before.shape[0] :], synthetic).min() > 1e-4


def test_logs_show_mixed_negatives_are_harder_than_the_queue():
    method = _method(queue_size=64)
    for seed in range(1, 5):
        _step(method, seed=seed)
    logs = method(_batch(seed=9)).logs
    assert logs["mochi_sim_mixed"] > logs["mochi_sim_queue"]
    assert logs["mochi_sim_hardest"] > logs["mochi_sim_queue"]
    assert logs["mochi_sim_query_mixed"] < 1.0


def test_gradient_reaches_the_encoder_but_not_the_key_encoder():
    method = _method()
    _step(method, seed=1)
    method.zero_grad(set_to_none=True)
    method(_batch(seed=2)).loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.encoder.parameters())
    assert all(p.grad is None for p in method.key_encoder.parameters())


@pytest.mark.parametrize(
    "options,match",
    [
        ({"num_hardest": 0}, "num_hardest"),
        ({"num_mixed": 0, "num_query_mixed": 0}, "at least one"),
        ({"mixing_start_step": -1}, "mixing_start_step"),
    ],
)
def test_bad_options_raise(options, match):
    with pytest.raises(ValueError, match=match):
        _method(**options)


def test_checkpoint_round_trip_keeps_the_warm_up_state():
    method = _method(mixing_start_step=5)
    _step(method, seed=1)
    state = method.state_dict()
    fresh = _method(mixing_start_step=5)
    fresh.load_state_dict(state)
    assert int(fresh.steps_done) == 1 and torch.equal(fresh.queue.negatives(), method.queue.negatives())
    assert F.normalize(fresh.queue.negatives(), dim=1).shape[0] == 8

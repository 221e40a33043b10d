"""BECLR: the step runs, the teacher gets no gradient, DyCE enhancement and the uniformity term."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from contrastkit.data import Batch
from contrastkit.methods.beclr import BECLR, beclr_uniformity
from contrastkit.nn.registry import build_encoder
from contrastkit.utils.seed import seed_everything
from contrastkit.views.image import build_views


def _method(**options) -> BECLR:
    seed_everything(0)
    encoder = build_encoder("small-resnet", in_channels=1, image_size=8, widths=(8, 16, 16))
    views = build_views("byol", image_size=8, channels=1)
    defaults = dict(projection_hidden_dim=32, projection_dim=16, predictor_hidden_dim=8, memory_size=64,
                    num_partitions=4, k=2, memory_start_step=2)
    return BECLR(encoder, views, **{**defaults, **options})


def _batch(n: int = 16, seed: int = 0) -> Batch:
    return Batch(torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)))


def _train(method: BECLR, steps: int, start: int = 0) -> list[dict[str, float]]:
    optimiser = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.05)
    logs = []
    for step in range(start, start + steps):
        output = method(_batch(seed=step))
        optimiser.zero_grad()
        output.loss.backward()
        optimiser.step()
        method.on_step_end(step, 10)
        logs.append(output.logs)
    return logs


def test_step_runs_and_the_teacher_gets_no_gradient():
    method = _method()
    output = method(_batch())
    assert output.loss.dim() == 0 and torch.isfinite(output.loss)
    output.loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in method.target.parameters())
    grads = [p.grad for p in method.encoder.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    assert method.predictor.layers[0].weight.grad is not None
    # The memory holds no gradient-carrying tensor either.
    assert not any(b.requires_grad for b in method.memory.buffers())


def test_teacher_is_an_ema_of_the_student():
    method = _method()
    with torch.no_grad():
        for parameter in method.encoder.parameters():
            parameter.add_(1.0)
    before = [p.clone() for p in method.target.parameters()]
    online = list(method.encoder.parameters()) + list(method.projector.parameters())
    method(_batch())
    momentum = method.target.momentum_at(0, 10)
    assert momentum == pytest.approx(0.995)
    method.on_step_end(0, 10)
    for old, new, live in zip(before, method.target.parameters(), online):
        assert torch.allclose(new, momentum * old + (1 - momentum) * live.detach(), atol=1e-6)


def test_memory_fills_with_teacher_targets_and_enhancement_starts_on_schedule():
    method = _method()
    output = method(_batch())
    assert len(method.memory) == 0  # nothing written during forward
    pending = method._pending_targets.clone()
    method.on_step_end(0, 10)
    assert torch.equal(method.memory.stored(), pending) and pending.shape == (32, 16)  # both views
    logs = [output.logs] + _train(method, 3, start=1)
    assert [log["enhanced"] for log in logs] == [0.0, 0.0, 1.0, 1.0]  # from memory_start_step = 2
    assert method.memory.is_clustered and int(method.step_count) == 4
    assert all(math.isfinite(log["loss"]) for log in logs)


def test_enhanced_positive_term_pairs_each_prediction_with_its_target_and_its_neighbours():
    method = _method()
    _train(method, 3)
    assert method.enhancing
    method.train()
    seed_everything(5)
    p_a, p_b, z_a, z_b, t_a, t_b = method.embeddings(_batch(seed=9))
    output = method.loss_from_embeddings((p_a, p_b, z_a, z_b, t_a, t_b), _batch(seed=9))

    def slow(prediction, target):  # mean over the (k + 1) B pairs, one pair at a time
        neighbours = method.memory.enhance(target)
        values = []
        for i in range(prediction.shape[0]):
            for candidate in [target[i]] + list(neighbours[i]):
                values.append(-F.cosine_similarity(prediction[i], candidate, dim=0))
        return torch.stack(values).mean()

    positive = (slow(p_a, t_b) + slow(p_b, t_a)) / 2
    expected = positive + 0.1 * beclr_uniformity(z_a, z_b, 2.0)
    assert output.logs["loss_positive"] == pytest.approx(positive.item(), abs=1e-5)
    assert torch.allclose(output.loss, expected, atol=1e-5)
    # Gradient flows through the enhanced pairs to the student only.
    output.loss.backward()
    assert method.predictor.layers[0].weight.grad.abs().sum() > 0


def test_uniformity_matches_a_loop_over_pairs():
    generator = torch.Generator().manual_seed(0)
    z_a, z_b = torch.randn(4, 6, generator=generator), torch.randn(4, 6, generator=generator)
    z = F.normalize(torch.cat([z_a, z_b]), dim=1)
    terms = [math.exp(float(z[i] @ z[j]) / 2.0) for i in range(8) for j in range(8)
             if j != i and j != (i + 4) % 8]
    assert beclr_uniformity(z_a, z_b, 2.0).item() == pytest.approx(math.log(sum(terms) / len(terms)), abs=1e-6)
    with pytest.raises(ValueError, match="B >= 2"):
        beclr_uniformity(z_a[:1], z_b[:1])


def test_state_dict_carries_memory_and_step_count():
    method = _method()
    _train(method, 3)
    restored = _method()
    restored.load_state_dict(method.state_dict())
    assert int(restored.step_count) == 3 and restored.enhancing
    assert torch.equal(restored.memory.bank, method.memory.bank)
    assert torch.equal(restored.memory.prototypes, method.memory.prototypes)


def test_bad_options_raise():
    with pytest.raises(ValueError, match="uniformity_weight"):
        _method(uniformity_weight=-1.0)
    with pytest.raises(ValueError, match="memory_start_step"):
        _method(memory_start_step=-1)

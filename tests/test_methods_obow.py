"""OBoW as a method: symmetric cross-view BoW loss, frozen EMA teacher, online vocabulary, training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.methods.obow import OBoW
from contrastkit.nn import SmallResNet
from contrastkit.nn.bow import bow_cross_entropy


class Flip(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(-1)


def tiny_obow(views: tuple[nn.Module, nn.Module] | None = None, **options: object) -> OBoW:
    encoder = SmallResNet(1, widths=(4, 8, 16), stem_stride=2, channels_last=False)
    return OBoW(encoder, views or (nn.Identity(), Flip()), num_words=32, **options)


def test_levels_are_the_last_two_stages() -> None:
    torch.manual_seed(0)
    method = tiny_obow()
    assert [v.num_channels for v in method.vocabularies] == [8, 16]
    maps = method.encoder.feature_maps(torch.rand(2, 1, 28, 28))
    assert [tuple(m.shape[-2:]) for m in maps] == [(14, 14), (7, 7), (4, 4)]


def test_loss_is_cross_view_and_symmetric() -> None:
    torch.manual_seed(1)
    method = tiny_obow().eval()  # eval: no vocabulary update, batch-norm running statistics
    x = torch.rand(6, 1, 28, 28)
    out = method(Batch(x))
    views = torch.cat([x, x.flip(-1)])
    words = [v.words for v in method.vocabularies]
    predictions = method.predictor(method.encoder(views), words)
    maps = method.teacher.module.feature_maps(views)
    targets = [method.vocabularies[i](maps[level]) for i, level in enumerate((-2, -1))]
    cross = same = torch.zeros(())
    for target, prediction in zip(targets, predictions):
        (t_a, t_b), (p_a, p_b) = target.chunk(2), prediction.chunk(2)
        cross = cross + bow_cross_entropy(t_b, p_a) + bow_cross_entropy(t_a, p_b)
        same = same + bow_cross_entropy(t_a, p_a) + bow_cross_entropy(t_b, p_b)
    torch.testing.assert_close(out.loss, cross)
    assert not torch.allclose(out.loss, same)
    assert out.logs["loss"] == pytest.approx(out.loss.item())


def test_teacher_gets_no_gradient_student_and_predictor_do() -> None:
    torch.manual_seed(2)
    method = tiny_obow()
    method(Batch(torch.rand(4, 1, 28, 28))).loss.backward()
    assert all(not p.requires_grad and p.grad is None for p in method.teacher.parameters())
    assert all(p.grad is not None for p in method.encoder.parameters())
    assert all(p.grad is not None for p in method.predictor.parameters())
    assert all(not b.requires_grad for b in method.vocabularies.buffers())


def test_training_step_updates_vocabulary_once_per_image() -> None:
    torch.manual_seed(3)
    method = tiny_obow()
    before = [v.words.clone() for v in method.vocabularies]
    method(Batch(torch.rand(5, 1, 28, 28)))
    for vocabulary, words in zip(method.vocabularies, before):
        assert int(vocabulary.ptr) == 5 and int(vocabulary.num_batches) == 1
        assert not torch.equal(vocabulary.words[:5], words[:5])
        torch.testing.assert_close(vocabulary.words[5:], words[5:])
    method.eval()
    method(Batch(torch.rand(5, 1, 28, 28)))
    assert all(int(v.num_batches) == 1 for v in method.vocabularies)


def test_on_step_end_moves_teacher_towards_student() -> None:
    torch.manual_seed(4)
    method = tiny_obow(base_momentum=0.5)
    with torch.no_grad():
        for p in method.encoder.parameters():
            p.add_(1.0)
    teacher_before = [p.clone() for p in method.teacher.parameters()]
    method.on_step_end(0, 10)
    for old, new, student in zip(teacher_before, method.teacher.parameters(), method.encoder.parameters()):
        torch.testing.assert_close(new, 0.5 * old + 0.5 * student)


def test_loss_finite_and_decreases_on_fixed_batch() -> None:
    torch.manual_seed(5)
    method = tiny_obow()
    x = torch.rand(16, 1, 28, 28)
    optimizer = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    steps = 12
    for step in range(steps):
        out = method(Batch(x))
        assert torch.isfinite(out.loss)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        method.on_step_end(step, steps)
        losses.append(out.loss.item())
    assert sum(losses[-3:]) / 3 < losses[0] - 0.1, losses


def test_state_dict_holds_vocabulary_and_teacher() -> None:
    method = tiny_obow()
    keys = set(method.state_dict())
    assert {"vocabularies.0.words", "vocabularies.1.min_distance_mean", "vocabularies.1.ptr"} <= keys
    assert any(key.startswith("teacher.module.") for key in keys)


def test_bad_configuration_raises() -> None:
    encoder = SmallResNet(1, widths=(4, 8, 16), stem_stride=2)
    with pytest.raises(ValueError, match="out of range"):
        OBoW(encoder, (nn.Identity(), nn.Identity()), bow_levels=(5,))
    with pytest.raises(ValueError, match="one channel count per BoW level"):
        OBoW(encoder, (nn.Identity(), nn.Identity()), level_channels=(8,))

    class Flat(nn.Module):
        output_dim = 4

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1)[:, :4]

    with pytest.raises(ValueError, match="feature_maps"):
        OBoW(Flat(), (nn.Identity(), nn.Identity()))

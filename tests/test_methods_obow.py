"""OBoW as a method: whole-image teacher targets predicted from crops, EMA teacher, online vocabulary."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.methods.obow import OBoW, RandomHorizontalFlip, words_for_batch
from contrastkit.nn import SmallResNet
from contrastkit.nn.bow import bow_cross_entropy


class Flip(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(-1)


class Shift(nn.Module):
    """A stand-in strong augmentation: every view differs from the image and from its flip."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.value


def tiny_obow(views: tuple[nn.Module, nn.Module] | None = None, **options: object) -> OBoW:
    encoder = SmallResNet(1, widths=(4, 8, 16), stem_stride=2, channels_last=False)
    return OBoW(encoder, views or (nn.Identity(), Flip()), num_words=32, **options)


def test_levels_are_the_last_two_stages() -> None:
    torch.manual_seed(0)
    method = tiny_obow()
    assert [v.num_channels for v in method.vocabularies] == [8, 16]
    maps = method.encoder.feature_maps(torch.rand(2, 1, 28, 28))
    assert [tuple(m.shape[-2:]) for m in maps] == [(14, 14), (7, 7), (4, 4)]


def _reference_loss(method: OBoW, views: torch.Tensor, targets: list[torch.Tensor]) -> torch.Tensor:
    words = [v.words for v in method.vocabularies]
    predictions = method.predictor(method.encoder(views), words)
    loss = torch.zeros(())
    for target, prediction in zip(targets, predictions):
        p_a, p_b = prediction.chunk(2)
        loss = loss + 0.5 * (bow_cross_entropy(target[0], p_a) + bow_cross_entropy(target[1], p_b))
    return loss / len(targets)


def test_teacher_codes_the_whole_flipped_image_and_both_crops_predict_it() -> None:
    torch.manual_seed(1)
    # Teacher: always flip (the default flips with p = 0.5); student views: shifted images.
    method = tiny_obow((Shift(0.3), Shift(-0.2)), teacher_view=RandomHorizontalFlip(1.0)).eval()
    x = torch.rand(6, 1, 28, 28)
    out = method(Batch(x))
    views = torch.cat([x + 0.3, x - 0.2])
    maps = method.teacher.module.feature_maps(x.flip(-1))
    target = [method.vocabularies[i](maps[level]) for i, level in enumerate((-2, -1))]
    torch.testing.assert_close(out.loss, _reference_loss(method, views, [(t, t) for t in target]))
    # Not the cross-view variant (targets from the other strongly augmented view).
    view_maps = method.teacher.module.feature_maps(views)
    cross = [method.vocabularies[i](view_maps[level]).chunk(2)[::-1] for i, level in enumerate((-2, -1))]
    assert not torch.allclose(out.loss, _reference_loss(method, views, cross))
    assert out.logs["loss"] == pytest.approx(out.loss.item())


def test_teacher_input_is_the_unaugmented_image_or_its_flip() -> None:
    torch.manual_seed(11)
    method = tiny_obow((Shift(0.3), Shift(-0.2)))
    assert isinstance(method.teacher_view, RandomHorizontalFlip) and method.teacher_view.p == 0.5
    seen: list[torch.Tensor] = []
    teacher_maps = method.teacher.module.feature_maps

    def spy(images: torch.Tensor) -> list[torch.Tensor]:
        seen.append(images.clone())
        return teacher_maps(images)

    method.teacher.module.feature_maps = spy  # type: ignore[method-assign]
    x = torch.rand(64, 1, 28, 28)
    method(Batch(x))
    assert len(seen) == 1 and seen[0].shape == x.shape  # one teacher pass over the B images
    same = (seen[0] == x).flatten(1).all(1)
    flipped = (seen[0] == x.flip(-1)).flatten(1).all(1)
    assert bool((same | flipped).all())  # every row is the image or its mirror, nothing else
    assert 0 < int(flipped.sum()) < 64  # flipped with p = 0.5


def test_views_variant_is_cross_view() -> None:
    torch.manual_seed(1)
    method = tiny_obow(teacher_input="views").eval()
    x = torch.rand(6, 1, 28, 28)
    out = method(Batch(x))
    views = torch.cat([x, x.flip(-1)])
    maps = method.teacher.module.feature_maps(views)
    targets = [method.vocabularies[i](maps[level]).chunk(2) for i, level in enumerate((-2, -1))]
    cross = _reference_loss(method, views, [(t_b, t_a) for t_a, t_b in targets])
    same = _reference_loss(method, views, targets)
    torch.testing.assert_close(out.loss, cross)
    assert not torch.allclose(out.loss, same)


def test_predictor_uses_raw_features_by_default() -> None:
    assert not tiny_obow().predictor.normalize_features
    assert tiny_obow(cosine_logits=True).predictor.normalize_features


def test_vocabulary_size_follows_the_paper_turnover() -> None:
    assert words_for_batch(256) == 8192  # the paper's K at its batch
    assert words_for_batch(128) == 4096
    encoder = SmallResNet(1, widths=(4, 8, 16), stem_stride=2)
    assert [v.num_words for v in OBoW(encoder, (nn.Identity(), Flip())).vocabularies] == [4096, 4096]
    with pytest.raises(ValueError):
        words_for_batch(0)


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
    with pytest.raises(ValueError, match="teacher_input"):
        OBoW(encoder, (nn.Identity(), nn.Identity()), teacher_input="crops")

    class Flat(nn.Module):
        output_dim = 4

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1)[:, :4]

    with pytest.raises(ValueError, match="feature_maps"):
        OBoW(Flat(), (nn.Identity(), nn.Identity()))

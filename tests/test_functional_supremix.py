"""SupReMix: mixture geometry and labels, label-distance weights, loss vs a loop reference."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from contrastkit.functional.contrastive import supcon
from contrastkit.functional.supremix import (
    label_distance_weights,
    supremix_loss,
    supremix_mixtures,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


Y = torch.tensor([1.0, 2.0, 2.0, 4.0, 7.0])


def _views(seed: int = 0, b: int = 5, v: int = 2, d: int = 6) -> torch.Tensor:
    return torch.randn(b, v, d, generator=_gen(seed))


def test_anchor_inclusive_mixtures_lie_between_anchor_and_a_negative() -> None:
    z = F.normalize(torch.randn(10, 6, generator=_gen(1)), dim=1)
    y = Y.repeat(2)
    mix = supremix_mixtures(z, y, mix_positives=False, max_negatives=None, generator=_gen(2))
    negative = mix.mask == 0
    assert negative.sum() == sum(int((y != y[a]).sum()) for a in range(10))  # all candidates, uncapped
    for a, m in zip(*torch.nonzero(negative, as_tuple=True)):
        vec, k = mix.vectors[a, m], int(mix.second[a, m])
        assert int(mix.first[a, m]) == int(a) and y[k] != y[a]
        # Independent geometry: project onto the segment z_k -> z_a; the residual is zero.
        direction = z[a] - z[k]
        t = float((vec - z[k]) @ direction / direction.square().sum())
        assert 0 < t < 1
        assert torch.allclose(z[k] + t * direction, vec, atol=1e-5)
        assert float(mix.labels[a, m]) == pytest.approx(t * float(y[a]) + (1 - t) * float(y[k]), abs=1e-4)
        assert float(mix.labels[a, m]) != float(y[a])


def test_anchor_exclusive_mixtures_have_exactly_the_anchor_label() -> None:
    z = F.normalize(torch.randn(10, 6, generator=_gen(3)), dim=1)
    y = Y.repeat(2)
    mix = supremix_mixtures(z, y, mix_negatives=False, max_positives=None, generator=_gen(4))
    positive = mix.mask == 1
    # Pairs (j, k) with y_j < y_a < y_k, counted by brute force.
    expected = [sum(1 for j in range(10) for k in range(10) if y[j] < y[a] < y[k]) for a in range(10)]
    assert positive.sum(1).tolist() == expected
    assert torch.equal(mix.labels[positive], y.unsqueeze(1).expand_as(mix.labels)[positive])
    for a, m in zip(*torch.nonzero(positive, as_tuple=True)):
        j, k = int(mix.first[a, m]), int(mix.second[a, m])
        lam = (float(y[k]) - float(y[a])) / (float(y[k]) - float(y[j]))
        assert float(mix.lam[a, m]) == pytest.approx(lam)
        # The same combination of the labels gives the anchor's label.
        assert lam * float(y[j]) + (1 - lam) * float(y[k]) == pytest.approx(float(y[a]))
        assert torch.allclose(mix.vectors[a, m], lam * z[j] + (1 - lam) * z[k], atol=1e-6)


def test_caps_gap_and_reproducibility() -> None:
    z = torch.randn(10, 4, generator=_gen(5))
    y = Y.repeat(2)
    mix = supremix_mixtures(z, y, max_negatives=3, max_positives=2, generator=_gen(6))
    assert mix.vectors.shape == (10, 5, 4)
    assert ((mix.mask == 0).sum(1) <= 3).all() and ((mix.mask == 1).sum(1) <= 2).all()
    again = supremix_mixtures(z, y, max_negatives=3, max_positives=2, generator=_gen(6))
    assert torch.equal(mix.vectors, again.vectors) and torch.equal(mix.mask, again.mask)
    gapped = supremix_mixtures(z, y, mix_negatives=False, max_positives=None, max_positive_gap=2.5)
    for a, m in zip(*torch.nonzero(gapped.mask == 1, as_tuple=True)):
        assert float(y[a] - y[gapped.first[a, m]]) < 2.5 and float(y[gapped.second[a, m]] - y[a]) < 2.5


def test_label_distance_weights() -> None:
    a, y = torch.tensor([0.0, 3.0]), torch.tensor([0.0, 1.0, 3.0])
    d = (a.unsqueeze(1) - y).abs()
    assert torch.allclose(label_distance_weights(a, y, "L1"), 1 / (d + 1))
    assert torch.allclose(label_distance_weights(a, y, "L2"), 1 / (d**2 + 1))
    assert torch.allclose(label_distance_weights(a, y, "L1_inv"), d + 1)
    assert torch.allclose(label_distance_weights(a, y, "L2_inv"), d**2 + 1)
    with pytest.raises(ValueError, match="distance"):
        label_distance_weights(a, y, "cos")


def _reference(features, labels, mix, tau, distance):
    """Loops over the METHODS #58 formula, mixture columns appended."""
    b, v, _ = features.shape
    z = F.normalize(features.transpose(0, 1).reshape(b * v, -1), dim=1).double()
    n = b * v
    y = [float(labels[i % b]) for i in range(n)]

    def weight(ya, yk):
        dd = abs(ya - yk)
        return {"L1": 1 / (dd + 1), "L2": 1 / (dd**2 + 1), "L1_inv": dd + 1, "L2_inv": dd**2 + 1, None: 1.0}[distance]

    total = 0.0
    for i in range(n):
        cols = [(float(z[i] @ z[k]), y[k], y[k] == y[i]) for k in range(n) if k != i]
        for m in range(mix.mask.shape[1]):
            if int(mix.mask[i, m]) != -1:
                sim = float(z[i] @ mix.vectors[i, m].double())
                cols.append((sim, float(mix.labels[i, m]), int(mix.mask[i, m]) == 1))
        log_denom = math.log(sum(weight(y[i], yk) * math.exp(s / tau) for s, yk, _ in cols))
        pos = [s / tau - log_denom for s, _, is_pos in cols if is_pos]
        total += -sum(pos) / len(pos)
    return total / n


@pytest.mark.parametrize("distance", ["L1", "L1_inv", "L2", "L2_inv", None])
def test_loss_matches_loop_reference(distance) -> None:
    features = _views(7)
    z = F.normalize(features.transpose(0, 1).reshape(10, -1), dim=1)
    mix = supremix_mixtures(z, Y.repeat(2), max_negatives=4, max_positives=4, generator=_gen(8))
    got = supremix_loss(features, Y, temperature=0.2, distance=distance, mixtures=mix)
    assert float(got) == pytest.approx(_reference(features, Y, mix, 0.2, distance), rel=1e-5)
    # Same thing when the loss samples its own mixtures with the same generator.
    sampled = supremix_loss(features, Y, temperature=0.2, distance=distance, max_negatives=4, max_positives=4,
                            generator=_gen(8))
    assert torch.allclose(sampled, got, atol=1e-6)


def test_without_mixtures_it_is_weighted_supcon() -> None:
    features = _views(9)
    ints = torch.tensor([1, 2, 2, 4, 7])
    plain = supremix_loss(features, Y, temperature=0.1, distance=None, mix_negatives=False, mix_positives=False)
    assert torch.allclose(plain, supcon(features, ints, temperature=0.1), atol=1e-6)
    weighted = supremix_loss(features, Y, temperature=0.1, distance="L1", mix_negatives=False, mix_positives=False)
    empty = supremix_mixtures(torch.zeros(10, 6), Y.repeat(2), mix_negatives=False, mix_positives=False)
    assert float(weighted) == pytest.approx(_reference(features, Y, empty, 0.1, "L1"), rel=1e-5)
    assert not torch.allclose(weighted, plain)
    mixed = supremix_loss(features, Y, temperature=0.1, distance="L1", generator=_gen(0))
    assert not torch.allclose(mixed, weighted)


def test_gradients_and_detached_mixtures() -> None:
    features = _views(10).requires_grad_(True)
    supremix_loss(features, Y, generator=_gen(1)).backward()
    assert features.grad is not None and torch.isfinite(features.grad).all()
    # Detached mixtures: a feature row that is only ever a mixture ingredient still gets the
    # gradient of its anchor and real-column roles, and the two settings differ.
    a = _views(10).requires_grad_(True)
    b = _views(10).requires_grad_(True)
    supremix_loss(a, Y, generator=_gen(1)).backward()
    supremix_loss(b, Y, generator=_gen(1), detach_mixtures=False).backward()
    assert not torch.allclose(a.grad, b.grad)
    with pytest.raises(ValueError, match="labels"):
        supremix_loss(features, Y[:3])

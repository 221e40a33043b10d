"""PCL-SR's contrastive term and dual contrastive discriminator loss against loops."""

import math

import pytest
import torch

from contrastkit.functional.pcl_sr import (
    dual_contrastive_discriminator_loss,
    feature_map_similarity,
    pcl_sr_contrastive,
)
from contrastkit.nn.super_resolution import PatchDiscriminator
from contrastkit.views.sharpness import gaussian_blur, unsharp_mask


def _loop_similarity(a, b):
    _, h, w = a.shape
    total = 0.0
    for y in range(h):
        for x in range(w):
            u, v = a[:, y, x], b[:, y, x]
            total += float(u @ v / (u.norm() * v.norm()))
    return total / (h * w)


def test_similarity_matches_loop():
    torch.manual_seed(0)
    a, b = torch.randn(3, 5, 4, 3, dtype=torch.float64), torch.randn(3, 5, 4, 3, dtype=torch.float64)
    sim = feature_map_similarity(a, b)
    for i in range(3):
        assert sim[i].item() == pytest.approx(_loop_similarity(a[i], b[i]), rel=1e-10)
    assert torch.allclose(feature_map_similarity(a, a), torch.ones(3, dtype=torch.float64))


def test_contrastive_matches_loop():
    torch.manual_seed(1)
    b = 5
    f = torch.randn(b, 4, 3, 3, dtype=torch.float64)
    positives = [torch.randn(b, 4, 3, 3, dtype=torch.float64) for _ in range(2)]
    negatives = [torch.randn(b, 4, 3, 3, dtype=torch.float64) for _ in range(2)]
    tau = 0.7
    loss = pcl_sr_contrastive(f, positives, negatives, temperature=tau, generator=torch.Generator().manual_seed(3))
    # replay the same permutations
    gen = torch.Generator().manual_seed(3)
    perms = [torch.randperm(b, generator=gen) for _ in negatives]
    total = 0.0
    for p in positives:
        for i in range(b):
            logits = [_loop_similarity(f[i], p[i]) / tau]
            logits += [_loop_similarity(f[i], n[i]) / tau for n in negatives]
            logits += [_loop_similarity(f[i], n[perm[i]]) / tau for n, perm in zip(negatives, perms)]
            total += -(logits[0] - math.log(sum(math.exp(v) for v in logits)))
    assert loss.item() == pytest.approx(total / (len(positives) * b), rel=1e-10)
    no_shuffle = pcl_sr_contrastive(f, positives, negatives, shuffle_negatives=False)
    total = 0.0
    for p in positives:
        for i in range(b):
            logits = [_loop_similarity(f[i], p[i])] + [_loop_similarity(f[i], n[i]) for n in negatives]
            total += -(logits[0] - math.log(sum(math.exp(v) for v in logits)))
    assert no_shuffle.item() == pytest.approx(total / (len(positives) * b), rel=1e-10)


def test_lower_when_output_equals_hr_than_blurred():
    torch.manual_seed(2)
    hr = torch.rand(6, 1, 16, 16)
    blurred = gaussian_blur(hr, 1.5)
    positives = [hr, unsharp_mask(hr)]
    negatives = [blurred]
    embed = PatchDiscriminator(1, base_channels=8, depth=4, use_wavelet=True).eval()
    with torch.no_grad():
        def feats(x):
            return embed.features(x, 4)[4]
        pos = [feats(p) for p in positives]
        neg = [feats(n) for n in negatives]
        good = pcl_sr_contrastive(feats(hr), pos, neg, generator=torch.Generator().manual_seed(0))
        bad = pcl_sr_contrastive(feats(blurred), pos, neg, generator=torch.Generator().manual_seed(0))
    assert good.item() < bad.item()


def test_gradient_reaches_sr_features():
    f = torch.randn(4, 3, 2, 2, requires_grad=True)
    loss = pcl_sr_contrastive(f, [torch.randn(4, 3, 2, 2)], [torch.randn(4, 3, 2, 2)])
    (grad,) = torch.autograd.grad(loss, f)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_dual_contrastive_loss_matches_loop():
    torch.manual_seed(4)
    real, fake = torch.randn(2, 1, 2, 2, dtype=torch.float64), torch.randn(3, 1, 2, 2, dtype=torch.float64)
    r, f = real.flatten().tolist(), fake.flatten().tolist()

    def half(first, others):
        return sum(-(a - math.log(math.exp(a) + sum(math.exp(o) for o in others))) for a in first) / len(first)

    expected = half(r, f) + half([-v for v in f], [-v for v in r])
    assert dual_contrastive_discriminator_loss(real, fake).item() == pytest.approx(expected, rel=1e-10)
    # separated logits -> small loss
    assert dual_contrastive_discriminator_loss(torch.full((4,), 10.0), torch.full((4,), -10.0)).item() < 1e-6


def test_bad_inputs():
    f = torch.randn(4, 3, 2, 2)
    with pytest.raises(ValueError, match="positive_features"):
        pcl_sr_contrastive(f, [torch.randn(4, 3, 3, 3)], [f])
    with pytest.raises(ValueError, match="at least one"):
        pcl_sr_contrastive(f, [], [f])
    with pytest.raises(ValueError, match="sr_features"):
        pcl_sr_contrastive(torch.randn(4, 3), [f], [f])
    with pytest.raises(ValueError, match="real_logits"):
        dual_contrastive_discriminator_loss(torch.empty(0), f)

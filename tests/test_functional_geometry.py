"""alignment and uniformity against loop references, properties and bad inputs."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.functional import alignment, uniformity

DTYPE = torch.float64
ATOL = 1e-10


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DTYPE).requires_grad_()


def unit(v):
    return v / torch.sqrt(torch.dot(v, v))


def ref_alignment(z_a, z_b, alpha, normalize=True):
    total = 0.0
    for i in range(z_a.shape[0]):
        x, y = (unit(z_a[i]), unit(z_b[i])) if normalize else (z_a[i], z_b[i])
        total = total + torch.sqrt(torch.dot(x - y, x - y)) ** alpha
    return total / z_a.shape[0]


def ref_uniformity(z, t):
    n = z.shape[0]
    total, pairs = 0.0, 0
    for i in range(n):
        for j in range(i + 1, n):
            diff = unit(z[i]) - unit(z[j])
            total = total + torch.exp(-t * torch.dot(diff, diff))
            pairs += 1
    return torch.log(total / pairs)


def assert_values_and_grads(out, expected, inputs):
    assert abs(float((out - expected).detach())) < ATOL, (out, expected)
    for got, want in zip(torch.autograd.grad(out, inputs), torch.autograd.grad(expected, inputs), strict=True):
        assert torch.allclose(got, want, atol=ATOL, rtol=0), (got, want)
        assert got.abs().sum() > 0


@pytest.mark.parametrize("alpha", [2.0, 1.0, 3.0])
def test_alignment_matches_reference(alpha):
    z_a, z_b = randn(6, 5, seed=1), randn(6, 5, seed=2)
    assert_values_and_grads(alignment(z_a, z_b, alpha=alpha), ref_alignment(z_a, z_b, alpha), (z_a, z_b))


def test_alignment_without_normalisation_uses_raw_distances():
    z_a, z_b = randn(5, 4, seed=3), randn(5, 4, seed=4)
    out = alignment(z_a, z_b, normalize=False)
    assert_values_and_grads(out, ref_alignment(z_a, z_b, 2.0, normalize=False), (z_a, z_b))
    assert float(out.detach()) > 4  # raw Gaussian vectors are further apart than the sphere allows


@pytest.mark.parametrize("t", [2.0, 0.5])
def test_uniformity_matches_reference(t):
    z = randn(7, 4, seed=5)
    assert_values_and_grads(uniformity(z, t=t), ref_uniformity(z, t), (z,))


def test_uniformity_properties():
    # antipodal pair: distance^2 = 4 -> log exp(-4t) = -4t, the minimum for two points
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=DTYPE)
    assert abs(float(uniformity(z, t=2)) + 8.0) < ATOL
    collapsed = torch.ones(6, 3, dtype=DTYPE)
    assert abs(float(uniformity(collapsed))) < ATOL
    spread = torch.randn(64, 3, generator=torch.Generator().manual_seed(0), dtype=DTYPE)
    assert float(uniformity(spread)) < -1.0
    # uniformity and alignment are scale-free when normalising
    assert abs(float(uniformity(spread * 5) - uniformity(spread))) < ATOL
    assert math.isfinite(float(alignment(spread, spread * 2)))
    assert abs(float(alignment(spread, spread * 2))) < ATOL


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: alignment(torch.randn(4, 3), torch.randn(5, 3)), "rows"),
        (lambda: alignment(torch.randn(4, 3), torch.randn(4, 2)), "feature size"),
        (lambda: alignment(torch.randn(4, 3, 1), torch.randn(4, 3, 1)), "shape"),
        (lambda: alignment(torch.full((4, 3), float("nan")), torch.randn(4, 3)), "finite"),
        (lambda: alignment(torch.randn(4, 3), torch.randn(4, 3), alpha=0.0), "alpha"),
        (lambda: uniformity(torch.randn(1, 3)), "at least 2"),
        (lambda: uniformity(torch.randn(4)), "shape"),
        (lambda: uniformity(torch.full((4, 3), float("inf"))), "finite"),
        (lambda: uniformity(torch.randn(4, 3), t=0.0), "t:"),
    ],
)
def test_bad_inputs_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_mmd_matches_pairwise_loop() -> None:
    from contrastkit.functional import mmd

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(4, 3, generator=g, dtype=torch.float64) + 1
    pooled = torch.cat([x, y])
    sq = [float(((a - b) ** 2).sum()) for i, a in enumerate(pooled) for j, b in enumerate(pooled) if i != j]
    median = sorted(sq)[(len(sq) - 1) // 2]  # torch.median takes the lower middle value

    def k(a: torch.Tensor, b: torch.Tensor) -> float:
        d = float(((a - b) ** 2).sum())
        return sum(math.exp(-d / (2 * s * s * median)) for s in (0.5, 1.0, 2.0))

    xx = sum(k(a, b) for a in x for b in x) / 25
    yy = sum(k(a, b) for a in y for b in y) / 16
    xy = sum(k(a, b) for a in x for b in y) / 20
    assert abs(float(mmd(x, y)) - (xx + yy - 2 * xy)) < 1e-10
    assert float(mmd(x, x)) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="positive bandwidths"):
        mmd(x, y, bandwidths=(0.0,))

"""negative_cosine against a loop reference, its stop-gradient, and bad inputs."""

from __future__ import annotations

import pytest
import torch

from contrastkit.functional import alignment, negative_cosine

DTYPE = torch.float64
ATOL = 1e-10


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DTYPE).requires_grad_()


def ref_negative_cosine(p, z):
    total = 0.0
    for i in range(p.shape[0]):
        total = total + torch.dot(p[i], z[i]) / (torch.sqrt(torch.dot(p[i], p[i])) * torch.sqrt(torch.dot(z[i], z[i])))
    return -total / p.shape[0]


def test_negative_cosine_matches_reference_and_stops_gradient_on_target():
    p, z = randn(6, 5, seed=1), randn(6, 5, seed=2)
    out = negative_cosine(p, z)
    expected = ref_negative_cosine(p, z)
    assert abs(float((out - expected).detach())) < ATOL
    grad_p, grad_z = torch.autograd.grad(out, (p, z), allow_unused=True)
    (want_p,) = torch.autograd.grad(expected, (p,))
    assert torch.allclose(grad_p, want_p, atol=ATOL, rtol=0)
    assert grad_p.abs().sum() > 0
    assert grad_z is None  # the target is detached
    # the reference (no stop-gradient) would have sent a gradient to z
    (ref_grad_z,) = torch.autograd.grad(ref_negative_cosine(p, z), (z,))
    assert ref_grad_z.abs().sum() > 0


def test_negative_cosine_backward_leaves_target_without_grad():
    p, z = randn(4, 3, seed=3), randn(4, 3, seed=4)
    negative_cosine(p, z).backward()
    assert p.grad is not None and z.grad is None


def test_negative_cosine_range_and_byol_relation():
    z = randn(5, 4, seed=5).detach()
    assert abs(float(negative_cosine(3.0 * z, z)) + 1.0) < ATOL
    assert abs(float(negative_cosine(-z, z)) - 1.0) < ATOL
    p = randn(5, 4, seed=6).detach()
    # BYOL: mean ||p/|p| - z/|z|||^2 = 2 - 2 cos = 2 + 2 * negative_cosine
    assert abs(float(alignment(p, z, alpha=2) - (2 + 2 * negative_cosine(p, z)))) < ATOL


@pytest.mark.parametrize(
    ("p", "z", "message"),
    [
        (torch.randn(4, 3, 2), torch.randn(4, 3, 2), "shape"),
        (torch.randn(4, 3), torch.randn(5, 3), "rows"),
        (torch.randn(4, 3), torch.randn(4, 2), "feature size"),
        (torch.full((4, 3), float("nan")), torch.randn(4, 3), "finite"),
        (torch.randn(4, 3), torch.full((4, 3), float("inf")), "finite"),
        (torch.randn(0, 3), torch.randn(0, 3), "at least 1"),
    ],
)
def test_bad_inputs_raise(p, z, message):
    with pytest.raises(ValueError, match=message):
        negative_cosine(p, z)

"""Barlow Twins and VICReg against naive loop references, properties and bad inputs."""

from __future__ import annotations

import pytest
import torch

from contrastkit.functional import barlow_twins, vicreg, vicreg_terms

DTYPE = torch.float64
ATOL = 1e-10


def randn(*shape, seed=0, grad=True):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DTYPE).requires_grad_(grad)


def assert_values_and_grads(out, expected, inputs):
    assert torch.allclose(out, expected, atol=ATOL, rtol=0), (out, expected)
    grads = torch.autograd.grad(out, inputs)
    expected_grads = torch.autograd.grad(expected, inputs)
    for got, want in zip(grads, expected_grads, strict=True):
        assert torch.allclose(got, want, atol=ATOL, rtol=0), (got, want)
        assert got.abs().sum() > 0


def column_mean(z, d):
    return sum(z[n, d] for n in range(z.shape[0])) / z.shape[0]


def ref_barlow_twins(z_a, z_b, lambd, eps=1e-5):
    n, dims = z_a.shape

    def standardise(z):
        columns = []
        for d in range(dims):
            mean = column_mean(z, d)
            variance = sum((z[k, d] - mean) ** 2 for k in range(n)) / n  # biased
            columns.append([(z[k, d] - mean) / torch.sqrt(variance + eps) for k in range(n)])
        return columns  # columns[d][k]

    a, b = standardise(z_a), standardise(z_b)
    loss = 0.0
    for i in range(dims):
        for j in range(dims):
            c = sum(a[i][k] * b[j][k] for k in range(n)) / n
            loss = loss + ((1 - c) ** 2 if i == j else lambd * c**2)
    return loss


def ref_vicreg_terms(z_a, z_b, eps=1e-4):
    n, dims = z_a.shape
    invariance = sum((z_a[k, d] - z_b[k, d]) ** 2 for k in range(n) for d in range(dims)) / (n * dims)

    def variance_and_covariance(z):
        means = [column_mean(z, d) for d in range(dims)]
        cov = [[sum((z[k, i] - means[i]) * (z[k, j] - means[j]) for k in range(n)) / (n - 1) for j in range(dims)] for i in range(dims)]
        hinge = sum(torch.relu(1 - torch.sqrt(cov[d][d] + eps)) for d in range(dims)) / dims
        off = sum(cov[i][j] ** 2 for i in range(dims) for j in range(dims) if i != j) / dims
        return hinge, off

    var_a, cov_a = variance_and_covariance(z_a)
    var_b, cov_b = variance_and_covariance(z_b)
    return invariance, var_a / 2 + var_b / 2, cov_a + cov_b


def test_barlow_twins_matches_reference():
    z_a, z_b = randn(7, 5, seed=1), randn(7, 5, seed=2)
    assert_values_and_grads(barlow_twins(z_a, z_b, lambd=0.3), ref_barlow_twins(z_a, z_b, 0.3), (z_a, z_b))


def test_barlow_twins_default_lambda():
    z_a, z_b = randn(6, 4, seed=3), randn(6, 4, seed=4)
    assert_values_and_grads(barlow_twins(z_a, z_b), ref_barlow_twins(z_a, z_b, 5e-3), (z_a, z_b))


def test_barlow_twins_is_invariant_to_per_feature_affine_maps():
    z_a, z_b = randn(16, 4, seed=5, grad=False), randn(16, 4, seed=6, grad=False)
    scale = torch.tensor([0.5, 2.0, 3.0, 1.5], dtype=DTYPE)
    shift = torch.tensor([1.0, -2.0, 0.0, 4.0], dtype=DTYPE)
    before = barlow_twins(z_a, z_b, eps=1e-12)
    after = barlow_twins(z_a * scale + shift, z_b, eps=1e-12)
    assert torch.allclose(before, after, atol=1e-8, rtol=0)
    # identical whitened views reach the minimum 0 (C = I)
    white, _ = torch.linalg.qr(randn(16, 4, seed=7, grad=False))
    white = (white - white.mean(0)) / white.std(0, unbiased=False)
    assert float(barlow_twins(white, white, eps=1e-12)) < float(barlow_twins(z_a, z_b))


def test_vicreg_matches_reference():
    z_a, z_b = randn(7, 5, seed=1) * 0.5, randn(7, 5, seed=2) * 2.0  # some dims below the std hinge
    z_a, z_b = z_a.detach().requires_grad_(), z_b.detach().requires_grad_()
    invariance, variance, covariance = ref_vicreg_terms(z_a, z_b)
    expected = 25.0 * invariance + 25.0 * variance + 1.0 * covariance
    assert_values_and_grads(vicreg(z_a, z_b), expected, (z_a, z_b))
    invariance, variance, covariance = ref_vicreg_terms(z_a, z_b)
    out = vicreg(z_a, z_b, sim_coeff=2.0, std_coeff=3.0, cov_coeff=0.5)
    assert_values_and_grads(out, 2.0 * invariance + 3.0 * variance + 0.5 * covariance, (z_a, z_b))


def test_vicreg_terms_match_reference_terms():
    z_a, z_b = randn(6, 4, seed=3, grad=False) * 0.3, randn(6, 4, seed=4, grad=False)
    terms = vicreg_terms(z_a, z_b)
    for name, want in zip(("invariance", "variance", "covariance"), ref_vicreg_terms(z_a, z_b), strict=True):
        assert abs(float(terms[name] - want)) < ATOL, name
    assert float(terms["variance"]) > 0
    assert float(vicreg_terms(z_a, z_a)["invariance"]) == 0.0


@pytest.mark.parametrize("function", [barlow_twins, vicreg, vicreg_terms])
@pytest.mark.parametrize(
    ("make_a", "make_b", "message"),
    [
        (lambda: torch.randn(4), lambda: torch.randn(4), "shape"),
        (lambda: torch.randn(4, 3), lambda: torch.randn(5, 3), "rows"),
        (lambda: torch.randn(4, 3), lambda: torch.randn(4, 2), "feature size"),
        (lambda: torch.full((4, 3), float("nan")), lambda: torch.randn(4, 3), "finite"),
        (lambda: torch.randn(4, 3), lambda: torch.full((4, 3), float("inf")), "finite"),
        (lambda: torch.randn(1, 3), lambda: torch.randn(1, 3), "at least 2"),
    ],
)
def test_bad_inputs_raise(function, make_a, make_b, message):
    with pytest.raises(ValueError, match=message):
        function(make_a(), make_b())


def test_bad_coefficients_raise():
    z = torch.randn(4, 3)
    with pytest.raises(ValueError, match="lambd"):
        barlow_twins(z, z, lambd=-1.0)
    with pytest.raises(ValueError, match="sim_coeff"):
        vicreg(z, z, sim_coeff=float("nan"))
    with pytest.raises(ValueError, match="eps"):
        vicreg(z, z, eps=0.0)

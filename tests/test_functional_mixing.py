"""Mixed Barlow Twins regulariser and input mixing: slow reference, linear-encoder property, gradients, errors."""

from __future__ import annotations

import pytest
import torch

from contrastkit.functional.mixing import mix_inputs, mixed_barlow_twins_regularizer


def assert_close(got: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-6, atol: float = 1e-9) -> None:
    # torch.testing.assert_close costs ~15 s of imports on its first call here: plain allclose instead.
    assert torch.allclose(got, expected.to(got.dtype), rtol=rtol, atol=atol), (got, expected)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _embeddings(n: int = 12, d: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = _gen(seed)
    return tuple(torch.randn(n, d, generator=g, dtype=torch.float64) * 2 + 1 for _ in range(3))  # type: ignore


def loop_reference(z_a, z_b, z_m, permutation, alpha, lambd, mix_weight, eps=1e-5):
    """The paper's formula written out: standardise, build the four matrices entry by entry."""
    n, d = z_a.shape

    def standardise(z):
        out = torch.empty_like(z)
        for j in range(d):
            column = z[:, j]
            mean = sum(column[i] for i in range(n)) / n
            var = sum((column[i] - mean) ** 2 for i in range(n)) / n
            for i in range(n):
                out[i, j] = (column[i] - mean) / torch.sqrt(var + eps)
        return out

    a, b, m = standardise(z_a), standardise(z_b), standardise(z_m)
    b_perm = torch.stack([b[int(permutation[i])] for i in range(n)])
    total = 0.0
    for other in (a, b):
        for i in range(d):
            for j in range(d):
                c_m = sum(m[k, i] * other[k, j] for k in range(n)) / n
                c_gt = alpha * sum(a[k, i] * other[k, j] for k in range(n)) / n + (1 - alpha) * sum(
                    b_perm[k, i] * other[k, j] for k in range(n)
                ) / n
                total = total + (c_m - c_gt) ** 2
    return mix_weight * lambd * total


def test_matches_the_slow_reference_value_and_gradients():
    z_a, z_b, z_m = (z.requires_grad_() for z in _embeddings(n=7, d=3))
    permutation = torch.randperm(7, generator=_gen(3))
    ours = mixed_barlow_twins_regularizer(z_a, z_b, z_m, permutation, 0.37, lambd=5e-3, mix_weight=4.0)
    ours_grads = torch.autograd.grad(ours, (z_a, z_b, z_m))
    reference = loop_reference(z_a, z_b, z_m, permutation, 0.37, 5e-3, 4.0)
    ref_grads = torch.autograd.grad(reference, (z_a, z_b, z_m))
    assert_close(ours, reference, rtol=1e-10, atol=1e-12)
    # Targets not detached: z_a and z_b get the gradient through the targets too, as in the reference.
    for got, expected in zip(ours_grads, ref_grads):
        assert_close(got, expected, rtol=1e-8, atol=1e-12)


def test_gradient_is_not_that_of_detached_targets():
    z_a, z_b, z_m = (z.requires_grad_() for z in _embeddings(seed=1))
    permutation = torch.randperm(12, generator=_gen(4))
    ours = mixed_barlow_twins_regularizer(z_a, z_b, z_m, permutation, 0.4, lambd=1.0)
    (grad_b,) = torch.autograd.grad(ours, (z_b,))

    def standardise(z):
        return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5)

    a, b, m = standardise(z_a), standardise(z_b), standardise(z_m)
    target = (0.4 * a + 0.6 * b[permutation]).detach()  # the variant the official code does NOT use
    detached = sum(((m - target).T @ other / 12).pow(2).sum() for other in (a, b))
    assert_close(detached, ours)  # same value ...
    (grad_b_detached,) = torch.autograd.grad(detached, (z_b,))
    assert (grad_b - grad_b_detached).abs().max() > 1e-3  # ... different gradient


def test_per_row_alpha_equal_to_a_constant_matches_the_scalar():
    z_a, z_b, z_m = _embeddings(seed=2)
    permutation = torch.randperm(12, generator=_gen(5))
    scalar = mixed_barlow_twins_regularizer(z_a, z_b, z_m, permutation, 0.25, lambd=1.0)
    rows = mixed_barlow_twins_regularizer(z_a, z_b, z_m, permutation, torch.full((12,), 0.25), lambd=1.0)
    assert_close(scalar, rows)


def test_weights_scale_linearly():
    z_a, z_b, z_m = _embeddings(seed=3)
    permutation = torch.randperm(12, generator=_gen(6))
    base = mixed_barlow_twins_regularizer(z_a, z_b, z_m, permutation, 0.6, lambd=1.0)
    scaled = mixed_barlow_twins_regularizer(z_a, z_b, z_m, permutation, 0.6, lambd=5e-3, mix_weight=4.0)
    assert_close(scaled, base * 0.02)
    assert base > 0


def _encode_pair(encoder, generator):
    x_a = torch.rand(32, 10, generator=generator, dtype=torch.float64)
    x_b = torch.rand(32, 10, generator=generator, dtype=torch.float64)
    x_m, permutation, alpha = mix_inputs(x_a, x_b, generator=generator)
    return encoder(x_a), encoder(x_b), encoder(x_m), permutation, alpha


def test_affine_encoder_without_standardisation_gives_exactly_zero():
    # What holds exactly: an affine map commutes with the convex combination, so the raw mixed
    # embeddings ARE the interpolation and the unstandardised regulariser vanishes for any alpha, pi.
    g = _gen(7)
    weight, bias = torch.randn(10, 6, generator=g, dtype=torch.float64), torch.randn(6, generator=g, dtype=torch.float64)
    for _ in range(3):
        z_a, z_b, z_m, permutation, alpha = _encode_pair(lambda x: x @ weight + bias, g)
        raw = mixed_barlow_twins_regularizer(z_a, z_b, z_m, permutation, alpha, lambd=1.0, standardize=False)
        assert raw < 1e-20
        # Standardisation breaks it: the std of a mixture is not the mixture of stds.
        standardised = mixed_barlow_twins_regularizer(z_a, z_b, z_m, permutation, alpha, lambd=1.0)
        assert 0.05 < alpha < 0.95 and standardised > 1e-4


def test_nonlinear_encoder_is_penalised_without_standardisation():
    g = _gen(8)
    weight = torch.randn(10, 6, generator=g, dtype=torch.float64)
    z_a, z_b, z_m, permutation, alpha = _encode_pair(lambda x: torch.tanh(3 * x @ weight), g)
    raw = mixed_barlow_twins_regularizer(z_a, z_b, z_m, permutation, alpha, lambd=1.0, standardize=False)
    assert raw > 1e-4


def test_standardised_zero_cases():
    g = _gen(9)
    weight = torch.randn(10, 6, generator=g, dtype=torch.float64)
    x = torch.rand(32, 10, generator=g, dtype=torch.float64)
    identity = torch.arange(32)
    # Linear encoder, identical views, identity pi: the mixture is the input itself.
    z = x @ weight
    assert mixed_barlow_twins_regularizer(z, z, (0.3 * x + 0.7 * x) @ weight, identity, 0.3, lambd=1.0) < 1e-20
    # alpha = 1 or 0: the mixed batch is a view (or a row permutation of one), so any row-wise
    # encoder gives zero — standardisation commutes with row permutations.
    def encoder(v):
        return torch.tanh(3 * v @ weight)

    y = torch.rand(32, 10, generator=g, dtype=torch.float64)
    permutation = torch.randperm(32, generator=g)
    z_a, z_b = encoder(x), encoder(y)
    assert mixed_barlow_twins_regularizer(z_a, z_b, encoder(x), permutation, 1.0, lambd=1.0) < 1e-20
    assert mixed_barlow_twins_regularizer(z_a, z_b, encoder(y[permutation]), permutation, 0.0, lambd=1.0) < 1e-20
    # The wrong permutation is caught.
    assert mixed_barlow_twins_regularizer(z_a, z_b, encoder(y[permutation]), identity, 0.0, lambd=1.0) > 1e-3


def test_mix_inputs_formula_permutation_and_reproducibility():
    g = _gen(10)
    x_a, x_b = torch.rand(8, 1, 4, 4, generator=g), torch.rand(8, 1, 4, 4, generator=g)
    x_m, permutation, alpha = mix_inputs(x_a, x_b, generator=_gen(11))
    assert permutation.dtype == torch.long and sorted(permutation.tolist()) == list(range(8))
    assert isinstance(alpha, float) and 0.0 <= alpha <= 1.0
    assert_close(x_m, alpha * x_a + (1 - alpha) * x_b[permutation])
    again = mix_inputs(x_a, x_b, generator=_gen(11))
    assert torch.equal(again[0], x_m) and torch.equal(again[1], permutation) and again[2] == alpha
    other = mix_inputs(x_a, x_b, generator=_gen(12))
    assert other[2] != alpha


def test_alpha_is_uniform_like_beta_1_1():
    g = _gen(13)
    x = torch.zeros(2, 1)
    alphas = torch.tensor([mix_inputs(x, x, generator=g)[2] for _ in range(2000)])
    assert abs(alphas.mean().item() - 0.5) < 0.03
    assert abs(alphas.var().item() - 1 / 12) < 0.01  # Beta(1, 1) variance
    assert (alphas < 0.1).float().mean().item() == pytest.approx(0.1, abs=0.03)


def test_mix_inputs_uses_the_global_rng_without_generator():
    x_a, x_b = torch.rand(6, 3), torch.rand(6, 3)
    torch.manual_seed(5)
    first = mix_inputs(x_a, x_b)
    torch.manual_seed(5)
    second = mix_inputs(x_a, x_b)
    assert torch.equal(first[0], second[0]) and first[2] == second[2]


def test_errors():
    z = torch.randn(6, 4)
    perm = torch.arange(6)
    with pytest.raises(ValueError, match="permutation"):
        mixed_barlow_twins_regularizer(z, z, z, perm[:5], 0.5, lambd=1.0)
    with pytest.raises(ValueError, match="permutation"):
        mixed_barlow_twins_regularizer(z, z, z, perm.float(), 0.5, lambd=1.0)
    with pytest.raises(ValueError, match="alpha"):
        mixed_barlow_twins_regularizer(z, z, z, perm, 1.5, lambd=1.0)
    with pytest.raises(ValueError, match="alpha"):
        mixed_barlow_twins_regularizer(z, z, z, perm, torch.full((5,), 0.5), lambd=1.0)
    with pytest.raises(ValueError, match="lambd"):
        mixed_barlow_twins_regularizer(z, z, z, perm, 0.5, lambd=-1.0)
    with pytest.raises(ValueError, match="mix_weight"):
        mixed_barlow_twins_regularizer(z, z, z, perm, 0.5, lambd=1.0, mix_weight=float("inf"))
    with pytest.raises(ValueError, match="z_mix"):
        mixed_barlow_twins_regularizer(z, z, torch.randn(6, 3), perm, 0.5, lambd=1.0)
    with pytest.raises(ValueError, match="x_b"):
        mix_inputs(torch.rand(4, 2), torch.rand(4, 3))
    with pytest.raises(ValueError, match="at least 2"):
        mix_inputs(torch.rand(1, 2), torch.rand(1, 2))

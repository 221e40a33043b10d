"""Shuffled group whitening: per-group covariance, a slow numpy reference, gradients, eval modes, errors."""

import numpy as np
import pytest
import torch

from contrastkit.nn.whitening import (
    ShuffledGroupWhitening,
    group_zca_whiten,
    whitened_views,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def correlated(rows: int, dim: int, seed: int = 0) -> torch.Tensor:
    """Rows with strongly correlated channels and a non-zero mean."""
    generator = _gen(seed)
    mixing = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
    return torch.randn(rows, dim, generator=generator, dtype=torch.float64) @ mixing + 3.0


def numpy_reference(x: np.ndarray, permutation: np.ndarray, group_size: int, eps: float) -> np.ndarray:
    """Slow ZCA whitening, one group at a time, written from the formula."""
    out = np.zeros_like(x)
    for start in range(0, x.shape[1], group_size):
        channels = permutation[start : start + group_size]
        group = x[:, channels] - x[:, channels].mean(axis=0)
        covariance = group.T @ group / x.shape[0]
        values, vectors = np.linalg.eigh(covariance)
        whitening = vectors @ np.diag(1.0 / np.sqrt(values + eps)) @ vectors.T
        out[:, channels] = group @ whitening
    return out


def test_matches_slow_reference_with_the_same_permutation():
    x = correlated(64, 24)
    whitening = ShuffledGroupWhitening(num_groups=4, generator=_gen(1))
    permutation = torch.randperm(24, generator=_gen(1))  # the draw the module makes
    out = whitening(x)
    expected = numpy_reference(x.numpy(), permutation.numpy(), 6, 1e-5)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-8)
    # The grouping matters: the same maths with the identity permutation gives another result.
    unshuffled = numpy_reference(x.numpy(), np.arange(24), 6, 1e-5)
    assert not np.allclose(out.numpy(), unshuffled, atol=1e-3)


def test_covariance_inside_each_group_is_identity():
    x = correlated(200, 32).float()
    whitening = ShuffledGroupWhitening(group_size=8, generator=_gen(2))
    permutation = torch.randperm(32, generator=_gen(2))
    out = whitening(x).double()
    assert out.dtype == torch.float64 and whitening(x).dtype == torch.float32
    centred = out - out.mean(dim=0)
    covariance = centred.T @ centred / out.shape[0]
    for start in range(0, 32, 8):
        channels = permutation[start : start + 8]
        block = covariance[channels][:, channels]
        torch.testing.assert_close(block, torch.eye(8, dtype=torch.float64), atol=2e-4, rtol=0)
    # Across groups nothing is whitened: the full covariance is far from the identity.
    assert (covariance - torch.eye(32, dtype=torch.float64)).abs().max() > 0.1


def test_each_training_call_draws_a_new_grouping_and_seeds_repeat():
    x = correlated(64, 16)
    whitening = ShuffledGroupWhitening(num_groups=4, generator=_gen(3))
    first, second = whitening(x), whitening(x)
    assert not torch.allclose(first, second, atol=1e-4)
    again = ShuffledGroupWhitening(num_groups=4, generator=_gen(3))
    assert torch.equal(again(x), first) and torch.equal(again(x), second)


def test_gradients_match_autograd_through_eigh_and_pass_gradcheck():
    x = correlated(20, 12).requires_grad_()
    weights = torch.randn(20, 12, generator=_gen(4), dtype=torch.float64)

    def through_eigh(t, group_size=4, eps=1e-5):
        rows, dim = t.shape
        groups = t.reshape(rows, dim // group_size, group_size).transpose(0, 1)
        centred = groups - groups.mean(dim=1, keepdim=True)
        values, vectors = torch.linalg.eigh(centred.transpose(1, 2) @ centred / rows)
        whitening = (vectors * (values + eps).rsqrt().unsqueeze(1)) @ vectors.transpose(1, 2)
        return (centred @ whitening).transpose(0, 1).reshape(rows, dim)

    (ours,) = torch.autograd.grad((group_zca_whiten(x, 4) * weights).sum(), x)
    (reference,) = torch.autograd.grad((through_eigh(x) * weights).sum(), x)
    torch.testing.assert_close(ours, reference, atol=1e-9, rtol=1e-7)
    small = correlated(8, 6).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: group_zca_whiten(t, 3, 1e-3), (small,))


def test_gradients_stay_finite_on_a_collapsed_batch():
    # Identical rows: the covariance is 0 with repeated eigenvalues, where plain eigh backward gives NaN.
    x = torch.randn(1, 16, generator=_gen(5)).repeat(8, 1).requires_grad_()
    whitening = ShuffledGroupWhitening(num_groups=2, generator=_gen(5))
    out = whitening(x)
    (grad,) = torch.autograd.grad((out * torch.randn(8, 16, generator=_gen(6))).sum(), x)
    assert torch.isfinite(out).all() and torch.isfinite(grad).all() and grad.abs().sum() > 0
    # Fewer rows than the group size: still finite.
    few = torch.randn(3, 16, generator=_gen(7), requires_grad=True)
    ShuffledGroupWhitening(num_groups=1, generator=_gen(7))(few).pow(2).sum().backward()
    assert torch.isfinite(few.grad).all()


def test_gradients_reach_an_upstream_layer_in_training():
    torch.manual_seed(0)
    layer = torch.nn.Linear(10, 16)
    whitening = ShuffledGroupWhitening(num_groups=4)
    loss = whitening(layer(torch.randn(32, 10)))[:, :3].sum()
    loss.backward()
    assert torch.isfinite(layer.weight.grad).all() and layer.weight.grad.abs().sum() > 0


def test_eval_modes():
    x = correlated(32, 16).float()
    skip = ShuffledGroupWhitening(num_groups=4).eval()
    assert skip(x) is x
    fixed = ShuffledGroupWhitening(num_groups=4, num_features=16, eval_mode="fixed", generator=_gen(8)).eval()
    permutation = torch.randperm(16, generator=_gen(8))
    assert torch.equal(fixed.fixed_permutation, permutation)
    out = fixed(x)
    assert torch.equal(out, fixed(x))  # one grouping for every call
    expected = numpy_reference(x.double().numpy(), permutation.numpy(), 4, 1e-5)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-4)
    assert "fixed_permutation" in fixed.state_dict()
    fixed.train()  # training draws a new grouping again
    assert not torch.allclose(fixed(x), out, atol=1e-3)


def test_group_size_and_num_groups_agree():
    x = correlated(40, 12)
    by_groups = ShuffledGroupWhitening(num_groups=3, generator=_gen(9))(x)
    by_size = ShuffledGroupWhitening(group_size=4, generator=_gen(9))(x)
    assert torch.equal(by_groups, by_size)
    assert ShuffledGroupWhitening().num_groups == 128  # the WhitenedCSE default


def test_whitened_views_use_their_own_grouping():
    views = [correlated(32, 8, seed=seed) for seed in range(3)]
    out = whitened_views(views, ShuffledGroupWhitening(num_groups=2, generator=_gen(10)))
    generator = _gen(10)
    reference = ShuffledGroupWhitening(num_groups=2)
    for view, whitened in zip(views, out, strict=True):
        torch.testing.assert_close(whitened, reference.whiten(view, torch.randperm(8, generator=generator)))
    same = whitened_views([views[0], views[0]], ShuffledGroupWhitening(num_groups=2, generator=_gen(11)))
    assert not torch.allclose(same[0], same[1], atol=1e-4)  # two distortions of one batch


def test_errors():
    whitening = ShuffledGroupWhitening(num_groups=4)
    for bad, message in [
        (torch.randn(8), r"\[N, D\]"),
        (torch.randn(2, 3, 4), r"\[N, D\]"),
        (torch.randint(0, 3, (8, 8)), "floating"),
        (torch.randn(1, 8), "at least 2 rows"),
        (torch.randn(8, 10), "divisible by num_groups=4"),
    ]:
        with pytest.raises(ValueError, match=message):
            whitening(bad)
    with pytest.raises(ValueError, match="num_features = 8"):
        ShuffledGroupWhitening(num_groups=4, num_features=8)(torch.randn(4, 12))
    with pytest.raises(ValueError, match="divisible by group_size=5"):
        ShuffledGroupWhitening(group_size=5, num_features=12)
    for options, message in [
        ({"num_groups": 4, "group_size": 2}, "got both"),
        ({"num_groups": 0}, "num_groups"),
        ({"eps": -1.0}, "eps"),
        ({"eval_mode": "running"}, "eval_mode"),
        ({"eval_mode": "fixed"}, "num_features"),
        ({"generator": 1}, "Generator"),
    ]:
        with pytest.raises(ValueError, match=message):
            ShuffledGroupWhitening(**options)
    with pytest.raises(ValueError, match="permutation of shape"):
        whitening.whiten(torch.randn(8, 8), torch.arange(4))
    with pytest.raises(ValueError, match="non-empty list"):
        whitened_views([], whitening)
    with pytest.raises(ValueError, match="same shape"):
        whitened_views([torch.randn(8, 8), torch.randn(6, 8)], whitening)
    with pytest.raises(ValueError, match="ShuffledGroupWhitening"):
        whitened_views([torch.randn(8, 8)], torch.nn.Identity())

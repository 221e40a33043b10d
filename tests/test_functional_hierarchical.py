"""TS2Vec's hierarchical loss against a loop over scales, timestamps and series of the plain nt_xent."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrastkit.functional import grouped_nt_xent, hierarchical_contrastive, nt_xent


def _leaf(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).requires_grad_(True)


def _reference(z_a: torch.Tensor, z_b: torch.Tensor, alpha: float, temporal_unit: int) -> torch.Tensor:
    """Scale by scale, one nt_xent call per timestamp (instance) and per series (temporal)."""
    total, scales = z_a.new_zeros(()), 0
    while True:
        batch, length = z_a.shape[0], z_a.shape[1]
        if alpha > 0 and batch > 1:
            per_t = [nt_xent(z_a[:, t], z_b[:, t], temperature=1.0, normalize=False, chunk_size=None) for t in range(length)]
            total = total + alpha * torch.stack(per_t).mean()
        if length > 1 and scales >= temporal_unit and alpha < 1:
            per_b = [nt_xent(z_a[i], z_b[i], temperature=1.0, normalize=False, chunk_size=None) for i in range(batch)]
            total = total + (1 - alpha) * torch.stack(per_b).mean()
        scales += 1
        if length == 1:
            return total / scales
        # max-pool with kernel 2 over time, dropping an odd last step
        z_a = torch.stack([torch.maximum(z_a[:, 2 * t], z_a[:, 2 * t + 1]) for t in range(length // 2)], dim=1)
        z_b = torch.stack([torch.maximum(z_b[:, 2 * t], z_b[:, 2 * t + 1]) for t in range(length // 2)], dim=1)


@pytest.mark.parametrize(("batch", "length", "alpha", "unit"), [(4, 11, 0.5, 0), (3, 8, 0.3, 1), (1, 5, 0.5, 0), (5, 1, 0.5, 0), (4, 6, 1.0, 0), (4, 8, 0.0, 2)])
def test_matches_loop_reference(batch: int, length: int, alpha: float, unit: int) -> None:
    z_a, z_b = _leaf(batch, length, 3, seed=0), _leaf(batch, length, 3, seed=1)
    got = hierarchical_contrastive(z_a, z_b, alpha=alpha, temporal_unit=unit)
    expected = _reference(z_a, z_b, alpha, unit)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    g_got = torch.autograd.grad(got, [z_a, z_b], allow_unused=True)
    g_exp = torch.autograd.grad(expected, [z_a, z_b], allow_unused=True)
    for a, b in zip(g_got, g_exp):
        if b is None:  # nothing depended on the inputs (a batch of one and length one)
            assert a is None or float(a.abs().max()) == 0.0
        else:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_no_applicable_term_gives_a_differentiable_zero() -> None:
    z_a, z_b = _leaf(4, 6, 3, seed=4), _leaf(4, 6, 3, seed=5)
    loss = hierarchical_contrastive(z_a, z_b, alpha=0.0, temporal_unit=5)
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert z_a.grad is not None and float(z_a.grad.abs().max()) == 0.0


def test_grouped_nt_xent_is_the_mean_of_nt_xent() -> None:
    z_a, z_b = _leaf(3, 5, 4, seed=2), _leaf(3, 5, 4, seed=3)
    expected = torch.stack([nt_xent(z_a[g], z_b[g], temperature=0.5, normalize=False) for g in range(3)]).mean()
    torch.testing.assert_close(grouped_nt_xent(z_a, z_b, temperature=0.5), expected)


def test_identical_views_with_separated_rows_have_low_loss() -> None:
    basis = F.one_hot(torch.arange(6), 6).double() * 20.0  # orthogonal, large: positives dominate
    z = basis.unsqueeze(1).repeat(1, 4, 1)  # [6 series, 4 timestamps, 6]; timestamps identical within a series
    instance_only = hierarchical_contrastive(z, z.clone(), alpha=1.0)
    assert float(instance_only) < 1e-6
    # Over time, identical timestamps are indistinguishable: the temporal term is ~log(2T - 1) at full scale.
    temporal_only = hierarchical_contrastive(z, z.clone(), alpha=0.0)
    assert float(temporal_only) > 1.0


def test_bad_input() -> None:
    with pytest.raises(ValueError, match=r"expected two \[B, T, D\] tensors of one shape"):
        hierarchical_contrastive(torch.randn(2, 5, 3), torch.randn(2, 4, 3))
    with pytest.raises(ValueError, match="alpha in"):
        hierarchical_contrastive(torch.randn(2, 5, 3), torch.randn(2, 5, 3), alpha=1.5)
    with pytest.raises(ValueError, match="temporal_unit >= 0"):
        hierarchical_contrastive(torch.randn(2, 5, 3), torch.randn(2, 5, 3), temporal_unit=-1)
    with pytest.raises(ValueError, match="temperature > 0"):
        grouped_nt_xent(torch.randn(2, 5, 3), torch.randn(2, 5, 3), temperature=0.0)

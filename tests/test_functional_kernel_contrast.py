"""AnatCL kernel-weighted contrastive loss: loop reference, SupCon / NT-Xent limits, kernels, a tiny fit."""

import math

import pytest
import torch

from contrastkit.functional.contrastive import nt_xent, supcon
from contrastkit.functional.kernel_contrast import (
    anatcl_loss,
    kernel_weighted_info_nce,
    rbf_kernel_weights,
    standardize_metadata,
)


def _naive(embeddings, weights, tau):
    z = torch.nn.functional.normalize(embeddings, dim=1)
    n = z.shape[0]
    losses = []
    for i in range(n):
        others = [k for k in range(n) if k != i]
        denominator = math.log(sum(math.exp(float(z[i] @ z[k]) / tau) for k in others))
        total = sum(float(weights[i, k]) for k in others)
        losses.append(-sum(float(weights[i, j]) / total * (float(z[i] @ z[j]) / tau - denominator) for j in others))
    return torch.tensor(losses, dtype=torch.float64)


def test_matches_loop_reference():
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(7, 5, generator=generator, dtype=torch.float64)
    weights = torch.rand(7, 7, generator=generator, dtype=torch.float64)
    weights[0, 3] = 0.0
    got = kernel_weighted_info_nce(z, weights, 0.2, reduction="none")
    torch.testing.assert_close(got, _naive(z, weights, 0.2))


def test_diagonal_weight_is_ignored():
    generator = torch.Generator().manual_seed(1)
    z = torch.randn(5, 4, generator=generator, dtype=torch.float64)
    weights = torch.rand(5, 5, generator=generator, dtype=torch.float64)
    changed = weights.clone()
    changed.fill_diagonal_(100.0)
    torch.testing.assert_close(kernel_weighted_info_nce(z, weights), kernel_weighted_info_nce(z, changed))


def test_identical_metadata_gives_supcon_with_one_class():
    generator = torch.Generator().manual_seed(2)
    z_a, z_b = torch.randn(2, 6, 8, generator=generator, dtype=torch.float64)
    anatomy = torch.ones(6, 4, 3, dtype=torch.float64) * 3.0
    got = anatcl_loss(z_a, z_b, anatomy, temperature=0.1)
    expected = supcon(torch.stack([z_a, z_b], dim=1), torch.zeros(6, dtype=torch.long), temperature=0.1,
                      chunk_size=None)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("descriptor", ["global", "local"])
def test_vanishing_bandwidth_gives_nt_xent(descriptor):
    generator = torch.Generator().manual_seed(3)
    z_a, z_b = torch.randn(2, 6, 8, generator=generator, dtype=torch.float64)
    anatomy = torch.randn(6, 4, 3, generator=generator, dtype=torch.float64)
    got = anatcl_loss(z_a, z_b, anatomy, descriptor=descriptor, sigma=1e-4, temperature=0.5)
    torch.testing.assert_close(got, nt_xent(z_a, z_b, temperature=0.5, chunk_size=None))


def test_kernels_match_definitions():
    generator = torch.Generator().manual_seed(4)
    m = torch.randn(4, 3, 2, generator=generator, dtype=torch.float64)
    local = rbf_kernel_weights(m, sigma=0.7, descriptor="local")
    glob = rbf_kernel_weights(m, sigma=0.7, descriptor="global")
    for i in range(4):
        for j in range(4):
            per_region = [math.exp(-float((m[i, r] - m[j, r]).pow(2).sum()) / (2 * 0.49)) for r in range(3)]
            assert local[i, j].item() == pytest.approx(sum(per_region) / 3)
            assert glob[i, j].item() == pytest.approx(math.exp(-float((m[i] - m[j]).pow(2).sum()) / (2 * 0.49)))
    # local and global differ in general (mean of products vs product)
    assert not torch.allclose(local, glob)


def test_standardize_handles_constant_features():
    m = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    out = standardize_metadata(m)
    torch.testing.assert_close(out, torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))


def test_age_term_mixing():
    generator = torch.Generator().manual_seed(5)
    z_a, z_b = torch.randn(2, 5, 4, generator=generator)
    anatomy = torch.randn(5, 3, generator=generator)
    age = torch.tensor([20.0, 30.0, 40.0, 50.0, 60.0])
    anat_only = anatcl_loss(z_a, z_b, anatomy, descriptor="global", alpha=1.0)
    mixed = anatcl_loss(z_a, z_b, anatomy, age, descriptor="global", alpha=1.0)
    torch.testing.assert_close(anat_only, mixed)
    age_only = anatcl_loss(z_a, z_b, anatomy, age, descriptor="global", alpha=0.0)
    age_weights = rbf_kernel_weights(age.unsqueeze(1), sigma=5.0).repeat(2, 2)
    torch.testing.assert_close(age_only, kernel_weighted_info_nce(torch.cat([z_a, z_b]), age_weights, 0.1))


def test_training_orders_embeddings_by_metadata():
    """Free embeddings trained with the kernel loss end up ordered by a 1-D 'anatomy' value."""
    generator = torch.Generator().manual_seed(6)
    n = 16
    value = torch.linspace(-2, 2, n)
    z = torch.nn.Parameter(torch.randn(n, 8, generator=generator))
    optimizer = torch.optim.Adam([z], lr=0.05)
    for _ in range(150):
        noise = 0.05 * torch.randn(2, n, 8, generator=generator)
        loss = anatcl_loss(z + noise[0], z + noise[1], value.unsqueeze(1), descriptor="global", sigma=0.5,
                           standardize=False)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        cosine = torch.nn.functional.normalize(z, dim=1) @ torch.nn.functional.normalize(z, dim=1).T
        gap = (value.unsqueeze(0) - value.unsqueeze(1)).abs()
        off = ~torch.eye(n, dtype=torch.bool)
        # similarity decreases with metadata distance: strong negative rank correlation
        s, g = cosine[off], gap[off]
        rank = lambda x: x.argsort().argsort().double()
        rho = torch.corrcoef(torch.stack([rank(s), rank(g)]))[0, 1]
    assert rho < -0.7


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match=r"weights: expected shape \[4, 4\]"):
        kernel_weighted_info_nce(torch.randn(4, 3), torch.rand(3, 3))
    with pytest.raises(ValueError, match="off-diagonal"):
        kernel_weighted_info_nce(torch.randn(3, 3), torch.eye(3))
    with pytest.raises(ValueError, match="local"):
        rbf_kernel_weights(torch.randn(4, 3), descriptor="local")
    with pytest.raises(ValueError, match="descriptor"):
        rbf_kernel_weights(torch.randn(4, 3), descriptor="regional")

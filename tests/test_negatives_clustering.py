"""Shared clustering (DyCE, HaLP, SBCL): k-means++ seeding and spherical k-means."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrastkit.functional.sinkhorn import sinkhorn_knopp
from contrastkit.negatives.clustering import kmeans_plus_plus, spherical_kmeans


def _groups(per_group: int = 10, generator_seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(generator_seed)
    centres = torch.eye(6)[:4] * 5
    labels = torch.arange(4).repeat_interleave(per_group)
    return centres[labels] + 0.1 * torch.randn(len(labels), 6, generator=generator), labels


def test_kmeans_plus_plus_never_reseeds_a_chosen_point_and_spreads_over_groups():
    points, labels = _groups()
    points = F.normalize(points, dim=1)
    for seed in range(5):
        seeds = kmeans_plus_plus(points, 4, generator=torch.Generator().manual_seed(seed))
        assert seeds.unique().numel() == 4
        # Tight, far-apart groups: the squared-distance weights put one seed in each group.
        assert labels[seeds].unique().numel() == 4
    with pytest.raises(ValueError, match="1 <= k <= 40"):
        kmeans_plus_plus(points, 41)


def test_spherical_kmeans_recovers_groups_with_unit_centres():
    points, labels = _groups()
    assignment, centres = spherical_kmeans(points, 4, generator=torch.Generator().manual_seed(0))
    for group in range(4):
        assert assignment[labels == group].unique().numel() == 1
    assert assignment.unique().numel() == 4
    torch.testing.assert_close(centres.norm(dim=1), torch.ones(4))
    # Each centre is the normalised mean of its members.
    unit = F.normalize(points, dim=1)
    for cluster in range(4):
        torch.testing.assert_close(centres[cluster], F.normalize(unit[assignment == cluster].mean(0), dim=0))


def test_sinkhorn_knopp_equipartitions_skewed_scores():
    scores = torch.zeros(40, 4)
    scores[:, 0] = 1.0  # a plain argmax sends every row to prototype 0
    codes = sinkhorn_knopp(scores, epsilon=0.05, iterations=50)
    torch.testing.assert_close(codes.sum(dim=1), torch.ones(40))
    torch.testing.assert_close(codes.sum(dim=0), torch.full((4,), 10.0), atol=1e-3, rtol=0)
    tiny = sinkhorn_knopp(torch.randn(8, 3), epsilon=1e-5, iterations=5)  # log domain: no overflow
    assert torch.isfinite(tiny).all()

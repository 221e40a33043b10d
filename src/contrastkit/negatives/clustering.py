"""Clustering of L2-normalised embeddings, shared by the memories and samplers that group them.

BECLR's DyCE partitions its memory (:mod:`contrastkit.negatives.dyce`), HaLP clusters recent
queue keys into prototypes (:mod:`contrastkit.negatives.halp`) and SBCL splits classes into
balanced subclasses (:mod:`contrastkit.negatives.subclasses`); all three seed with k-means++
and cluster by cosine similarity, so they share these two functions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastkit.utils.checks import check_embeddings

__all__ = ["kmeans_plus_plus", "spherical_kmeans"]


@torch.no_grad()
def kmeans_plus_plus(points: torch.Tensor, k: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007) with the cosine distance ``1 - x . c``.

    The first seed is uniform; each next one is drawn with probability proportional to the
    squared distance to its nearest chosen seed. Sampling runs on the CPU (``generator``
    must be a CPU generator), so a seed gives the same centres on every device.

    Args:
        points: ``[N, D]`` unit rows, ``N >= k``.
        k: number of seeds.
        generator: optional CPU random generator.

    Returns:
        ``[k]`` row indices of the seeds.
    """
    if not 1 <= k <= points.shape[0]:
        raise ValueError(f"kmeans_plus_plus: expected 1 <= k <= {points.shape[0]} (the number of points), got {k}")
    first = int(torch.randint(points.shape[0], (1,), generator=generator, device="cpu"))
    chosen = [first]
    nearest = (1 - points @ points[first]).clamp_min(0)
    for _ in range(1, k):
        weights = nearest.double().square().cpu()
        if float(weights.sum()) <= 0:  # every point coincides with a seed: any point will do
            weights = torch.ones_like(weights)
        pick = int(torch.multinomial(weights, 1, generator=generator))
        chosen.append(pick)
        nearest = torch.minimum(nearest, (1 - points @ points[pick]).clamp_min(0))
    return torch.tensor(chosen, device=points.device)


@torch.no_grad()
def spherical_kmeans(
    x: torch.Tensor, clusters: int, *, iterations: int = 20, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spherical k-means: assign to the most similar centre (cosine), centres = normalised means.

    A centre whose cluster empties keeps its previous value.

    Args:
        x: ``[N, D]`` rows (L2-normalised here), ``N >= clusters``.
        clusters: number of clusters.
        iterations: Lloyd rounds after the k-means++ seeding (0: the seeds themselves).
        generator: optional CPU random generator for the seeding.

    Returns:
        ``(labels [N] long, centres [clusters, D] unit rows)``.
    """
    check_embeddings("spherical_kmeans x", x, min_rows=clusters)
    if int(iterations) < 0:
        raise ValueError(f"spherical_kmeans: expected iterations >= 0, got {iterations}")
    points = F.normalize(x.detach().float(), dim=1)
    centres = points[kmeans_plus_plus(points, clusters, generator=generator)].clone()
    for _ in range(int(iterations)):
        labels = (points @ centres.T).argmax(dim=1)
        sums = torch.zeros_like(centres).index_add_(0, labels, points)
        counts = torch.bincount(labels, minlength=clusters).unsqueeze(1)
        centres = torch.where(counts > 0, F.normalize(sums, dim=1), centres)
    return (points @ centres.T).argmax(dim=1), centres

"""NoiseCLR: contrast the noise-prediction changes that learned directions cause in a frozen denoiser.

Dalva and Yanardag, "NoiseCLR: A Contrastive Learning Approach for Unsupervised Discovery of
Interpretable Directions in Diffusion Models", CVPR 2024. ``K`` direction embeddings ``d_k``
(tokens in the text-conditioning space) are learned so that the change a direction causes in
the denoiser's noise prediction, ``Delta_{n,k} = eps(x_t^n, t, d_k) - eps(x_t^n, t, null)``,
looks alike across images (positives: same direction, different images) and unlike the
changes other directions cause on the same image (negatives). Only the ``d_k`` train.

The loss follows the official code (``core/loss.py`` / ``core/trainer.py``): for an anchor
direction ``k`` the *mean* of ``exp(cos / tau)`` over positive pairs is divided by the mean
over negative pairs, and ``-log`` of the ratio is taken — one ratio per direction, not one
softmax per row.

METHODS.md verdict: **PARTIAL** — the loss and the difference computation work with any
callable denoiser and are tested with a stub; meaningful validation needs Stable Diffusion
weights and ~100 unlabeled domain images (faces, cats, art), not available offline.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from contrastkit.utils.checks import Scalar, check_positive_scalar

__all__ = ["noise_differences", "noiseclr_loss"]

#: A denoiser ``eps_theta(x_t, t, condition) -> noise prediction shaped like x_t``.
Denoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def noise_differences(
    denoiser: Denoiser,
    noisy_latents: torch.Tensor,
    timesteps: torch.Tensor,
    directions: torch.Tensor,
    null_condition: torch.Tensor,
) -> torch.Tensor:
    r"""``Delta_{n,k} = eps(x_t^n, t_n, d_k) - eps(x_t^n, t_n, null)`` for every image and direction.

    The ``N`` latents are repeated ``K`` times and the denoiser is called once on the
    ``N * K`` conditioned inputs (plus once unconditioned), so a batched denoiser does the
    work in two calls. Gradients flow to ``directions`` (and to whatever the denoiser
    closes over); freeze the denoiser's parameters to train only the directions.

    Args:
        denoiser: ``eps(x [M, ...], t [M], condition [M, ...]) -> [M, ...]`` shaped like ``x``.
        noisy_latents: ``[N, ...]`` noised latents ``x_t``.
        timesteps: ``[N]`` (or ``[]``, shared) diffusion timesteps.
        directions: ``[K, ...]`` direction conditionings ``d_k``.
        null_condition: ``[...]`` the empty-prompt conditioning (broadcast to every image).

    Returns:
        ``[N, K, ...]`` noise-prediction differences.

    Raises:
        ValueError: on mismatched shapes or a denoiser output not shaped like its input.
    """
    if noisy_latents.dim() < 2 or directions.dim() < 1:
        raise ValueError(
            f"noise_differences: expected noisy_latents [N, ...] and directions [K, ...], got "
            f"{tuple(noisy_latents.shape)} and {tuple(directions.shape)}"
        )
    if tuple(null_condition.shape) != tuple(directions.shape[1:]):
        raise ValueError(
            f"null_condition: expected shape {tuple(directions.shape[1:])} (one direction's), "
            f"got {tuple(null_condition.shape)}"
        )
    images, count = noisy_latents.shape[0], directions.shape[0]
    steps = timesteps.expand(images) if timesteps.dim() == 0 else timesteps
    if steps.shape != (images,):
        raise ValueError(f"timesteps: expected shape [{images}] or [], got {tuple(timesteps.shape)}")
    base = denoiser(noisy_latents, steps, null_condition.expand(images, *null_condition.shape))
    x = noisy_latents.repeat_interleave(count, dim=0)  # image-major: row n * K + k
    conditioned = denoiser(x, steps.repeat_interleave(count), directions.repeat(images, *[1] * (directions.dim() - 1)))
    if conditioned.shape != x.shape or base.shape != noisy_latents.shape:
        raise ValueError(
            f"denoiser: expected outputs shaped like its inputs {tuple(x.shape)}, got {tuple(conditioned.shape)}"
        )
    return conditioned.reshape(images, count, *noisy_latents.shape[1:]) - base.unsqueeze(1)


def noiseclr_loss(
    differences: torch.Tensor,
    temperature: Scalar = 0.5,
    *,
    anchors: torch.Tensor | list[int] | None = None,
) -> torch.Tensor:
    r"""NoiseCLR's contrastive loss over noise-prediction differences ``[N images, K directions, ...]``.

    With ``z_{n,k}`` the flattened, L2-normalised ``Delta_{n,k}`` and, for an anchor
    direction ``k``,

    .. math::

        P_k &= \frac{2}{N(N-1)} \sum_{n < m} e^{z_{n,k} \cdot z_{m,k} / \tau}
            \quad\text{(same direction, different images)} \\
        Q_k &= \frac{1}{N(K-1)} \sum_{n} \sum_{l \ne k} e^{z_{n,k} \cdot z_{n,l} / \tau}
            \quad\text{(same image, other directions)} \\
        L &= \frac{1}{|A|} \sum_{k \in A} -\log \frac{P_k}{Q_k}

    computed in log space (``logsumexp``). The official trainer draws one anchor
    direction per step and 20 of the other directions as negatives; pass the chosen
    directions' differences (anchor included) and ``anchors=[its index]`` for that, or
    leave ``anchors=None`` to average over every direction.

    Args:
        differences: ``[N, K, ...]`` from :func:`noise_differences`, ``N >= 2``, ``K >= 2``.
        temperature: ``tau > 0`` (official config 0.5).
        anchors: optional anchor direction indices (default: all ``K``).

    Returns:
        The scalar loss.

    Raises:
        ValueError: on fewer than 2 images or 2 directions, non-finite values or bad indices.

    Example:
        >>> deltas = torch.randn(6, 4, 4, 8, 8)  # 6 images, 4 directions, 4x8x8 latents
        >>> loss = noiseclr_loss(deltas, temperature=0.5)
    """
    check_positive_scalar("temperature", temperature)
    if not isinstance(differences, torch.Tensor) or differences.dim() < 3:
        got = tuple(differences.shape) if isinstance(differences, torch.Tensor) else type(differences).__name__
        raise ValueError(f"differences: expected shape [N, K, ...] (images, directions, features), got {got}")
    images, count = differences.shape[:2]
    if images < 2 or count < 2:
        raise ValueError(
            f"differences: expected at least 2 images (positives) and 2 directions (negatives), got N={images}, K={count}"
        )
    if not torch.isfinite(differences).all():
        raise ValueError("differences: expected finite values, got NaN/inf")
    z = F.normalize(differences.reshape(images, count, -1), dim=2)
    index = torch.arange(count, device=z.device) if anchors is None else torch.as_tensor(anchors, device=z.device)
    if index.dim() != 1 or index.numel() == 0 or int(index.min()) < 0 or int(index.max()) >= count:
        raise ValueError(f"anchors: expected a non-empty list of direction indices in [0, {count}), got {anchors}")
    by_direction = z.transpose(0, 1)  # [K, N, F]
    # Positives: [K, N, N] image-image similarities per direction, upper triangle n < m.
    image_sims = by_direction[index] @ by_direction[index].transpose(1, 2) / temperature
    upper = torch.ones(images, images, dtype=torch.bool, device=z.device).triu(1)
    log_positive = torch.logsumexp(image_sims[:, upper], dim=1) - math.log(images * (images - 1) / 2)
    # Negatives: [N, K, K] direction-direction similarities per image, l != k.
    direction_sims = (z @ z.transpose(1, 2) / temperature)[:, index]  # [N, |A|, K]
    other = torch.ones(len(index), count, dtype=torch.bool, device=z.device)
    other[torch.arange(len(index), device=z.device), index] = False
    masked = direction_sims.masked_fill(~other, float("-inf")).transpose(0, 1).reshape(len(index), -1)
    log_negative = torch.logsumexp(masked, dim=1) - math.log(images * (count - 1))
    return (log_negative - log_positive).mean()

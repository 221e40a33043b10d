"""Bootstrap (negative-free) objectives: SimSiam and BYOL."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastkit.utils.checks import check_pair

__all__ = ["negative_cosine"]


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r"""Negative cosine similarity with a stop-gradient on the target.

    SimSiam (Chen & He, 2021, "Exploring Simple Siamese Representation Learning")
    and BYOL (Grill et al., 2020, "Bootstrap Your Own Latent"):

    .. math::

        L = -\frac{1}{B} \sum_i \frac{p_i}{\|p_i\|_2} \cdot \frac{\mathrm{sg}(z_i)}{\|\mathrm{sg}(z_i)\|_2}

    ``z`` is detached: no gradient reaches it. Both inputs are L2-normalised.
    BYOL's ``||p/|p| - z/|z|||^2 = 2 - 2 cos`` is the same objective up to the
    affine map ``2 + 2 L`` (same minimiser, gradients scaled by 2). Symmetrise
    by calling it twice, ``(L(p_1, z_2) + L(p_2, z_1)) / 2``.

    Args:
        p: ``[B, D]`` predictor outputs (receive the gradient).
        z: ``[B, D]`` targets (projector or momentum-encoder outputs; detached).

    Returns:
        The scalar loss, in ``[-1, 1]``.

    Example:
        >>> p, z = torch.randn(8, 32, requires_grad=True), torch.randn(8, 32)
        >>> loss = negative_cosine(p, z)
        >>> loss.backward()
    """
    check_pair("p", p, "z", z)
    return -(F.normalize(p, dim=1) * F.normalize(z.detach(), dim=1)).sum(dim=1).mean()

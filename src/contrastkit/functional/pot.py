"""POT's loss: the BCE term on node-compactness scores and POT's weighted objective.

One job: turn the scores of :mod:`contrastkit.functional.pot_bounds` (a certified lower
bound of node compactness, or the official code's score at the sampled view) into POT's
training objective (Yu et al., "Provable Training for Graph Contrastive Learning",
NeurIPS 2023, https://github.com/VoidHaruhi/POT-GCL):
``L_POT = BCE(sigmoid(f̃), 1)`` (:func:`pot_loss`) and
``(1 - kappa) * L_InfoNCE + kappa * (L_POT^1 + L_POT^2) / 2`` (:func:`pot_regularized_loss`).
Both match the official ``Model.pot_loss`` (``BCEWithLogitsLoss(pot_score, ones)``) and
``train.py`` line for line.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["pot_loss", "pot_regularized_loss"]


def pot_loss(compactness_lower_bound: torch.Tensor, *, nodes: torch.Tensor | None = None) -> torch.Tensor:
    """``L_POT = mean_i BCE(sigmoid(f̃_i), 1) = mean_i softplus(-f̃_i)``.

    The official code: ``BCEWithLogitsLoss(pot_score, ones)``.

    Args:
        compactness_lower_bound: ``[M]`` scores ``f̃``
            (:func:`contrastkit.functional.pot_bounds.pot_node_compactness`).
        nodes: optional indices (or a ``[M]`` bool mask) of the entries to average.

    Returns:
        A scalar.

    Raises:
        ValueError: on a non-1-D or non-finite input, or an empty selection.

    Example:
        >>> pot_loss(torch.tensor([0.0, 2.0]))
        tensor(0.4100)
    """
    bound = compactness_lower_bound
    if not isinstance(bound, torch.Tensor) or bound.dim() != 1 or not bound.is_floating_point():
        shape = getattr(bound, "shape", bound)
        raise ValueError(f"compactness_lower_bound: expected a float tensor [M], got {shape!r}")
    if not torch.isfinite(bound).all():
        raise ValueError("compactness_lower_bound: expected finite values, got NaN/inf")
    if nodes is not None:
        bound = bound[nodes]
    if bound.numel() == 0:
        raise ValueError("compactness_lower_bound: expected at least one node, got none")
    return F.softplus(-bound).mean()


def pot_regularized_loss(
    contrastive_loss: torch.Tensor,
    pot_loss_view1: torch.Tensor,
    pot_loss_view2: torch.Tensor,
    *,
    kappa: float = 0.5,
) -> torch.Tensor:
    """POT's objective: ``(1 - kappa) * L_InfoNCE + kappa * (L_POT^1 + L_POT^2) / 2``.

    ``L_POT^1`` bounds view 1 against view 2's embeddings (budget of view 1's drop
    rate), ``L_POT^2`` the reverse. ``kappa`` defaults to the official script's 0.5
    (its README runs 0.2-0.4; tune per dataset).

    Args:
        contrastive_loss: the base method's loss (GRACE's InfoNCE), a scalar.
        pot_loss_view1: :func:`pot_loss` of view 1.
        pot_loss_view2: :func:`pot_loss` of view 2.
        kappa: weight in ``[0, 1]``.

    Returns:
        A scalar.

    Example:
        >>> pot_regularized_loss(torch.tensor(2.0), torch.tensor(0.5), torch.tensor(0.7), kappa=0.4)
        tensor(1.4400)
    """
    if not isinstance(kappa, (int, float)) or isinstance(kappa, bool) or not 0.0 <= kappa <= 1.0:
        raise ValueError(f"kappa: expected a float in [0, 1], got {kappa!r}")
    for name, value in (
        ("contrastive_loss", contrastive_loss),
        ("pot_loss_view1", pot_loss_view1),
        ("pot_loss_view2", pot_loss_view2),
    ):
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise ValueError(f"{name}: expected a scalar tensor, got {getattr(value, 'shape', value)!r}")
    return (1.0 - kappa) * contrastive_loss + kappa * (pot_loss_view1 + pot_loss_view2) / 2


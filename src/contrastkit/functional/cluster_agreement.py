r"""Intra-inter contrastive clustering for joint 2D/3D pretraining (swapped prototypes + masked slices).

Nguyen et al., "Joint Self-Supervised Image-Volume Representation Learning with Intra-Inter
Contrastive Clustering" (AAAI 2023). One encoder is pretrained on 2D images and on 3D volumes
seen as stacks of slices:

* 2D contrastive clustering — SwAV-style swapped prototype prediction (Caron et al., NeurIPS
  2020): codes ``q`` from Sinkhorn-Knopp equipartition (:func:`sinkhorn_knopp`) of one view's
  prototype scores are predicted from the other view's (:func:`swapped_prediction_loss`);
* 3D cluster agreement — the same swapped assignment across ``V`` augmented *volume*
  embeddings (slice embeddings -> a Transformer -> one vector per volume),
  :func:`cluster_agreement_loss`;
* masked embedding prediction — BERT-style masking of slice embeddings
  (:func:`mask_slice_embeddings`) and a regression loss on the masked positions only
  (:func:`masked_embedding_prediction_loss`).

The package's other Sinkhorn solvers (OpTA's transport plan in ``eval/fewshot.py``, BECLR's
DyCE memory) solve other problems; this one is SwAV's equipartition.

METHODS.md verdict: **PARTIAL** (mechanics only; the deformable slice Transformer is not
included). A paper-scale check would need mixed 2D/3D medical corpora and the downstream brain /
lung-nodule / heart segmentation and chest X-ray tasks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from contrastkit.functional.sinkhorn import sinkhorn_knopp
from contrastkit.utils.checks import Scalar, check_embeddings, check_masked_prediction, check_positive_scalar

__all__ = [
    "sinkhorn_knopp",
    "prototype_scores",
    "swapped_prediction_loss",
    "cluster_agreement_loss",
    "mask_slice_embeddings",
    "masked_embedding_prediction_loss",
]


def _check_scores(name: str, scores: torch.Tensor) -> None:
    check_embeddings(name, scores)


def prototype_scores(embeddings: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """Cosine scores ``[B, K]`` between L2-normalised embeddings ``[B, D]`` and prototypes ``[K, D]``."""
    check_embeddings("embeddings", embeddings)
    check_embeddings("prototypes", prototypes, dim=embeddings.shape[1])
    return F.normalize(embeddings, dim=1) @ F.normalize(prototypes, dim=1).T


def cluster_agreement_loss(
    scores: Sequence[torch.Tensor] | torch.Tensor,
    *,
    temperature: Scalar = 0.1,
    epsilon: float = 0.05,
    iterations: int = 3,
    code_views: Sequence[int] | None = None,
) -> torch.Tensor:
    r"""Swapped prototype prediction across ``V`` views (SwAV's multi-view loss).

    With codes ``q_v = sinkhorn(s_v)`` (no gradient) for the views in ``code_views`` and
    ``p_w = softmax(s_w / tau)``:

    .. math::

        L = \frac{1}{|C|} \sum_{v \in C} \frac{1}{V - 1} \sum_{w \ne v}
            \operatorname{mean}_b \Big(-\sum_k q_{v,bk} \log p_{w,bk}\Big)

    Used on 2D image/slice embeddings (2 views) and, as the 3D cluster-agreement loss, on the
    embeddings of ``V`` augmentations of each volume.

    Args:
        scores: ``V >= 2`` tensors ``[B, K]`` (or one ``[V, B, K]`` tensor) of prototype scores.
        temperature: ``tau`` (default 0.1, SwAV).
        epsilon: Sinkhorn regularisation (default 0.05).
        iterations: Sinkhorn iterations (default 3).
        code_views: the views whose codes are targets (default all; SwAV multi-crop uses the
            two global crops ``(0, 1)``).

    Returns:
        The scalar loss.

    Example:
        >>> loss = cluster_agreement_loss(torch.randn(3, 16, 10))
    """
    check_positive_scalar("temperature", temperature)
    views = list(scores.unbind(0)) if isinstance(scores, torch.Tensor) else list(scores)
    if len(views) < 2:
        raise ValueError(f"scores: expected at least 2 views, got {len(views)}")
    for index, view in enumerate(views):
        _check_scores(f"scores[{index}]", view)
        if view.shape != views[0].shape:
            raise ValueError(f"scores[{index}]: expected shape {tuple(views[0].shape)}, got {tuple(view.shape)}")
    targets = range(len(views)) if code_views is None else list(code_views)
    if not targets or any(not 0 <= v < len(views) for v in targets):
        raise ValueError(f"code_views: expected indices in [0, {len(views)}), got {list(targets)}")
    log_predictions = [F.log_softmax(view / temperature, dim=1) for view in views]
    total = views[0].new_zeros(())
    for v in targets:
        codes = sinkhorn_knopp(views[v].detach(), epsilon, iterations)
        others = [w for w in range(len(views)) if w != v]
        total = total + sum(-(codes * log_predictions[w]).sum(dim=1).mean() for w in others) / len(others)
    return total / len(targets)


def swapped_prediction_loss(
    scores_a: torch.Tensor,
    scores_b: torch.Tensor,
    *,
    temperature: Scalar = 0.1,
    epsilon: float = 0.05,
    iterations: int = 3,
) -> torch.Tensor:
    """Two-view SwAV loss: ``(l(q_a, p_b) + l(q_b, p_a)) / 2``, see :func:`cluster_agreement_loss`."""
    return cluster_agreement_loss(
        [scores_a, scores_b], temperature=temperature, epsilon=epsilon, iterations=iterations
    )


def mask_slice_embeddings(
    slices: torch.Tensor,
    mask_token: torch.Tensor,
    *,
    mask_ratio: float = 0.15,
    replace_ratio: float = 0.8,
    random_ratio: float = 0.1,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT-style masking of a volume's slice embeddings.

    Each position is selected with probability ``mask_ratio`` (at least one per volume); of the
    selected, ``replace_ratio`` become ``mask_token``, ``random_ratio`` are replaced by a random
    slice embedding from the batch and the rest stay unchanged (BERT's 80/10/10).

    Args:
        slices: ``[B, S, d]`` slice embeddings.
        mask_token: ``[d]`` (learnable) mask embedding.
        mask_ratio: selection probability (default 0.15, BERT's).
        replace_ratio: share of selected positions set to ``mask_token`` (default 0.8).
        random_ratio: share set to a random slice embedding (default 0.1).
        generator: optional ``torch.Generator``.

    Returns:
        ``(masked [B, S, d], selected [B, S] bool)``; the loss uses ``selected``.
    """
    if not isinstance(slices, torch.Tensor) or slices.dim() != 3:
        shape = tuple(slices.shape) if isinstance(slices, torch.Tensor) else type(slices).__name__
        raise ValueError(f"slices: expected a [B, S, d] tensor, got {shape}")
    batch, length, dim = slices.shape
    if not isinstance(mask_token, torch.Tensor) or tuple(mask_token.shape) != (dim,):
        shape = tuple(mask_token.shape) if isinstance(mask_token, torch.Tensor) else type(mask_token).__name__
        raise ValueError(f"mask_token: expected shape [{dim}], got {shape}")
    for name, value in (("mask_ratio", mask_ratio), ("replace_ratio", replace_ratio), ("random_ratio", random_ratio)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
            raise ValueError(f"{name}: expected a float in [0, 1], got {value!r}")
    if replace_ratio + random_ratio > 1:
        raise ValueError(f"replace_ratio + random_ratio: expected <= 1, got {replace_ratio + random_ratio}")
    device = generator.device if generator is not None else slices.device
    draw = torch.rand(batch, length, generator=generator, device=device)
    selected = draw < mask_ratio
    # at least one masked slice per volume, so every volume contributes to the loss
    forced = torch.zeros_like(selected)
    forced[torch.arange(batch, device=device), draw.argmin(dim=1)] = True
    selected = selected | forced
    action = torch.rand(batch, length, generator=generator, device=device)
    to_token = selected & (action < replace_ratio)
    to_random = selected & (action >= replace_ratio) & (action < replace_ratio + random_ratio)
    random_source = torch.randint(0, batch * length, (batch, length), generator=generator, device=device)
    selected, to_token, to_random = (t.to(slices.device) for t in (selected, to_token, to_random))
    random_slices = slices.reshape(batch * length, dim)[random_source.to(slices.device)]
    masked = torch.where(to_token.unsqueeze(-1), mask_token.to(slices).expand_as(slices), slices)
    masked = torch.where(to_random.unsqueeze(-1), random_slices, masked)
    return masked, selected


def masked_embedding_prediction_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    *,
    kind: str = "mse",
) -> torch.Tensor:
    """Regression of the masked slice embeddings only.

    ``"mse"``: mean over masked positions of ``||p - t||^2 / d``; ``"cosine"``: mean of
    ``1 - cos(p, t)``. The target is used as given (detach it for a stop-gradient target).

    Args:
        prediction: ``[B, S, d]`` predicted embeddings.
        target: ``[B, S, d]`` original slice embeddings.
        mask: ``[B, S]`` bool, ``True`` at masked positions.
        kind: ``"mse"`` (default) or ``"cosine"``.

    Returns:
        The scalar loss (0 with a zero gradient when nothing is masked).
    """
    check_masked_prediction(prediction, target, mask, "[B, S, d]")
    if kind not in ("mse", "cosine"):
        raise ValueError(f"kind: expected 'mse' or 'cosine', got {kind!r}")
    mask = mask.bool()
    selected_prediction, selected_target = prediction[mask], target[mask]  # [M, d]
    if selected_prediction.shape[0] == 0:
        return prediction.sum() * 0.0
    if kind == "mse":
        return (selected_prediction - selected_target).pow(2).mean()
    return (1 - F.cosine_similarity(selected_prediction, selected_target, dim=-1)).mean()

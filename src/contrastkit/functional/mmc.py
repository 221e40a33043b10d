r"""The loss combination of MMC (Masked Momentum Contrastive learning).

Wu et al., "Masked Momentum Contrastive Learning for Zero-shot Semantic Understanding"
(arXiv 2023). A ViT student sees a masked view, an EMA teacher sees the other view, and three
terms are summed:

* (a) :func:`masked_patch_l1` — masked image modelling, the L1 error of the reconstructed
  pixels of the masked patches only;
* (b) :func:`local_to_global_distillation` — momentum self-distillation from global to local:
  every student patch token is matched (DINO-style cross-entropy of sharpened softmaxes) to
  the teacher's global [CLS] distribution;
* (c) :func:`moco_v3_contrastive` — MoCo-v3 InfoNCE between the student [CLS] of one view
  and the teacher [CLS] of the other (scaled by ``2 tau`` as in MoCo v3).

:func:`mmc_loss` sums them with weights. The exact form of (b), the masking ratio and the
weights are [recalled] (METHODS.md asks to verify them against the paper).

METHODS.md verdict: **PARTIAL** (loss terms on given tensors; the zero-shot protocol is in
:mod:`contrastkit.eval.prompt_segmentation`). A paper-scale check would need ImageNet
pretraining of a ViT-S/B and VOC/COCO-style segmentation sets.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastkit.utils.checks import (
    Scalar,
    check_embeddings,
    check_masked_prediction,
    check_pair,
    check_positive_scalar,
)

__all__ = ["masked_patch_l1", "local_to_global_distillation", "moco_v3_contrastive", "mmc_loss"]


def masked_patch_l1(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    r"""Mean absolute reconstruction error over the masked patches only.

    .. math::  L = \frac{1}{|M| P} \sum_{(b, n) \in M} \lVert \hat x_{bn} - x_{bn} \rVert_1

    Args:
        prediction: ``[B, N, P]`` reconstructed patch pixels (``P`` values per patch).
        target: ``[B, N, P]`` original patch pixels.
        mask: ``[B, N]`` bool, ``True`` where the patch was masked.

    Returns:
        The scalar loss (0 with a zero gradient if nothing is masked).

    Example:
        >>> pred, target = torch.randn(2, 16, 48), torch.randn(2, 16, 48)
        >>> loss = masked_patch_l1(pred, target, torch.rand(2, 16) < 0.5)
    """
    check_masked_prediction(prediction, target, mask, "[B, N, P]")
    mask = mask.bool()
    error = (prediction - target).abs().mean(dim=-1)  # [B, N]
    count = mask.sum()
    if int(count) == 0:
        return error.sum() * 0.0
    return (error * mask).sum() / count


def local_to_global_distillation(
    student_local: torch.Tensor,
    teacher_global: torch.Tensor,
    *,
    student_temperature: Scalar = 0.1,
    teacher_temperature: Scalar = 0.04,
    center: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Momentum self-distillation from the teacher's global token to the student's local tokens.

    With teacher targets ``t_b = softmax((g_b - c) / tau_t)`` (no gradient) and student
    predictions ``s_{bl} = log_softmax(h_{bl} / tau_s)`` over the ``K`` prototype logits:

    .. math::  L = -\frac{1}{BL} \sum_{b, l} \sum_k t_{bk}\, s_{blk}

    Temperatures and centring follow DINO (0.1 / 0.04); [recalled] for MMC.

    Args:
        student_local: ``[B, L, K]`` head logits of the student's local (patch) tokens.
        teacher_global: ``[B, K]`` head logits of the teacher's [CLS] token.
        student_temperature: ``tau_s`` (default 0.1).
        teacher_temperature: ``tau_t`` (default 0.04).
        center: optional ``[K]`` running centre subtracted from the teacher logits.

    Returns:
        The scalar loss.

    Example:
        >>> loss = local_to_global_distillation(torch.randn(2, 49, 64), torch.randn(2, 64))
    """
    check_positive_scalar("student_temperature", student_temperature)
    check_positive_scalar("teacher_temperature", teacher_temperature)
    if not isinstance(student_local, torch.Tensor) or student_local.dim() != 3:
        shape = tuple(student_local.shape) if isinstance(student_local, torch.Tensor) else type(student_local).__name__
        raise ValueError(f"student_local: expected a [B, L, K] tensor, got {shape}")
    batch, _, classes = student_local.shape
    check_embeddings("teacher_global", teacher_global, dim=classes)
    if teacher_global.shape[0] != batch:
        raise ValueError(f"teacher_global: expected {batch} rows, got shape {tuple(teacher_global.shape)}")
    teacher = teacher_global.detach()
    if center is not None:
        if center.shape[-1] != classes:
            raise ValueError(f"center: expected {classes} entries, got shape {tuple(center.shape)}")
        teacher = teacher - center.detach().reshape(1, classes)
    targets = torch.softmax(teacher / teacher_temperature, dim=-1).unsqueeze(1)  # [B, 1, K]
    log_predictions = torch.log_softmax(student_local / student_temperature, dim=-1)
    return -(targets * log_predictions).sum(dim=-1).mean()


def moco_v3_contrastive(
    query: torch.Tensor,
    key: torch.Tensor,
    temperature: Scalar = 0.2,
    *,
    query_2: torch.Tensor | None = None,
    key_1: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""MoCo v3 InfoNCE (Chen, Xie & He, ICCV 2021) between student and teacher [CLS] tokens.

    ``ctr(q, k) = 2 tau * CE(q_n k_n^T / tau, arange(B))`` with L2-normalised rows and the
    keys detached (they come from the momentum teacher). With ``query_2`` and ``key_1`` the
    symmetrised ``ctr(q_1, k_2) + ctr(q_2, k_1)`` of MoCo v3.

    Args:
        query: ``[B, D]`` student [CLS] (after projector / predictor) of view 1.
        key: ``[B, D]`` teacher [CLS] of view 2.
        temperature: ``tau`` (default 0.2, MoCo v3 for ViT).
        query_2: optional ``[B, D]`` student [CLS] of view 2.
        key_1: optional ``[B, D]`` teacher [CLS] of view 1 (required with ``query_2``).

    Returns:
        The scalar loss.

    Example:
        >>> loss = moco_v3_contrastive(torch.randn(8, 32), torch.randn(8, 32))
    """
    check_positive_scalar("temperature", temperature)
    check_pair("query", query, "key", key, min_rows=2)
    if (query_2 is None) != (key_1 is None):
        raise ValueError("moco_v3_contrastive: expected both query_2 and key_1 or neither, got one")

    def ctr(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        logits = F.normalize(q, dim=1) @ F.normalize(k.detach(), dim=1).T / temperature
        target = torch.arange(q.shape[0], device=q.device)
        return F.cross_entropy(logits, target) * (2 * temperature)

    loss = ctr(query, key)
    if query_2 is not None and key_1 is not None:
        check_pair("query_2", query_2, "key_1", key_1, min_rows=2)
        loss = loss + ctr(query_2, key_1)
    return loss


def mmc_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    student_local: torch.Tensor,
    teacher_global: torch.Tensor,
    student_cls: torch.Tensor,
    teacher_cls: torch.Tensor,
    *,
    reconstruction_weight: float = 1.0,
    distillation_weight: float = 1.0,
    contrastive_weight: float = 1.0,
    student_temperature: Scalar = 0.1,
    teacher_temperature: Scalar = 0.04,
    contrastive_temperature: Scalar = 0.2,
    center: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    r"""The MMC objective: weighted sum of (a) masked L1, (b) local-to-global distillation, (c) MoCo v3.

    .. math::  L = \lambda_{rec} L_{rec} + \lambda_{dist} L_{dist} + \lambda_{ctr} L_{ctr}

    Weights default to 1 ([recalled]); a zero weight skips that term's computation
    (reported as 0).

    Args:
        prediction, target, mask: see :func:`masked_patch_l1`.
        student_local, teacher_global: see :func:`local_to_global_distillation`.
        student_cls: ``[B, D]`` student [CLS] of the masked view.
        teacher_cls: ``[B, D]`` teacher [CLS] of the other view.
        reconstruction_weight, distillation_weight, contrastive_weight: ``lambda``s (>= 0).
        student_temperature, teacher_temperature, center: for the distillation term.
        contrastive_temperature: for the MoCo v3 term (default 0.2).

    Returns:
        ``{"loss", "reconstruction", "distillation", "contrastive"}`` scalars (the terms detached).

    Example:
        >>> out = mmc_loss(torch.randn(2, 16, 48), torch.randn(2, 16, 48), torch.rand(2, 16) < 0.5,
        ...                torch.randn(2, 16, 64), torch.randn(2, 64), torch.randn(2, 32), torch.randn(2, 32))
        >>> sorted(out)
        ['contrastive', 'distillation', 'loss', 'reconstruction']
    """
    weights = {
        "reconstruction": reconstruction_weight,
        "distillation": distillation_weight,
        "contrastive": contrastive_weight,
    }
    for name, value in weights.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < float("inf"):
            raise ValueError(f"{name}_weight: expected a finite float >= 0, got {value!r}")
    terms: dict[str, torch.Tensor] = {}
    zero = prediction.new_zeros(())
    terms["reconstruction"] = masked_patch_l1(prediction, target, mask) if reconstruction_weight else zero
    terms["distillation"] = (
        local_to_global_distillation(
            student_local, teacher_global, student_temperature=student_temperature,
            teacher_temperature=teacher_temperature, center=center,
        )
        if distillation_weight
        else zero
    )
    terms["contrastive"] = (
        moco_v3_contrastive(student_cls, teacher_cls, contrastive_temperature) if contrastive_weight else zero
    )
    total = sum(weights[name] * terms[name] for name in terms)
    out = {"loss": total}
    out.update({name: term.detach() for name, term in terms.items()})
    return out

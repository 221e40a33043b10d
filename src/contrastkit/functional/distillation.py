"""Distilled Sentence Embedding (DSE; Barkan et al., AAAI 2020).

"Scalable Attentive Sentence-Pair Modeling via Distilled Sentence Embedding": a
siamese student (one encoder ``f`` applied to both sentences, so candidates can be
embedded once and cached) learns to reproduce the pair logits of a cross-attentive
teacher (a fine-tuned BERT that reads both sentences together). The student scores
a pair from ``[u; v; u * v; |u - v|]`` with an MLP; its loss mixes the task loss
with the squared distance to the teacher's logits (official code:
``microsoft/Distilled-Sentence-Embedding``, ``train/trainers/dse_trainer.py``).

Status (METHODS #34, PARTIAL): the objective and the pair features are here and
tested against their formulas; the paper's GLUE pair tasks and fine-tuned BERT
teachers are not available offline, so no paper number is reproduced.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastkit.utils.checks import check_embeddings, check_pair

__all__ = ["distillation_loss", "dse_pair_features"]


def dse_pair_features(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The student's pair features ``[u; v; u * v; |u - v|]`` (DSE, as InferSent/SBERT).

    Args:
        u: ``[B, D]`` embeddings of the first sentences.
        v: ``[B, D]`` embeddings of the second sentences, paired row by row.

    Returns:
        ``[B, 4D]`` features for the pair-scoring head.

    Example:
        >>> u, v = torch.randn(8, 32), torch.randn(8, 32)
        >>> dse_pair_features(u, v).shape
        torch.Size([8, 128])
    """
    check_pair("u", u, "v", v)
    return torch.cat([u, v, u * v, (u - v).abs()], dim=1)


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    alpha: float = 0.5,
    regression: bool = False,
) -> torch.Tensor:
    r"""DSE's distillation objective: task loss plus squared distance to the teacher's logits.

    .. math::

        L = (1 - \alpha)\, \mathrm{CE}(z_s, y)
            + \alpha\, \frac{1}{B} \sum_{i=1}^{B} \lVert z_s^{(i)} - z_t^{(i)} \rVert_2^2

    (the squared error summed over the ``C`` logit dimensions, averaged over the
    batch, as the official trainer). ``CE`` is the mean cross-entropy; with
    ``regression=True`` it is replaced by the mean squared error
    ``mean((z_s - y)^2)`` (``torch.nn.MSELoss``). With ``labels=None`` only the
    distillation term is used, which requires ``alpha = 1``.

    Args:
        student_logits: ``[B, C]`` the student's pair logits ``z_s`` (e.g. an MLP
            on :func:`dse_pair_features`).
        teacher_logits: ``[B, C]`` the teacher's precomputed logits ``z_t``
            (no gradient flows into them).
        labels: ``[B]`` integer classes (classification), ``[B]`` (with ``C = 1``)
            or ``[B, C]`` float targets (``regression=True``), or ``None``.
        alpha: the distillation weight in ``[0, 1]`` (default 0.5, the code's value).
        regression: use MSE instead of cross-entropy for the task term (default
            ``False``; STS-B-like tasks).

    Returns:
        The scalar loss.

    Raises:
        ValueError: on mismatched shapes, non-finite values, ``alpha`` outside
            ``[0, 1]``, labels missing with ``alpha < 1``, or labels of the wrong
            kind.

    Example:
        >>> student, teacher = torch.randn(8, 3), torch.randn(8, 3)
        >>> labels = torch.randint(0, 3, (8,))
        >>> loss = distillation_loss(student, teacher, labels, alpha=0.5)
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha: expected a weight in [0, 1], got {alpha!r}")
    alpha = float(alpha)
    check_embeddings("student_logits", student_logits)
    check_embeddings("teacher_logits", teacher_logits, dim=student_logits.shape[1])
    batch, classes = student_logits.shape
    if teacher_logits.shape[0] != batch:
        raise ValueError(
            f"teacher_logits: expected {batch} rows (one per student row), got shape {tuple(teacher_logits.shape)}"
        )
    distill = (student_logits - teacher_logits.detach()).pow(2).sum(dim=1).mean()
    if labels is None:
        if alpha < 1.0:
            raise ValueError(
                f"labels: expected task labels when alpha < 1 (the task term has weight {1 - alpha}), got None; "
                "pass labels or alpha=1.0 for pure distillation"
            )
        return distill
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"labels: expected a torch.Tensor, got {type(labels).__name__}")
    labels = labels.to(student_logits.device)
    if regression:
        if not labels.is_floating_point():
            raise ValueError(f"labels: expected float targets for regression, got dtype {labels.dtype}")
        if labels.shape == (batch,) and classes == 1:
            labels = labels.unsqueeze(1)
        if labels.shape != (batch, classes):
            raise ValueError(
                f"labels: expected regression targets of shape [{batch}, {classes}]"
                f"{f' or [{batch}]' if classes == 1 else ''}, got {tuple(labels.shape)}"
            )
        task = F.mse_loss(student_logits, labels.to(student_logits.dtype))
    else:
        if labels.shape != (batch,) or labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise ValueError(
                f"labels: expected integer class labels of shape [{batch}], got {tuple(labels.shape)} {labels.dtype}"
            )
        if batch and (int(labels.min()) < 0 or int(labels.max()) >= classes):
            raise ValueError(
                f"labels: expected classes in [0, {classes}), got values in [{int(labels.min())}, {int(labels.max())}]"
            )
        task = F.cross_entropy(student_logits, labels.long())
    return (1.0 - alpha) * task + alpha * distill

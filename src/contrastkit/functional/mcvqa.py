r"""Multiple-choice video QA's auxiliary contrast: masked ground-truth input vs the answer candidates.

Kim, Jeong, Kim, Kang and Kwak, "Self-supervised Pre-training and Contrastive Representation
Learning for Multiple-choice Video QA", AAAI 2021 (arXiv 2009.08043). A multiple-choice QA model
fuses the context (video, subtitles, objects) with the question and each of the ``M`` answer
options into one representation per option, ``u_m``, and classifies the correct option. The
auxiliary loss adds *masking noise* to the ground-truth option's text input, encodes it with the
same model to ``u~``, and contrasts it against the ``M`` unmasked options: the unmasked
ground-truth ``u_{a*}`` is the positive, the wrong options ``u_j, j != a*`` the negatives,

.. math::

    L_{cl} = -\log \frac{\exp(s(\tilde u, u_{a^*}) / \tau)}{\sum_{m=1}^{M} \exp(s(\tilde u, u_m) / \tau)},
    \qquad L = CE(\text{answer logits}, a^*) + \lambda\, L_{cl}.

Here: :func:`mask_tokens` (the masking noise: each eligible token replaced by the mask id
with probability ``p``), :func:`mcvqa_contrastive_loss` (``L_cl``) and :func:`mcvqa_loss` (the
sum with the answer cross-entropy). The model and what "eligible" means (which part of the text
input is masked) are the caller's: the fused representations come in as tensors.

Shapes: anchor ``[B, D]`` (the masked ground-truth input's representation), candidates
``[B, M, D]`` (every option's unmasked representation), answers ``[B]`` (index of ``a*``),
answer logits ``[B, M]``.

No official code found (searched GitHub and the code index for the title, authors and TVQA
repositories; nothing by the authors): built from the paper's abstract and method overview,
which state the anchor (masked ground-truth input), the positive (its unmasked input), the
negatives (the other options' inputs) and that the loss is auxiliary to answer classification.
Not stated in the text available offline, so chosen here and exposed as arguments: the score
``s`` (default ``'dot'``, the dot product of the representations; ``'cosine'`` normalises),
``tau`` (default 1), ``lambda`` (default 1) and the masking probability (default 0.15, BERT's
rate; replace-by-mask only, no 80/10/10 split). The paper's other parts — the question-prediction
pre-training stage, locally aligned attention over subtitle-matched frames and the temporal
localisation head — are not here.

METHODS.md verdict: **PARTIAL** — the loss and masking are implemented and tested against a
slow reference; TVQA, TVQA+ and DramaQA (and a video/subtitle encoder) are not available offline.

Example:
    >>> anchor, candidates = torch.randn(4, 32), torch.randn(4, 5, 32)
    >>> answers, logits = torch.tensor([0, 3, 1, 4]), torch.randn(4, 5)
    >>> loss = mcvqa_loss(logits, answers, anchor, candidates, contrastive_weight=1.0)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from contrastkit.utils.checks import check_positive_scalar, check_reduction, fail

__all__ = ["mask_tokens", "mcvqa_contrastive_loss", "mcvqa_loss"]


def mask_tokens(
    input_ids: torch.Tensor,
    mask_token_id: int,
    *,
    probability: float = 0.15,
    maskable: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Masking noise: replace each eligible token by ``mask_token_id`` independently with probability ``p``.

    Args:
        input_ids: integer token ids, any shape (e.g. ``[B, L]``).
        mask_token_id: the id written into masked positions (``[MASK]``).
        probability: ``p`` in ``[0, 1]`` (default 0.15).
        maskable: optional bool tensor of ``input_ids``'s shape; only ``True`` positions may be
            masked (exclude padding, special tokens, or parts of the input the noise must not touch).
        generator: random source (default torch's global generator).

    Returns:
        ``(masked_ids, masked)``: a new id tensor and the bool positions that were replaced.

    Example:
        >>> ids = torch.tensor([[101, 7, 8, 9, 102]])
        >>> noisy, where = mask_tokens(ids, 103, probability=0.5, maskable=(ids != 101) & (ids != 102))
    """
    if not isinstance(input_ids, torch.Tensor) or input_ids.is_floating_point() or input_ids.dtype == torch.bool:
        fail("input_ids", "an integer tensor of token ids", getattr(input_ids, "dtype", type(input_ids).__name__))
    if not 0.0 <= probability <= 1.0:
        fail("probability", "a value in [0, 1]", probability)
    if maskable is not None and (not isinstance(maskable, torch.Tensor) or maskable.shape != input_ids.shape):
        fail("maskable", f"a bool tensor of shape {tuple(input_ids.shape)}", getattr(maskable, "shape", maskable))
    draw = torch.rand(input_ids.shape, generator=generator,
                      device=input_ids.device if generator is None else generator.device).to(input_ids.device)
    masked = draw < probability
    if maskable is not None:
        masked &= maskable.to(device=input_ids.device, dtype=torch.bool)
    return input_ids.masked_fill(masked, mask_token_id), masked


def _check_candidates(anchor: torch.Tensor, candidates: torch.Tensor, answers: torch.Tensor) -> None:
    if not isinstance(anchor, torch.Tensor) or anchor.dim() != 2 or not anchor.is_floating_point():
        fail("anchor", "a float [B, D] tensor", getattr(anchor, "shape", type(anchor).__name__))
    b, d = anchor.shape
    if not isinstance(candidates, torch.Tensor) or candidates.dim() != 3 or candidates.shape[0] != b \
            or candidates.shape[2] != d or candidates.shape[1] < 2:
        fail("candidates", f"a [{b}, M >= 2, {d}] tensor (every option of each question)",
             getattr(candidates, "shape", type(candidates).__name__))
    m = candidates.shape[1]
    if not isinstance(answers, torch.Tensor) or answers.shape != (b,) or answers.is_floating_point():
        fail("answers", f"an integer [{b}] tensor of ground-truth option indices", getattr(answers, "shape", answers))
    if answers.numel() and (answers.min() < 0 or answers.max() >= m):
        fail("answers", f"indices in [0, {m})", answers.tolist()[:10])
    if not (torch.isfinite(anchor).all() and torch.isfinite(candidates).all()):
        fail("mcvqa_contrastive_loss", "finite anchor and candidates", "NaN/inf")


def mcvqa_contrastive_loss(
    anchor: torch.Tensor,
    candidates: torch.Tensor,
    answers: torch.Tensor,
    *,
    temperature: float = 1.0,
    similarity: str = "dot",
    reduction: str = "mean",
) -> torch.Tensor:
    r"""InfoNCE with the masked ground-truth input as anchor and the ``M`` unmasked options as candidates.

    ``l_b = -log softmax_m(s(anchor_b, candidates_bm) / tau)[answers_b]``.

    Args:
        anchor: ``[B, D]`` representation of each question's masked ground-truth input.
        candidates: ``[B, M, D]`` representations of all ``M >= 2`` unmasked options (the
            ground truth among them, at ``answers``).
        answers: ``[B]`` integer index of the ground-truth option.
        temperature: ``tau > 0`` (default 1).
        similarity: ``'dot'`` (default) or ``'cosine'``.
        reduction: ``'mean'`` (default), ``'sum'`` or ``'none'`` (``[B]``).

    Returns:
        The loss.

    Example:
        >>> loss = mcvqa_contrastive_loss(torch.randn(4, 16), torch.randn(4, 5, 16), torch.tensor([0, 1, 2, 3]))
    """
    check_reduction(reduction)
    check_positive_scalar("temperature", temperature)
    _check_candidates(anchor, candidates, answers)
    if similarity == "cosine":
        anchor, candidates = F.normalize(anchor, dim=-1), F.normalize(candidates, dim=-1)
    elif similarity != "dot":
        fail("similarity", "'dot' or 'cosine'", similarity)
    logits = torch.einsum("bd,bmd->bm", anchor, candidates) / temperature
    return F.cross_entropy(logits, answers.to(logits.device), reduction=reduction)


def mcvqa_loss(
    answer_logits: torch.Tensor,
    answers: torch.Tensor,
    anchor: torch.Tensor,
    candidates: torch.Tensor,
    *,
    contrastive_weight: float = 1.0,
    temperature: float = 1.0,
    similarity: str = "dot",
) -> torch.Tensor:
    r"""Answer classification plus the auxiliary contrast: ``CE(answer_logits, a*) + lambda * L_cl``.

    Args:
        answer_logits: ``[B, M]`` the QA head's scores of the ``M`` options.
        answers: ``[B]`` ground-truth option indices.
        anchor, candidates: as in :func:`mcvqa_contrastive_loss`.
        contrastive_weight: ``lambda >= 0`` (default 1; 0 is the plain QA loss).
        temperature, similarity: as in :func:`mcvqa_contrastive_loss`.

    Returns:
        The scalar loss (means over questions).
    """
    if not isinstance(answer_logits, torch.Tensor) or answer_logits.shape != candidates.shape[:2]:
        fail("answer_logits", f"a [B, M] tensor matching candidates {tuple(candidates.shape[:2])}",
             getattr(answer_logits, "shape", answer_logits))
    if not contrastive_weight >= 0:
        fail("contrastive_weight", "a value >= 0", contrastive_weight)
    qa = F.cross_entropy(answer_logits, answers.to(answer_logits.device))
    contrast = mcvqa_contrastive_loss(anchor, candidates, answers, temperature=temperature, similarity=similarity)
    return qa + contrastive_weight * contrast

"""Zero-shot prompt-patch segmentation protocol of MMC.

Wu et al., "Masked Momentum Contrastive Learning for Zero-shot Semantic Understanding"
(arXiv 2023): a frozen ViT is evaluated without fine-tuning. Given a prompt point, take its
patch token ``p``; the mask is every patch whose cosine similarity to ``p`` is at least a
threshold ``t``. Masks are scored with the Jaccard index (IoU) / mIoU against ground truth,
and the separation of the features with the overlap of the intra-object and inter-object
similarity histograms (lower overlap = objects are more distinct).

Masks and labels live on the patch grid (``[B, N]`` or ``[B, h, w]`` with ``N = h * w``);
upsample predictions to pixels outside this module if pixel-level scores are wanted.

METHODS.md verdict: **PARTIAL** (protocol only). A paper-scale check would need an
ImageNet-pretrained ViT-S/B and VOC/COCO-style segmentation sets.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "prompt_similarity",
    "prompt_segment",
    "jaccard_index",
    "mean_iou",
    "similarity_histogram_overlap",
]


def _check_tokens(tokens: torch.Tensor) -> None:
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 3:
        shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ValueError(f"tokens: expected a [B, N, d] tensor of patch tokens, got {shape}")
    if not tokens.is_floating_point():
        raise ValueError(f"tokens: expected a floating-point tensor, got dtype {tokens.dtype}")


def _prompt_index(prompt: torch.Tensor | int, batch: int, num_tokens: int, device: torch.device) -> torch.Tensor:
    index = torch.as_tensor(prompt, device=device)
    if index.is_floating_point():
        raise ValueError(f"prompt_index: expected integer patch indices, got dtype {index.dtype}")
    index = index.long().reshape(-1)
    if index.numel() == 1:
        index = index.expand(batch)
    if index.numel() != batch:
        raise ValueError(f"prompt_index: expected an int or [{batch}] indices, got {index.numel()} values")
    if bool(((index < 0) | (index >= num_tokens)).any()):
        raise ValueError(f"prompt_index: expected indices in [0, {num_tokens}), got {index.tolist()}")
    return index


def prompt_similarity(tokens: torch.Tensor, prompt_index: torch.Tensor | int) -> torch.Tensor:
    """Cosine similarity of every patch token to the prompt patch's token.

    Args:
        tokens: ``[B, N, d]`` patch tokens (no [CLS]).
        prompt_index: an int or ``[B]`` flat patch indices (row-major on the grid).

    Returns:
        ``[B, N]`` similarities in ``[-1, 1]`` (1 at the prompt itself).
    """
    _check_tokens(tokens)
    batch, num_tokens, _ = tokens.shape
    index = _prompt_index(prompt_index, batch, num_tokens, tokens.device)
    normalized = F.normalize(tokens, dim=-1)
    prompt = normalized[torch.arange(batch, device=tokens.device), index]  # [B, d]
    return torch.einsum("bnd,bd->bn", normalized, prompt)


def prompt_segment(
    tokens: torch.Tensor,
    prompt_index: torch.Tensor | int,
    threshold: float = 0.5,
    *,
    grid: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Segment by thresholding the cosine similarity to a prompt patch: ``mask = sim >= threshold``.

    Args:
        tokens: ``[B, N, d]`` patch tokens.
        prompt_index: an int or ``[B]`` flat prompt-patch indices.
        threshold: ``t`` in ``[-1, 1]`` (default 0.5; the paper sweeps it).
        grid: optional ``(h, w)`` with ``h * w == N`` to return ``[B, h, w]`` masks.

    Returns:
        Bool masks ``[B, N]`` (or ``[B, h, w]``).

    Example:
        >>> masks = prompt_segment(torch.randn(2, 196, 384), 0, threshold=0.4, grid=(14, 14))
        >>> masks.shape
        torch.Size([2, 14, 14])
    """
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not -1.0 <= threshold <= 1.0:
        raise ValueError(f"threshold: expected a float in [-1, 1], got {threshold!r}")
    similarity = prompt_similarity(tokens, prompt_index)
    mask = similarity >= threshold
    if grid is None:
        return mask
    height, width = grid
    if height * width != tokens.shape[1]:
        raise ValueError(f"grid: expected h * w == N = {tokens.shape[1]}, got {grid}")
    return mask.reshape(-1, height, width)


def _check_masks(prediction: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    for name, mask in (("prediction", prediction), ("target", target)):
        if not isinstance(mask, torch.Tensor) or mask.dim() < 2:
            shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"{name}: expected a [B, ...] mask tensor, got {shape}")
    if prediction.shape != target.shape:
        raise ValueError(
            f"target: expected the shape of prediction {tuple(prediction.shape)}, got {tuple(target.shape)}"
        )
    return prediction.bool().flatten(1), target.bool().flatten(1)


def jaccard_index(prediction: torch.Tensor, target: torch.Tensor, *, empty: float = 1.0) -> torch.Tensor:
    """Per-image Jaccard index (IoU) of binary masks: ``|P & T| / |P | T|``.

    Args:
        prediction: ``[B, ...]`` bool masks.
        target: ``[B, ...]`` bool ground truth, same shape.
        empty: the score when both masks are empty (default 1.0: a correct "nothing").

    Returns:
        ``[B]`` float scores in ``[0, 1]``.
    """
    prediction, target = _check_masks(prediction, target)
    intersection = (prediction & target).sum(dim=1).double()
    union = (prediction | target).sum(dim=1).double()
    score = intersection / union.clamp(min=1)
    return torch.where(union > 0, score, torch.full_like(score, empty)).float()


def mean_iou(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Dataset mIoU of binary masks: mean over {background, foreground} of accumulated IoU.

    Intersections and unions are summed over all images before dividing (the usual
    segmentation-benchmark convention); a class absent from both is skipped.

    Args:
        prediction: ``[B, ...]`` bool masks.
        target: ``[B, ...]`` bool ground truth.

    Returns:
        mIoU in ``[0, 1]``.
    """
    prediction, target = _check_masks(prediction, target)
    scores = []
    for predicted, truth in ((prediction, target), (~prediction, ~target)):
        union = int((predicted | truth).sum())
        if union:
            scores.append(int((predicted & truth).sum()) / union)
    return sum(scores) / len(scores) if scores else 1.0


def similarity_histogram_overlap(
    tokens: torch.Tensor,
    labels: torch.Tensor,
    *,
    bins: int = 50,
) -> float:
    """Overlap of the intra-object and inter-object cosine-similarity histograms.

    Within each image, every pair of distinct patches with the same segment label is an
    intra-object pair and every pair with different labels an inter-object pair; both sets are
    pooled over the batch, histogrammed on ``[-1, 1]`` with ``bins`` bins and normalised to
    sum 1. The overlap is ``sum_b min(p_intra[b], p_inter[b])`` in ``[0, 1]``: 0 when a
    threshold separates objects perfectly, 1 when the distributions coincide.

    Args:
        tokens: ``[B, N, d]`` patch tokens.
        labels: ``[B, N]`` (or ``[B, h, w]``) integer segment ids (e.g. 0 = background).
        bins: histogram bins (default 50).

    Returns:
        The overlap in ``[0, 1]``.

    Raises:
        ValueError: on bad shapes or when there is no intra or no inter pair.
    """
    _check_tokens(tokens)
    if not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins: expected an int >= 1, got {bins!r}")
    if not isinstance(labels, torch.Tensor) or labels.shape[0] != tokens.shape[0]:
        raise ValueError(f"labels: expected [B, N] segment ids with B={tokens.shape[0]}")
    labels = labels.reshape(labels.shape[0], -1)
    if labels.shape[1] != tokens.shape[1] or labels.is_floating_point():
        raise ValueError(f"labels: expected integer ids of shape {tuple(tokens.shape[:2])}, got {tuple(labels.shape)}")
    normalized = F.normalize(tokens.detach().float(), dim=-1)
    similarity = normalized @ normalized.transpose(1, 2)  # [B, N, N]
    same = labels.unsqueeze(2) == labels.unsqueeze(1)
    distinct = ~torch.eye(tokens.shape[1], dtype=torch.bool, device=tokens.device).unsqueeze(0)
    intra = similarity[same & distinct]
    inter = similarity[~same]
    if intra.numel() == 0 or inter.numel() == 0:
        raise ValueError("labels: expected at least one intra-object and one inter-object pair")
    histogram = lambda values: torch.histc(values.clamp(-1, 1), bins=bins, min=-1, max=1) / values.numel()
    return float(torch.minimum(histogram(intra), histogram(inter)).sum())

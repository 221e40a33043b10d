"""Cross-modal evaluation: image <-> text retrieval, zero-shot classification, bootstrap intervals.

Conventions follow open_clip's retrieval evaluation, with several captions per image
counted as *any-match* (openai/CLIP #502):

* image -> text: an image's rank is that of the best-ranked caption among *its* captions,
  over every caption of the test split;
* text -> image: a caption's rank is that of its image over every test image;
* ``R@k`` is the share of queries whose rank is at most ``k``; mean and median ranks are
  1-based.

Zero-shot classification scores each image against a classifier built from class names
and prompt templates: per class, the mean of the L2-normalised template embeddings,
normalised again (CLIP's prompt ensembling).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = ["DEFAULT_TEMPLATES", "bootstrap_interval", "query_ranks", "retrieval_scores", "zero_shot_classifier",
           "zero_shot_top1"]

#: Prompt templates for the emoji task (the class name as it is, and two short sentences).
DEFAULT_TEMPLATES = ("{}", "an emoji of {}.", "a picture of {}.")


def query_ranks(images: torch.Tensor, texts: torch.Tensor, text_owner: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """1-based ranks ``(image -> text [N], text -> image [T])`` with any-match over an image's captions.

    Args:
        images: ``[N, D]`` image embeddings (compared by dot product: normalise first for cosine).
        texts: ``[T, D]`` caption embeddings.
        text_owner: ``[T]`` the image row of each caption, every image owning at least one.
    """
    if images.dim() != 2 or texts.dim() != 2 or images.shape[1] != texts.shape[1]:
        raise ValueError(f"query_ranks: expected images [N, D] and texts [T, D], got {tuple(images.shape)} "
                         f"and {tuple(texts.shape)}")
    owner = torch.as_tensor(text_owner, dtype=torch.long, device=images.device)
    if owner.shape != (texts.shape[0],) or (owner.numel() and (owner.min() < 0 or owner.max() >= images.shape[0])):
        raise ValueError(f"query_ranks: expected text_owner [{texts.shape[0]}] of image rows in [0, {images.shape[0]})")
    if torch.bincount(owner, minlength=images.shape[0]).min() < 1:
        raise ValueError("query_ranks: every image needs at least one caption")
    scores = images.float() @ texts.float().T  # [N, T]
    own = owner[None, :] == torch.arange(images.shape[0], device=images.device)[:, None]
    best_own = scores.masked_fill(~own, float("-inf")).max(1).values
    # Ties count against the query (a strict > would reward constant embeddings).
    image_to_text = (scores.masked_fill(own, float("-inf")) >= best_own[:, None]).sum(1) + 1
    positive = scores.T.gather(1, owner[:, None])  # [T, 1]
    text_to_image = (scores.T >= positive).sum(1)  # counts the positive itself: 1-based
    return image_to_text, text_to_image


def retrieval_scores(image_to_text: torch.Tensor, text_to_image: torch.Tensor,
                     ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """``i2t_r@k``, ``t2i_r@k``, mean and median ranks and ``mean_r@k`` (the mean of all R@k)."""
    out: dict[str, float] = {}
    recalls = []
    for name, ranks in (("i2t", image_to_text), ("t2i", text_to_image)):
        ranks = ranks.float()
        for k in ks:
            out[f"{name}_r@{k}"] = float((ranks <= k).float().mean())
            recalls.append(out[f"{name}_r@{k}"])
        out[f"{name}_mean_rank"] = float(ranks.mean())
        out[f"{name}_median_rank"] = float(ranks.median())
    out["mean_recall"] = sum(recalls) / len(recalls)
    return out


def zero_shot_classifier(encode_texts: Callable[[list[str]], torch.Tensor], class_names: Sequence[str],
                         templates: Sequence[str] = DEFAULT_TEMPLATES) -> torch.Tensor:
    """``[C, D]`` class embeddings: the renormalised mean of each class's normalised template embeddings."""
    if not class_names:
        raise ValueError("zero_shot_classifier: expected at least one class name")
    if not templates or any("{}" not in template for template in templates):
        raise ValueError(f"eval.templates: expected templates with a '{{}}' for the class name, got {list(templates)}")
    prompts = [template.format(name) for name in class_names for template in templates]
    embeddings = F.normalize(encode_texts(prompts).float(), dim=-1).view(len(class_names), len(templates), -1)
    return F.normalize(embeddings.mean(1), dim=-1)


def zero_shot_top1(images: torch.Tensor, classifier: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-image 0/1 correctness ``[N]`` of the arg-max class (ties resolved towards the lowest index)."""
    predictions = (images.float() @ classifier.float().T).argmax(1)
    return (predictions == labels.to(predictions.device)).float()


def bootstrap_interval(values: torch.Tensor, *, resamples: int = 1000, level: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-query ``values`` (resampling queries).

    For a *paired* comparison pass the per-query differences of two systems on the same queries.
    """
    values = torch.as_tensor(values, dtype=torch.float64).flatten()
    if values.numel() < 2:
        raise ValueError(f"bootstrap_interval: expected at least 2 per-query values, got {values.numel()}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"bootstrap_interval: expected level in (0, 1), got {level}")
    generator = torch.Generator().manual_seed(int(seed))
    rows = torch.randint(values.numel(), (int(resamples), values.numel()), generator=generator)
    means = values[rows].mean(1)
    low, high = torch.quantile(means, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64))
    return float(low), float(high)

r"""Voltron's objectives (Karamcheti et al., RSS 2023, "Language-Driven Representation Learning
for Robotics") as pure functions of tensors: masked pixel reconstruction with normalised targets,
language generation from visual context, the α split between the two, and their weighted sum.

Checked against the official code, github.com/siddk/voltron-robotics
(``voltron/models/core/vcond.py`` and ``vgen.py``: ``mask``, ``patchify``, ``compute_loss``;
``voltron/datasets/datasets.py``: ``GenStateOKDataset``; ``voltron/conf/models.py``):

* masking: per sample, ``n_keep = int(N * (1 - mask_ratio))`` patches stay visible, chosen by
  ``argsort`` of uniform noise; ``mask`` is 1 on removed patches (MAE's convention); with two
  frames (V-Dual / V-Gen) the *same* patches are removed in both. ``mask_ratio = 0.75``.
* reconstruction target: the patchified frame ``[N, p*p*C]`` (order ``(p_h p_w c)``), each patch
  normalised by its own mean and *unbiased* variance, ``(t - mu) / sqrt(var + 1e-6)``
  (``norm_pixel_loss``, asserted true in training); the loss is the squared error averaged over
  a patch's pixels, then over removed patches only (``sum(l * mask) / sum(mask)``), and with two
  frames the mean of the two frames' losses.
* language generation: next-token cross-entropy of ``logits[:, :-1]`` against ``tokens[:, 1:]``,
  averaged per example over the positions where ``mask[:, :-1]`` is 1, then averaged over examples
  weighted by ``weight`` (1 for a generation example, 0 otherwise): ``sum(w l) / (1e-8 + sum(w))``.
* the α trade-off (``gen_ratio``; 0.5 for V-Gen): a fraction α of the examples *generate*: their
  conditioning language is blanked to the first (``[CLS]``) token and their caption is the
  generation target (weight 1); the others *condition* on the caption, and their generation
  target is blanked to ``[CLS]`` (weight 0), so they add nothing to the language loss.
  Officially exactly ``int(α * n_examples)`` examples per epoch are drawn without replacement;
  :func:`split_generation` draws ``int(α * B)`` rows per batch (per epoch is the data loader's
  business, not a tensor function's).
* total: ``mae_weight * reconstruction + lm_weight * language`` with ``mae_weight = 1.0`` and
  ``lm_weight = 0.5`` (V-Gen's config: "the two losses of the same order of magnitude").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "MASK_RATIO",
    "language_generation_loss",
    "masked_reconstruction_loss",
    "normalized_pixel_targets",
    "patchify",
    "random_patch_mask",
    "split_generation",
    "voltron_loss",
]

#: The official masking ratio (MAE's).
MASK_RATIO = 0.75


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``[..., C, H, W] -> [..., (H/p)(W/p), p*p*C]``, patches row-major, pixels ordered ``(p_h, p_w, c)``.

    Example:
        >>> patchify(torch.randn(2, 3, 8, 8), 4).shape
        torch.Size([2, 4, 48])
    """
    *lead, channels, height, width = images.shape
    if height % patch_size or width % patch_size:
        raise ValueError(f"patchify: expected height and width divisible by patch_size={patch_size}, "
                         f"got {height}x{width}")
    rows, cols = height // patch_size, width // patch_size
    x = images.reshape(*lead, channels, rows, patch_size, cols, patch_size)
    order = [*range(len(lead)), len(lead) + 1, len(lead) + 3, len(lead) + 2, len(lead) + 4, len(lead)]
    return x.permute(order).reshape(*lead, rows * cols, patch_size * patch_size * channels)


def random_patch_mask(batch: int, patches: int, mask_ratio: float = MASK_RATIO, *,
                      generator: torch.Generator | None = None, device: torch.device | str | None = None,
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample random masking by shuffling, as MAE and Voltron do.

    Returns:
        ``(keep [B, n_keep], mask [B, N], restore [B, N])``: the visible patches' indices in shuffled
        order, the float mask (1 = removed), and the permutation that puts ``cat(visible, removed)``
        back in patch order. ``n_keep = int(N * (1 - mask_ratio))``.
    """
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio: expected a number in [0, 1), got {mask_ratio}")
    keep_count = int(patches * (1 - mask_ratio))
    noise = torch.rand(batch, patches, generator=generator,
                       device=generator.device if generator is not None else device)
    shuffle = torch.argsort(noise.to(device) if device is not None else noise, dim=1)
    restore = torch.argsort(shuffle, dim=1)
    mask = torch.ones(batch, patches, device=shuffle.device)
    mask[:, :keep_count] = 0
    return shuffle[:, :keep_count], torch.gather(mask, 1, restore), restore


def normalized_pixel_targets(patches: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Each patch normalised by its own mean and unbiased variance: ``(t - mu) / sqrt(var + eps)``."""
    mean = patches.mean(dim=-1, keepdim=True)
    variance = patches.var(dim=-1, unbiased=True, keepdim=True)
    return (patches - mean) / (variance + eps) ** 0.5


def masked_reconstruction_loss(reconstructions: torch.Tensor, images: torch.Tensor, mask: torch.Tensor,
                               patch_size: int) -> torch.Tensor:
    r"""Voltron's pixel loss: MSE to normalised patch targets on the removed patches, averaged over frames.

    .. math::

        L = \frac{1}{F} \sum_f \frac{\sum_n m_n \, \overline{(\hat y_{fn} - \tilde y_{fn})^2}}{\sum_n m_n}

    with ``\tilde y`` the per-patch normalised targets (:func:`normalized_pixel_targets`) and the bar
    the mean over a patch's ``p*p*C`` values.

    Args:
        reconstructions: ``[B, F, N, p*p*C]`` decoder outputs for ``F`` frames (``F = 1`` for V-Cond).
        images: ``[B, F, C, H, W]`` the frames.
        mask: ``[B, N]``, 1 on removed patches (the same for every frame).
        patch_size: ``p``.

    Returns:
        The scalar loss.

    Example:
        >>> images = torch.randn(2, 1, 3, 8, 8)
        >>> _, mask, _ = random_patch_mask(2, 4)
        >>> masked_reconstruction_loss(torch.zeros(2, 1, 4, 48), images, mask, 4).shape
        torch.Size([])
    """
    if images.dim() != 5 or reconstructions.dim() != 4:
        raise ValueError(f"masked_reconstruction_loss: expected reconstructions [B, F, N, P] and images "
                         f"[B, F, C, H, W], got {tuple(reconstructions.shape)} and {tuple(images.shape)}")
    targets = normalized_pixel_targets(patchify(images, patch_size))
    if targets.shape != reconstructions.shape or tuple(mask.shape) != (targets.shape[0], targets.shape[2]):
        raise ValueError(f"masked_reconstruction_loss: reconstructions {tuple(reconstructions.shape)}, targets "
                             f"{tuple(targets.shape)} and mask {tuple(mask.shape)} do not match")
    per_patch = ((reconstructions - targets) ** 2).mean(dim=-1)  # [B, F, N]
    per_frame = (per_patch * mask[:, None]).sum(dim=(0, 2)) / mask.sum()  # [F]
    return per_frame.mean()


def language_generation_loss(logits: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor,
                             weight: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Next-token cross-entropy per example over its valid positions, weighted over examples.

    Args:
        logits: ``[B, L, V]`` the decoder's vocabulary logits at the generation positions.
        tokens: ``[B, L]`` token ids (position ``t + 1`` is the target of logits at ``t``).
        mask: ``[B, L]`` 1 on real tokens; positions ``mask[:, :-1] == 1`` are scored.
        weight: ``[B]`` per-example weights (1 = a generation example, 0 = a conditioning one).
        eps: guards the division when no example generates.

    Returns:
        ``sum_i w_i l_i / (eps + sum_i w_i)``: 0 when every weight is 0.
    """
    batch, length, vocab = logits.shape
    per_token = F.cross_entropy(logits[:, :-1].reshape(-1, vocab), tokens[:, 1:].reshape(-1),
                                reduction="none").view(batch, length - 1)
    valid = mask[:, :-1].to(per_token.dtype)
    per_example = (per_token * valid).sum(dim=-1) / valid.sum(dim=-1)
    weight = weight.to(per_example.dtype)
    return (per_example * weight).sum() / (eps + weight.sum())


def split_generation(tokens: torch.Tensor, mask: torch.Tensor, alpha: float, *,
                     generator: torch.Generator | None = None,
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Voltron's α switch: which rows condition on their caption and which generate it.

    ``int(alpha * B)`` rows, drawn without replacement, generate: their conditioning tokens and mask
    keep only position 0 (``[CLS]``; an all-zero mask gives NaN officially), and their generation
    weight is 1. Every other row conditions on its caption; its generation target keeps only
    position 0 and its weight is 0.

    Args:
        tokens: ``[B, L]`` caption token ids, ``[CLS]`` first.
        mask: ``[B, L]`` attention mask of the captions.
        alpha: the fraction of rows that generate, in ``[0, 1]`` (V-Gen: 0.5).
        generator: the draw's random numbers (torch's global RNG when ``None``).

    Returns:
        ``(condition_tokens, condition_mask, generate_tokens, generate_mask, weight)``, ``weight [B]`` float.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha: expected the fraction of generating rows in [0, 1], got {alpha}")
    batch = tokens.shape[0]
    chosen = torch.randperm(batch, generator=generator,
                            device=generator.device if generator is not None else "cpu")[:int(alpha * batch)]
    generate = torch.zeros(batch, dtype=torch.bool)
    generate[chosen.cpu()] = True
    generate = generate.to(tokens.device)
    tail = torch.zeros_like(tokens, dtype=torch.bool)
    tail[:, 1:] = True
    blank_condition = generate[:, None] & tail  # generating rows: condition on [CLS] only
    blank_target = ~generate[:, None] & tail  # conditioning rows: generate [CLS] only
    return (tokens.masked_fill(blank_condition, 0), mask.masked_fill(blank_condition, 0),
            tokens.masked_fill(blank_target, 0), mask.masked_fill(blank_target, 0), generate.float())


def voltron_loss(reconstruction: torch.Tensor, language: torch.Tensor | float = 0.0, *,
                 mae_weight: float = 1.0, lm_weight: float = 0.5) -> torch.Tensor:
    """``mae_weight * reconstruction + lm_weight * language`` (official V-Gen weights 1.0 and 0.5)."""
    return mae_weight * reconstruction + lm_weight * language

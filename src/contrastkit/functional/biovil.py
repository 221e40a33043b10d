r"""BioViL / CXR-BERT: global image-report InfoNCE, radiology section matching, patch-phrase grounding maps.

Boecking et al., "Making the Most of Text Semantics to Improve Biomedical Vision-Language
Processing", ECCV 2022. Three pieces:

* :func:`biovil_global_loss` — BioViL's only image-text objective: symmetric InfoNCE between the
  projected, L2-normalised global image embedding (the spatial mean of the *projected* patch
  embeddings) and the projected [CLS] embedding of the report, temperature ``tau``. In training
  it is added to the text side's masked-language-modelling loss, e.g.
  ``loss = biovil_global_loss(img, txt) + lambda_mlm * F.cross_entropy(mlm_logits.flatten(0, 1),
  mlm_labels.flatten(), ignore_index=-100)``.
* :func:`radiology_section_matching_loss` — CXR-BERT's RSM: the same symmetric InfoNCE between
  the projected [CLS] embeddings of a report's *Findings* and *Impression* sections (in-batch
  negatives), trained alongside MLM to specialise CXR-BERT.
* :func:`patch_phrase_similarity` (+ :func:`similarity_map_to_image`,
  :func:`contrast_to_noise_ratio`) — what BioViL's "local alignment" is in practice. BioViL has
  **no local training loss** (no patch-word attention objective as in GLoRIA or LoVT); the paper's
  point is that a global objective with good text modelling still localises. Phrase grounding
  on MS-CXR is read off at inference: the cosine similarity of every L2-normalised projected
  patch embedding with the L2-normalised projected phrase embedding, smoothed by a Gaussian
  (``sigma = 1.5`` patches), then upsampled to the image and placed back into the un-cropped
  frame (NaN outside the centre crop). The paper scores such maps by the contrast-to-noise
  ratio between the annotated box and the rest.

Shapes: global embeddings ``[B, D]`` (``D = 128``, hi-ml's ``JOINT_FEATURE_SIZE``); projected
patch embeddings ``[B, H, W, D]`` (hi-ml's layout after ``get_patchwise_projected_embeddings``);
phrase embeddings ``[B, D]``; maps ``[B, H, W]``.

Official code, microsoft/hi-ml (``hi-ml-multimodal/src/health_multimodal``), read line by line:
it releases **inference code and model definitions only — no training losses**. What it fixes,
and this module follows:

* image side (``image/model/model.py``): a 1x1-conv MLP projector (conv without bias ->
  BatchNorm -> ReLU -> conv with bias, hidden = output = 128) applied to the ResNet-50 patch
  grid *before* pooling; the global embedding is ``mean over (H, W)`` of the projected patches
  (:func:`pool_projected_patches`); both are L2-normalised over features for similarities.
* text side (``text/model/modelling_cxrbert.py``): ``BertProjectionHead`` on the last hidden
  state of [CLS] (Linear 768 -> 128, GELU, LayerNorm eps 1e-12, Linear 128 -> 128), then
  ``F.normalize``.
* grounding (``vlp/inference_engine.py``): ``patch @ text.T`` on normalised embeddings, then
  ``scipy.ndimage.gaussian_filter(sigma=(1.5, 1.5))`` — scipy's defaults, ``mode='reflect'``
  (edge sample repeated) and ``truncate=4`` (radius 6) — reproduced here in torch; then
  ``convert_similarity_to_image_size`` (reproduced by :func:`similarity_map_to_image`).

Built from the paper, not from code (hi-ml has none), and so unverified against an official
implementation: the InfoNCE forms of :func:`biovil_global_loss` and
:func:`radiology_section_matching_loss`. As recalled from the paper (Sec. 3 and 4): the loss is
``-(1/N) sum_i [log softmax_j(a_i.b_j / tau)_i + log softmax_j(b_i.a_j / tau)_i]`` — the two
directions *summed* (``directions='sum'``; ``'mean'`` gives CLIP's convention and equals
:func:`contrastkit.functional.clip_loss` with ``logit_scale = 1/tau``), ``tau = 0.5`` for both
[recalled; check against the paper before relying on it]; the MLM weight ``lambda_mlm`` is left
to the caller. :func:`contrast_to_noise_ratio` follows the paper's definition
``|mu_in - mu_out| / sqrt(var_in + var_out)`` (population variances, NaN pixels ignored)
[recalled]; the MS-CXR evaluation script is not in hi-ml.

METHODS.md verdict: **PARTIAL** — losses and the grounding map are implemented and tested
(the smoothing against scipy); MIMIC-CXR (credentialed), MS-CXR and the pretrained towers are
not available offline, so no benchmark number is claimed.

Example:
    >>> img, txt = torch.randn(8, 128), torch.randn(8, 128)
    >>> loss = biovil_global_loss(img, txt)
    >>> patches, phrase = torch.randn(2, 15, 15, 128), torch.randn(2, 128)
    >>> patch_phrase_similarity(patches, phrase).shape
    torch.Size([2, 15, 15])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from contrastkit.functional.core import reduce
from contrastkit.utils.checks import (
    check_pair,
    check_positive_scalar,
    check_reduction,
    fail,
)

__all__ = [
    "biovil_global_loss",
    "contrast_to_noise_ratio",
    "patch_phrase_similarity",
    "pool_projected_patches",
    "radiology_section_matching_loss",
    "similarity_map_to_image",
]

_LINEAR_MODES = ("linear", "bilinear", "bicubic", "trilinear")


def _symmetric_info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float, directions: str,
                        reduction: str) -> torch.Tensor:
    check_reduction(reduction)
    check_positive_scalar("temperature", temperature)
    check_pair("a", a, "b", b, min_rows=2)
    if directions not in ("sum", "mean"):
        fail("directions", "'sum' (the paper's form) or 'mean' (CLIP's)", directions)
    logits = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T / temperature
    both = (torch.logsumexp(logits, dim=1) - logits.diagonal()) + (torch.logsumexp(logits, dim=0) - logits.diagonal())
    per_pair = both if directions == "sum" else both / 2
    return reduce(per_pair, reduction)


def biovil_global_loss(
    image_embeddings: torch.Tensor,
    text_embeddings: torch.Tensor,
    *,
    temperature: float = 0.5,
    directions: str = "sum",
    reduction: str = "mean",
) -> torch.Tensor:
    r"""BioViL's global image-report alignment: symmetric InfoNCE on L2-normalised projections.

    With ``x_i``, ``t_i`` L2-normalised (done here) and ``l_ij = x_i . t_j / tau``:

    ``l_i = -log softmax_j(l_ij)_i - log softmax_j(l_ji)_i`` (``directions='sum'``; halved for
    ``'mean'``), reduced over pairs.

    Args:
        image_embeddings: ``[B, D]`` projected global image embeddings (:func:`pool_projected_patches`),
            ``B >= 2``.
        text_embeddings: ``[B, D]`` projected [CLS] embeddings of the paired reports.
        temperature: ``tau > 0`` (0.5, recalled from the paper).
        directions: ``'sum'`` (default, the paper's equation as recalled) or ``'mean'``.
        reduction: ``'mean'`` (default), ``'sum'`` or ``'none'`` (``[B]`` per pair).

    Returns:
        The loss.

    Example:
        >>> loss = biovil_global_loss(torch.randn(8, 128), torch.randn(8, 128), temperature=0.5)
    """
    return _symmetric_info_nce(image_embeddings, text_embeddings, temperature, directions, reduction)


def radiology_section_matching_loss(
    findings_embeddings: torch.Tensor,
    impression_embeddings: torch.Tensor,
    *,
    temperature: float = 0.5,
    directions: str = "sum",
    reduction: str = "mean",
) -> torch.Tensor:
    r"""CXR-BERT's radiology section matching (RSM): Findings <-> Impression symmetric InfoNCE.

    The same form as :func:`biovil_global_loss` with both sides text: row ``i`` holds the
    projected [CLS] embeddings of report ``i``'s Findings and Impression sections; the other
    reports' sections in the batch are the negatives. Trained with MLM (and the paper's text
    augmentations, not here) in CXR-BERT's last pretraining phase.

    Args:
        findings_embeddings: ``[B, D]`` projected Findings embeddings, ``B >= 2``.
        impression_embeddings: ``[B, D]`` projected Impression embeddings of the same reports.
        temperature: ``tau > 0`` (0.5, recalled).
        directions: ``'sum'`` (default) or ``'mean'``.
        reduction: ``'mean'`` (default), ``'sum'`` or ``'none'``.

    Returns:
        The loss.

    Example:
        >>> loss = radiology_section_matching_loss(torch.randn(8, 128), torch.randn(8, 128))
    """
    return _symmetric_info_nce(findings_embeddings, impression_embeddings, temperature, directions, reduction)


def pool_projected_patches(projected_patches: torch.Tensor) -> torch.Tensor:
    """BioViL's global image embedding: the spatial mean of the projected patch grid ``[B, D, H, W] -> [B, D]``.

    hi-ml projects first (1x1-conv MLP on every patch) and pools after, so the global embedding
    lies in the same space as the patch embeddings used for grounding.
    """
    if not isinstance(projected_patches, torch.Tensor) or projected_patches.dim() != 4:
        fail("projected_patches", "a [B, D, H, W] tensor", getattr(projected_patches, "shape", projected_patches))
    return projected_patches.mean(dim=(2, 3))


def _reflect_index(index: torch.Tensor, size: int) -> torch.Tensor:
    """scipy's ``mode='reflect'`` (``d c b a | a b c d | d c b a``) for any offset: period ``2 * size``."""
    folded = index.remainder(2 * size)
    return torch.where(folded < size, folded, 2 * size - 1 - folded)


def _gaussian_smooth(maps: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """Separable Gaussian filter over the last two axes, as ``scipy.ndimage.gaussian_filter`` (order 0)."""
    radius = int(truncate * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, device=maps.device)
    kernel = torch.exp(-0.5 * (offsets.to(maps.dtype) / sigma) ** 2)
    kernel = kernel / kernel.sum()
    for axis in (-2, -1):
        size = maps.shape[axis]
        gather = _reflect_index(torch.arange(size, device=maps.device)[:, None] + offsets, size)  # [size, 2r+1]
        moved = maps.movedim(axis, -1)
        windows = moved[..., gather]  # [..., size, 2r+1]
        maps = (windows * kernel).sum(dim=-1).movedim(-1, axis)
    return maps


def patch_phrase_similarity(
    patch_embeddings: torch.Tensor,
    phrase_embeddings: torch.Tensor,
    *,
    smoothing_sigma: float | None = 1.5,
) -> torch.Tensor:
    r"""BioViL's phrase-grounding map: cosine similarity of every patch with the phrase, Gaussian-smoothed.

    ``M_bhw = <p_bhw / |p_bhw|, t_b / |t_b|>``, then (as hi-ml, with scipy's defaults) a
    Gaussian filter of standard deviation ``smoothing_sigma`` patches over ``(h, w)``, edges
    reflected (edge sample repeated), kernel radius ``int(4 * sigma + 0.5)``.

    Args:
        patch_embeddings: ``[B, H, W, D]`` projected patch embeddings (normalised here over ``D``).
        phrase_embeddings: ``[B, D]`` projected phrase embeddings (normalised here), one phrase per
            image; for several phrases of one image, repeat the image.
        smoothing_sigma: ``> 0`` (official 1.5), or ``None`` for the raw similarity.

    Returns:
        ``[B, H, W]`` similarity maps in ``[-1, 1]`` (before smoothing).

    Example:
        >>> maps = patch_phrase_similarity(torch.randn(1, 15, 15, 128), torch.randn(1, 128))
    """
    if not isinstance(patch_embeddings, torch.Tensor) or patch_embeddings.dim() != 4:
        fail("patch_embeddings", "a [B, H, W, D] tensor", getattr(patch_embeddings, "shape", patch_embeddings))
    b, _, _, d = patch_embeddings.shape
    if not isinstance(phrase_embeddings, torch.Tensor) or phrase_embeddings.shape != (b, d):
        fail("phrase_embeddings", f"a [{b}, {d}] tensor (one phrase per image)",
             getattr(phrase_embeddings, "shape", phrase_embeddings))
    maps = torch.einsum("bhwd,bd->bhw", F.normalize(patch_embeddings, dim=-1), F.normalize(phrase_embeddings, dim=-1))
    if smoothing_sigma is None:
        return maps
    check_positive_scalar("smoothing_sigma", smoothing_sigma)
    return _gaussian_smooth(maps, float(smoothing_sigma))


def similarity_map_to_image(
    similarity_map: torch.Tensor,
    width: int,
    height: int,
    *,
    resize_size: int | None = None,
    crop_size: int | None = None,
    interpolation: str = "nearest",
) -> torch.Tensor:
    """Place a patch-grid map ``[H', W']`` onto the original ``height x width`` image, as hi-ml does.

    The image was resized (shorter side to ``resize_size``) and centre-cropped to a
    ``crop_size`` square before the network. The map is interpolated to the crop's size in
    original pixels (``int(crop_size * min(height, width) / resize_size)``, or ``crop_size`` when
    there was no resize) and padded with NaN to ``height x width`` (floor left/top, ceil
    right/bottom). Without a crop it is interpolated to ``height x width`` directly.
    ``align_corners=False`` for the linear modes, as hi-ml.

    Returns:
        ``[height, width]`` map, NaN outside the crop.
    """
    if not isinstance(similarity_map, torch.Tensor) or similarity_map.dim() != 2:
        fail("similarity_map", "a [H, W] tensor", getattr(similarity_map, "shape", similarity_map))
    grid = similarity_map[None, None].float() if not similarity_map.is_floating_point() else similarity_map[None, None]
    align = False if interpolation in _LINEAR_MODES else None
    if crop_size is None:
        return F.interpolate(grid, size=(height, width), mode=interpolation, align_corners=align)[0, 0]
    side = int(crop_size * min(height, width) / resize_size) if resize_size is not None else crop_size
    out = F.interpolate(grid, size=(side, side), mode=interpolation, align_corners=align)[0, 0]
    margin_w, margin_h = width - side, height - side
    pad = (math.floor(margin_w / 2), math.ceil(margin_w / 2), math.floor(margin_h / 2), math.ceil(margin_h / 2))
    return F.pad(out, pad, value=float("nan"))


def contrast_to_noise_ratio(similarity_map: torch.Tensor, region_mask: torch.Tensor) -> torch.Tensor:
    r"""The paper's grounding score: ``|mu_in - mu_out| / sqrt(var_in + var_out)`` inside vs outside the region.

    Args:
        similarity_map: ``[..., H, W]`` map (NaN pixels, e.g. outside the crop, are ignored).
        region_mask: bool ``[..., H, W]``, ``True`` inside the annotated box(es); each map needs
            valid pixels on both sides.

    Returns:
        ``[...]`` CNR per map (population variances).
    """
    if similarity_map.shape != region_mask.shape or similarity_map.dim() < 2:
        fail("region_mask", f"a bool tensor of the map's shape {tuple(similarity_map.shape)}",
             tuple(region_mask.shape))
    valid = ~torch.isnan(similarity_map)
    inside, outside = region_mask.bool() & valid, ~region_mask.bool() & valid
    if (inside.flatten(-2).sum(-1) == 0).any() or (outside.flatten(-2).sum(-1) == 0).any():
        fail("region_mask", "valid pixels both inside and outside the region of every map", "an empty side")
    values = torch.nan_to_num(similarity_map)

    def stats(where: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        count = where.flatten(-2).sum(-1)
        mean = (values * where).flatten(-2).sum(-1) / count
        var = (((values - mean[..., None, None]) ** 2) * where).flatten(-2).sum(-1) / count
        return mean, var

    mu_in, var_in = stats(inside)
    mu_out, var_out = stats(outside)
    return (mu_in - mu_out).abs() / torch.sqrt(var_in + var_out)

"""BioViL / CXR-BERT: global InfoNCE, radiology section matching, patch-phrase grounding maps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from contrastkit.functional.biovil import (
    biovil_global_loss,
    contrast_to_noise_ratio,
    patch_phrase_similarity,
    pool_projected_patches,
    radiology_section_matching_loss,
    similarity_map_to_image,
)
from contrastkit.functional.contrastive import clip_loss


def _slow_symmetric(a: torch.Tensor, b: torch.Tensor, tau: float) -> list[float]:
    """Per pair: -log p(b_i | a_i) - log p(a_i | b_i), cosines over tau, one row at a time."""
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    out = []
    for i in range(a.shape[0]):
        row = [math.exp(float(a[i] @ b[j]) / tau) for j in range(b.shape[0])]
        col = [math.exp(float(b[i] @ a[j]) / tau) for j in range(a.shape[0])]
        out.append(-math.log(row[i] / sum(row)) - math.log(col[i] / sum(col)))
    return out


@pytest.mark.parametrize("loss_fn", [biovil_global_loss, radiology_section_matching_loss])
def test_symmetric_info_nce_matches_loop_reference(loss_fn):
    torch.manual_seed(0)
    a, b = torch.randn(6, 16, dtype=torch.float64) * 3, torch.randn(6, 16, dtype=torch.float64)
    per_pair = _slow_symmetric(a, b, 0.5)
    assert loss_fn(a, b).item() == pytest.approx(sum(per_pair) / 6, abs=1e-10)
    assert loss_fn(a, b, reduction="sum").item() == pytest.approx(sum(per_pair), abs=1e-9)
    assert torch.allclose(loss_fn(a, b, reduction="none"), torch.tensor(per_pair, dtype=torch.float64))
    # 'mean' over directions is CLIP's loss at logit scale 1 / tau.
    assert loss_fn(a, b, directions="mean", temperature=0.1).item() == pytest.approx(
        clip_loss(a, b, logit_scale=10.0, chunk_size=None).item(), abs=1e-10
    )


def test_matched_sections_score_lower_than_shuffled():
    torch.manual_seed(1)
    findings = torch.randn(16, 32)
    impression = findings + 0.3 * torch.randn(16, 32)
    matched = radiology_section_matching_loss(findings, impression)
    shuffled = radiology_section_matching_loss(findings, impression[torch.randperm(16)])
    assert matched < shuffled


def test_global_loss_gradient_and_errors():
    img = torch.randn(4, 8, requires_grad=True)
    biovil_global_loss(img, torch.randn(4, 8)).backward()
    assert img.grad is not None and torch.isfinite(img.grad).all()
    with pytest.raises(ValueError, match="directions"):
        biovil_global_loss(torch.randn(4, 8), torch.randn(4, 8), directions="max")
    with pytest.raises(ValueError, match="temperature"):
        biovil_global_loss(torch.randn(4, 8), torch.randn(4, 8), temperature=0.0)


def test_pool_projected_patches_is_spatial_mean():
    x = torch.randn(2, 4, 3, 5)
    assert torch.allclose(pool_projected_patches(x), x.flatten(2).mean(-1))


@pytest.mark.parametrize("grid", [(15, 15), (4, 5)])  # (4, 5) is smaller than the radius: several reflections
def test_patch_phrase_map_matches_cosine_loop_and_scipy_smoothing(grid):
    ndimage = pytest.importorskip("scipy.ndimage")
    torch.manual_seed(2)
    h, w = grid
    patches, phrase = torch.randn(2, h, w, 8, dtype=torch.float64), torch.randn(2, 8, dtype=torch.float64)
    raw = patch_phrase_similarity(patches, phrase, smoothing_sigma=None)
    assert torch.allclose(raw, F.cosine_similarity(patches, phrase[:, None, None, :], dim=-1), atol=1e-12)
    smooth = patch_phrase_similarity(patches, phrase)  # sigma 1.5, as hi-ml
    for b in range(2):
        reference = ndimage.gaussian_filter(raw[b].numpy(), sigma=(1.5, 1.5), order=0)
        assert np.allclose(smooth[b].numpy(), reference, atol=1e-12)


def test_similarity_map_to_image_nearest_crop_and_nan_margins():
    sim = torch.arange(6.0).reshape(2, 3)
    # Image 100 x 60 (w x h), resized to 30 on the short side, centre-cropped to 24: 48 original pixels.
    out = similarity_map_to_image(sim, width=100, height=60, resize_size=30, crop_size=24)
    assert out.shape == (60, 100)
    side = int(24 * 60 / 30)
    left, top = (100 - side) // 2, (60 - side) // 2
    inside = torch.zeros(60, 100, dtype=torch.bool)
    inside[top : top + side, left : left + side] = True
    assert torch.isnan(out[~inside]).all() and not torch.isnan(out[inside]).any()
    crop = out[top : top + side, left : left + side]
    for y, x in [(0, 0), (side - 1, side - 1), (side // 2 - 1, side // 3), (side // 2, 2 * side // 3)]:
        assert crop[y, x].item() == sim[y * 2 // side, x * 3 // side].item()  # nearest: floor(dst * in / out)
    plain = similarity_map_to_image(sim, width=9, height=4)
    assert plain.shape == (4, 9) and not torch.isnan(plain).any()


def test_contrast_to_noise_ratio_matches_numpy():
    torch.manual_seed(3)
    maps = torch.randn(2, 6, 7, dtype=torch.float64)
    maps[1, 0, :] = float("nan")  # outside the crop
    region = torch.zeros(2, 6, 7, dtype=torch.bool)
    region[:, 2:4, 1:5] = True
    got = contrast_to_noise_ratio(maps, region)
    for b in range(2):
        m, r = maps[b].numpy(), region[b].numpy()
        ok = ~np.isnan(m)
        a_in, a_out = m[r & ok], m[~r & ok]
        expected = abs(a_in.mean() - a_out.mean()) / np.sqrt(a_in.var() + a_out.var())
        assert got[b].item() == pytest.approx(expected, abs=1e-12)
    boxed = torch.zeros(1, 6, 7, dtype=torch.float64)
    boxed[0, 2:4, 1:5] = 1.0
    assert contrast_to_noise_ratio(boxed + 0.01 * torch.randn(1, 6, 7, dtype=torch.float64), region[:1]) > 10
    with pytest.raises(ValueError, match="both inside and outside"):
        contrast_to_noise_ratio(maps[:1], torch.zeros(1, 6, 7, dtype=torch.bool))

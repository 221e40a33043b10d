"""Image views: shapes, ranges, each transform's defining property, determinism, errors."""

import dataclasses

import pytest
import torch

from contrastkit.views import (
    VIEW_PRESETS,
    ImageViewConfig,
    ImageViews,
    build_views,
    byol_views,
    simclr_views,
    view_preset_names,
)

OFF = dict(crop=False, flip_p=0.0, jitter_p=0.0, blur_p=0.0)


def _images(channels: int = 1, size: int = 28, batch: int = 16) -> torch.Tensor:
    generator = torch.Generator().manual_seed(123)
    return torch.rand(batch, channels, size, size, generator=generator)


def _views(channels: int = 1, size: int = 28, **fields) -> ImageViews:
    return ImageViews(ImageViewConfig(image_size=size, channels=channels, **{**OFF, **fields}))


@pytest.mark.parametrize("preset", sorted(VIEW_PRESETS))
@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32)])
def test_presets_shape_dtype_range(preset, channels, size):
    x = _images(channels, size)
    view_a, view_b = build_views(preset, image_size=size, channels=channels, noise_p=0.5)
    for view in (view_a, view_b):
        out = view(x)
        assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
        assert out.min() >= 0.0 and out.max() <= 1.0
        assert not torch.equal(out, x)


def test_resizes_to_image_size():
    out = simclr_views(20, 1)(_images(1, 28))
    assert out.shape == (16, 1, 20, 20)


def test_all_off_is_identity():
    x = _images(3, 32)
    assert torch.equal(_views(3, 32)(x), x)


def test_flip_with_probability_one_flips():
    x = _images()
    assert torch.equal(_views(flip_p=1.0)(x), x.flip(-1))
    # Fused into the crop's resampling: crop (1, 1) + flip is also a flip.
    fused = _views(crop=True, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=1.0)(x)
    torch.testing.assert_close(fused, x.flip(-1), atol=1e-5, rtol=0)


def test_full_crop_is_identity():
    x = _images(3, 32)
    out = _views(3, 32, crop=True, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0))(x)
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_small_crop_zooms_in():
    # A crop of 1/4 of the area, upsampled, is smoother than the input:
    # neighbouring pixels differ less.
    x = _images()
    out = _views(crop=True, crop_scale=(0.25, 0.25), crop_ratio=(1.0, 1.0))(x)
    assert (out.diff(dim=-1).abs().mean()) < 0.6 * (x.diff(dim=-1).abs().mean())


@pytest.mark.parametrize("channels", [1, 3])
def test_zero_strength_jitter_is_identity(channels):
    x = _images(channels, 28)
    out = _views(channels, jitter_p=1.0, brightness=0.0, contrast=0.0)(x)
    assert torch.equal(out, x)


def test_brightness_scales_each_image():
    x = _images() * 0.5  # no clamping at factor <= 1.5
    out = _views(jitter_p=1.0, brightness=0.5, contrast=0.0)(x)
    ratio = out / x
    per_image = ratio.flatten(1)
    torch.testing.assert_close(per_image, per_image[:, :1].expand_as(per_image), atol=1e-5, rtol=1e-5)
    assert per_image[:, 0].min() >= 0.5 - 1e-6 and per_image[:, 0].max() <= 1.5 + 1e-6
    assert per_image[:, 0].std() > 0.01  # one factor per image


def test_contrast_keeps_mean_and_scales_spread():
    x = _images() * 0.2 + 0.4  # stays inside [0, 1] after contrast <= 1.5
    out = _views(jitter_p=1.0, brightness=0.0, contrast=0.5)(x)
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-5, rtol=0)
    factor = out.std(dim=(1, 2, 3)) / x.std(dim=(1, 2, 3))
    assert factor.min() >= 0.5 - 1e-4 and factor.max() <= 1.5 + 1e-4 and factor.std() > 0.01


def test_colour_jitter_rgb_and_grayscale():
    x = _images(3, 32)
    out = _views(3, 32, jitter_p=1.0, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.3)(x)
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    # A hue rotation changes colours but not luminance (before clamping).
    assert not torch.allclose(out, x, atol=1e-3)
    inside = ((out > 0) & (out < 1)).all(dim=1, keepdim=True)
    diff = ((out - x) * luma).sum(1, keepdim=True)
    assert diff[inside].abs().max() < 1e-4
    gray = _views(3, 32, grayscale_p=1.0)(x)
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])
    desaturated = _views(3, 32, jitter_p=1.0, brightness=0.0, contrast=0.0, saturation=1.0)(x)
    assert desaturated.shape == x.shape


def test_blur_smooths_and_preserves_mean():
    x = _images()
    out = _views(blur_p=1.0, blur_sigma=(1.0, 2.0))(x)
    assert out.diff(dim=-1).abs().mean() < 0.7 * x.diff(dim=-1).abs().mean()
    torch.testing.assert_close(out.mean(), x.mean(), atol=2e-2, rtol=0)
    # A constant image is unchanged by a normalised kernel.
    flat = torch.full((4, 1, 28, 28), 0.3)
    torch.testing.assert_close(_views(blur_p=1.0)(flat), flat)


def test_probability_applies_per_image():
    x = _images(batch=200)
    torch.manual_seed(0)
    out = _views(flip_p=0.5)(x)
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    kept = (out == x).flatten(1).all(1)
    assert bool((flipped | kept).all())
    assert 60 < int(flipped.sum()) < 140


def test_solarize_and_noise():
    x = _images()
    out = _views(solarize_p=1.0)(x)
    expected = torch.where(x >= 0.5, 1 - x, x)
    assert torch.equal(out, expected)
    noisy = _views(noise_p=1.0, noise_std=0.1)(x)
    assert 0.02 < (noisy - x).abs().mean() < 0.15 and noisy.min() >= 0 and noisy.max() <= 1


@pytest.mark.parametrize("preset", ["simclr", "byol"])
def test_seed_determinism_and_variation(preset):
    x = _images(3, 32)
    view_a, _ = build_views(preset, 32, 3)
    torch.manual_seed(7)
    first = view_a(x)
    second = view_a(x)
    torch.manual_seed(7)
    again = view_a(x)
    torch.manual_seed(8)
    other = view_a(x)
    assert torch.equal(first, again)
    assert not torch.equal(first, second)  # two calls, two views
    assert not torch.equal(first, other)


def test_generator_determinism():
    x = _images()
    outs = []
    for seed in (1, 1, 2):
        view = simclr_views(28, 1, generator=torch.Generator().manual_seed(seed))
        torch.manual_seed(99)  # global RNG must not matter
        outs.append(view(x))
    assert torch.equal(outs[0], outs[1])
    assert not torch.equal(outs[0], outs[2])


def test_byol_views_are_asymmetric():
    view_a, view_b = byol_views(28, 1)
    assert view_a.config.blur_p == 1.0 and view_b.config.blur_p == 0.1
    assert view_a.config.solarize_p == 0.0 and view_b.config.solarize_p == 0.2
    assert byol_views(28, 1, solarize=False)[1].config.solarize_p == 0.0
    rgb_a, _ = byol_views(32, 3)
    assert rgb_a.config.saturation == 0.2 and rgb_a.config.grayscale_p == 0.2


def test_build_views_overrides_and_registry():
    assert view_preset_names() == sorted(VIEW_PRESETS)
    assert {"simclr", "byol", "moco-v2"} <= set(VIEW_PRESETS)
    view_a, view_b = build_views("simclr", 28, 1, crop_scale=[0.5, 1.0], blur_p=0.0)
    assert view_a is not view_b
    assert view_a.config == view_b.config
    assert view_a.config.crop_scale == (0.5, 1.0) and view_a.config.blur_p == 0.0
    assert simclr_views(28, 1).config.saturation == 0.0  # colour-only ops off for grayscale
    assert simclr_views(32, 3).config.saturation == 0.4


def test_errors():
    views = simclr_views(28, 1)
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        views(torch.rand(1, 28, 28))
    with pytest.raises(ValueError, match="floating-point"):
        views(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match="1 channels"):
        views(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="unknown view preset 'simclr2'.*byol"):
        build_views("simclr2", 28, 1)
    with pytest.raises(ValueError, match="views.blur_probability: unknown key"):
        build_views("simclr", 28, 1, blur_probability=0.5)
    with pytest.raises(ValueError, match="channels=1"):
        ImageViewConfig(28, 1, saturation=0.4)
    with pytest.raises(ValueError, match="crop_scale"):
        ImageViewConfig(28, 1, crop_scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="flip_p"):
        ImageViewConfig(28, 1, flip_p=1.5)
    with pytest.raises(ValueError, match="blur_kernel_size"):
        ImageViewConfig(28, 1, blur_kernel_size=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        views.config.flip_p = 0.0  # type: ignore[misc]

"""Gaussian blur against scipy.ndimage, unsharp masking's high-frequency gain, PCL-SR samples."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from contrastkit.views.sharpness import (
    gaussian_blur,
    pcl_sr_samples,
    random_gaussian_blur,
    unsharp_mask,
)


def _high_frequency_energy(x: torch.Tensor) -> float:
    spectrum = torch.fft.fft2(x).abs() ** 2
    h, w = x.shape[-2:]
    fy = torch.fft.fftfreq(h).abs()[:, None]
    fx = torch.fft.fftfreq(w).abs()[None, :]
    return float(spectrum[..., (fy + fx) > 0.25].sum())


@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.5])
def test_gaussian_blur_equals_scipy(sigma):
    torch.manual_seed(0)
    x = torch.rand(2, 3, 20, 17, dtype=torch.float64)
    ours = gaussian_blur(x, sigma).numpy()
    ref = ndimage.gaussian_filter(x.numpy(), sigma=(0, 0, sigma, sigma), mode="mirror")
    np.testing.assert_allclose(ours, ref, atol=1e-10)


def test_per_image_sigma_equals_scipy_per_image():
    torch.manual_seed(1)
    x = torch.rand(3, 1, 24, 24, dtype=torch.float64)
    sigmas = torch.tensor([0.4, 1.3, 2.2])
    ours = gaussian_blur(x, sigmas).numpy()
    for b, s in enumerate(sigmas.tolist()):
        ref = ndimage.gaussian_filter(x[b, 0].numpy(), sigma=s, mode="mirror")
        np.testing.assert_allclose(ours[b, 0], ref, atol=1e-10)


def test_blur_keeps_constants_and_mean_float32():
    x = torch.full((1, 1, 10, 10), 0.7)
    torch.testing.assert_close(gaussian_blur(x, 1.5), x)
    assert gaussian_blur(x, 1.5).dtype == torch.float32


def test_unsharp_mask_increases_high_frequency_energy_and_matches_formula():
    torch.manual_seed(2)
    x = gaussian_blur(torch.rand(2, 1, 28, 28, dtype=torch.float64), 0.7)
    sharp = unsharp_mask(x, amount=0.5, radius=2.5)
    assert _high_frequency_energy(sharp) > 1.2 * _high_frequency_energy(x)
    blurred = torch.from_numpy(ndimage.gaussian_filter(x.numpy(), sigma=(0, 0, 2.5, 2.5), mode="mirror"))
    torch.testing.assert_close(sharp, x + 0.5 * (x - blurred))
    assert float(unsharp_mask(x, 0.0).sub(x).abs().max()) == 0.0
    assert unsharp_mask(x, 5.0, clip=True).max() <= 1.0


def test_random_blur_is_seeded_and_blurs():
    x = torch.rand(4, 1, 16, 16)
    a = random_gaussian_blur(x, (0.5, 2.0), generator=torch.Generator().manual_seed(0))
    b = random_gaussian_blur(x, (0.5, 2.0), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b)
    assert _high_frequency_energy(a) < 0.8 * _high_frequency_energy(x)


def test_pcl_sr_samples():
    x = torch.rand(3, 1, 12, 12)
    positives, negatives = pcl_sr_samples(x, generator=torch.Generator().manual_seed(0))
    assert len(positives) == 2 and len(negatives) == 1
    assert positives[0] is x
    torch.testing.assert_close(positives[1], unsharp_mask(x, 0.5, 2.5))
    assert negatives[0].shape == x.shape


def test_bad_inputs():
    with pytest.raises(ValueError, match="sigma"):
        gaussian_blur(torch.rand(2, 1, 8, 8), torch.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="sigma"):
        gaussian_blur(torch.rand(2, 1, 8, 8), -1.0)
    with pytest.raises(ValueError, match="images"):
        gaussian_blur(torch.rand(8, 8), 1.0)
    with pytest.raises(ValueError, match="sigma_range"):
        random_gaussian_blur(torch.rand(2, 1, 8, 8), (2.0, 1.0))

"""Sharpness views: Gaussian blur, unsharp masking, and PCL-SR's positives and negatives.

PCL-SR (Wu, Jiang, Liu and Ma, "A Practical Contrastive Learning Framework for Single-Image
Super-Resolution", IEEE TNNLS 2023; METHODS.md #14, verdict FULL at toy scale) contrasts a
super-resolved image with *positives* that carry at least the high frequencies of the
ground truth (the HR image and an unsharp-masked HR image, amount 0.5, radius 2.5) and
*hard negatives* that lack them (Gaussian-blurred HR images, sigma drawn from
``[0.1, 2.0]`` per image as the official ``gpu_blur`` option).

The blur is separable, batched (one grouped convolution per axis for the whole batch, a
per-image sigma allowed) and truncated like ``scipy.ndimage.gaussian_filter`` (radius
``int(truncate * sigma + 0.5)``), with mirror padding (``mode="mirror"`` in scipy,
``"reflect"`` in torch): for a scalar sigma it equals scipy's result to float precision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["gaussian_blur", "unsharp_mask", "random_gaussian_blur", "pcl_sr_samples"]


def _check_images(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected float images [B, C, H, W], got {shape}")


def _sigmas(sigma: float | torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    """``sigma`` as a float64 ``[B]`` tensor of positive values."""
    values = torch.as_tensor(sigma, dtype=torch.float64, device=device).flatten()
    if values.numel() == 1:
        values = values.expand(batch)
    if values.numel() != batch:
        raise ValueError(f"sigma: expected a float or a tensor of {batch} values (one per image), got {values.numel()}")
    if not bool(torch.isfinite(values).all()) or bool((values <= 0).any()):
        raise ValueError(f"sigma: expected finite values > 0, got {values.tolist()}")
    return values


def gaussian_blur(x: torch.Tensor, sigma: float | torch.Tensor, *, truncate: float = 4.0) -> torch.Tensor:
    r"""Separable Gaussian blur of images, one sigma for all or one per image.

    ``y = G_sigma * x`` with the 1-D kernel ``g(k) ∝ exp(-k^2 / (2 sigma^2))`` on
    ``|k| <= r = int(truncate * sigma + 0.5)`` (normalised to sum 1) applied along rows then
    columns, mirror-padded at the borders (``scipy.ndimage.gaussian_filter(mode="mirror")``).
    The radius is capped at ``min(H, W) - 1`` (mirror padding needs it); only then does the
    result differ from scipy's.

    Args:
        x: ``[B, C, H, W]`` float images.
        sigma: the standard deviation in pixels, a float or a ``[B]`` tensor (one per image).
        truncate: the kernel radius in standard deviations (scipy's default 4).

    Returns:
        The blurred images, same shape and dtype as ``x``.

    Example:
        >>> y = gaussian_blur(torch.rand(2, 1, 16, 16), 1.5)
        >>> y.shape
        torch.Size([2, 1, 16, 16])
    """
    _check_images("x", x)
    if not truncate > 0:
        raise ValueError(f"truncate: expected a value > 0, got {truncate}")
    batch, channels, height, width = x.shape
    sigmas = _sigmas(sigma, batch, x.device)
    radii = (truncate * sigmas + 0.5).floor().long().clamp(max=min(height, width) - 1)
    radius = int(radii.max())
    if radius == 0:
        return x.clone()
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=torch.float64)
    kernels = torch.exp(-0.5 * (offsets[None, :] / sigmas[:, None]) ** 2)
    # Each image's kernel stops at its own radius, as scipy's would.
    kernels = kernels * (offsets.abs()[None, :] <= radii[:, None])
    kernels = (kernels / kernels.sum(dim=1, keepdim=True)).to(x.dtype)
    weight = kernels.repeat_interleave(channels, dim=0)  # [B*C, K]: every channel of image b uses kernel b
    groups = batch * channels
    flat = x.reshape(1, groups, height, width)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), weight[:, None, None, :], groups=groups)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), weight[:, None, :, None], groups=groups)
    return flat.reshape(batch, channels, height, width)


def unsharp_mask(x: torch.Tensor, amount: float = 0.5, radius: float = 2.5, *, clip: bool = False) -> torch.Tensor:
    r"""Unsharp masking: ``x + amount * (x - G_radius * x)``.

    Adds back ``amount`` times the detail a Gaussian blur of standard deviation ``radius``
    removes (skimage's ``unsharp_mask`` convention), which boosts the high frequencies.

    Args:
        x: ``[B, C, H, W]`` float images.
        amount: the gain of the detail (PCL-SR 0.5).
        radius: the blur's standard deviation in pixels (PCL-SR 2.5).
        clip: clamp the result to ``[0, 1]``.

    Returns:
        The sharpened images, same shape as ``x``.

    Example:
        >>> unsharp_mask(torch.rand(2, 1, 16, 16)).shape
        torch.Size([2, 1, 16, 16])
    """
    if not amount >= 0:
        raise ValueError(f"amount: expected a value >= 0, got {amount}")
    sharpened = x + amount * (x - gaussian_blur(x, radius))
    return sharpened.clamp(0.0, 1.0) if clip else sharpened


def random_gaussian_blur(
    x: torch.Tensor, sigma_range: tuple[float, float] = (0.1, 2.0), *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Blur each image with its own sigma drawn uniformly from ``sigma_range``.

    Args:
        x: ``[B, C, H, W]`` float images.
        sigma_range: ``(low, high)``, ``0 < low <= high`` (PCL-SR's ``gpu_blur``: ``(0.1, 2.0)``).
        generator: optional random generator (default: torch's global one).

    Returns:
        The blurred images.
    """
    _check_images("x", x)
    low, high = (float(v) for v in sigma_range)
    if not 0 < low <= high:
        raise ValueError(f"sigma_range: expected (low, high) with 0 < low <= high, got {sigma_range}")
    draws = torch.rand(x.shape[0], generator=generator, dtype=torch.float64)
    return gaussian_blur(x, (low + (high - low) * draws).to(x.device))


def pcl_sr_samples(
    hr: torch.Tensor,
    *,
    amount: float = 0.5,
    radius: float = 2.5,
    sigma_range: tuple[float, float] = (0.1, 2.0),
    generator: torch.Generator | None = None,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """PCL-SR's positives ``[hr, unsharp_mask(hr)]`` and negatives ``[random_gaussian_blur(hr)]``.

    Args:
        hr: ``[B, C, H, W]`` ground-truth high-resolution images.
        amount: unsharp-mask gain (paper 0.5).
        radius: unsharp-mask blur sigma (paper 2.5).
        sigma_range: range of the negatives' blur sigma (paper ``(0.1, 2.0)``).
        generator: optional random generator for the blur sigmas.

    Returns:
        ``(positives, negatives)``, lists of ``[B, C, H, W]`` tensors.
    """
    _check_images("hr", hr)
    positives = [hr, unsharp_mask(hr, amount, radius)]
    negatives = [random_gaussian_blur(hr, sigma_range, generator=generator)]
    return positives, negatives

"""Views of image–caption batches: a light image augmentation, captions as they are.

Captions are short names here, so text is not augmented (each step already draws one of an
item's captions). Image presets:

* ``none``: the images as they are;
* ``shift``: pad by ``pad`` pixels with white and crop back at a random offset, per image
  (emoji are centred glyphs on white: a small translation keeps the class, a flip may not).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["IMAGE_TEXT_VIEW_PRESETS", "RandomShift", "build_image_text_views"]


class RandomShift(nn.Module):
    """Random translation by up to ``pad`` pixels, the border filled with ``fill``."""

    def __init__(self, pad: int = 2, fill: float = 1.0) -> None:
        super().__init__()
        if int(pad) < 0:
            raise ValueError(f"views.pad: expected a non-negative integer, got {pad}")
        self.pad, self.fill = int(pad), float(fill)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.pad == 0:
            return images
        batch, _, height, width = images.shape
        padded = F.pad(images, (self.pad,) * 4, value=self.fill)
        dy = torch.randint(0, 2 * self.pad + 1, (batch,), device=images.device)
        dx = torch.randint(0, 2 * self.pad + 1, (batch,), device=images.device)
        rows = (dy[:, None] + torch.arange(height, device=images.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(width, device=images.device))[:, None, None, :]
        index = torch.arange(batch, device=images.device)[:, None, None, None]
        channels = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
        return padded[index, channels, rows, cols]


class Captions(nn.Module):
    """Captions unchanged (a module so that a recipe can swap in a text view later)."""

    def forward(self, texts: list[str]) -> list[str]:
        return texts


IMAGE_TEXT_VIEW_PRESETS = ("none", "shift")


def build_image_text_views(preset: str, **options: object) -> tuple[nn.Module, nn.Module]:
    """``(image view, caption view)`` of a preset; unknown presets or options are one clear error."""
    if preset == "none":
        if options:
            raise ValueError(f"views: preset 'none' takes no options, got {', '.join(sorted(options))}")
        return nn.Identity(), Captions()
    if preset == "shift":
        unknown = sorted(set(options) - {"pad"})
        if unknown:
            raise ValueError(f"views: preset 'shift' takes only 'pad', got {', '.join(unknown)}")
        return RandomShift(**options), Captions()  # type: ignore[arg-type]
    raise ValueError(f"views: unknown image-text preset {preset!r}; expected one of {', '.join(IMAGE_TEXT_VIEW_PRESETS)}")

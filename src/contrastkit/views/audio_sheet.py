"""Views of paired audio and sheet-music snippets (``audio-sheet`` data): ``(audio view, sheet view)``.

View presets:

* ``none``: both as they are;
* ``shift`` (default of the recipe): the sheet translated by up to ``pad`` pixels (ink 0 fills
  the border: paper), the audio shifted in *time only* by up to ``frames`` frames (the border
  repeats the edge frame). A shift in frequency would transpose the audio away from the
  sheet's pitch, so none is made. The paper's augmentations (time shift, tempo, synths; system
  translation and scaling of the sheet) are richer; these two are the ones that need no
  re-synthesis.

"""

from __future__ import annotations

import torch
from torch import nn

from contrastkit.views.image_text import RandomShift

__all__ = ["AUDIO_SHEET_VIEW_PRESETS", "TimeShift", "build_audio_sheet_views"]

AUDIO_SHEET_VIEW_PRESETS = ("none", "shift")


class TimeShift(nn.Module):
    """Shift spectrograms ``[B, F, T]`` in time by a random ``-frames..frames`` each, edge frames repeated."""

    def __init__(self, frames: int = 4) -> None:
        super().__init__()
        if int(frames) < 0:
            raise ValueError(f"views.frames: expected a non-negative integer, got {frames}")
        self.frames = int(frames)

    def forward(self, spectrograms: torch.Tensor) -> torch.Tensor:
        if self.frames == 0:
            return spectrograms
        batch, _, length = spectrograms.shape
        offsets = torch.randint(-self.frames, self.frames + 1, (batch,), device=spectrograms.device)
        columns = (torch.arange(length, device=spectrograms.device)[None, :] - offsets[:, None]).clamp(0, length - 1)
        return spectrograms.gather(2, columns[:, None, :].expand_as(spectrograms))


def build_audio_sheet_views(preset: str, **options: object) -> tuple[nn.Module, nn.Module]:
    """``(audio view, sheet view)`` of a preset; unknown presets or options are one clear error."""
    if preset not in AUDIO_SHEET_VIEW_PRESETS:
        raise ValueError(f"views: unknown audio-sheet preset {preset!r}; expected one of "
                         f"{', '.join(AUDIO_SHEET_VIEW_PRESETS)}")
    allowed = {"pad", "frames"} if preset == "shift" else set()
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"views: preset {preset!r} takes {', '.join(sorted(allowed)) or 'no options'}, "
                         f"got {', '.join(unknown)}")
    if preset == "none":
        return nn.Identity(), nn.Identity()
    return TimeShift(int(options.get("frames", 4))), RandomShift(int(options.get("pad", 4)), fill=0.0)

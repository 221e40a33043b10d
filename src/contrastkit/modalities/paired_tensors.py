"""Two paired tensors per row (audio log-mel <-> sheet image): two towers, cross-modal retrieval evaluation.

An ``audio-sheet`` data set (:class:`~contrastkit.data.music_sheets.TensorPairDataset`; e.g.
``music-sheets``) gives batches ``{"audio": [B, n_mels, frames], "sheet": [B, 1, H, W]}`` with
the tune as label. The encoder learns both shapes from the data (``encoder_arguments``:
``audio_shape``, ``sheet_shape``), the views are ``(audio view, sheet view)``, and the
evaluation is snippet retrieval both ways plus piece identification
(:class:`~contrastkit.eval.protocols.paired_tensors.PairedTensorsProtocol`).

Views: :mod:`contrastkit.views.audio_sheet` (``none``, ``shift``: the audio shifted in time only).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from contrastkit.data.registry import DatasetSplits
from contrastkit.eval.protocols.paired_tensors import PairedTensorsProtocol
from contrastkit.modalities.base import Modality
from contrastkit.views.audio_sheet import AUDIO_SHEET_VIEW_PRESETS, build_audio_sheet_views

__all__ = ["AudioSheetModality"]


class AudioSheetModality(Modality):
    """Audio snippets paired with sheet-music images: two towers, retrieval both ways and piece identification."""

    name = "audio-sheet"
    description = ("audio snippets paired with sheet-music images: two towers, retrieval both ways + "
                   "piece identification")
    protocol = PairedTensorsProtocol

    def encoder_arguments(self, splits: DatasetSplits) -> dict[str, Any]:
        train = splits.train
        if not callable(getattr(train, "shape", None)) or set(getattr(train, "names", ())) != {"audio", "sheet"}:
            raise ValueError(f"dataset {splits.name!r}: audio-sheet data need a TensorPairDataset of 'audio' and "
                             f"'sheet' tensors")
        return {"audio_shape": train.shape("audio"), "sheet_shape": train.shape("sheet")}

    def build_views(self, options: dict[str, Any], splits: DatasetSplits, encoder: nn.Module) -> tuple[nn.Module, ...]:
        options = dict(options)
        return build_audio_sheet_views(options.pop("preset"), **options)

    def view_presets(self) -> list[str]:
        return list(AUDIO_SHEET_VIEW_PRESETS)

"""Tuples of several modalities (Symile): one value per field, a tower each, zero-shot evaluation.

A ``tuples`` data set (:class:`~contrastkit.data.tuples.TupleDataset`; e.g. ``emoji-speech``)
gives batches ``{field: values, ..., "missing": {field: bool [B]}}``. The encoder learns
the field names and kinds from the data (``encoder_arguments``: ``fields``), the views are
one per field, and the evaluation is Symile's zero-shot prediction of one field from the
others (:class:`~contrastkit.eval.protocols.tuples.TupleProtocol`).

View presets: ``none`` (every field as it is) and ``shift`` (image fields translated by up
to ``pad`` pixels on white, as the image-text ``shift``; audio and text unchanged).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from contrastkit.data.registry import DatasetSplits
from contrastkit.eval.protocols.tuples import TupleProtocol
from contrastkit.modalities.base import Modality
from contrastkit.views.image_text import Captions, RandomShift

TUPLE_VIEW_PRESETS = ("none", "shift")


class TupleModality(Modality):
    """Tuples of several modalities (image, audio, text, ...): a tower per field, Symile's zero-shot evaluation."""

    name = "tuples"
    description = "tuples of several modalities (image, audio, text, ...): a tower per field, Symile zero-shot evaluation"
    protocol = TupleProtocol

    def encoder_arguments(self, splits: DatasetSplits) -> dict[str, Any]:
        if not hasattr(splits.train, "field_specs"):
            raise ValueError(f"dataset {splits.name!r}: tuples data need a TupleDataset train split")
        return {"fields": splits.train.field_specs}

    def build_views(self, options: dict[str, Any], splits: DatasetSplits, encoder: nn.Module) -> tuple[nn.Module, ...]:
        options = dict(options)
        preset = options.pop("preset")
        if preset not in TUPLE_VIEW_PRESETS:
            raise ValueError(f"views: unknown tuples preset {preset!r}; expected one of {', '.join(TUPLE_VIEW_PRESETS)}")
        allowed = {"pad"} if preset == "shift" else set()
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise ValueError(f"views: preset {preset!r} takes {', '.join(sorted(allowed)) or 'no options'}, "
                             f"got {', '.join(unknown)}")
        views: list[nn.Module] = []
        for spec in splits.train.field_specs.values():
            if spec["kind"] == "text":
                views.append(Captions())
            elif spec["kind"] == "image" and preset == "shift":
                views.append(RandomShift(**options))
            else:
                views.append(nn.Identity())
        return tuple(views)

    def view_presets(self) -> list[str]:
        return list(TUPLE_VIEW_PRESETS)

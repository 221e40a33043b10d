"""Modalities: one object per kind of data, the only place the top floor learns about one.

:class:`~contrastkit.modalities.base.Modality` is the interface; the built-in modalities
(image, series, text, graph, graphs, interactions, image-text) are registered here, and
:func:`~contrastkit.modalities.base.register_modality` adds a user's own.
"""

from __future__ import annotations

from contrastkit.modalities.base import (
    MODALITIES,
    Modality,
    check_method,
    methods_for,
    modality_of,
    register_modality,
)
from contrastkit.modalities.channel_groups import ChannelGroupsModality
from contrastkit.modalities.graph import GraphSetModality, NodeGraphModality
from contrastkit.modalities.image import ImageModality
from contrastkit.modalities.image_text import ImageTextModality
from contrastkit.modalities.interactions import InteractionsModality
from contrastkit.modalities.paired_tensors import AudioSheetModality
from contrastkit.modalities.series import SeriesModality
from contrastkit.modalities.text import TextModality
from contrastkit.modalities.tuples import TupleModality

for _modality in (ImageModality(), SeriesModality(), TextModality(), NodeGraphModality(), GraphSetModality(),
                  InteractionsModality(), ImageTextModality(), ChannelGroupsModality(), TupleModality(),
                  AudioSheetModality()):
    register_modality(_modality)

__all__ = ["MODALITIES", "Modality", "check_method", "methods_for", "modality_of", "register_modality"]

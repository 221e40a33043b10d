"""The one batch type that flows from ``data/`` through ``train/`` into ``methods/``."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch


def _move(value: Any, device: torch.device | str) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, dict):
        return {key: _move(item, device) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_move(item, device) for item in value)
    if hasattr(value, "to"):  # e.g. tokenizer output, PyG Data
        return value.to(device)
    return value


@dataclass
class Batch:
    """A mini-batch.

    Attributes:
        inputs: the raw model input (images ``[B, C, H, W]``, series, token dicts, graphs, ...).
        labels: optional integer class labels ``[B]`` (used by supervised methods and evaluation only).
        index: optional dataset row indices ``[B]`` (memory banks, debugging).
    """

    inputs: Any
    labels: torch.Tensor | None = None
    index: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> "Batch":
        """Return a copy with every tensor moved to ``device``."""
        return replace(
            self,
            inputs=_move(self.inputs, device),
            labels=None if self.labels is None else self.labels.to(device),
            index=None if self.index is None else self.index.to(device),
        )

    def __len__(self) -> int:
        if isinstance(self.inputs, torch.Tensor):
            return int(self.inputs.shape[0])
        if isinstance(self.inputs, dict) and self.inputs:  # text: {"query": [...], "positive": [...]}
            return len(next(iter(self.inputs.values())))
        if self.labels is not None:
            return int(self.labels.shape[0])
        raise TypeError("Batch length is defined for tensor or dict inputs, or labelled batches only")

"""Towers for tuples of modalities (Symile): one tower and one projection head per field.

:class:`TupleTowers` is the encoder of the tuple methods (``symile``, ``pairwise-clip``):
``encode(field, inputs, missing)`` maps one field's batch to ``[B, embed_dim]``. The towers
are chosen per field kind (``build_tuple_towers``): images a
:class:`~contrastkit.nn.resnet.SmallResNet`, audio an :class:`~contrastkit.nn.audio.AudioCNN`
over waveforms (its log-mel front end) or cached spectrograms, text a :class:`ByteTextEncoder` (or the locked
all-MiniLM-L6-v2 of :mod:`contrastkit.nn.towers`), vectors an MLP.

Why a byte-level text tower by default: the emoji-speech texts are five names in five
languages (Latin and Cyrillic scripts), and the task needs a text representation that keeps
*which class in which language* for every word. Locked all-MiniLM-L6-v2 tells the languages
of single names apart (a linear probe on 200 emoji names in en/de/es/fr/ru: 0.91 on unseen
names) but does not relate a class's names across languages (nearest English name of a
Russian name: 0.5 % correct, of a German one 25 %), and it pools the five words into one
English-centred vector. A small trainable byte CNN with mean pooling is a bag of
byte n-grams, i.e. a bag of (word, script) features, which is what a multilinear score
``sum_words MIP(r_audio, r_image, g(word))`` needs; it learns the names of the task's
classes, as the Symile-M3 text encoder (XLM-RoBERTa with its embeddings and first layer
fine-tuned, per-token linear head, mean over tokens) does.

Missing modalities, as the official code (``experiments/models/symile_m3_model.py``;
``examples/binary_xor_missing.py``): the data show a missing value as a placeholder (the mean
image or waveform, ``"[MISSING]"`` for text; :mod:`contrastkit.data.tuples`) and, with
``missing_embedding=True``, the tower's features are concatenated with a learned
``nn.Embedding(2, features)`` of the missingness indicator before the head (so the head is
``Linear(2 * features, embed_dim)``). Deviations: the official text encoder has no indicator
embedding (only its ``[MISSING]`` token); here every field gets one, uniformly. The official
image/audio placeholder is the mean of precomputed *features*; here towers train end to end,
so it is the mean *input*. The official heads end in a LayerNorm; here the methods
L2-normalise instead (the official pip package's examples do).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ByteTextEncoder", "TupleTowers", "build_tuple_towers"]


class ByteTextEncoder(nn.Module):
    """A trainable text tower over UTF-8 bytes: embedding, 1-d convolutions, masked mean pooling.

    Args:
        width: channels of the byte embedding and the convolutions.
        output_dim: the pooled feature size.
        kernel_size: convolution width in bytes (two layers see ``2 * (kernel_size - 1) + 1`` bytes).
        layers: convolution layers.
        max_length: texts are cut to this many bytes.

    Example:
        >>> ByteTextEncoder(width=16, output_dim=8)(["chat", "кошка"]).shape
        torch.Size([2, 8])
    """

    def __init__(self, width: int = 128, output_dim: int = 128, kernel_size: int = 5, layers: int = 2,
                 max_length: int = 256) -> None:
        super().__init__()
        if int(layers) < 1 or int(kernel_size) < 1 or int(kernel_size) % 2 == 0:
            raise ValueError(f"ByteTextEncoder: expected layers >= 1 and an odd kernel_size, got {layers}, {kernel_size}")
        self.max_length = int(max_length)
        self.embedding = nn.Embedding(257, int(width), padding_idx=0)  # byte b is token b + 1; 0 pads
        self.convolutions = nn.ModuleList(
            nn.Conv1d(int(width), int(width), int(kernel_size), padding=int(kernel_size) // 2) for _ in range(int(layers)))
        self.out = nn.Conv1d(int(width), int(output_dim), 1)
        self.output_dim = int(output_dim)

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(tokens [B, L], mask [B, L])``: bytes + 1, zero-padded to the longest text (at least 1)."""
        if isinstance(texts, str) or not all(isinstance(text, str) for text in texts):
            raise ValueError("ByteTextEncoder: expected a list of strings")
        encoded = [list(text.encode("utf-8")[: self.max_length]) for text in texts]
        length = max([1, *map(len, encoded)])
        tokens = torch.zeros(len(encoded), length, dtype=torch.long)
        for row, data in enumerate(encoded):
            tokens[row, : len(data)] = torch.tensor(data, dtype=torch.long) + 1
        return tokens, tokens > 0

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        device = self.embedding.weight.device
        tokens, mask = (part.to(device) for part in self.tokenize(list(texts)))
        weights = mask[:, None].to(self.embedding.weight.dtype)            # [B, 1, L]
        hidden = self.embedding(tokens).transpose(1, 2)                       # [B, W, L], zero at padding
        for convolution in self.convolutions:
            # zeroed after every layer, so padding never reaches a real byte (a text's features
            # do not depend on how long the other texts of its batch are)
            hidden = F.gelu(convolution(hidden)) * weights
        hidden = self.out(hidden)
        return (hidden * weights).sum(-1) / weights.sum(-1).clamp_min(1.0)   # mean over real bytes


class TupleTowers(nn.Module):
    """One tower and one linear head per field of a tuple, into a shared ``embed_dim`` space.

    Args:
        towers: ``{field: tower}`` in field order; each tower has ``output_dim`` and maps the
            field's batch (a tensor, or a list of strings) to ``[B, output_dim]``.
        embed_dim: the shared embedding size.
        missing_embedding: learn a missingness-indicator embedding per field, concatenated to
            the tower's features before the head (the official Symile code's option).
        head_norm: ``"none"`` (a linear head) or ``"layer_norm"`` (linear then LayerNorm, the
            official Symile-M3 heads, whose outputs the loss takes without L2 normalisation:
            pair it with ``method.normalize=false``).
    """

    def __init__(self, towers: Mapping[str, nn.Module], *, embed_dim: int = 128,
                 missing_embedding: bool = False, head_norm: str = "none") -> None:
        super().__init__()
        if len(towers) < 2:
            raise ValueError(f"TupleTowers: expected towers for at least 2 fields, got {list(towers)}")
        if int(embed_dim) < 1:
            raise ValueError(f"encoder.embed_dim: expected a positive integer, got {embed_dim}")
        self.fields = list(towers)
        self.towers = nn.ModuleDict(dict(towers))
        self.missing_embedding = bool(missing_embedding)
        widths = {field: int(tower.output_dim) for field, tower in towers.items()}
        if head_norm not in ("none", "layer_norm"):
            raise ValueError(f"encoder.head_norm: expected 'none' or 'layer_norm', got {head_norm!r}")
        self.head_norm = head_norm

        def head(width: int) -> nn.Module:
            linear = nn.Linear(width * (2 if self.missing_embedding else 1), int(embed_dim))
            return linear if head_norm == "none" else nn.Sequential(linear, nn.LayerNorm(int(embed_dim)))

        self.heads = nn.ModuleDict({field: head(width) for field, width in widths.items()})
        if self.missing_embedding:
            self.missing_embeddings = nn.ModuleDict({field: nn.Embedding(2, width) for field, width in widths.items()})
        self.output_dim = int(embed_dim)

    def encode(self, field: str, inputs: Any, missing: torch.Tensor | None = None) -> torch.Tensor:
        """One field's batch -> ``[B, embed_dim]`` (not normalised); ``missing``: bool ``[B]``, ``True`` = missing."""
        if field not in self.towers:
            raise ValueError(f"TupleTowers: unknown field {field!r}; fields: {', '.join(self.fields)}")
        tower = self.towers[field]
        if getattr(tower, "locked", False):
            with torch.no_grad():
                features = tower(inputs)
        else:
            features = tower(inputs)
        head = self.heads[field]
        weight = next(head.parameters())
        features = features.to(weight.device, weight.dtype)
        if self.missing_embedding:
            indicator = torch.zeros(features.shape[0], dtype=torch.long, device=features.device) if missing is None \
                else missing.to(features.device).long()
            features = torch.cat([features, self.missing_embeddings[field](indicator)], dim=1)
        return head(features)

    def forward(self, inputs: Mapping[str, Any]) -> torch.Tensor:
        """Every field's embedding, concatenated: ``[B, M * embed_dim]``."""
        missing = inputs.get("missing") or {}
        return torch.cat([self.encode(field, inputs[field], missing.get(field)) for field in self.fields], dim=1)


_TOWER_DEFAULTS = {"image": "small-resnet", "audio": "audio-cnn", "text": "byte-text", "vector": "mlp"}
TEXT_TOWERS = ("byte-text", "minilm-locked")


def _build_tower(kind: str, shape: Sequence[int], options: Mapping[str, Any]) -> nn.Module:
    from contrastkit.nn.registry import build_encoder

    options = dict(options)
    name = options.pop("name", _TOWER_DEFAULTS[kind])
    if kind == "text":
        if name == "byte-text":
            return ByteTextEncoder(**options)
        if name == "minilm-locked":
            from contrastkit.nn.text import TextEncoder
            from contrastkit.nn.towers import LockedTextTower

            return LockedTextTower(TextEncoder(**options))
        raise ValueError(f"encoder.towers: a text field's tower is one of {', '.join(TEXT_TOWERS)}, got {name!r}")
    if kind == "image":
        return build_encoder(name, in_channels=int(shape[0]), image_size=int(shape[-1]), **options)
    if kind == "audio":
        # waveforms [T]: the tower's own log-mel front end (n_mels an option); spectrograms [n_mels, frames]
        return build_encoder(name, **options) if len(shape) == 1 else build_encoder(name, n_mels=int(shape[0]), **options)
    return build_encoder(name, input_dim=int(shape[0]), **options)


def build_tuple_towers(fields: Mapping[str, Mapping[str, Any]], *, towers: Mapping[str, Any] | None = None,
                       embed_dim: int = 128, missing_embedding: bool = False, head_norm: str = "none") -> TupleTowers:
    """The ``tuple-towers`` encoder: a tower per field, by its kind, and a head each.

    Args:
        fields: ``{field: {"kind": ..., "shape": [...]}}`` (from the data: ``TupleDataset.field_specs``).
        towers: per field, a tower name or ``{name: ..., **options}`` (default by kind: image
            ``small-resnet``, audio ``audio-cnn``, text ``byte-text``, vector ``mlp``).
        embed_dim: the shared embedding size.
        missing_embedding: learn a missingness-indicator embedding per field.
        head_norm: ``"none"`` or ``"layer_norm"`` (see :class:`TupleTowers`).
    """
    towers = dict(towers or {})
    unknown = sorted(set(towers) - set(fields))
    if unknown:
        raise ValueError(f"encoder.towers: unknown field(s) {unknown}; the data's fields are {', '.join(fields)}")
    built = {}
    for field, spec in fields.items():
        choice = towers.get(field, {})
        options = {"name": choice} if isinstance(choice, str) else dict(choice)
        built[field] = _build_tower(spec["kind"], spec.get("shape", ()), options)
    return TupleTowers(built, embed_dim=embed_dim, missing_embedding=missing_embedding, head_norm=head_norm)

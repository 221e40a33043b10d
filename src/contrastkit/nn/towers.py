"""Two-tower image–text encoders: an image tower, a text tower, a projection head each.

:class:`ImageTextTowers` is the encoder of the image–text methods (CLIP, SigLIP, LiT,
multi-positive CLIP). Either tower can be *locked* (LiT, Zhai et al. 2022): its
parameters get ``requires_grad=False`` and it stays in eval mode whatever ``.train()``
says, so batch-norm statistics and dropout never move; only its head trains.

A locked text tower's features depend only on the string, so :class:`LockedTextTower`
computes each distinct caption once and keeps it (the captions of a data set are a few
thousand strings; zero-shot prompts are added as they are asked for). That cache is what
makes a frozen transformer affordable in a 10-minute CPU run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["ImageTextTowers", "LockedTextTower", "lock"]


def lock(module: nn.Module) -> nn.Module:
    """Freeze ``module`` in place: no parameter requires grad, and ``.train()`` keeps it in eval mode."""
    module.requires_grad_(False)
    module.eval()
    module.train = _stay_in_eval.__get__(module)  # type: ignore[method-assign]
    module.locked = True  # type: ignore[assignment]
    return module


def _stay_in_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    return nn.Module.train(self, False)


class LockedTextTower(nn.Module):
    """A frozen text encoder whose caption features are computed once and cached.

    Args:
        encoder: a :class:`~contrastkit.nn.text.TextEncoder` (or anything with ``encode``
            and ``output_dim``); it is locked here.
        batch_size: how many new captions are encoded at once.
    """

    def __init__(self, encoder: nn.Module, batch_size: int = 128) -> None:
        super().__init__()
        self.encoder = lock(encoder)
        self.output_dim = int(encoder.output_dim)
        self.batch_size = int(batch_size)
        self._cache: dict[str, torch.Tensor] = {}

    def train(self, mode: bool = True) -> "LockedTextTower":
        super().train(mode)
        self.encoder.eval()
        return self

    @torch.no_grad()
    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        missing = list(dict.fromkeys(text for text in texts if text not in self._cache))
        if missing:
            features = self.encoder.encode(missing, batch_size=self.batch_size, normalize=False)
            self._cache.update(zip(missing, features))
        return torch.stack([self._cache[text] for text in texts])


class ImageTextTowers(nn.Module):
    """An image tower and a text tower, each followed by a linear projection to ``embed_dim``.

    Args:
        image_tower: any image encoder with ``output_dim`` (``small-resnet``, ``efficientnet-lite0``).
        text_tower: a text encoder with ``output_dim`` taking a list of strings
            (:class:`LockedTextTower`, or a trainable :class:`~contrastkit.nn.text.TextEncoder`
            through ``embed_texts``).
        embed_dim: the shared embedding size.
        lock_image: lock the image tower (its head still trains).
        lock_text: lock the text tower (it is locked already when it is a :class:`LockedTextTower`).
    """

    def __init__(self, image_tower: nn.Module, text_tower: nn.Module, *, embed_dim: int = 128,
                 lock_image: bool = False, lock_text: bool = False) -> None:
        super().__init__()
        if int(embed_dim) < 1:
            raise ValueError(f"encoder.embed_dim: expected a positive integer, got {embed_dim}")
        self.image_tower, self.text_tower = image_tower, text_tower
        if lock_image:
            lock(self.image_tower)
        if lock_text and not isinstance(text_tower, LockedTextTower):
            lock(self.text_tower)
        self.image_head = nn.Linear(int(image_tower.output_dim), int(embed_dim))
        self.text_head = nn.Linear(int(text_tower.output_dim), int(embed_dim))
        self.output_dim = int(embed_dim)

    @property
    def locked(self) -> dict[str, bool]:
        """Which towers are locked."""
        return {"image": bool(getattr(self.image_tower, "locked", False)),
                "text": isinstance(self.text_tower, LockedTextTower) or bool(getattr(self.text_tower, "locked", False))}

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` -> ``[B, embed_dim]`` (not normalised)."""
        if self.locked["image"]:
            with torch.no_grad():
                features = self.image_tower(images)
        else:
            features = self.image_tower(images)
        return self.image_head(features)

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """A list of strings -> ``[B, embed_dim]`` (not normalised)."""
        if isinstance(self.text_tower, LockedTextTower):
            features = self.text_tower(list(texts))
        elif hasattr(self.text_tower, "embed_texts"):
            features = self.text_tower.embed_texts(list(texts))
        else:
            features = self.text_tower(list(texts))
        return self.text_head(features.to(self.text_head.weight.device, self.text_head.weight.dtype))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The image embedding (what ``Method.embed`` of an image batch gives)."""
        return self.encode_images(images)


def build_image_text_towers(in_channels: int = 3, image_size: int = 32, *, image_tower: str = "small-resnet",
                            image_options: dict[str, Any] | None = None, text_tower: str = "minilm-locked",
                            text_options: dict[str, Any] | None = None, embed_dim: int = 128,
                            lock_image: bool = False) -> ImageTextTowers:
    """The ``image-text-towers`` encoder: an image encoder from the registry, a text tower by name.

    ``text_tower``: ``minilm-locked`` (all-MiniLM-L6-v2, frozen, cached: LiT's locked tower
    on the text side) or ``minilm`` (fine-tuned).
    """
    from contrastkit.nn.registry import build_encoder
    from contrastkit.nn.text import TextEncoder

    if text_tower not in ("minilm-locked", "minilm"):
        raise ValueError(f"encoder.text_tower: expected 'minilm-locked' or 'minilm', got {text_tower!r}")
    image = build_encoder(image_tower, in_channels=in_channels, image_size=image_size, **(image_options or {}))
    text_encoder = TextEncoder(**(text_options or {}))
    text = LockedTextTower(text_encoder) if text_tower == "minilm-locked" else text_encoder
    return ImageTextTowers(image, text, embed_dim=embed_dim, lock_image=lock_image)

"""Token-level image–text towers: patch tokens of an image tower and word tokens of a text tower.

Methods that look inside a sample, not only at its pooled vector (FDT, Chen et al. 2023:
every token queries a shared codebook), need the towers' *tokens*:

* image tokens: the last feature map of an image tower (``SmallResNet.feature_maps()[-1]``,
  ``EfficientNetLite0Tower.feature_map``), ``[B, C, H, W]`` read as ``[B, H*W, C]``;
* text tokens: the transformer's last hidden states ``[B, L, D]`` with the attention mask
  (``True`` for real tokens, ``[CLS]`` and ``[SEP]`` included, padding ``False``).

:class:`LockedTokenTextTower` is the token analogue of
:class:`~contrastkit.nn.towers.LockedTextTower`: all-MiniLM-L6-v2 frozen, each distinct
caption's token states computed once and kept (real tokens only), and padded per batch.

:class:`ImageTextTokenTowers` holds no heads: what maps tokens into the shared space is the
method's (FDT's query MLPs and codebook). Its ``encode_images`` / ``encode_texts`` are the
mean of the tokens (the image tower's global average pool, MiniLM's mean pooling), the very
features :class:`~contrastkit.nn.towers.ImageTextTowers` puts its linear heads on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from contrastkit.nn.towers import lock

__all__ = ["ImageTextTokenTowers", "LockedTokenTextTower", "TextTokenTower", "build_image_text_token_towers"]

Tokens = tuple[torch.Tensor, torch.Tensor]


def pad_token_states(states: Sequence[torch.Tensor]) -> Tokens:
    """Stack variable-length ``[L_i, D]`` token states into ``([B, L_max, D], mask [B, L_max])`` (zeros padded)."""
    longest = max(state.shape[0] for state in states)
    tokens = states[0].new_zeros(len(states), longest, states[0].shape[1])
    mask = torch.zeros(len(states), longest, dtype=torch.bool, device=states[0].device)
    for row, state in enumerate(states):
        tokens[row, :state.shape[0]] = state
        mask[row, :state.shape[0]] = True
    return tokens, mask


class TextTokenTower(nn.Module):
    """A trainable text encoder's token states: ``texts -> ([B, L, D], mask [B, L])``.

    Args:
        encoder: a :class:`~contrastkit.nn.text.TextEncoder` (``tokenize``, ``transformer``).
    """

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.output_dim = int(encoder.output_dim)

    def tokens(self, texts: Sequence[str]) -> Tokens:
        tokens = self.encoder.tokenize(list(texts))
        states = self.encoder.transformer(**tokens).last_hidden_state
        return states, tokens["attention_mask"].bool()


class LockedTokenTextTower(nn.Module):
    """A frozen text encoder whose per-caption token states are computed once and cached.

    Args:
        encoder: a :class:`~contrastkit.nn.text.TextEncoder`; it is locked here.
        batch_size: how many new captions are encoded at once.
    """

    def __init__(self, encoder: nn.Module, batch_size: int = 128) -> None:
        super().__init__()
        self.encoder = lock(encoder)
        self.output_dim = int(encoder.output_dim)
        self.batch_size = int(batch_size)
        self._cache: dict[str, torch.Tensor] = {}

    def train(self, mode: bool = True) -> "LockedTokenTextTower":
        super().train(mode)
        self.encoder.eval()
        return self

    @torch.no_grad()
    def _encode(self, texts: list[str]) -> list[torch.Tensor]:
        states = []
        for start in range(0, len(texts), self.batch_size):
            tokens = self.encoder.tokenize(texts[start:start + self.batch_size])
            hidden = self.encoder.transformer(**tokens).last_hidden_state.float().cpu()
            lengths = tokens["attention_mask"].sum(1).tolist()
            # Real tokens only (BERT pads on the right), so the cache holds no padding.
            states += [hidden[row, :length].clone() for row, length in enumerate(lengths)]
        return states

    @torch.no_grad()
    def tokens(self, texts: Sequence[str]) -> Tokens:
        missing = list(dict.fromkeys(text for text in texts if text not in self._cache))
        if missing:
            self._cache.update(zip(missing, self._encode(missing)))
        return pad_token_states([self._cache[text] for text in texts])


def image_tokens_of(tower: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``[B, H*W, C]``: the last feature map of ``tower`` as a sequence of patch tokens."""
    if callable(getattr(tower, "feature_maps", None)):
        grid = tower.feature_maps(images)[-1]
    elif callable(getattr(tower, "feature_map", None)):
        grid = tower.feature_map(images)
    else:
        raise ValueError(f"encoder.image_tower: token towers need an image tower with feature_maps() or "
                         f"feature_map() (small-resnet, efficientnet-lite0), got {type(tower).__name__}")
    return grid.flatten(2).transpose(1, 2)


class ImageTextTokenTowers(nn.Module):
    """An image tower and a text tower that both give tokens (no heads: the method maps tokens).

    Args:
        image_tower: an image encoder with ``feature_maps()`` or ``feature_map()`` and ``output_dim``
            (the channels of its last map).
        text_tower: a module with ``tokens(texts) -> ([B, L, D], mask)`` and ``output_dim``
            (:class:`LockedTokenTextTower`, :class:`TextTokenTower`).
        lock_image: lock the image tower.

    Attributes:
        image_token_dim, text_token_dim: the token sizes.
        output_dim: ``image_token_dim`` (what :meth:`forward`, the pooled image tokens, gives).
    """

    def __init__(self, image_tower: nn.Module, text_tower: nn.Module, *, lock_image: bool = False) -> None:
        super().__init__()
        if not callable(getattr(text_tower, "tokens", None)):
            raise ValueError(f"encoder.text_tower: token towers need a text tower with tokens(texts), "
                             f"got {type(text_tower).__name__}")
        self.image_tower, self.text_tower = image_tower, text_tower
        if lock_image:
            lock(self.image_tower)
        self.image_token_dim = int(image_tower.output_dim)
        self.text_token_dim = int(text_tower.output_dim)
        self.output_dim = self.image_token_dim

    @property
    def locked(self) -> dict[str, bool]:
        """Which towers are locked."""
        return {"image": bool(getattr(self.image_tower, "locked", False)),
                "text": isinstance(self.text_tower, LockedTokenTextTower)}

    def image_tokens(self, images: torch.Tensor) -> Tokens:
        """``[B, C, H, W]`` -> ``(tokens [B, N, image_token_dim], mask [B, N])`` (every patch is real)."""
        if self.locked["image"]:
            with torch.no_grad():
                tokens = image_tokens_of(self.image_tower, images)
        else:
            tokens = image_tokens_of(self.image_tower, images)
        return tokens, torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)

    def text_tokens(self, texts: Sequence[str]) -> Tokens:
        """A list of strings -> ``(tokens [B, L, text_token_dim], mask [B, L])``, on the image tower's device."""
        tokens, mask = self.text_tower.tokens(list(texts))
        device = next(self.image_tower.parameters()).device
        return tokens.to(device), mask.to(device)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Mean of the image tokens ``[B, image_token_dim]`` (the tower's global average pool)."""
        return self.image_tokens(images)[0].mean(1)

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Mean of the real text tokens ``[B, text_token_dim]`` (MiniLM's mean pooling)."""
        tokens, mask = self.text_tokens(texts)
        weights = mask.to(tokens.dtype)[:, :, None]
        return (tokens * weights).sum(1) / weights.sum(1).clamp_min(1.0)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encode_images(images)


def build_image_text_token_towers(in_channels: int = 3, image_size: int = 32, *, image_tower: str = "small-resnet",
                                  image_options: dict[str, Any] | None = None, text_tower: str = "minilm-locked",
                                  text_options: dict[str, Any] | None = None,
                                  lock_image: bool = False) -> ImageTextTokenTowers:
    """The ``image-text-token-towers`` encoder: an image encoder from the registry, a text tower by name.

    ``text_tower``: ``minilm-locked`` (all-MiniLM-L6-v2 frozen, token states cached) or
    ``minilm`` (fine-tuned).
    """
    from contrastkit.nn.registry import build_encoder
    from contrastkit.nn.text import TextEncoder

    if text_tower not in ("minilm-locked", "minilm"):
        raise ValueError(f"encoder.text_tower: expected 'minilm-locked' or 'minilm', got {text_tower!r}")
    image = build_encoder(image_tower, in_channels=in_channels, image_size=image_size, **(image_options or {}))
    text_encoder = TextEncoder(**(text_options or {}))
    text = LockedTokenTextTower(text_encoder) if text_tower == "minilm-locked" else TextTokenTower(text_encoder)
    return ImageTextTokenTowers(image, text, lock_image=lock_image)

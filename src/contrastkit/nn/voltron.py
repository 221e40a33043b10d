"""Voltron (Karamcheti et al., RSS 2023): a language-conditioned, language-generating MAE, small.

Official code: github.com/siddk/voltron-robotics, ``voltron/models/core/vcond.py`` (V-Cond: one
frame, conditioned on language), ``vdual.py`` (V-Dual: frames 0 and K) and ``vgen.py`` (V-Gen:
two frames, conditioning *or* generating language, α = ``gen_ratio``), ``models/util/transformer.py``
(the blocks). :class:`Voltron` is all three at any size: ``frames=1`` is V-Cond, ``frames=2`` V-Dual,
and ``generation=True`` (with two frames) V-Gen. The objectives are in
:mod:`contrastkit.functional.voltron`.

Architecture, as official:

* encoder: a patch embedding (a ``p x p`` stride-``p`` convolution, its weight Xavier-uniform as a
  linear map), fixed 2-D sine-cosine position embeddings (MAE's), with two frames a learned context
  embedding per frame (``randn``), and a learned "image" token added to every patch; 75 % of the
  patches masked, the *same* ones in both frames; the visible patches are concatenated with the
  frozen language model's contextual embeddings of the caption (``lm(ids).last_hidden_state``),
  projected by ``lang2encoder`` plus a learned "language" token; pre-norm blocks with RMSNorm
  (eps 1e-8), SwiGLU feed-forward (ratio 4) and LayerScale (0.1); a final RMSNorm; the language
  positions are dropped after the encoder.
* decoder: ``encoder2decoder``, a mask token per removed patch, unshuffled, fixed 2-D sine-cosine
  position embeddings (+ a learned context embedding per frame), RMSNorm/SwiGLU/LayerScale blocks,
  RMSNorm, a linear head to ``p*p*C`` pixels per patch. V-Gen appends the *non-contextual* token
  embeddings of the caption to generate (``lm.embeddings(ids)``, projected by ``lang2decoder``) and
  runs the decoder under a prefix mask (patches see all patches; token ``t`` sees every patch and
  tokens ``<= t``), with a linear head to the vocabulary.
* init: Xavier-uniform linear weights, zero biases; mask / image / language tokens ``N(0, 0.02)``.
* the language model is frozen (no gradient, kept in eval mode): :class:`FrozenLanguageModel`
  wraps any BERT-like ``transformers`` model (DistilBERT officially; all-MiniLM-L6-v2 offline).

Deviations, and why:

* **Padding mask.** Officially a ``[B, S]`` padding mask is reshaped to ``[B, 1, S, 1]``, which
  masks the padded *queries* (their rows), so every real token still attends to padding keys.
  Here ``padding_mask="keys"`` (default) masks padded keys, the evident intent;
  ``padding_mask="queries"`` reproduces the official behaviour.
* **No [CLS] token.** V-Gen's config uses one for continued pre-training; it is left out (V-Cond's
  default), so :meth:`Voltron.encode` returns patch (and language) tokens only.
* **Size and tokenizer.** Any size (the paper's is ViT-S/16 at 224 px, decoder 6 x 192); token ids
  and masks come tokenised by the caller (officially padded to 20 tokens).
"""

from __future__ import annotations

import torch
from torch import nn

from contrastkit.functional.voltron import MASK_RATIO, random_patch_mask

__all__ = ["FrozenLanguageModel", "RMSNorm", "Voltron", "VoltronBlock", "sine_cosine_2d"]


class RMSNorm(nn.Module):
    """Voltron's RMSNorm: ``x / max(||x|| d^-1/2, eps) * g`` (eps 1e-8)."""

    def __init__(self, dim: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.scale, self.eps = dim ** -0.5, eps
        self.g = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / (x.norm(dim=-1, keepdim=True) * self.scale).clamp(min=self.eps) * self.g


class _SwishGLU(nn.Module):
    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.project = nn.Linear(in_dim, 2 * out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        projected, gate = self.project(x).tensor_split(2, dim=-1)
        return projected * nn.functional.silu(gate)


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"Voltron: expected the width ({dim}) divisible by the heads ({heads})")
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
        batch, length, dim = x.shape
        q, k, v = self.qkv(x).reshape(batch, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        scores = q @ (k.transpose(-2, -1) * self.scale)
        if allowed is not None:  # [B, 1, S, S] (or broadcastable): 0 = not attended
            scores = scores.masked_fill(allowed == 0, torch.finfo(scores.dtype).min)
        return self.proj((scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(batch, length, dim))


class VoltronBlock(nn.Module):
    """Pre-norm transformer block: RMSNorm, attention, LayerScale; RMSNorm, SwiGLU MLP, LayerScale."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, layer_scale: float = 0.1) -> None:
        super().__init__()
        hidden = int(mlp_ratio * dim)
        self.norm_attn, self.attn = RMSNorm(dim), _Attention(dim, heads)
        self.gamma_attn = nn.Parameter(layer_scale * torch.ones(dim))
        self.norm_mlp = RMSNorm(dim)
        self.mlp = nn.Sequential(_SwishGLU(dim, hidden), nn.Linear(hidden, dim))
        self.gamma_mlp = nn.Parameter(layer_scale * torch.ones(dim))

    def forward(self, x: torch.Tensor, allowed: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.gamma_attn * self.attn(self.norm_attn(x), allowed)
        return x + self.gamma_mlp * self.mlp(self.norm_mlp(x))


def sine_cosine_2d(dim: int, grid: int) -> torch.Tensor:
    """MAE's fixed 2-D sine-cosine position embeddings ``[grid * grid, dim]`` (half the width per axis)."""
    if dim % 4:
        raise ValueError(f"Voltron: expected a width divisible by 4 for 2-D sine-cosine positions, got {dim}")

    def one_axis(width: int, positions: torch.Tensor) -> torch.Tensor:
        omega = 1.0 / 10000 ** (torch.arange(width // 2, dtype=torch.float64) / (width / 2.0))
        angles = positions.reshape(-1, 1).double() * omega[None]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    axis = torch.arange(grid, dtype=torch.float64)
    grid_w, grid_h = torch.meshgrid(axis, axis, indexing="xy")  # MAE: np.meshgrid(w, h), w first
    return torch.cat([one_axis(dim // 2, grid_w), one_axis(dim // 2, grid_h)], dim=1).float()


class FrozenLanguageModel(nn.Module):
    """A BERT-like ``transformers`` model, frozen: contextual embeddings to condition, token embeddings to generate.

    Its parameters never require gradient and it stays in eval mode (``train()`` does not change it),
    as Voltron's language model (``requires_grad = False``, ``lm.eval()``, ``torch.no_grad()``).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.model.eval()
        self.dim = int(model.config.hidden_size)
        self.vocab_size = int(model.config.vocab_size)

    def train(self, mode: bool = True) -> FrozenLanguageModel:
        super().train(mode)
        self.model.eval()  # frozen means no dropout either
        return self

    @torch.no_grad()
    def contextual(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[B, L, D]``: the last hidden state (what the encoder conditions on)."""
        return self.model(input_ids=tokens, attention_mask=mask).last_hidden_state

    @torch.no_grad()
    def token_embeddings(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[B, L, D]``: the embedding layer's output, no context (what V-Gen's decoder generates from)."""
        return self.model.embeddings(input_ids=tokens)


class Voltron(nn.Module):
    """V-Cond (``frames=1``), V-Dual (``frames=2``) or V-Gen (``frames=2, generation=True``).

    Args:
        language: the frozen language model (:class:`FrozenLanguageModel`, or any module with
            ``contextual(ids, mask)``, ``token_embeddings(ids)``, ``dim`` and ``vocab_size``).
        image_size, patch_size, in_channels: the frames (square, ``image_size % patch_size == 0``).
        frames: 1 (V-Cond) or 2 (frame 0 and frame K).
        embed_dim, depth, heads: the encoder (paper: ViT-S, 384, 12, 6).
        decoder_dim, decoder_depth, decoder_heads: the decoder (paper: 192, 6, 6).
        mask_ratio: the fraction of patches removed (official 0.75).
        generation: add V-Gen's language-generation head (needs ``frames=2``, as officially).
        padding_mask: ``"keys"`` (default) or ``"queries"`` (the official behaviour; module docstring).

    Example (all-MiniLM-L6-v2 as the frozen language model; ``ids, mask`` from its tokenizer)::

        language = FrozenLanguageModel(transformers.AutoModel.from_pretrained(path, local_files_only=True))
        model = Voltron(language, image_size=32, patch_size=8, frames=2, embed_dim=64, depth=2, heads=4,
                        decoder_dim=32, decoder_depth=1, decoder_heads=4, generation=True)
        condition, condition_mask, generate, generate_mask, weight = split_generation(ids, mask, alpha=0.5)
        out = model(frames, condition, condition_mask, generate, generate_mask)
        loss = voltron_loss(masked_reconstruction_loss(out["reconstructions"], frames, out["mask"], 8),
                            language_generation_loss(out["logits"], generate, generate_mask, weight))
    """

    def __init__(self, language: nn.Module, *, image_size: int = 224, patch_size: int = 16, in_channels: int = 3,
                 frames: int = 1, embed_dim: int = 384, depth: int = 12, heads: int = 6, decoder_dim: int = 192,
                 decoder_depth: int = 6, decoder_heads: int = 6, mlp_ratio: float = 4.0,
                 mask_ratio: float = MASK_RATIO, generation: bool = False, padding_mask: str = "keys") -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"Voltron: expected image_size ({image_size}) divisible by patch_size ({patch_size})")
        if frames not in (1, 2):
            raise ValueError(f"Voltron: expected frames 1 (V-Cond) or 2 (V-Dual / V-Gen), got {frames}")
        if generation and frames != 2:
            raise ValueError("Voltron: language generation (V-Gen) is defined on two frames; set frames=2")
        if padding_mask not in ("keys", "queries"):
            raise ValueError(f"Voltron: expected padding_mask 'keys' or 'queries', got {padding_mask!r}")
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f"Voltron: expected mask_ratio in [0, 1), got {mask_ratio}")
        self.language = language
        self.patch_size, self.in_channels, self.frames = patch_size, in_channels, frames
        self.grid = image_size // patch_size
        self.num_patches = self.grid * self.grid
        self.mask_ratio, self.generation, self.padding_mask = mask_ratio, generation, padding_mask
        self.output_dim = embed_dim
        self.patch_embed = nn.Conv2d(in_channels, embed_dim, patch_size, stride=patch_size)
        self.register_buffer("encoder_positions", sine_cosine_2d(embed_dim, self.grid), persistent=False)
        self.register_buffer("decoder_positions", sine_cosine_2d(decoder_dim, self.grid), persistent=False)
        self.image_token = nn.Parameter(torch.zeros(embed_dim))
        self.language_token = nn.Parameter(torch.zeros(embed_dim))
        self.mask_token = nn.Parameter(torch.zeros(decoder_dim))
        self.lang2encoder = nn.Linear(language.dim, embed_dim)
        self.encoder_blocks = nn.ModuleList(VoltronBlock(embed_dim, heads, mlp_ratio) for _ in range(depth))
        self.encoder_norm = RMSNorm(embed_dim)
        self.encoder2decoder = nn.Linear(embed_dim, decoder_dim)
        self.decoder_blocks = nn.ModuleList(VoltronBlock(decoder_dim, decoder_heads, mlp_ratio)
                                            for _ in range(decoder_depth))
        self.decoder_norm = RMSNorm(decoder_dim)
        self.patch_head = nn.Linear(decoder_dim, patch_size * patch_size * in_channels)
        if generation:
            self.lang2decoder = nn.Linear(language.dim, decoder_dim)
            self.vocab_head = nn.Linear(decoder_dim, language.vocab_size)
        self._init_weights()
        if frames == 2:  # learned per-frame ("ctx") embeddings, randn as official (after the generic init)
            self.encoder_frame = nn.Parameter(torch.randn(2, 1, embed_dim))
            self.decoder_frame = nn.Parameter(torch.randn(2, 1, decoder_dim))

    def _init_weights(self) -> None:
        frozen = {id(module) for module in self.language.modules()}  # the language model keeps its weights
        for module in self.modules():
            if isinstance(module, nn.Linear) and id(module) not in frozen:
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.xavier_uniform_(self.patch_embed.weight.view(self.patch_embed.weight.shape[0], -1))
        for token in (self.mask_token, self.image_token, self.language_token):
            nn.init.normal_(token, std=0.02)

    # -- pieces -------------------------------------------------------------------------------

    def _frames(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, F, C, H, W]`` (a ``[B, C, H, W]`` batch is one frame)."""
        if images.dim() == 4 and self.frames == 1:
            images = images[:, None]
        if images.dim() != 5 or images.shape[1] != self.frames or images.shape[2] != self.in_channels:
            raise ValueError(f"Voltron: expected frames [B, {self.frames}, {self.in_channels}, H, W], "
                             f"got {tuple(images.shape)}")
        return images

    def _attention_mask(self, valid: torch.Tensor) -> torch.Tensor:
        """``[B, 1, S, S]`` (or broadcastable) from a ``[B, S]`` 0/1 validity mask."""
        return valid[:, None, :, None] if self.padding_mask == "queries" else valid[:, None, None, :]

    def patch_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, F, N, D]``: patch embeddings + positions (+ frame embeddings), before masking."""
        images = self._frames(images)
        batch = images.shape[0]
        patches = self.patch_embed(images.flatten(0, 1)).flatten(2).transpose(1, 2)  # [B F, N, D]
        patches = (patches + self.encoder_positions).unflatten(0, (batch, self.frames))
        return patches + self.encoder_frame if self.frames == 2 else patches

    def _run_encoder(self, patches: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Patch tokens ``[B, P, D]`` + the caption -> the encoded sequence ``[B, P + L, D]``, patches first."""
        language = self.lang2encoder(self.language.contextual(tokens, mask)) + self.language_token
        sequence = torch.cat([patches + self.image_token, language], dim=1)
        valid = torch.cat([torch.ones(patches.shape[:2], dtype=mask.dtype, device=mask.device), mask], dim=1)
        allowed = self._attention_mask(valid)
        for block in self.encoder_blocks:
            sequence = block(sequence, allowed)
        return self.encoder_norm(sequence)

    def encode(self, images: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Representations of unmasked frames with their caption: ``[B, F*N + L, D]``, patches first.

        (Officially V-Dual / V-Gen drop frame 0's tokens from the returned sequence; slice
        ``[:, N:]`` to do the same.)
        """
        return self._run_encoder(self.patch_tokens(images).flatten(1, 2), tokens, mask)

    def _decode(self, encoded: torch.Tensor, restore: torch.Tensor, generate_tokens: torch.Tensor | None,
                generate_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, frames = encoded.shape[0], self.frames
        projected = self.encoder2decoder(encoded).unflatten(1, (frames, -1))  # [B, F, n, d]
        missing = self.num_patches - projected.shape[2]
        filled = torch.cat([projected, self.mask_token.expand(batch, frames, missing, -1)], dim=2)
        index = restore[:, None, :, None].expand(batch, frames, self.num_patches, filled.shape[-1])
        patches = torch.gather(filled, 2, index) + self.decoder_positions
        if frames == 2:
            patches = patches + self.decoder_frame
        patches = patches.flatten(1, 2)  # [B, F N, d]
        if not self.generation:
            for block in self.decoder_blocks:
                patches = block(patches)
            return self.patch_head(self.decoder_norm(patches)).unflatten(1, (frames, -1)), None
        language = self.lang2decoder(self.language.token_embeddings(generate_tokens))
        sequence = torch.cat([patches, language], dim=1)
        total, prefix = sequence.shape[1], patches.shape[1]
        causal = torch.tril(torch.ones(total, total, dtype=generate_mask.dtype, device=sequence.device))
        causal[:prefix, :prefix] = 1  # patches see every patch; token t sees every patch and tokens <= t
        valid = torch.cat([torch.ones(batch, prefix, dtype=generate_mask.dtype, device=sequence.device),
                           generate_mask], dim=1)
        allowed = self._attention_mask(valid) * causal
        for block in self.decoder_blocks:
            sequence = block(sequence, allowed)
        sequence = self.decoder_norm(sequence)
        reconstructions = self.patch_head(sequence[:, :prefix]).unflatten(1, (frames, -1))
        return reconstructions, self.vocab_head(sequence[:, prefix:])

    def forward(self, images: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor,
                generate_tokens: torch.Tensor | None = None, generate_mask: torch.Tensor | None = None, *,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Mask, encode with the conditioning language, decode (and generate).

        Args:
            images: ``[B, F, C, H, W]`` frames (``[B, C, H, W]`` for V-Cond).
            tokens, mask: ``[B, L]`` the conditioning caption's ids and attention mask.
            generate_tokens, generate_mask: ``[B, L']`` the caption to generate (V-Gen only).
            generator: the masking's random numbers (torch's global RNG when ``None``).

        Returns:
            ``reconstructions [B, F, N, p*p*C]``, ``mask [B, N]`` (1 = removed), ``keep [B, n_keep]``
            and, for V-Gen, ``logits [B, L', vocab]``.
        """
        if self.generation and (generate_tokens is None or generate_mask is None):
            raise ValueError("Voltron (V-Gen): expected generate_tokens and generate_mask (functional.voltron."
                             "split_generation makes them)")
        patches = self.patch_tokens(images)
        keep, removed, restore = random_patch_mask(patches.shape[0], self.num_patches, self.mask_ratio,
                                                   generator=generator, device=patches.device)
        index = keep[:, None, :, None].expand(-1, self.frames, -1, patches.shape[-1])
        visible = torch.gather(patches, 2, index)  # the same patches of every frame
        encoded = self._run_encoder(visible.flatten(1, 2), tokens, mask)[:, :self.frames * keep.shape[1]]
        reconstructions, logits = self._decode(encoded, restore, generate_tokens, generate_mask)
        out = {"reconstructions": reconstructions, "mask": removed, "keep": keep}
        if logits is not None:
            out["logits"] = logits
        return out

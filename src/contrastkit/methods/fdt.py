"""FDT (Chen et al., CVPR 2023): CLIP on sparse mixtures of one shared codebook of discrete tokens.

Every image patch and every word token is mapped by a query MLP (LayerNorm, Linear, GELU,
LayerNorm, Linear; one per modality) into the codebook space; a sample's weight on code
``m`` is the sparsemax of its best token's relevance to ``m``, and its embedding is the
weighted sum of codes (:func:`contrastkit.functional.fdt.fdt_embedding`). Images and texts
thus live on one finite set of shared tokens; CLIP's symmetric InfoNCE
(:class:`~contrastkit.methods.clip.CLIP`'s loss, learnable ``t``, gather with gradient under
torchrun, gradient caching) trains towers, query MLPs and codebook together.

The encoder is ``image-text-token-towers`` (:mod:`contrastkit.nn.token_towers`): patch
tokens from the image tower's last feature map (the small ResNet's 8x8 map of a 32 px
emoji: 64 tokens of 128 channels), word tokens from a locked all-MiniLM-L6-v2 (384-d,
cached). Recipe: ``contrastkit train fdt-emoji``.

Compared with the official code (github.com/yuxiaochen1103/FDT, ``prototype/model/clip_fdt.py``,
``example/clip_fdt/config_cc3m.yaml``): codebook ``randn(M, d)`` init, no value
projection, relevance ``q . c / sqrt(d) / tau_F`` with ``tau_F = 1000`` dividing (constant
in the official schedule), max pooling, sparsemax, L2-normalised ``e`` into InfoNCE with
``t`` initialised at ``1/0.07``, as there. Deviations:

* Defaults ``codebook_size=16384``, ``codebook_dim=512`` are the paper's; ``fdt-emoji`` uses
  1024 x 128 so that a 200-step run fits a 2-core CPU (the relevance block is
  ``B x tokens x M``).
* Padded words are masked with ``-inf`` (no effect); the official code multiplies their
  relevance by 0, which clamps every code's pooled text relevance at 0 (see
  :mod:`contrastkit.functional.fdt`).
* The logit scale is CLIP's here (clamped at 100). The official solver also clamps the
  parameter ``log t`` into ``[3, 6]`` after each step (``grad_clip: logit_scale_param_value``),
  so ``t >= 20`` from the first step; not ported, so FDT and CLIP rows differ only in the
  embedding.
* The official towers are a ViT-B/32 (768-d patch tokens, before ``ln_post``) and CLIP's
  text transformer (512-d) trained from scratch on CC3M; here a small ResNet from scratch
  and a locked MiniLM (the same towers as the CLIP rows of ``benchmarks/multimodal.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional.fdt import fdt_embedding
from contrastkit.methods.base import Output
from contrastkit.methods.clip import CLIP

__all__ = ["FDT"]


def query_mlp(token_dim: int, codebook_dim: int) -> nn.Sequential:
    """FDT's token-to-query map (official ``Query_model.q_map``): LN, Linear, GELU, LN, Linear."""
    return nn.Sequential(nn.LayerNorm(token_dim), nn.Linear(token_dim, codebook_dim), nn.GELU(),
                         nn.LayerNorm(codebook_dim), nn.Linear(codebook_dim, codebook_dim))


class FDT(CLIP):
    """Finite discrete tokens: image and text embeddings as sparsemax mixtures of one codebook.

    Args:
        encoder: an :class:`~contrastkit.nn.token_towers.ImageTextTokenTowers`
            (``encoder=image-text-token-towers``): ``image_tokens``, ``text_tokens``.
        views: ``(image view, caption view)``.
        codebook_size: ``M``, the number of discrete tokens (paper 16384).
        codebook_dim: ``d``, their size and the embedding size (paper 512).
        fdt_temperature: ``tau_F``, divides the relevance (official 1000).
        temperature, learn_temperature, max_logit_scale: CLIP's logit scale (see :class:`CLIP`).
    """

    def __init__(self, encoder: nn.Module, views: tuple[nn.Module, nn.Module], *, codebook_size: int = 16384,
                 codebook_dim: int = 512, fdt_temperature: float = 1000.0, temperature: float = 0.07,
                 learn_temperature: bool = True, max_logit_scale: float = 100.0) -> None:
        for name in ("image_tokens", "text_tokens"):
            if not callable(getattr(encoder, name, None)):
                raise ValueError(f"encoder: method fdt needs token features, encoder=image-text-token-towers "
                                 f"(got {type(encoder).__name__}, which has no {name}); "
                                 "try `contrastkit train fdt-emoji`")
        super().__init__(encoder, views, temperature=temperature, learn_temperature=learn_temperature,
                         max_logit_scale=max_logit_scale)
        for name, value in (("codebook_size", codebook_size), ("codebook_dim", codebook_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"method.{name}: expected a positive integer, got {value!r}")
        if not fdt_temperature > 0:
            raise ValueError(f"method.fdt_temperature: expected a positive number, got {fdt_temperature}")
        self.fdt_temperature = float(fdt_temperature)
        self.codebook = nn.Parameter(torch.randn(codebook_size, codebook_dim))
        self.image_query = query_mlp(int(encoder.image_token_dim), codebook_dim)
        self.text_query = query_mlp(int(encoder.text_token_dim), codebook_dim)
        # How sparse the weights are (the paper's point): logged, not state.
        self._code_logs: dict[str, float] = {}

    def image_code_embeddings(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(e [B, d], weights [B, M])`` of an image batch (no view applied)."""
        tokens, mask = self.encoder.image_tokens(images)
        return fdt_embedding(self.image_query(tokens), self.codebook, self.fdt_temperature, mask)

    def text_code_embeddings(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(e [B, d], weights [B, M])`` of a list of captions."""
        tokens, mask = self.encoder.text_tokens(list(texts))
        return fdt_embedding(self.text_query(tokens.to(self.codebook.dtype)), self.codebook, self.fdt_temperature,
                             mask)

    def image_embeddings(self, batch: Batch) -> torch.Tensor:
        embeddings, weights = self.image_code_embeddings(self.image_view(batch.inputs["image"]))
        self._code_logs["image_codes"] = float((weights > 0).sum(-1).float().mean())
        return embeddings

    def text_embeddings(self, texts: list[str]) -> torch.Tensor:
        embeddings, weights = self.text_code_embeddings(self.text_view(texts))
        self._code_logs["text_codes"] = float((weights > 0).sum(-1).float().mean())
        return embeddings

    def loss_from_embeddings(self, embeddings: tuple[torch.Tensor, ...], batch: Batch) -> Output:
        """CLIP's loss on the code embeddings; logs also the mean number of codes with non-zero
        weight per image and per caption (of the last row block under gradient caching)."""
        output = super().loss_from_embeddings(embeddings, batch)
        return Output(output.loss, {**output.logs, **self._code_logs})

    @torch.no_grad()
    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """FDT image embeddings (normalised)."""
        return F.normalize(self.image_code_embeddings(inputs)[0], dim=-1)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        return self.embed(images)

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        return F.normalize(self.text_code_embeddings(list(texts))[0], dim=-1)

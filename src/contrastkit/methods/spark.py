"""SparK (Tian et al., ICLR 2023): masked image modelling for CNNs, one view, no negatives.

"Designing BERT for Convolutional Networks: Sparse and Hierarchical Masked Modeling". The encoder
sees only the visible ~40% of each image's patches, run as a sparse CNN; a light UNet-like decoder,
fed every stage's map with masked positions filled by per-scale mask tokens, regresses the
per-patch-normalised pixels of the masked patches (L2). The pieces live in
:mod:`contrastkit.nn.sparse_masking`.

Used here for METHODS.md row 25 (SSL pre-training with contrastive and MAE methods for small
medical datasets): SparK against contrastive pretraining under a label-fraction protocol
(:mod:`contrastkit.eval.label_fractions`). Verdict: FULL on Fashion-MNIST; the medical claim
(SparK holds up better as the labelled set shrinks on CT) is untested.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.methods.base import Method, Output
from contrastkit.nn.sparse_masking import (
    SparKDecoder,
    masked_patch_loss,
    random_patch_mask,
    sparse_feature_maps,
    stage_geometry,
)


class SparK(Method):
    """SparK pretraining of a CNN with ``feature_maps`` (e.g. ``SmallResNet``).

    One step: (optionally) augment with the first view transform, zero-pad to a multiple of the
    patch size ``p`` (the encoder's total downsampling, so a mask cell is one last-stage location),
    mask ``mask_ratio`` of the ``p x p`` patches, encode sparsely, densify and decode, and take the
    L2 loss on per-patch-normalised pixels of masked patches only. On 28 px images and the recipe's
    stride-2-stem ``SmallResNet``, ``p = 8``: images are padded to 32 px, a 4x4 mask grid.

    Args:
        encoder: a CNN with ``feature_maps(x) -> list of stage maps``, ``output_dim`` and ``in_channels``.
        views: the recipe's pair of view transforms, or ``None``; only the first is applied
            (SparK uses one view with light augmentation, e.g. the ``crop-flip`` preset with
            ``crop_scale`` (0.67, 1)); the second is ignored.
        mask_ratio: the share of patches masked (paper 0.6).
        decoder_width: the decoder's width at the deepest scale (default: half the encoder's output
            width; halved again at each upsampling).
        normalize_targets: regress per-patch-normalised pixels (paper default) instead of raw ones.
        pad_inputs: zero-pad images (centred) to a multiple of the patch size, in training and in
            :meth:`embed`, so the encoder sees the same geometry in both.
    """

    def __init__(
        self,
        encoder: nn.Module,
        views: Sequence[nn.Module] | nn.Module | None = None,
        *,
        mask_ratio: float = 0.6,
        decoder_width: int | None = None,
        normalize_targets: bool = True,
        pad_inputs: bool = True,
    ) -> None:
        super().__init__()
        for attribute in ("feature_maps", "output_dim", "in_channels"):
            if not hasattr(encoder, attribute):
                raise ValueError(f"SparK: the encoder needs a {attribute!r} attribute (e.g. SmallResNet)")
        if not 0.0 < float(mask_ratio) < 1.0:
            raise ValueError(f"SparK: expected mask_ratio in (0, 1), got {mask_ratio}")
        self.encoder = encoder
        if views is None or isinstance(views, nn.Module):
            self.view = views
        else:
            views = tuple(views)
            self.view = views[0] if views else None
        self.mask_ratio = float(mask_ratio)
        self.normalize_targets = bool(normalize_targets)
        self.pad_inputs = bool(pad_inputs)
        widths, factors = stage_geometry(encoder, int(encoder.in_channels))
        self.decoder = SparKDecoder(widths, factors, int(encoder.in_channels), decoder_width=decoder_width)
        if getattr(encoder, "channels_last", False):
            # The encoder's maps arrive channels-last; matching layouts avoid a copy per layer.
            self.decoder.to(memory_format=torch.channels_last)
        self.patch_size = self.decoder.patch_size

    def pad(self, images: torch.Tensor) -> torch.Tensor:
        """Zero-pad ``[B, C, H, W]`` (centred) so ``H`` and ``W`` are multiples of the patch size."""
        if not self.pad_inputs:
            return images
        p = self.patch_size
        extra_h, extra_w = (-images.shape[-2]) % p, (-images.shape[-1]) % p
        if not (extra_h or extra_w):
            return images
        return F.pad(images, (extra_w // 2, extra_w - extra_w // 2, extra_h // 2, extra_h - extra_h // 2))

    def forward(self, batch: Batch) -> Output:
        self.check_batch(batch)
        images = batch.inputs
        if images.dim() != 4:
            raise ValueError(f"SparK: expected images [B, C, H, W], got shape {tuple(images.shape)}")
        if self.view is not None:
            images = self.view(images)
        images = self.pad(images)
        p = self.patch_size
        if images.shape[-2] % p or images.shape[-1] % p:
            raise ValueError(
                f"SparK: image size {tuple(images.shape[-2:])} is not a multiple of the patch size {p} "
                "(set pad_inputs=True)"
            )
        visible = random_patch_mask(
            images.shape[0], (images.shape[-2] // p, images.shape[-1] // p), self.mask_ratio, device=images.device
        )
        maps = sparse_feature_maps(self.encoder, images, visible)
        reconstruction = self.decoder(maps, visible)
        loss = masked_patch_loss(
            reconstruction.float(), images.float(), visible, normalize_targets=self.normalize_targets
        )
        return Output(loss, {"loss": loss.item(), "visible_fraction": float(visible.float().mean())})

    @torch.no_grad()
    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """Dense encoder features of whole (padded) images ``[B, output_dim]``."""
        return self.encoder(self.pad(inputs))

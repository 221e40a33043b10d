"""Image–text contrast: CLIP, multi-positive CLIP, SigLIP and LiT on two towers.

All four train on ``image-text`` data (:class:`~contrastkit.data.paired.ImageCaptionDataset`
batches) with an :class:`~contrastkit.nn.towers.ImageTextTowers` encoder:

* :class:`CLIP` (Radford et al., 2021): symmetric InfoNCE with a learnable temperature,
  ``t = exp(s)``, ``s`` initialised to ``log(1/0.07)`` and ``t`` clamped at 100 as in the
  paper (open_clip clamps the same way).
* multi-positive CLIP (``CLIP(multi_positive=True)``): every caption of an item is a
  positive of its image (openai/CLIP #464 asks for this): image -> text is a
  cross-entropy against the uniform distribution over the item's captions in the batch,
  text -> image the usual one-positive term over the batch's images.
* :class:`SigLIP` (Zhai et al., 2023): the pairwise sigmoid loss, ``t' = log 10`` and bias
  ``-10`` (the paper's init), or ``bias_init='log_inverse_batch'``: ``log(1/B)``, the prior
  that a pair matches (open_clip #650).
* :class:`LiT` (Zhai et al., 2022): CLIP with the image tower locked, only the text side
  (and the image head) trains. The tower is locked in the encoder
  (:func:`~contrastkit.nn.towers.lock`): no gradient, no optimiser state, batch norm frozen.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional.contrastive import clip_loss, siglip_loss
from contrastkit.methods.base import Method, Output
from contrastkit.negatives import gather
from contrastkit.nn.towers import lock

__all__ = ["CLIP", "LiT", "SigLIP"]


class ImageTextMethod(Method):
    """Base of the image–text methods: the towers, the image view, batch checks and ``embed``.

    Args:
        encoder: an :class:`~contrastkit.nn.towers.ImageTextTowers` (``encode_images``, ``encode_texts``).
        views: ``(image view, caption view)``; the caption view is applied to each string list.
    """

    modalities = frozenset({"image-text"})

    def __init__(self, encoder: nn.Module, views: tuple[nn.Module, nn.Module]) -> None:
        super().__init__()
        for name in ("encode_images", "encode_texts"):
            if not callable(getattr(encoder, name, None)):
                raise ValueError(f"encoder: image-text methods need an encoder with {name} "
                                 f"(encoder=image-text-towers), got {type(encoder).__name__}")
        self.encoder = encoder
        self.image_view, self.text_view = views

    def check_batch(self, batch: Batch) -> None:
        inputs = batch.inputs
        if not isinstance(inputs, dict) or "image" not in inputs or "caption" not in inputs:
            raise ValueError("image-text methods expect batches with 'image' and 'caption' inputs "
                             "(an image-text data set such as data=emoji)")

    def image_embeddings(self, batch: Batch) -> torch.Tensor:
        return self.encoder.encode_images(self.image_view(batch.inputs["image"]))

    def text_embeddings(self, texts: list[str]) -> torch.Tensor:
        return self.encoder.encode_texts(self.text_view(texts))

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """Image embeddings (normalised): the representation of an image batch."""
        return F.normalize(self.encoder.encode_images(inputs), dim=-1)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        return self.embed(images)

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        return F.normalize(self.encoder.encode_texts(list(texts)), dim=-1)


class CLIP(ImageTextMethod):
    """CLIP's symmetric InfoNCE between image and caption embeddings.

    Args:
        encoder, views: see :class:`ImageTextMethod`.
        temperature: the initial temperature (CLIP: 0.07, so ``t = 1/0.07``).
        learn_temperature: learn ``log t`` (default) or keep it fixed.
        max_logit_scale: the clamp on ``t`` (CLIP: 100).
        multi_positive: every caption of an item is a positive of its image.
    """

    def __init__(self, encoder: nn.Module, views: tuple[nn.Module, nn.Module], *, temperature: float = 0.07,
                 learn_temperature: bool = True, max_logit_scale: float = 100.0, multi_positive: bool = False) -> None:
        super().__init__(encoder, views)
        if not 0.0 < temperature:
            raise ValueError(f"method.temperature: expected a positive number, got {temperature}")
        if max_logit_scale < 1.0 / temperature:
            raise ValueError(f"method.max_logit_scale: expected at least 1/temperature = {1 / temperature:.3g}, "
                             f"got {max_logit_scale}")
        log_scale = torch.tensor(math.log(1.0 / temperature))
        self.log_logit_scale = nn.Parameter(log_scale, requires_grad=bool(learn_temperature))
        self.max_logit_scale, self.multi_positive = float(max_logit_scale), bool(multi_positive)

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.log_logit_scale.exp().clamp(max=self.max_logit_scale)

    def forward(self, batch: Batch) -> Output:
        if self.multi_positive:
            self.check_batch(batch)
            scale = self.logit_scale
            loss = self._multi_positive_loss(self.image_embeddings(batch), batch, scale)
            return Output(loss=loss, logs={"logit_scale": float(scale.detach())})
        return self.loss_from_embeddings(self.embeddings(batch), batch)

    def embeddings(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        """``(images, captions)`` embeddings of one block of rows (gradient caching splits a batch so)."""
        self.check_batch(batch)
        if self.multi_positive:
            raise ValueError("train.grad_cache_micro_batch: multi-positive CLIP has a varying number of captions "
                             "per row and does not split into row blocks; use plain CLIP or no gradient cache")
        return self.image_embeddings(batch), self.text_embeddings(list(batch.inputs["caption"]))

    def loss_from_embeddings(self, embeddings: tuple[torch.Tensor, ...], batch: Batch) -> Output:
        """Symmetric InfoNCE over the whole batch; under torchrun over every process's rows (gathered
        with gradient, as SimCLR does)."""
        images, texts = (gather(part, "with_grad") for part in embeddings[:2])
        scale = self.logit_scale
        return Output(loss=clip_loss(images, texts, scale), logs={"logit_scale": float(scale.detach())})

    def _multi_positive_loss(self, images: torch.Tensor, batch: Batch, scale: torch.Tensor) -> torch.Tensor:
        groups = batch.inputs.get("captions")
        if groups is None:
            raise ValueError("method.multi_positive: the batches carry no 'captions' (every caption of each row)")
        flat = [text for texts in groups for text in texts]
        owner = torch.tensor([row for row, texts in enumerate(groups) for _ in texts], device=images.device)
        texts = F.normalize(self.text_embeddings(flat), dim=-1)
        logits = scale * F.normalize(images, dim=-1) @ texts.T  # [B, T]
        # The same item twice in a batch: its rows share positives (labels are item ids).
        labels = batch.labels.to(images.device) if batch.labels is not None else torch.arange(len(groups),
                                                                                              device=images.device)
        positive = labels[:, None] == labels[owner][None, :]  # [B, T]
        targets = positive.float() / positive.sum(1, keepdim=True)
        image_to_text = -(targets * logits.log_softmax(1)).sum(1).mean()
        # Text -> image: each caption against the batch's images; positives are its item's rows.
        text_positive = positive.T.float()
        text_to_image = -(text_positive / text_positive.sum(1, keepdim=True) * logits.T.log_softmax(1)).sum(1).mean()
        return (image_to_text + text_to_image) / 2


class LiT(CLIP):
    """LiT: CLIP with a locked image tower ("locked-image tuning"); see :class:`CLIP` for the options."""

    def __init__(self, encoder: nn.Module, views: tuple[nn.Module, nn.Module], **options) -> None:
        super().__init__(encoder, views, **options)
        lock(self.encoder.image_tower)


class SigLIP(ImageTextMethod):
    """SigLIP's pairwise sigmoid loss with learnable scale and bias.

    Args:
        encoder, views: see :class:`ImageTextMethod`.
        scale_init: the initial ``t`` (paper: 10, learned as ``log t``).
        bias_init: the initial bias: a number (paper: -10) or ``'log_inverse_batch'``
            (``log(1/B)`` at the first batch).
    """

    def __init__(self, encoder: nn.Module, views: tuple[nn.Module, nn.Module], *, scale_init: float = 10.0,
                 bias_init: float | str = -10.0) -> None:
        super().__init__(encoder, views)
        if not scale_init > 0:
            raise ValueError(f"method.scale_init: expected a positive number, got {scale_init}")
        if isinstance(bias_init, str) and bias_init != "log_inverse_batch":
            raise ValueError(f"method.bias_init: expected a number or 'log_inverse_batch', got {bias_init!r}")
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(scale_init)))
        # Always a parameter that takes part in the loss, so DDP never sees it unused (open_clip #1076).
        self.logit_bias = nn.Parameter(torch.tensor(0.0 if isinstance(bias_init, str) else float(bias_init)))
        # A buffer, so that a resumed run does not reset a bias it has already trained.
        self.register_buffer("bias_pending", torch.tensor(isinstance(bias_init, str)))

    def forward(self, batch: Batch) -> Output:
        return self.loss_from_embeddings(self.embeddings(batch), batch)

    def embeddings(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        """``(images, captions)`` embeddings of one block of rows."""
        self.check_batch(batch)
        return self.image_embeddings(batch), self.text_embeddings(list(batch.inputs["caption"]))

    def loss_from_embeddings(self, embeddings: tuple[torch.Tensor, ...], batch: Batch) -> Output:
        """The sigmoid loss over every (image, caption) pair of the global batch (gathered under torchrun;
        the paper's ring exchange computes the same pairs with less memory)."""
        images, texts = (gather(part, "with_grad") for part in embeddings[:2])
        if bool(self.bias_pending):
            with torch.no_grad():
                self.logit_bias.fill_(math.log(1.0 / images.shape[0]))
                self.bias_pending.fill_(False)
        scale = self.log_logit_scale.exp()
        loss = siglip_loss(images, texts, scale, self.logit_bias)
        return Output(loss=loss, logs={"logit_scale": float(scale.detach()), "logit_bias": float(self.logit_bias)})

"""Contriever (Izacard et al., TMLR 2022): unsupervised dense retrieval by independent cropping + MoCo.

METHODS #42. Each training document gives two independent random crops (with word
deletion) — the ``contriever`` view preset. The query crop goes through the online
encoder, the key crop through a momentum (EMA) copy; InfoNCE contrasts each query with
its key, the other keys of the batch and a FIFO queue of past keys.
"""

from __future__ import annotations

import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional import info_nce
from contrastkit.methods.base import Output
from contrastkit.methods.text import TextMethod
from contrastkit.negatives import Queue, gather, is_distributed, local_positive_mask
from contrastkit.nn import MomentumEncoder


class Contriever(TextMethod):
    """Independent-cropping MoCo on documents only (no labels, no queries).

    Args:
        encoder: a text encoder (the paper: BERT-base, mean pooling).
        views: ``(crop for the query, crop for the key)``; use the ``contriever`` preset.
        field: the batch field holding the documents (``positive``: a pair dataset's documents).
        queue_size: queued keys (paper 131072; 4096 suits a small corpus). Under torchrun it
            should be a multiple of the global batch, as in the paper's code.
        temperature: InfoNCE temperature (paper 0.05).
        base_momentum: EMA momentum of the key encoder (paper 0.9995, constant).
        final_momentum: momentum at the last step; ``None``: equal to ``base_momentum``.
        normalize: cosine similarity. The paper uses the raw dot product (``False``);
            ``True`` (default here) suits encoders pre-trained with cosine, like MiniLM.
    """

    def __init__(
        self,
        encoder: nn.Module,
        views: tuple[nn.Module, nn.Module],
        *,
        field: str = "positive",
        queue_size: int = 4096,
        temperature: float = 0.05,
        base_momentum: float = 0.9995,
        final_momentum: float | None = None,
        normalize: bool = True,
    ) -> None:
        super().__init__(encoder, views)
        self.field = field
        self.temperature = float(temperature)
        self.normalize = bool(normalize)
        self.key_encoder = MomentumEncoder(
            encoder, base_momentum=base_momentum,
            final_momentum=base_momentum if final_momentum is None else final_momentum,
        )  # fmt: skip
        self.queue = Queue(queue_size, encoder.output_dim)
        self._pending_keys: torch.Tensor | None = None

    def _prepare(self, z: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(z, dim=-1) if self.normalize else z

    def forward(self, batch: Batch) -> Output:
        return self.loss_from_embeddings(self.embeddings(batch), batch)

    def embeddings(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Online embeddings of the first crops and momentum keys of the second crops."""
        self.check_batch(batch)
        documents = self.texts(batch, self.field)
        queries = self.encode_view(documents, self.view_a)
        with torch.no_grad():
            keys = self.key_encoder(self.view_b(self.encoder.tokenize(documents)))
        return queries, self._prepare(keys)

    def loss_from_embeddings(self, embeddings: tuple[torch.Tensor, ...], batch: Batch) -> Output:
        queries, keys = embeddings
        queued = self.queue.negatives()
        pos_mask = None
        if is_distributed():
            pos_mask = local_positive_mask(keys.shape[0], device=keys.device)
        all_keys = gather(keys, "no_grad")
        loss = info_nce(
            self._prepare(queries), all_keys, negatives=queued if queued.shape[0] else None,
            temperature=self.temperature, pos_mask=pos_mask, normalize=False,
        )  # fmt: skip
        self._pending_keys = all_keys.detach()
        return Output(loss, {"loss": loss.item(), "queue_filled": float(queued.shape[0])})

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.key_encoder.update(self.encoder, step, total_steps)
        if self._pending_keys is not None:
            self.queue.enqueue(self._pending_keys)
            self._pending_keys = None

"""MoCo v2 (He et al., 2020; Chen et al., 2020): momentum key encoder and a FIFO queue of negatives."""

from __future__ import annotations

import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional import info_nce
from contrastkit.methods.base import Output, TwoViewMethod
from contrastkit.negatives import Queue, gather, is_distributed, local_positive_mask
from contrastkit.nn import MomentumEncoder, ProjectionHead


class MoCo(TwoViewMethod):
    """MoCo v2: InfoNCE of queries against their momentum keys and a queue of past keys.

    Keys of the current step are enqueued in :meth:`on_step_end`, after the
    optimiser step, so a checkpoint taken after a step holds a consistent queue.
    Single-device runs use no shuffled BN (the key batch is the same as the query
    batch); the queue starts empty and fills over ``queue_size / batch_size`` steps.

    Args:
        encoder: backbone with an ``output_dim`` attribute.
        views: a pair ``(view_a, view_b)`` of augmentation modules.
        projection_hidden_dim: hidden width of the projection MLP (MoCo v2: 2048).
        projection_dim: key/query width (paper 128).
        queue_size: number of queued negatives K (paper 65536; 4096 suits small data).
        temperature: InfoNCE temperature (MoCo v2: 0.2).
        base_momentum: key-encoder EMA momentum (paper 0.999; 0.99 suits short runs).
        final_momentum: momentum at the last step (cosine schedule); equal to base for a constant momentum.
        symmetric: also use view b as query against view a's key (doubles the signal per batch).
    """

    two_tensor_views = True

    def __init__(
        self,
        encoder: nn.Module,
        views: tuple[nn.Module, nn.Module],
        *,
        projection_hidden_dim: int = 512,
        projection_dim: int = 128,
        queue_size: int = 4096,
        temperature: float = 0.2,
        base_momentum: float = 0.99,
        final_momentum: float = 1.0,
        symmetric: bool = True,
    ) -> None:
        super().__init__(encoder, views)
        self.projector = ProjectionHead(encoder.output_dim, projection_hidden_dim, projection_dim)
        self.key_encoder = MomentumEncoder(
            nn.Sequential(self.encoder, self.projector), base_momentum=base_momentum, final_momentum=final_momentum
        )
        self.queue = Queue(queue_size, projection_dim)
        self.temperature = temperature
        self.symmetric = symmetric
        self._pending_keys: torch.Tensor | None = None

    def forward(self, batch: Batch) -> Output:
        return self.loss_from_embeddings(self.embeddings(batch), batch)

    def embeddings(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        """Queries and their momentum keys: ``(q_a, k_b)``, plus ``(q_b, k_a)`` when symmetric."""
        self.check_batch(batch)
        x = batch.inputs
        x_a, x_b = self.view_a(x), self.view_b(x)
        if not self.symmetric:
            with torch.no_grad():
                k_b = nn.functional.normalize(self.key_encoder(x_b), dim=1)
            return self.projector(self.encoder(x_a)), k_b
        q_a, q_b = self.projector(self.encoder(torch.cat([x_a, x_b]))).chunk(2)
        with torch.no_grad():
            k_b, k_a = nn.functional.normalize(self.key_encoder(torch.cat([x_b, x_a])), dim=1).chunk(2)
        return q_a, k_b, q_b, k_a

    def loss_from_embeddings(self, embeddings: tuple[torch.Tensor, ...], batch: Batch) -> Output:
        queries = torch.cat(embeddings[0::2])
        keys = torch.cat(embeddings[1::2])
        queued = self.queue.negatives()
        negatives = queued if queued.shape[0] > 0 else None
        pos_mask = None
        if is_distributed():
            # Local queries against every process's keys (keys carry no gradient): the DDP
            # average of the local means is the global mean, as with one process and 2B rows.
            pos_mask = local_positive_mask(keys.shape[0], device=keys.device)  # queue columns pad as negatives
            keys = gather(keys, "no_grad")
        loss = info_nce(queries, keys, negatives=negatives, temperature=self.temperature, pos_mask=pos_mask)
        # Only view b's keys enter the queue, as in the paper (one key per image per step);
        # under torchrun every process enqueues the same global keys, keeping the queues equal.
        self._pending_keys = gather(embeddings[1].detach(), "no_grad")
        return Output(loss, {"loss": loss.item(), "queue_filled": float(queued.shape[0])})

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.key_encoder.update(nn.Sequential(self.encoder, self.projector), step, total_steps)
        if self._pending_keys is not None:
            self.queue.enqueue(self._pending_keys)
            self._pending_keys = None

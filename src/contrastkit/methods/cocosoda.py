"""CoCoSoDa (Shi et al., ICSE 2023): momentum contrast for code search with soft data augmentation.

METHODS #13. One shared encoder for natural-language queries and code (UniXcoder-style),
a momentum (EMA) twin, and one key queue per modality. Keys are computed by the twin on
*softly augmented* inputs: tokens masked at a per-sample random rate (the ``cocosoda``
view preset), optionally code tokens replaced by their token type. InfoNCE terms, as the
official ``Multi_Loss_CoCoSoDa`` (DeepSoftwareAnalytics/CoCoSoDa ``model.py``):

* inter-modal, online to momentum: query -> code keys + code-key queue, code -> query keys
  + query-key queue;
* inter-modal, online to online (``online_terms``): query -> the batch's online code
  embeddings + a queue of them, and code -> online queries + their queue; gradient reaches
  both sides, as in the official code (four queues in all);
* intra-modal: query -> its augmented query key + query-key queue, code -> its augmented
  code key + code-key queue (the official script leaves these off, ``--do_ineer_loss``).

The inter terms are averaged, and so are the intra terms; ``loss = inter + intra_weight ·
intra``. ``intra_weight=0`` gives the inter-modal-only ablation of METHODS #13's check;
``online_terms=False`` the two-term form of earlier versions.
"""

from __future__ import annotations

import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional import info_nce
from contrastkit.methods.base import Output
from contrastkit.methods.text import TextMethod
from contrastkit.negatives import Queue
from contrastkit.nn import MomentumEncoder


class CoCoSoDa(TextMethod):
    """Query/code momentum contrast with inter- and intra-modal terms.

    Args:
        encoder: the shared text encoder for queries and code.
        views: ``(query key view, code key view)``, applied to the momentum encoder's
            inputs (soft augmentation); use the ``cocosoda`` preset (dynamic token masking).
        queue_size: keys per modality queue (paper 1024).
        temperature: InfoNCE temperature (paper 0.07).
        base_momentum: EMA momentum of the key encoder (paper 0.999).
        final_momentum: momentum at the last step; ``None``: constant.
        intra_weight: weight of the two intra-modal terms (0: inter-modal only).
        online_terms: also contrast online queries with online code and back (official).
        type_replacement: maximum fraction of code tokens replaced by their token type
            (identifier, keyword, operator, ...) before the code key view; 0 disables it.
    """

    def __init__(
        self,
        encoder: nn.Module,
        views: tuple[nn.Module, nn.Module],
        *,
        queue_size: int = 1024,
        temperature: float = 0.07,
        base_momentum: float = 0.999,
        final_momentum: float | None = None,
        intra_weight: float = 1.0,
        online_terms: bool = True,
        type_replacement: float = 0.0,
    ) -> None:
        super().__init__(encoder, views)
        if intra_weight < 0:
            raise ValueError(f"intra_weight: expected a non-negative weight, got {intra_weight}")
        if not 0.0 <= type_replacement <= 1.0:
            raise ValueError(f"type_replacement: expected a fraction in [0, 1], got {type_replacement}")
        self.temperature = float(temperature)
        self.intra_weight = float(intra_weight)
        self.key_encoder = MomentumEncoder(
            encoder, base_momentum=base_momentum,
            final_momentum=base_momentum if final_momentum is None else final_momentum,
        )  # fmt: skip
        self.query_queue = Queue(queue_size, encoder.output_dim)
        self.code_queue = Queue(queue_size, encoder.output_dim)
        self.online_terms = bool(online_terms)
        if self.online_terms:  # the official nl_queue / code_queue: online embeddings, detached
            self.online_query_queue = Queue(queue_size, encoder.output_dim)
            self.online_code_queue = Queue(queue_size, encoder.output_dim)
        self.type_replacement = None
        if type_replacement > 0:
            from contrastkit.views.text import TokenTypeReplacement

            self.type_replacement = TokenTypeReplacement(0.0, type_replacement)
        self._pending: tuple[torch.Tensor, ...] | None = None

    def forward(self, batch: Batch) -> Output:
        return self.loss_from_embeddings(self.embeddings(batch), batch)

    def embeddings(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        """``(queries, code, query keys, code keys)``: online embeddings with gradient, then
        the momentum encoder's normalised keys of the augmented inputs."""
        self.check_batch(batch)
        queries, code = self.texts(batch, "query"), self.texts(batch, "positive")
        identity = nn.Identity()
        online_queries = self.encode_view(queries, identity, query=True)
        online_code = self.encode_view(code, identity)
        augmented_code = self.type_replacement(code) if self.type_replacement is not None else code
        with torch.no_grad():
            query_keys = self.key_encoder(self.view_a(self.encoder.tokenize(queries, query=True)))
            code_keys = self.key_encoder(self.view_b(self.encoder.tokenize(augmented_code)))
        normalize = nn.functional.normalize
        return online_queries, online_code, normalize(query_keys, dim=-1), normalize(code_keys, dim=-1)

    def _term(self, anchors: torch.Tensor, keys: torch.Tensor, queue: Queue) -> torch.Tensor:
        queued = queue.negatives()
        return info_nce(anchors, keys, negatives=queued if queued.shape[0] else None, temperature=self.temperature)

    def loss_from_embeddings(self, embeddings: tuple[torch.Tensor, ...], batch: Batch) -> Output:
        queries, code, query_keys, code_keys = embeddings
        inter_terms = [self._term(queries, code_keys, self.code_queue), self._term(code, query_keys, self.query_queue)]
        if self.online_terms:
            inter_terms += [self._term(queries, code, self.online_code_queue),
                            self._term(code, queries, self.online_query_queue)]
        inter = torch.stack(inter_terms).mean()
        logs = {"inter": inter.item()}
        loss = inter
        if self.intra_weight > 0:
            intra = (self._term(queries, query_keys, self.query_queue) + self._term(code, code_keys, self.code_queue)) / 2
            loss = inter + self.intra_weight * intra
            logs["intra"] = intra.item()
        normalize = nn.functional.normalize
        self._pending = (query_keys.detach(), code_keys.detach(),
                         normalize(queries.detach(), dim=-1), normalize(code.detach(), dim=-1))
        logs.update(loss=loss.item(), queue_filled=float(len(self.code_queue)))
        return Output(loss, logs)

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.key_encoder.update(self.encoder, step, total_steps)
        if self._pending is not None:
            self.query_queue.enqueue(self._pending[0])
            self.code_queue.enqueue(self._pending[1])
            if self.online_terms:
                self.online_query_queue.enqueue(self._pending[2])
                self.online_code_queue.enqueue(self._pending[3])
            self._pending = None

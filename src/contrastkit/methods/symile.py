r"""Symile and its pairwise-CLIP baseline over any number of modalities (tuple data).

Both train on ``tuples`` data (:class:`~contrastkit.data.tuples.TupleDataset` batches: one
entry per field, optional missingness masks) with a
:class:`~contrastkit.nn.tuple_towers.TupleTowers` encoder:

* :class:`Symile` (Saporta et al., NeurIPS 2024): every field's embedding is L2-normalised,
  then :func:`~contrastkit.functional.symile.symile_loss`: each modality in turn the anchor,
  an InfoNCE over multilinear inner products ``MIP(x_i, y_j, z_k, ...)`` with ``negatives="n"``
  (O(N): ``B - 1`` shuffled partner tuples, the official default) or ``"n_squared"``.
* :class:`PairwiseCLIP`: :func:`~contrastkit.functional.symile.pairwise_clip_loss`, CLIP's
  symmetric loss averaged over every pair of modalities (the paper's baseline).

The logit scale is learned as ``t = exp(s)`` with ``s`` initialised to ``log(1/0.07)`` (the
official Symile-M3 runs take ``--logit_scale_init``, whose help text gives CLIP's
``log(1/0.07) = 2.659``; the official code does not clamp ``t``, and neither does this one).

Zero-shot scoring follows the official ``zeroshot_retrieval_logits``: a Symile model scores a
candidate ``c`` for the missing field by ``MIP(q_1, ..., q_k, c) = (q_1 ⊙ ... ⊙ q_k) · c``
(:attr:`Symile.zero_shot_scoring` ``"product"``), a pairwise-CLIP model by the sum of its
pairwise scores, ``sum_m q_m · c`` plus terms that do not depend on ``c`` (``"sum"``).

Distributed and memory: the step splits into ``embeddings`` and ``loss_from_embeddings``
(gradient caching, ``train.grad_cache_micro_batch``), and under ``torchrun`` the embeddings
are gathered with gradient, as CLIP does, so 2 processes x B equal 1 process x 2B. The
``"n"`` negatives draw their permutations from a generator seeded by a seed fixed when the
method is built (saved in the checkpoint) plus the number of loss evaluations so far, so
every process draws the same permutation of the gathered batch (the trainer seeds each
rank's global RNG differently, for its augmentations), and a resumed run draws what an
uninterrupted one would.

Deviations from the official code: ``pairwise_clip_loss`` averages the pairs (the official
baseline sums them: 3x the value for 3 modalities, the same minimiser); the official
Symile-M3 heads end in a LayerNorm and are not L2-normalised, while its pip-package examples
L2-normalise, as here; the permutations' generator (above) instead of torch's global RNG.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.data.tuples import MISSING_KEY
from contrastkit.functional.symile import (
    NEGATIVE_SAMPLING,
    pairwise_clip_loss,
    symile_loss,
)
from contrastkit.methods.base import Method, Output
from contrastkit.negatives import gather

__all__ = ["PairwiseCLIP", "Symile", "TupleMethod"]


class TupleMethod(Method):
    """Base of the tuple methods: the towers, a view per field, batch checks, embeddings.

    Args:
        encoder: a :class:`~contrastkit.nn.tuple_towers.TupleTowers` (``fields``, ``encode``).
        views: one view per field, in the encoder's field order (a text view takes a list of strings).
        logit_scale_init: the initial ``log t`` (CLIP's ``log(1/0.07)``).
        learn_logit_scale: learn ``log t`` (default) or keep it fixed.
        normalize: L2-normalise every field's embedding (default, as the pip package's examples);
            ``False`` takes the heads' outputs as they are (the official Symile-M3 models: heads
            ending in a LayerNorm, ``encoder.head_norm=layer_norm``).
    """

    modalities = frozenset({"tuples"})
    #: How a trained model scores zero-shot candidates: ``"product"`` (MIP) or ``"sum"`` (pairwise).
    zero_shot_scoring = "product"

    def __init__(self, encoder: nn.Module, views: tuple[nn.Module, ...], *,
                 logit_scale_init: float = math.log(1 / 0.07), learn_logit_scale: bool = True,
                 normalize: bool = True) -> None:
        super().__init__()
        self.normalize = bool(normalize)
        if not callable(getattr(encoder, "encode", None)) or not getattr(encoder, "fields", None):
            raise ValueError(f"encoder: tuple methods need an encoder with fields and encode() "
                             f"(encoder=tuple-towers), got {type(encoder).__name__}")
        self.encoder = encoder
        self.fields: list[str] = list(encoder.fields)
        if len(views) != len(self.fields):
            raise ValueError(f"views: expected one view per field ({', '.join(self.fields)}), got {len(views)}")
        self.views = nn.ModuleList(views)
        if not math.isfinite(float(logit_scale_init)):
            raise ValueError(f"method.logit_scale_init: expected a finite number, got {logit_scale_init}")
        self.log_logit_scale = nn.Parameter(torch.tensor(float(logit_scale_init)),
                                            requires_grad=bool(learn_logit_scale))

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.log_logit_scale.exp()

    def check_batch(self, batch: Batch) -> None:
        inputs = batch.inputs
        if not isinstance(inputs, dict) or any(field not in inputs for field in self.fields):
            got = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
            raise ValueError(f"tuple methods expect batches with the fields {', '.join(self.fields)} "
                             f"(a tuples data set such as data=emoji-speech), got {got}")
        rows = len(inputs[self.fields[0]])
        if rows < 2:
            raise ValueError(f"tuple methods need at least 2 samples per batch, got {rows}")

    def encode_field(self, field: str, inputs: Any, missing: torch.Tensor | None = None) -> torch.Tensor:
        """One field's L2-normalised embeddings ``[B, D]`` (no view: the evaluation's path)."""
        return self._normalized(self.encoder.encode(field, inputs, missing))

    def _normalized(self, embedding: torch.Tensor) -> torch.Tensor:
        return F.normalize(embedding, dim=-1) if self.normalize else embedding

    def embeddings(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        """Every field's normalised embeddings of one block of rows, in field order (after its view)."""
        self.check_batch(batch)
        missing = batch.inputs.get(MISSING_KEY) or {}
        return tuple(self._normalized(self.encoder.encode(field, view(batch.inputs[field]), missing.get(field)))
                     for field, view in zip(self.fields, self.views))

    def forward(self, batch: Batch) -> Output:
        return self.loss_from_embeddings(self.embeddings(batch), batch)

    def embed(self, inputs: dict[str, Any]) -> torch.Tensor:
        """Every field's normalised embedding, concatenated ``[B, M * D]`` (the protocol scores fields apart)."""
        missing = inputs.get(MISSING_KEY) or {}
        with torch.no_grad():
            return torch.cat([self.encode_field(field, inputs[field], missing.get(field)) for field in self.fields], 1)

    def loss(self, embeddings: list[torch.Tensor]) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def loss_from_embeddings(self, embeddings: tuple[torch.Tensor, ...], batch: Batch) -> Output:
        """The loss over the whole batch; under torchrun over every process's rows (gathered with gradient)."""
        gathered = [gather(part, "with_grad") for part in embeddings[: len(self.fields)]]
        loss = self.loss(gathered)
        return Output(loss=loss, logs={"logit_scale": float(self.logit_scale.detach())})


class Symile(TupleMethod):
    """Symile: an InfoNCE on multilinear inner products, each field in turn the anchor.

    Args:
        encoder, views: see :class:`TupleMethod`.
        negatives: ``"n"`` (O(N) shuffled partner tuples, official default) or ``"n_squared"``.
        **options: ``logit_scale_init``, ``learn_logit_scale``: see :class:`TupleMethod`.
    """

    zero_shot_scoring = "product"

    def __init__(self, encoder: nn.Module, views: tuple[nn.Module, ...], *, negatives: str = "n",
                 **options: Any) -> None:
        super().__init__(encoder, views, **options)
        if negatives not in NEGATIVE_SAMPLING:
            raise ValueError(f"method.negatives: expected one of {', '.join(NEGATIVE_SAMPLING)}, got {negatives!r}")
        self.negatives = negatives
        # Buffers: the same on every process (drawn after the run seeds the build) and kept by checkpoints.
        self.register_buffer("negative_seed", torch.randint(2**31 - 1, ()), persistent=True)
        self.register_buffer("negative_draws", torch.zeros((), dtype=torch.long), persistent=True)

    def loss(self, embeddings: list[torch.Tensor]) -> torch.Tensor:
        generator = None
        if self.negatives == "n":
            generator = torch.Generator().manual_seed(int(self.negative_seed) + int(self.negative_draws))
            self.negative_draws += 1
        return symile_loss(embeddings, self.logit_scale, negatives=self.negatives, generator=generator)


class PairwiseCLIP(TupleMethod):
    """The pairwise-CLIP baseline: CLIP's symmetric loss averaged over every pair of fields.

    Args:
        encoder, views, logit_scale_init, learn_logit_scale: see :class:`TupleMethod`.
    """

    zero_shot_scoring = "sum"

    def loss(self, embeddings: list[torch.Tensor]) -> torch.Tensor:
        return pairwise_clip_loss(embeddings, self.logit_scale)

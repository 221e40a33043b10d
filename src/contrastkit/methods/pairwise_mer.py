r"""Pairwise MER: unsupervised contrast between every pair of modalities, fusion only at inference.

Franceschini, Fini, Beyan, Conti, Arrigoni and Ricci, "Multimodal Emotion Recognition with
Modality-Pairwise Unsupervised Contrastive Loss", ICPR 2022 (official code:
github.com/ricfrr/mpuc-mer). Each modality ``m`` has its own encoder ``e_m`` and projection
head ``g_m``; ``z_m = g_m(e_m(x_m)) / ||g_m(e_m(x_m))||``. Without labels, row ``i``'s
modalities are each other's positives and the other rows of the batch the negatives:

.. math::

    L = \frac{1}{P} \sum_{m < n} \tfrac12 \big[\mathrm{InfoNCE}(z_m \to z_n) + \mathrm{InfoNCE}(z_n \to z_m)\big],
    \qquad \mathrm{InfoNCE}(a \to b) = -\frac1B \sum_i \log
        \frac{e^{a_i \cdot b_i / \tau}}{\sum_j e^{a_i \cdot b_j / \tau}}

over the ``P = M(M-1)/2`` pairs, which is
:func:`contrastkit.functional.symile.pairwise_clip_loss` at ``logit_scale = 1/τ``. At inference
the encoders' outputs (before the heads) are concatenated, ``concat(e_1(x_1), ..., e_M(x_M))``,
and a linear or shallow classifier is trained on that: :meth:`PairwiseMER.embed` returns it.

Checked against the official code (``train.py``, ``utils/encoder_train.py``,
``utils/SupConSeparate.py``, ``models/Encoder.py``, ``main.py``):

* reduction over pairs: the paper writes a sum over pairs; the code averages, dividing the sum
  over *ordered* pairs ``(m, n), m != n`` by their number ``M(M-1)``, which equals the mean over
  unordered pairs of the symmetric loss used here (``reduction="mean"``, default);
  ``reduction="sum"`` is the paper's formula (``P`` times larger, the same minimiser);
* temperature: fixed ``τ = 0.07`` (``--temperature``), not learned (``learn_temperature=False``);
* projection heads: one per modality, ``Linear(D, 1024) -> ReLU -> Linear(1024, D)`` without
  batch norm, on the ``D``-dimensional encoder output (``projection_hidden_dim=1024``,
  ``projection_dim=None`` meaning ``D``); the projections are L2-normalised before the loss;
* the representation for classification is the concatenation of the encoder outputs before the
  heads (``basic_feat``), as here.

Deviations, and why:

* **Views.** The official data loaders return two random temporal crops of each utterance
  (the same crop for every modality within a view), and the loss is SupCon's with two views
  per modality: anchor (modality m, crop a, row i), positive (modality n, the *other* crop,
  row i), negatives every other (modality n, crop, row) except (n, a, i) itself, which SupCon's
  self-contrast mask drops although it is a cross-modal pair of the same row; and the sum of
  log-probabilities is divided by ``positives + 1 = 2``, halving the loss. Here there is one
  view of each row (the modality's view, default none, as the paper says no augmentation is
  needed) and the paper's symmetric InfoNCE with the same-row pair as the positive. The
  official quirks change the loss' scale and drop one negative; they are not the method.
* **Towers.** The official encoders (TCN, ST-GCN, transformers) apply dropout ``p = 0.1`` to their
  outputs. The towers here are any registry encoder; the recipe's ``ts-dilated-conv-pooled``
  (TS2Vec's) has output dropout 0.1 too, and in training also TS2Vec's random timestamp
  masking, drawn independently per tower, so the two modalities of a row do not see exactly
  the same time steps (``tower_options.mask_mode: all_true`` turns that off).
* **Joint probe.** The official loop also trains the linear classifiers during pre-training
  (on detached features, so the encoder is unaffected); here evaluation fits the probes
  afterwards on the frozen features, which is the same protocol.

Distributed and memory: :meth:`PairwiseMER.embeddings` / :meth:`PairwiseMER.loss_from_embeddings`
split the step for gradient caching (``train.grad_cache_micro_batch``), and under ``torchrun``
every modality's projections are gathered with gradient, as CLIP does, so 2 processes × B rows
give the step of 1 process × 2B rows (``tests/test_pairwise_mer_distributed.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional.symile import pairwise_clip_loss
from contrastkit.methods.base import Method, Output
from contrastkit.negatives import gather
from contrastkit.nn.heads import ProjectionHead

__all__ = ["PAIR_REDUCTIONS", "PairwiseMER"]

#: How the per-pair losses combine: ``"mean"`` (official code) or ``"sum"`` (the paper's formula).
PAIR_REDUCTIONS = ("mean", "sum")


class PairwiseMER(Method):
    """Symmetric InfoNCE over every pair of modalities; the fused (concatenated) encoders are the representation.

    Args:
        encoder: one tower per modality with ``encode_groups(x) -> [ [B, D_m], ... ]``, ``group_dims``
            and ``group_names`` (:class:`~contrastkit.nn.channel_groups.ChannelGroupTowers`,
            encoder ``channel-group-towers``); ``encoder(x)`` is the fused representation.
        views: ``(view,)``: one transform of the whole input before it is split into modalities.
        projection_hidden_dim: hidden width of each modality's projection head (official: 1024).
        projection_dim: output width of the heads; ``None`` (default) takes the towers' width, as the
            official heads map ``D -> 1024 -> D`` (the towers must then share one width).
        temperature: the InfoNCE temperature ``τ`` (official: 0.07).
        learn_temperature: learn ``log(1/τ)`` (CLIP-style, clamped at 100) instead of keeping it fixed.
        reduction: ``"mean"`` over pairs (official code, default) or ``"sum"`` (the paper's formula).
    """

    modalities = frozenset({"channel-groups"})

    def __init__(self, encoder: nn.Module, views: Sequence[nn.Module], *, projection_hidden_dim: int = 1024,
                 projection_dim: int | None = None, temperature: float = 0.07, learn_temperature: bool = False,
                 reduction: str = "mean") -> None:
        super().__init__()
        if not callable(getattr(encoder, "encode_groups", None)) or not getattr(encoder, "group_dims", None):
            raise ValueError("encoder: pairwise-mer needs one tower per modality (encode_groups, group_dims; "
                             f"encoder=channel-group-towers), got {type(encoder).__name__}")
        if len(encoder.group_dims) < 2:
            raise ValueError(f"encoder: pairwise-mer needs at least 2 modalities, got {len(encoder.group_dims)}")
        if len(views) != 1:
            raise ValueError(f"views: pairwise-mer expects one view (applied before the split), got {len(views)}")
        if not temperature > 0:
            raise ValueError(f"method.temperature: expected a positive number, got {temperature}")
        if reduction not in PAIR_REDUCTIONS:
            raise ValueError(f"method.reduction: expected one of {', '.join(map(repr, PAIR_REDUCTIONS))}, "
                             f"got {reduction!r}")
        dims = [int(dim) for dim in encoder.group_dims]
        if projection_dim is None and len(set(dims)) != 1:
            raise ValueError(f"method.projection_dim: the towers' widths differ ({dims}); set a shared "
                             "projection_dim")
        self.encoder = encoder
        self.view = views[0]
        self.heads = nn.ModuleList(
            ProjectionHead(dim, projection_hidden_dim, projection_dim or dim, num_layers=2, batch_norm=False)
            for dim in dims
        )
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)),
                                            requires_grad=bool(learn_temperature))
        self.reduction = reduction

    @property
    def logit_scale(self) -> torch.Tensor:
        """``1/τ`` (clamped at 100 when learned, as CLIP does)."""
        return self.log_logit_scale.exp().clamp(max=100.0) if self.log_logit_scale.requires_grad \
            else self.log_logit_scale.exp()

    def check_batch(self, batch: Batch) -> None:
        inputs = batch.inputs
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3:
            got = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
            raise ValueError(f"PairwiseMER: expected a series batch [B, C, T] (data=channel-groups), got {got}")
        super().check_batch(batch)

    def embeddings(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        """One projection ``[B, P]`` per modality (not normalised; the loss normalises)."""
        self.check_batch(batch)
        parts = self.encoder.encode_groups(self.view(batch.inputs))
        return tuple(head(part) for head, part in zip(self.heads, parts))

    def loss_from_embeddings(self, embeddings: tuple[torch.Tensor, ...], batch: Batch) -> Output:
        """The pairwise loss over the whole batch (under torchrun, every process's rows, gathered with gradient)."""
        gathered = [gather(part, "with_grad") for part in embeddings]
        scale = self.logit_scale
        loss = pairwise_clip_loss(gathered, scale)
        if self.reduction == "sum":
            pairs = len(gathered) * (len(gathered) - 1) // 2
            loss = loss * pairs
        return Output(loss=loss, logs={"loss": float(loss.detach()), "logit_scale": float(scale.detach())})

    def forward(self, batch: Batch) -> Output:
        return self.loss_from_embeddings(self.embeddings(batch), batch)

"""TS2Vec (Yue et al., AAAI 2022): hierarchical contrast of overlapping crops of a series.

Each training series is cut into two random crops that overlap
(:func:`contrastkit.views.series.contextual_crop_pair`: "contextual consistency");
both go through the same per-timestamp encoder (with its random timestamp mask),
and the representations of the overlapping timestamps are contrasted with
:func:`contrastkit.functional.hierarchical_contrastive`, instance-wise and over
time, at every max-pool scale. Downstream, a series is represented by the max over
time of the encoder's output on the whole series, computed (as in TS2Vec) with an
equal-weight average of the encoder's weights over all training steps
(``torch.optim.swa_utils.AveragedModel``).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional.hierarchical import hierarchical_contrastive
from contrastkit.methods.base import Method, Output
from contrastkit.nn.series import DilatedConvEncoder, SeriesInstanceEncoder
from contrastkit.views.series import contextual_crop_pair


class TS2Vec(Method):
    """TS2Vec.

    Args:
        encoder: a per-timestamp series encoder
            (:class:`~contrastkit.nn.series.DilatedConvEncoder`).
        views: a pair of series views applied to the two crops (TS2Vec: identity;
            any :mod:`contrastkit.views.series` preset composes).
        alpha: weight of the instance-wise term of the loss (0.5).
        temporal_unit: first pyramid scale with the temporal term (0).
        max_train_length: longer training series are cut to a random window of this
            many timestamps first (TS2Vec: 3000).
        average_weights: embed with the running equal-weight average of the encoder
            (TS2Vec's ``AveragedModel``; default ``True``).
    """

    modalities = frozenset({"series"})

    def __init__(
        self,
        encoder: nn.Module,
        views: tuple[nn.Module, nn.Module],
        *,
        alpha: float = 0.5,
        temporal_unit: int = 0,
        max_train_length: int = 3000,
        average_weights: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(encoder, DilatedConvEncoder):
            raise ValueError(
                f"{type(self).__name__}: expected a per-timestamp series encoder (DilatedConvEncoder), "
                f"got {type(encoder).__name__}"
            )
        if len(views) != 2:
            raise ValueError(f"{type(self).__name__}: expected a pair of view transforms, got {len(views)}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"{type(self).__name__}: expected alpha in [0, 1], got {alpha}")
        if temporal_unit < 0 or max_train_length < 2 ** (temporal_unit + 1):
            raise ValueError(
                f"{type(self).__name__}: expected temporal_unit >= 0 and max_train_length >= 2**(temporal_unit+1), "
                f"got {temporal_unit} and {max_train_length}"
            )
        self.alpha, self.temporal_unit, self.max_train_length = float(alpha), int(temporal_unit), int(max_train_length)
        self.view_a, self.view_b = views
        self.encoder = SeriesInstanceEncoder(encoder)
        self.average_weights = bool(average_weights)
        if self.average_weights:
            self.averaged = copy.deepcopy(self.encoder).requires_grad_(False)
            self.register_buffer("averaged_steps", torch.zeros((), dtype=torch.long))

    @property
    def timestamp_encoder(self) -> DilatedConvEncoder:
        """The per-timestamp network being trained."""
        return self.encoder.encoder  # type: ignore[return-value]

    @property
    def embedding_encoder(self) -> DilatedConvEncoder:
        """The per-timestamp network whose max-pooled outputs :meth:`embed` returns: the averaged
        copy once trained with ``average_weights`` (what ``contrastkit export`` writes)."""
        if self.average_weights and int(self.averaged_steps) > 0:
            return self.averaged.encoder  # type: ignore[return-value]
        return self.timestamp_encoder

    def check_batch(self, batch: Batch) -> None:
        super().check_batch(batch)
        x = batch.inputs
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{type(self).__name__}: expected series batches [B, C, T], got {got}")
        if x.shape[-1] < 2 ** (self.temporal_unit + 1):
            raise ValueError(
                f"{type(self).__name__}: series of length {x.shape[-1]} are shorter than the smallest crop "
                f"2**(temporal_unit+1) = {2 ** (self.temporal_unit + 1)}"
            )

    def _training_window(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] <= self.max_train_length:
            return x
        start = int(torch.randint(0, x.shape[-1] - self.max_train_length + 1, ()))
        return x[..., start : start + self.max_train_length]

    def crop_pair(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """The two overlapping crops of ``x`` (through the views) and the overlap length."""
        x_a, x_b, overlap = contextual_crop_pair(self._training_window(x), temporal_unit=self.temporal_unit)
        return self.view_a(x_a), self.view_b(x_b), overlap

    def contrast(self, x_a: torch.Tensor, x_b: torch.Tensor, overlap: int) -> torch.Tensor:
        """Hierarchical loss of the overlapping timestamps: the last ``overlap`` of ``x_a``, the first of ``x_b``."""
        z_a = self.timestamp_encoder(x_a)[:, -overlap:]
        z_b = self.timestamp_encoder(x_b)[:, :overlap]
        return hierarchical_contrastive(z_a, z_b, alpha=self.alpha, temporal_unit=self.temporal_unit)

    def forward(self, batch: Batch) -> Output:
        self.check_batch(batch)
        x_a, x_b, overlap = self.crop_pair(batch.inputs)
        loss = self.contrast(x_a, x_b, overlap)
        return Output(loss, {"loss": float(loss.detach()), "crop": float(overlap)})

    @torch.no_grad()
    def on_step_end(self, step: int, total_steps: int) -> None:
        """Fold the new encoder weights into the equal-weight running average."""
        if not self.average_weights:
            return
        count = int(self.averaged_steps)
        for average, current in zip(self.averaged.parameters(), self.encoder.parameters()):
            average.add_(current.detach() - average, alpha=1.0 / (count + 1))
        for average, current in zip(self.averaged.buffers(), self.encoder.buffers()):
            average.copy_(current)
        self.averaged_steps += 1

    @torch.no_grad()
    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """Instance representations ``[B, D]``: max over observed time, averaged weights once trained."""
        if self.average_weights and int(self.averaged_steps) > 0:
            self.averaged.eval()
            return self.averaged(inputs)
        return self.encoder(inputs)

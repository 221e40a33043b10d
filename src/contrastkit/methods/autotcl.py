"""AutoTCL (METHODS.md #3): a learned, per-timestamp augmentation on top of TS2Vec.

An augmentation network looks at the series and outputs, per timestamp, a keep
logit ``w_h`` (the "factor" ``h``) and a scale ``g in (0, 1)`` per channel (the
"transform" ``g``). The positive view is ``v = g * m * x`` with ``m`` a binary mask
sampled from a hard-concrete distribution (Louizos et al., 2018):
``u ~ U(b, 1-b)``, ``s = sigmoid((log u - log(1-u) + w_h) / t)``, stretched to
``[gamma, zeta] = [-0.05, 1]`` and clipped to ``[0, 1]``, then thresholded at 0.5
with a straight-through gradient.

Training alternates two objectives, both computed in every step of the built-in
trainer (each only reaches its own parameters):

* encoder (TS2Vec's loss): the original series and its augmented view are cropped
  at the same random overlapping positions; the hierarchical contrastive loss
  compares crop ``a`` of ``x`` with crop ``b`` of ``v`` (``v`` detached);
* augmenter ("PRI", encoder frozen: its weights are detached in a functional call):
  ``MMD(enc(x), enc(v)) + reg_weight * relu(mean(keep) - 0.4) +
  consistency_weight * mean((keep_t - keep_{t+1})^2)`` — views must stay close to
  the originals in representation space while dropping timestamps, with a smooth
  mask. It runs every ``augmenter_every`` steps, with a learning rate
  ``augmenter_lr_scale`` times the encoder's (AutoTCL: meta-lr 0.01 vs 1e-3).

Simplification, said plainly: the temporal-consistency term here is a smoothness
penalty on adjacent keep probabilities (AutoTCL's own term also lets distant
timestamps differ); the augmentation network is a 3-block dilated convolutional
encoder of width 16, as in the paper.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from contrastkit.data.batch import Batch
from contrastkit.functional.geometry import mmd
from contrastkit.methods.base import Output
from contrastkit.methods.ts2vec import TS2Vec
from contrastkit.nn.series import DilatedConvEncoder, max_pool_time, observed_timestamps
from contrastkit.views.series import contextual_crop_pair


class AugmentationNetwork(nn.Module):
    """AutoTCL's parametric augmentation ``x -> v = g * m * x``.

    Args:
        in_channels: channels ``C`` of the series.
        width: width of the dilated convolutional trunk (16).
        depth: hidden blocks of the trunk (3).
        temperature: hard-concrete temperature ``t`` (2/3, Louizos et al.).
        stretch: ``(gamma, zeta)`` of the hard-concrete stretch (``(-0.05, 1.0)``).
        bound: ``b`` of ``u ~ U(b, 1 - b)`` (1e-3).
    """

    def __init__(
        self,
        in_channels: int,
        *,
        width: int = 16,
        depth: int = 3,
        temperature: float = 2.0 / 3.0,
        stretch: tuple[float, float] = (-0.05, 1.0),
        bound: float = 1e-3,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"AugmentationNetwork: expected temperature > 0, got {temperature}")
        if not stretch[0] < 0 < 1 <= stretch[1]:
            raise ValueError(f"AugmentationNetwork: expected stretch (gamma < 0, zeta >= 1), got {stretch}")
        if not 0 < bound < 0.5:
            raise ValueError(f"AugmentationNetwork: expected bound in (0, 0.5), got {bound}")
        self.trunk = DilatedConvEncoder(in_channels, output_dim=width, hidden_dim=width, depth=depth,
                                        mask_mode="all_true", dropout=0.0)  # fmt: skip
        self.keep_head = nn.Linear(width, 1)
        self.scale_head = nn.Linear(width, in_channels)
        self.temperature, self.stretch, self.bound = float(temperature), (float(stretch[0]), float(stretch[1])), float(bound)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(v, keep_probability [B, T], mask [B, T])`` for ``x [B, C, T]``.

        In training mode the mask is sampled (hard concrete, straight-through); in
        evaluation mode it is the deterministic ``sigmoid(w_h)`` stretched and
        thresholded.
        """
        h = self.trunk(x)  # [B, T, width]
        logit = self.keep_head(h).squeeze(-1)
        scale = torch.sigmoid(self.scale_head(h)).transpose(1, 2)  # [B, C, T]
        if self.training:
            u = torch.empty_like(logit).uniform_(self.bound, 1 - self.bound)
            soft = torch.sigmoid((torch.log(u) - torch.log1p(-u) + logit) / self.temperature)
        else:
            soft = torch.sigmoid(logit)
        gamma, zeta = self.stretch
        soft = (soft * (zeta - gamma) + gamma).clamp(0.0, 1.0)
        mask = (soft > 0.5).to(soft.dtype) + (soft - soft.detach())  # exactly 0/1 forward, soft gradient
        # Multiply the filled series and put the NaN padding back afterwards: a product with
        # NaN would send NaN gradients (0 * NaN) into the scale and mask heads.
        missing = torch.isnan(x)
        v = scale * mask.unsqueeze(1) * torch.nan_to_num(x, nan=0.0)
        return v.masked_fill(missing, float("nan")), torch.sigmoid(logit), mask


class AutoTCL(TS2Vec):
    """TS2Vec with AutoTCL's learned augmentation as the second view.

    Args:
        encoder, views: as :class:`~contrastkit.methods.ts2vec.TS2Vec`.
        augmenter_width: width of the augmentation network (16).
        augmenter_every: run the augmenter's objective every this many steps (1).
        augmenter_lr_scale: its learning rate relative to the encoder's (10:
            AutoTCL's meta-lr 0.01 against lr 1e-3).
        reg_weight: weight of ``relu(mean keep - keep_target)`` (1e-3).
        keep_target: the keep fraction above which the regulariser acts (0.4).
        consistency_weight: weight of the temporal smoothness of the keep
            probabilities (1e-3).
        **ts2vec_options: :class:`~contrastkit.methods.ts2vec.TS2Vec`'s options (``alpha``,
            ``temporal_unit``, ``max_train_length``, ``average_weights``).
    """

    def __init__(
        self,
        encoder: nn.Module,
        views: tuple[nn.Module, nn.Module],
        *,
        augmenter_width: int = 16,
        augmenter_every: int = 1,
        augmenter_lr_scale: float = 10.0,
        reg_weight: float = 1e-3,
        keep_target: float = 0.4,
        consistency_weight: float = 1e-3,
        **ts2vec_options: Any,
    ) -> None:
        super().__init__(encoder, views, **ts2vec_options)
        if augmenter_every < 1 or augmenter_lr_scale <= 0 or reg_weight < 0 or consistency_weight < 0:
            raise ValueError(
                "AutoTCL: expected augmenter_every >= 1, augmenter_lr_scale > 0 and non-negative weights, got "
                f"{augmenter_every}, {augmenter_lr_scale}, {reg_weight}, {consistency_weight}"
            )
        if not 0.0 <= keep_target <= 1.0:
            raise ValueError(f"AutoTCL: expected keep_target in [0, 1], got {keep_target}")
        self.augmenter = AugmentationNetwork(self.timestamp_encoder.in_channels, width=augmenter_width)
        self.augmenter_every, self.augmenter_lr_scale = int(augmenter_every), float(augmenter_lr_scale)
        self.reg_weight, self.keep_target, self.consistency_weight = float(reg_weight), float(keep_target), float(consistency_weight)
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))

    def lr_scales(self) -> dict[str, float]:
        """Learning-rate multipliers by parameter-name prefix (read by the trainer's optimiser)."""
        return {"augmenter.": self.augmenter_lr_scale}

    def _frozen_instance(self, x: torch.Tensor) -> torch.Tensor:
        """Instance representation of ``x`` through the encoder with detached weights, no timestamp mask."""
        encoder = self.timestamp_encoder
        weights = {name: p.detach() for name, p in encoder.named_parameters()}
        keep_all = torch.ones(x.shape[0], x.shape[-1], dtype=torch.bool, device=x.device)
        z = functional_call(encoder, weights, (x,), {"mask": keep_all})
        return max_pool_time(z, observed_timestamps(x))

    def augmenter_loss(self, x: torch.Tensor, v: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The augmenter's objective (gradients reach the augmenter only)."""
        with torch.no_grad():
            z_x = self._frozen_instance(x)
        z_v = self._frozen_instance(v)
        observed = observed_timestamps(x)
        mean_keep = (keep * observed).sum() / observed.sum().clamp_min(1)
        smooth = (keep[:, 1:] - keep[:, :-1]).pow(2).mean() if keep.shape[1] > 1 else keep.new_zeros(())
        divergence = mmd(z_x, z_v)
        loss = divergence + self.reg_weight * F.relu(mean_keep - self.keep_target) + self.consistency_weight * smooth
        return loss, {"aug_mmd": float(divergence.detach()), "aug_keep": float(mean_keep.detach())}

    def forward(self, batch: Batch) -> Output:
        self.check_batch(batch)
        x = self._training_window(batch.inputs)
        v, keep, mask = self.augmenter(x)
        channels = x.shape[1]
        # One crop draw for both: crop a of x, crop b of the (detached) augmented view.
        both_a, both_b, overlap = contextual_crop_pair(torch.cat([x, v.detach()], dim=1), temporal_unit=self.temporal_unit)
        x_a, v_b = self.view_a(both_a[:, :channels]), self.view_b(both_b[:, channels:])
        loss = self.contrast(x_a, v_b, overlap)
        logs = {"contrastive": float(loss.detach()), "crop": float(overlap), "mask_kept": float(mask.detach().mean())}
        if int(self.steps_done) % self.augmenter_every == 0:
            aug_loss, aug_logs = self.augmenter_loss(x, v, keep)
            loss = loss + aug_loss
            logs.update(aug_logs)
        logs["loss"] = float(loss.detach())
        return Output(loss, logs)

    @torch.no_grad()
    def on_step_end(self, step: int, total_steps: int) -> None:
        super().on_step_end(step, total_steps)
        self.steps_done += 1

"""Audio <-> sheet-music contrast (seed #11): cross-modal InfoNCE, and the paper's two-stage pipeline.

Carvalho, Widmer et al. (2023), "Self-Supervised Contrastive Learning for Robust Audio–Sheet Music
Retrieval Systems" (ACM MMSys; official code github.com/luisfvc/ucasr). Their pipeline:

1. **Pretrain each tower alone** with SimCLR (NT-Xent) on *unpaired* data of its own modality
   (MAESTRO recordings; rendered score pages), two augmented views per snippet, through an
   MLP head (``Linear(d, 512) -> BatchNorm -> ReLU -> Linear(512, 32)``, L2-normalised);
2. **Fine-tune both towers on pairs** with a linear head each (32-d) and a cross-modal loss.

:class:`AudioSheetCLIP` does stage 2 with CLIP's symmetric InfoNCE
(:func:`~contrastkit.functional.contrastive.clip_loss`, learnable temperature initialised to
0.07 and clamped at 100, as :class:`~contrastkit.methods.clip.CLIP`), or with the paper's loss
(``objective="triplet"``, see below); ``pretrain_steps=K`` puts stage 1 in front, in the same
run: for the first ``K`` optimiser steps the loss is NT-Xent within each modality
(:func:`~contrastkit.functional.contrastive.nt_xent` on two views of the audio, plus the same on
two views of the sheets, averaged) and the audio--sheet pairing is never looked at; from step
``K`` on it is the cross-modal loss. Under torchrun every process's rows are gathered with
gradient (as CLIP and SimCLR do), and :meth:`AudioSheetCLIP.embeddings` / :meth:`AudioSheetCLIP.loss_from_embeddings` split the
step for gradient caching in both stages.

Deviations from the official code (``ucasr/models/vgg_model.py``, ``utils/losses.py``,
``wrappers.py``, ``config/*.yaml``), stated:

* **Cross-modal loss.** The paper fine-tunes with a pairwise hinge (``triplet_loss``: for
  sheet row ``i`` and every audio column ``j != i``, ``max(0, margin - (s_ii - s_ij))`` with
  ``s = x y^T`` of normalised embeddings, mean over the ``B(B-1)`` pairs, margin 0.6, one
  direction, sheet -> audio), then refines a CCA layer on the embeddings. The default here is
  CLIP's InfoNCE (what issue 16 asks for); ``objective="triplet"`` is the paper's hinge, same
  reduction and margin. The CCA layer is not built.
* **Pretraining data.** The paper pretrains on other, unpaired corpora. Here stage 1 uses the
  same training snippets with the pairing ignored (each modality alone): no unpaired music
  corpus of the same style ships offline. The comparison it allows is pretrain-then-fine-tune
  vs from scratch *at the same total number of steps*, not the paper's extra-data gain.
* **Pretraining temperature.** Their NT-Xent takes ``temperature=loss_margin = 0.6``
  (``get_model``): kept as the default ``pretrain_temperature=0.6``.
* **Heads.** Pretraining MLP head as theirs (hidden 512, batch norm, ReLU, 32-d, normalised),
  discarded after stage 1; fine-tuning head linear to ``embed_dim`` (32), as theirs. Their
  He-uniform init (``kaiming_uniform_(nonlinearity='linear')``) is not applied: PyTorch's
  default init.
* **Towers** smaller than theirs (:mod:`contrastkit.nn.paired_towers`), **augmentations** only a
  time shift of the audio and a translation of the sheet
  (:mod:`contrastkit.modalities.paired_tensors`; theirs add tempo, synth, noise, EQ, masks,
  scaling), **optimiser** the trainer's (their Adam, lr 4e-4 / 1e-3, wd 1e-5, early stopping).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional.contrastive import clip_loss, nt_xent
from contrastkit.methods.base import Method, Output
from contrastkit.negatives import gather

__all__ = ["AudioSheetCLIP", "pairwise_hinge"]

OBJECTIVES = ("clip", "triplet")


def pairwise_hinge(queries: torch.Tensor, candidates: torch.Tensor, margin: float = 0.6) -> torch.Tensor:
    r"""The paper's cross-modal hinge: :math:`\frac{1}{B(B-1)}\sum_{i \ne j}\max(0, m - (s_{ii} - s_{ij}))`.

    ``s = \hat q \hat c^T`` with L2-normalised rows; row ``i``'s positive is column ``i``. One
    direction (queries -> candidates), as ``ucasr/utils/losses.py::triplet_loss``.

    Args:
        queries, candidates: ``[B, D]`` paired rows, ``B >= 2``.
        margin: ``m`` (paper: 0.6).
    """
    if queries.shape != candidates.shape or queries.dim() != 2 or queries.shape[0] < 2:
        raise ValueError(f"pairwise_hinge: expected two [B, D] tensors with B >= 2, got {tuple(queries.shape)} and "
                         f"{tuple(candidates.shape)}")
    scores = F.normalize(queries, dim=-1) @ F.normalize(candidates, dim=-1).T
    off = ~torch.eye(scores.shape[0], dtype=torch.bool, device=scores.device)
    gaps = (scores.diagonal()[:, None] - scores)[off]
    return (margin - gaps).clamp_min(0).mean()


def _zero_term(parameters: list[torch.Tensor]) -> torch.Tensor | float:
    """``0 * sum(parameters)``: the parameters a stage does not use still take part in its loss, so DDP
    (which the trainer builds without ``find_unused_parameters``) sees a gradient, zero, for each."""
    trainable = [parameter for parameter in parameters if parameter.requires_grad]
    return sum(parameter.sum() for parameter in trainable) * 0.0 if trainable else 0.0


class AudioSheetCLIP(Method):
    """Cross-modal contrast between an audio tower and a sheet tower (optionally after per-modality SimCLR).

    Args:
        encoder: an :class:`~contrastkit.nn.paired_towers.AudioSheetTowers` (``encode_audio``,
            ``encode_sheet``, ``audio_features``, ``sheet_features``).
        views: ``(audio view, sheet view)``.
        temperature: CLIP's initial temperature (0.07).
        learn_temperature: learn ``log(1/temperature)`` (default) or keep it fixed.
        max_logit_scale: the clamp on the logit scale (CLIP: 100).
        objective: ``"clip"`` (symmetric InfoNCE) or ``"triplet"`` (the paper's sheet -> audio hinge).
        margin: the hinge margin (paper: 0.6).
        pretrain_steps: optimiser steps of per-modality SimCLR before the cross-modal loss (0: none).
        pretrain_temperature: NT-Xent's temperature in stage 1 (paper's code: 0.6).
        pretrain_hidden: the pretraining MLP head's hidden width (paper: 512).
        pretrain_batch_norm: batch norm in that head (paper: yes; ``False`` makes gradient caching and
            DDP exact in stage 1 when the towers have no batch norm either).
    """

    modalities = frozenset({"audio-sheet"})

    def __init__(self, encoder: nn.Module, views: tuple[nn.Module, nn.Module], *, temperature: float = 0.07,
                 learn_temperature: bool = True, max_logit_scale: float = 100.0, objective: str = "clip",
                 margin: float = 0.6, pretrain_steps: int = 0, pretrain_temperature: float = 0.6,
                 pretrain_hidden: int = 512, pretrain_batch_norm: bool = True) -> None:
        super().__init__()
        for name in ("encode_audio", "encode_sheet", "audio_features", "sheet_features"):
            if not callable(getattr(encoder, name, None)):
                raise ValueError(f"encoder: audio-sheet methods need an encoder with {name} "
                                 f"(encoder=audio-sheet-towers), got {type(encoder).__name__}")
        if len(views) != 2:
            raise ValueError(f"views: expected (audio view, sheet view), got {len(views)} views")
        if not temperature > 0 or not pretrain_temperature > 0:
            raise ValueError(f"method.temperature, method.pretrain_temperature: expected positive numbers, "
                             f"got {temperature} and {pretrain_temperature}")
        if max_logit_scale < 1.0 / temperature:
            raise ValueError(f"method.max_logit_scale: expected at least 1/temperature = {1 / temperature:.3g}, "
                             f"got {max_logit_scale}")
        if objective not in OBJECTIVES:
            raise ValueError(f"method.objective: expected one of {', '.join(OBJECTIVES)}, got {objective!r}")
        if isinstance(pretrain_steps, bool) or int(pretrain_steps) < 0:
            raise ValueError(f"method.pretrain_steps: expected a non-negative integer, got {pretrain_steps!r}")
        self.encoder = encoder
        self.audio_view, self.sheet_view = views
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)),
                                            requires_grad=bool(learn_temperature))
        self.max_logit_scale, self.objective, self.margin = float(max_logit_scale), objective, float(margin)
        self.pretrain_steps, self.pretrain_temperature = int(pretrain_steps), float(pretrain_temperature)
        self.pretrain_heads = nn.ModuleDict()
        if self.pretrain_steps:
            for name, dim in (("audio", encoder.audio_tower.output_dim), ("sheet", encoder.sheet_tower.output_dim)):
                norm = nn.BatchNorm1d(int(pretrain_hidden)) if pretrain_batch_norm else nn.Identity()
                self.pretrain_heads[name] = nn.Sequential(nn.Linear(int(dim), int(pretrain_hidden)), norm, nn.ReLU(),
                                                          nn.Linear(int(pretrain_hidden), int(encoder.output_dim)))
        # A buffer, so a resumed run knows which stage it is in.
        self.register_buffer("steps_done", torch.tensor(0, dtype=torch.long))

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.log_logit_scale.exp().clamp(max=self.max_logit_scale)

    @property
    def pretraining(self) -> bool:
        """Whether the next step is a stage-1 (per-modality SimCLR) step."""
        return int(self.steps_done) < self.pretrain_steps

    def check_batch(self, batch: Batch) -> None:
        inputs = batch.inputs
        if not isinstance(inputs, dict) or "audio" not in inputs or "sheet" not in inputs:
            raise ValueError("audio-sheet methods expect batches with 'audio' and 'sheet' inputs "
                             "(an audio-sheet data set such as data=music-sheets)")
        if inputs["audio"].shape[0] < 2:
            raise ValueError(f"{type(self).__name__}: a batch needs at least 2 pairs, got {inputs['audio'].shape[0]}")

    def forward(self, batch: Batch) -> Output:
        return self.loss_from_embeddings(self.embeddings(batch), batch)

    def embeddings(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        """Stage 2: ``(audio, sheet)`` embeddings; stage 1: ``(audio view 1, audio view 2, sheet view 1,
        sheet view 2)`` projections (one row per batch row each, so gradient caching splits either)."""
        self.check_batch(batch)
        audio, sheet = batch.inputs["audio"], batch.inputs["sheet"]
        if self.pretraining:
            towers = self.encoder
            audio_views = self.pretrain_heads["audio"](towers.audio_features(torch.cat([self.audio_view(audio),
                                                                                        self.audio_view(audio)])))
            sheet_views = self.pretrain_heads["sheet"](towers.sheet_features(torch.cat([self.sheet_view(sheet),
                                                                                        self.sheet_view(sheet)])))
            return (*audio_views.chunk(2), *sheet_views.chunk(2))
        return self.encoder.encode_audio(self.audio_view(audio)), self.encoder.encode_sheet(self.sheet_view(sheet))

    def loss_from_embeddings(self, embeddings: tuple[torch.Tensor, ...], batch: Batch) -> Output:
        """The stage's loss over the whole batch (every process's rows under torchrun, gathered with gradient)."""
        parts = [gather(part, "with_grad") for part in embeddings]
        if len(parts) == 4:
            audio = nt_xent(parts[0], parts[1], self.pretrain_temperature)
            sheet = nt_xent(parts[2], parts[3], self.pretrain_temperature)
            idle = [self.log_logit_scale, *self.encoder.audio_head.parameters(), *self.encoder.sheet_head.parameters()]
            return Output(loss=(audio + sheet) / 2 + _zero_term(idle),
                          logs={"pretrain_audio": float(audio.detach()), "pretrain_sheet": float(sheet.detach())})
        audio, sheet = parts
        idle = list(self.pretrain_heads.parameters())
        if self.objective == "triplet":
            return Output(loss=pairwise_hinge(sheet, audio, self.margin) + _zero_term([*idle, self.log_logit_scale]))
        scale = self.logit_scale
        return Output(loss=clip_loss(audio, sheet, scale) + _zero_term(idle),
                      logs={"logit_scale": float(scale.detach())})

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.steps_done.fill_(int(step) + 1)  # the trainer passes the 0-based index of the step just taken

    @torch.no_grad()
    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """Normalised embeddings of a sheet batch ``[B, 1, H, W]`` or an audio batch ``[B, n_mels, frames]``."""
        return F.normalize(self.encoder(inputs), dim=-1)

    def encode_audio(self, audio: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.encoder.encode_audio(audio), dim=-1)

    def encode_sheet(self, sheets: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.encoder.encode_sheet(sheets), dim=-1)

"""M3CoL (Kumar, Singhal et al., 2024, "Multimodal Mixup Contrastive Learning") on image–text pairs.

The loss is CLIP's symmetric InfoNCE plus ``lambda_mixup`` times the M3Co mixup terms of
:mod:`contrastkit.functional.m3col`, on the two towers' embeddings:

* for the first ``mixup_pct`` of the steps: ``M3Co(mix(texts), images) + M3Co(mix(images), texts)``:
  each modality's embeddings mixed (a fraction ``mixup_s_thresh`` of rows, ``lambda ~
  Beta(0.15, 0.15)``, a random partner), aligned with the other modality's embeddings of
  both sources through soft targets (``tau = 0.1``, bidirectional);
* afterwards: ``SoftCLIP(texts, images) + SoftCLIP(images, texts)`` (targets
  ``softmax(f fᵀ / 0.125)``), the official schedule (``train_image_text.py``: M3Co while
  ``epoch < int(mixup_pct * num_epoch)``; here steps instead of epochs).

**Deviation: no supervised heads.** The paper's total loss is ``CE(text head) + CE(image
head) + CE(fusion head on [t; v]) + lambda_mixup (M3Co_t + M3Co_v)`` with class labels, and
inference uses the fusion head. On ``emoji`` the test names are classes never seen in
training, so class heads cannot transfer and a fusion head of an (image, text) pair does
not retrieve; the supervised part is replaced by CLIP's InfoNCE (the contrastive alignment
every other row of the emoji benchmark trains with), and M3Co / SoftCLIP are added with
the official weight 0.1. What is measured is therefore "does M3Co's mixup regulariser
help CLIP", not the paper's classification setting.

Other choices, compared with the official ``model/model.py`` and ``model/utils.py``
(github.com/RaghavSinghal10/M3CoL):

* Mixing is on the embeddings (the towers' outputs before normalisation), as the official
  code mixes the encoders' ``[CLS]`` outputs, never the inputs. The towers' heads are
  linear, so mixing the embeddings equals mixing the tower features. Because the loss is a
  function of the embeddings alone, gradient caching (``train.grad_cache_micro_batch``) is
  exact and under torchrun the mixing runs on the gathered global batch.
* The "fixed" side of each M3Co term is the other modality's clean embeddings (the paper);
  the official code mixes both clones in place first, so each term sees the other side
  already mixed. ``official_in_place_mixing=true`` reproduces that.
* Targets add ``lambda_i`` and ``1 - lambda_i`` where ``pi(i) = i`` (the official code
  overwrites; see :mod:`contrastkit.functional.m3col`).
* The draws (permutation, ``lambda``, which rows mix) come from a generator seeded by the
  method's ``mix_seed`` buffer (drawn from torch's RNG when the method is built, so a
  recipe seed fixes it) and a call counter buffer: every process draws the same numbers on
  the same global batch without communicating, and a resumed run continues the sequence.
  The official code draws from torch's global RNG.
* The official image and text features have the same size (768) and no projection; here
  each tower has its linear head to ``encoder.embed_dim`` (the towers of the CLIP rows).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional.contrastive import clip_loss
from contrastkit.functional.m3col import m3co_loss, mixco_mix, soft_clip_loss
from contrastkit.methods.base import Output
from contrastkit.methods.clip import CLIP
from contrastkit.negatives import gather

__all__ = ["M3CoL"]


class M3CoL(CLIP):
    """CLIP + ``lambda_mixup`` x (M3Co mixup contrast, then SoftCLIP) on image–text towers.

    Args:
        encoder, views: see :class:`~contrastkit.methods.clip.ImageTextMethod` (``image-text-towers``).
        lambda_mixup: weight of the M3Co / SoftCLIP terms (official 0.1).
        mixup_beta: ``lambda ~ Beta(mixup_beta, mixup_beta)`` (official 0.15).
        mixup_s_thresh: fraction of rows mixed (official 0.5).
        mixup_temperature: M3Co's ``tau`` (official 0.1).
        soft_clip_temperature: SoftCLIP's temperature (official 0.125).
        mixup_pct: fraction of the steps with M3Co before SoftCLIP takes over (official 0.33;
            1.0: M3Co throughout).
        official_in_place_mixing: contrast each mixture with the other modality's *mixed*
            embeddings, as the official code's in-place mixing does.
        temperature, learn_temperature, max_logit_scale: CLIP's logit scale (see :class:`CLIP`).
    """

    def __init__(self, encoder: nn.Module, views: tuple[nn.Module, nn.Module], *, lambda_mixup: float = 0.1,
                 mixup_beta: float = 0.15, mixup_s_thresh: float = 0.5, mixup_temperature: float = 0.1,
                 soft_clip_temperature: float = 0.125, mixup_pct: float = 0.33,
                 official_in_place_mixing: bool = False, temperature: float = 0.07, learn_temperature: bool = True,
                 max_logit_scale: float = 100.0) -> None:
        super().__init__(encoder, views, temperature=temperature, learn_temperature=learn_temperature,
                         max_logit_scale=max_logit_scale)
        for name, value in (("lambda_mixup", lambda_mixup), ("mixup_beta", mixup_beta),
                            ("mixup_temperature", mixup_temperature), ("soft_clip_temperature", soft_clip_temperature)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"method.{name}: expected a positive number, got {value!r}")
        for name, value in (("mixup_s_thresh", mixup_s_thresh), ("mixup_pct", mixup_pct)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"method.{name}: expected a number in [0, 1], got {value!r}")
        self.lambda_mixup, self.mixup_beta, self.mixup_s_thresh = float(lambda_mixup), float(mixup_beta), float(
            mixup_s_thresh)
        self.mixup_temperature, self.soft_clip_temperature = float(mixup_temperature), float(soft_clip_temperature)
        self.mixup_pct, self.official_in_place_mixing = float(mixup_pct), bool(official_in_place_mixing)
        # Buffers: saved in checkpoints and broadcast by DDP, so every process and a resumed run agree.
        self.register_buffer("mix_seed", torch.randint(0, 2**62, (), dtype=torch.long))
        self.register_buffer("mix_calls", torch.zeros((), dtype=torch.long))
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        self.register_buffer("total_steps", torch.zeros((), dtype=torch.long))

    @property
    def soft_clip_phase(self) -> bool:
        """Whether the official schedule has switched from M3Co to SoftCLIP (unknown length: not yet)."""
        total = int(self.total_steps)
        return total > 0 and int(self.steps_done) >= int(self.mixup_pct * total)

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.steps_done.fill_(step + 1)
        self.total_steps.fill_(total_steps)

    def draw_mixing(self, rows: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(permutation [rows], lambdas [rows])`` of one modality: ``lambda ~ Beta`` on a fraction
        ``mixup_s_thresh`` of rows (``rand <= s_thresh``, as official), 1 elsewhere."""
        rng = np.random.default_rng([int(self.mix_seed), int(self.mix_calls)])
        self.mix_calls += 1
        permutation = torch.from_numpy(rng.permutation(rows)).to(device)
        lambdas = rng.beta(self.mixup_beta, self.mixup_beta, rows)
        lambdas[rng.random(rows) > self.mixup_s_thresh] = 1.0
        return permutation, torch.from_numpy(lambdas).to(device)

    def forward(self, batch: Batch) -> Output:
        return self.loss_from_embeddings(self.embeddings(batch), batch)

    def loss_from_embeddings(self, embeddings: tuple[torch.Tensor, ...], batch: Batch) -> Output:
        """CLIP + ``lambda_mixup`` (M3Co or SoftCLIP) over the global batch (gathered with gradient)."""
        images, texts = (gather(part, "with_grad") for part in embeddings[:2])
        scale = self.logit_scale
        contrastive = clip_loss(images, texts, scale)
        if self.soft_clip_phase:
            auxiliary = (soft_clip_loss(texts, images, temperature=self.soft_clip_temperature)
                         + soft_clip_loss(images, texts, temperature=self.soft_clip_temperature))
        else:
            text_permutation, text_lambdas = self.draw_mixing(texts.shape[0], texts.device)
            image_permutation, image_lambdas = self.draw_mixing(images.shape[0], images.device)
            mixed_texts = mixco_mix(texts, text_permutation, text_lambdas)
            mixed_images = mixco_mix(images, image_permutation, image_lambdas)
            fixed_images, fixed_texts = (mixed_images, mixed_texts) if self.official_in_place_mixing else (images, texts)
            auxiliary = (m3co_loss(mixed_texts, fixed_images, text_permutation, text_lambdas,
                                   temperature=self.mixup_temperature)
                         + m3co_loss(mixed_images, fixed_texts, image_permutation, image_lambdas,
                                     temperature=self.mixup_temperature))
        loss = contrastive + self.lambda_mixup * auxiliary
        return Output(loss=loss, logs={"logit_scale": float(scale.detach()), "clip": float(contrastive.detach()),
                                       "mixup": float(auxiliary.detach())})

"""Lightning integration: any contrastkit method as a ``LightningModule``.

:class:`MethodModule` wraps a :class:`~contrastkit.methods.base.Method` so that a user's own
``lightning.Trainer`` trains it: their callbacks, loggers, precision plugins, checkpointing
and strategies (``ddp`` included) apply unchanged::

    import lightning
    from torch.utils.data import DataLoader
    from contrastkit.data import collate_batches, load_dataset
    from contrastkit.lightning import MethodModule

    module = MethodModule(method, optimizer="adamw", lr=1e-3)
    loader = DataLoader(load_dataset("digits").train, batch_size=64, shuffle=True, collate_fn=collate_batches)
    lightning.Trainer(max_steps=100, accelerator="cpu").fit(module, loader)

What the module does for the method, as contrastkit's own trainer does:

* ``training_step`` calls ``method(batch)`` and returns its loss; the method's logs are
  logged as ``train/KEY`` (the loss as ``train/loss``);
* after each optimiser step it calls ``method.on_step_end(step, total_steps)`` (momentum
  encoders, queues, weight averages), once per step whatever the gradient accumulation;
* ``optimizer`` is a contrastkit optimiser name (``adamw``, ``sgd``, ``lars``: weight decay
  on weights only, the method's ``lr_scales`` honoured) or any callable from parameters to
  a ``torch.optim.Optimizer`` (``functools.partial(torch.optim.SGD, lr=0.1)``);
* ``scheduler="cosine"`` is contrastkit's warm-up + cosine schedule over the trainer's
  steps, or a callable from the optimiser to a scheduler stepped every step.

Batches may be contrastkit :class:`~contrastkit.data.Batch` objects (an
:class:`~contrastkit.data.ArrayDataset` with ``collate_fn=collate_batches``), plain tensors,
or ``(inputs, labels)`` tuples from a ``TensorDataset``. Under ``strategy="ddp"`` the
method's cross-device negatives gather over Lightning's process group, so the gradients
equal those of ``contrastkit train`` under ``torchrun`` (tested). Gradient caching
(``train.grad_cache_micro_batch``) is a contrastkit-trainer feature and is not offered here.

Needs the ``lightning`` extra: ``pip install 'contrastkit[lightning]'``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

try:
    import lightning
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "contrastkit.lightning needs Lightning (lightning>=2.2): pip install 'contrastkit[lightning]'"
    ) from error

from contrastkit.data.batch import Batch
from contrastkit.methods.base import Method
from contrastkit.train.optim import OPTIMIZERS, build_optimizer, build_schedule

__all__ = ["MethodModule", "as_batch"]

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], Any]


def as_batch(batch: Any) -> Batch:
    """A contrastkit :class:`Batch` from what a ``DataLoader`` yields.

    ``Batch`` passes through; a tensor becomes ``Batch(inputs)``; ``(inputs,)`` and
    ``(inputs, labels)`` (a ``TensorDataset``) become ``Batch(inputs, labels)``.

    Raises:
        ValueError: for anything else, naming what came.
    """
    if isinstance(batch, Batch):
        return batch
    if isinstance(batch, torch.Tensor):
        return Batch(inputs=batch)
    if isinstance(batch, (tuple, list)) and 1 <= len(batch) <= 2 and all(isinstance(x, torch.Tensor) for x in batch):
        return Batch(inputs=batch[0], labels=batch[1] if len(batch) == 2 else None)
    raise ValueError(f"MethodModule: expected a contrastkit Batch, a tensor or an (inputs, labels) tuple of tensors "
                     f"from the DataLoader, got {type(batch).__name__}")


class MethodModule(lightning.LightningModule):
    """A contrastkit method trained by a ``lightning.Trainer``.

    Args:
        method: the method to train (``build_method(...)`` or any :class:`Method` subclass).
        optimizer: a contrastkit optimiser name (``adamw``, ``sgd``, ``lars``) or a callable
            from the trainable parameters to an optimiser.
        lr: peak learning rate for a named optimiser.
        weight_decay: on weights only, for a named optimiser.
        momentum: for ``sgd`` and ``lars``.
        scheduler: ``None`` (constant rate), ``"cosine"`` (linear warm-up over
            ``warmup_fraction`` of the steps, then cosine decay to ``lr * final_lr_fraction``),
            or a callable from the optimiser to a scheduler stepped once per step.
        warmup_fraction: for ``"cosine"``.
        final_lr_fraction: for ``"cosine"``.
        total_steps: the steps ``on_step_end`` and ``"cosine"`` count towards (momentum
            schedules depend on it); default: the trainer's ``estimated_stepping_batches``.

    Raises:
        ValueError: for something that is not a :class:`Method`, an unknown optimiser name,
            or an unknown scheduler.

    Example:
        >>> module = MethodModule(build_method("byol", encoder, views), optimizer="adamw", lr=1e-3)
        >>> lightning.Trainer(max_steps=5, accelerator="cpu").fit(module, loader)
        >>> module(images)            # embeddings [B, D]: method.embed
    """

    def __init__(
        self,
        method: Method,
        optimizer: str | OptimizerFactory = "adamw",
        *,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        momentum: float = 0.9,
        scheduler: str | SchedulerFactory | None = None,
        warmup_fraction: float = 0.05,
        final_lr_fraction: float = 0.0,
        total_steps: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(method, Method):
            raise ValueError(f"MethodModule: expected a contrastkit Method, got {type(method).__name__}")
        if isinstance(optimizer, str) and optimizer not in OPTIMIZERS:
            raise ValueError(f"MethodModule: optimizer: expected one of {list(OPTIMIZERS)} or a callable, "
                             f"got {optimizer!r}")
        if isinstance(scheduler, str) and scheduler != "cosine":
            raise ValueError(f"MethodModule: scheduler: expected None, 'cosine' or a callable, got {scheduler!r}")
        if total_steps is not None and total_steps < 1:
            raise ValueError(f"MethodModule: total_steps: expected a positive integer, got {total_steps}")
        self.method = method
        self.optimizer_choice = optimizer
        self.lr, self.weight_decay, self.momentum = float(lr), float(weight_decay), float(momentum)
        self.scheduler_choice = scheduler
        self.warmup_fraction, self.final_lr_fraction = float(warmup_fraction), float(final_lr_fraction)
        self.total_steps = total_steps
        self._steps_seen = 0

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """The method's representation of ``inputs``: ``method.embed``, ``[B, D]``."""
        return self.method.embed(inputs)

    def _total_steps(self) -> int:
        if self.total_steps is not None:
            return int(self.total_steps)
        estimated = self.trainer.estimated_stepping_batches
        if not math.isfinite(estimated):
            raise ValueError("MethodModule: the trainer runs without an end (no max_steps or max_epochs); "
                             "pass MethodModule(total_steps=...) so momentum schedules know the length")
        return max(1, int(estimated))

    def training_step(self, batch: Any, batch_index: int) -> torch.Tensor:
        """One forward pass of the method; returns its loss for Lightning to back-propagate."""
        batch = as_batch(batch)
        output = self.method(batch)
        size = int(batch.inputs.shape[0]) if isinstance(batch.inputs, torch.Tensor) else None
        self.log("train/loss", output.loss.detach(), prog_bar=True, batch_size=size)
        for key, value in output.logs.items():
            if key != "loss":
                self.log(f"train/{key}", float(value), batch_size=size)
        return output.loss

    def predict_step(self, batch: Any, batch_index: int) -> torch.Tensor:
        """Embeddings of a batch (``trainer.predict(module, loader)``)."""
        return self.method.embed(as_batch(batch).inputs)

    def on_train_start(self) -> None:
        self._steps_seen = self.trainer.global_step

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_index: int) -> None:
        """``method.on_step_end`` once for each optimiser step taken (not per accumulated batch)."""
        step = self.trainer.global_step
        if step != self._steps_seen:
            self._steps_seen = step
            self.method.on_step_end(step - 1, self._total_steps())

    def configure_optimizers(self) -> Any:
        """The optimiser (and per-step scheduler) ``optimizer`` and ``scheduler`` describe."""
        if isinstance(self.optimizer_choice, str):
            optimizer = build_optimizer(self.optimizer_choice, self.method, lr=self.lr, weight_decay=self.weight_decay,
                                        momentum=self.momentum, lr_scales=self.method.lr_scales())  # fmt: skip
        else:
            optimizer = self.optimizer_choice([p for p in self.method.parameters() if p.requires_grad])
        if self.scheduler_choice is None:
            return optimizer
        if self.scheduler_choice == "cosine":
            total = self._total_steps()
            scheduler = build_schedule(optimizer, total, int(round(self.warmup_fraction * total)),
                                       self.final_lr_fraction)  # fmt: skip
        else:
            scheduler = self.scheduler_choice(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

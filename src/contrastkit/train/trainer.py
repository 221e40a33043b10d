"""The training loop: the only place that owns optimisers, schedules, devices and checkpoints."""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Dataset

from contrastkit.methods.base import Method
from contrastkit.train.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)
from contrastkit.train.distributed import DistributedContext, average_gradients
from contrastkit.train.grad_cache import grad_cache_backward
from contrastkit.train.loader import EpochBatches
from contrastkit.train.metrics_log import MetricsLog
from contrastkit.train.optim import OPTIMIZERS, build_optimizer, build_schedule
from contrastkit.utils.checks import NonFiniteError
from contrastkit.utils.progress import Progress
from contrastkit.utils.schema import bounded
from contrastkit.utils.seed import capture_rng_state

PRECISIONS = ("fp32", "bf16", "auto")


class Preempted(Exception):
    """Training stopped on SIGTERM after writing a checkpoint; the run resumes with ``--resume``."""

    def __init__(self, step: int, run_dir: Path) -> None:
        super().__init__(f"stopped by SIGTERM at step {step}; a checkpoint was written; "
                         f"continue with: contrastkit train --resume {run_dir}")
        self.step, self.run_dir = step, run_dir


def fast_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` runs bfloat16 matmuls/convolutions natively (so autocast pays off).

    CUDA: ``torch.cuda.is_bf16_supported()``. CPU: the AMX-BF16 or AVX512-BF16 instruction
    sets (read from ``/proc/cpuinfo`` on Linux); without them bf16 is emulated and slower.
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                flags = handle.read()
        except OSError:
            return False
        return "amx_bf16" in flags or "avx512_bf16" in flags
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` becomes ``bf16`` where :func:`fast_bfloat16` holds, else ``fp32``."""
    if precision not in PRECISIONS:
        raise ValueError(f"train.precision: expected one of {list(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bf16" if fast_bfloat16(device) else "fp32"
    return precision


@dataclass
class TrainConfig:
    """Training hyper-parameters (the ``train:`` section of a recipe).

    Attributes:
        batch_size: samples per step.
        epochs: passes over the training set (fractions allowed); ignored when ``steps`` is set.
        steps: total optimiser steps; overrides ``epochs``.
        optimizer: ``adamw``, ``sgd`` or ``lars``.
        lr: peak learning rate.
        weight_decay: on weights only.
        momentum: for ``sgd``/``lars``.
        warmup_fraction: fraction of steps with linear warm-up before the cosine decay.
        final_lr_fraction: the cosine schedule ends at ``lr * final_lr_fraction``.
        checkpoint_every: steps between checkpoints (0: only at the end).
        eval_every: steps between periodic evaluations (0: none).
        log_every: steps between ``metrics.jsonl`` records.
        keep_last: checkpoints kept on disk.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps`` ...
        precision: ``fp32``; ``bf16`` for bfloat16 autocast of the forward pass (weights and
            optimiser stay fp32; 1.5-4x faster on CPUs with AMX/AVX512-BF16 and on recent GPUs);
            ``auto`` picks ``bf16`` where the device runs it natively, else ``fp32``.
        grad_cache_micro_batch: embed the batch in row blocks of this size with gradient
            caching (:mod:`contrastkit.train.grad_cache`), so ``batch_size`` can exceed what fits
            in activation memory; ``None`` (default) runs the batch in one pass.
        tensorboard: also write TensorBoard scalars to ``RUN_DIR/tensorboard``.
        progress: show progress (a bar on a terminal, a few lines elsewhere).
    """

    # The ranges and choices here are what the config schema checks before a run starts
    # (contrastkit.utils.schema), so a bad value fails in one line naming its key.
    batch_size: int = bounded(256, minimum=1)
    epochs: float = bounded(1.0, minimum=0, exclusive_minimum=True)
    steps: int | None = bounded(None, minimum=1)
    optimizer: str = bounded("adamw", choices=OPTIMIZERS)
    lr: float = bounded(1e-3, minimum=0, exclusive_minimum=True)
    weight_decay: float = bounded(1e-4, minimum=0)
    momentum: float = bounded(0.9, minimum=0, maximum=1, exclusive_maximum=True)
    warmup_fraction: float = bounded(0.05, minimum=0, maximum=1, exclusive_maximum=True)
    final_lr_fraction: float = bounded(0.0, minimum=0, maximum=1)
    checkpoint_every: int = bounded(0, minimum=0)
    eval_every: int = bounded(0, minimum=0)
    log_every: int = bounded(1, minimum=1)
    keep_last: int = bounded(2, minimum=1)
    device: str = "auto"
    precision: str = bounded("fp32", choices=PRECISIONS)
    grad_cache_micro_batch: int | None = bounded(None, minimum=1)
    tensorboard: bool = False
    progress: bool = True


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def check_device(name: object) -> torch.device | None:
    """Check ``train.device`` names a device this machine has (``None`` for ``auto``).

    Raises:
        ValueError: naming the key, for a malformed name or an absent device (e.g. ``cuda`` on a
            CPU-only PyTorch build, which would otherwise fail deep inside ``.to()``).
    """
    if name == "auto":
        return None
    if not isinstance(name, str):
        raise ValueError(f"train.device: expected auto, cpu, cuda[:N] or mps, got {name!r}")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"train.device: expected auto, cpu, cuda[:N] or mps, got {name!r}") from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this PyTorch build has no CUDA support" if torch.version.cuda is None else "no CUDA device is visible"
            raise ValueError(f"train.device: {name!r} was asked for, but {why} (torch {torch.__version__}); "
                             "use train.device=auto or cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"train.device: {name!r} was asked for, but only {torch.cuda.device_count()} "
                             "CUDA device(s) are visible")
    if device.type == "mps" and not _mps_available():
        raise ValueError(f"train.device: {name!r} was asked for, but Apple MPS is not available here; "
                         "use train.device=auto or cpu")
    return device


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU; anything else must be present (:func:`check_device`)."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = check_device(name)
    assert device is not None
    return device


@dataclass
class TrainResult:
    """Summary of a finished ``fit``."""

    steps: int
    seconds: float
    seconds_per_epoch: float
    final_loss: float
    history: list[dict[str, Any]] = field(default_factory=list)


class Trainer:
    """Train a :class:`~contrastkit.methods.base.Method` on a dataset.

    Args:
        method: the method to train (moved to the configured device).
        dataset: the training set (rows fetched as :class:`~contrastkit.data.batch.Batch`).
        config: training hyper-parameters.
        run_dir: where ``metrics.jsonl`` and ``checkpoints/`` go.
        seed: seeds the batch order (model init and augmentations are seeded by the caller).
        eval_fn: optional ``eval_fn(method) -> dict`` run every ``config.eval_every`` steps.
        checkpoint_extra: JSON-able values stored in every checkpoint (e.g. the resolved config).
        distributed: the process group context under ``torchrun`` (see
            :func:`~contrastkit.train.distributed.setup_distributed`); the method is then
            wrapped in ``DistributedDataParallel`` (gradients averaged over processes), each
            process trains on its slice of the global batch, and only rank 0 writes logs
            and checkpoints.
    """

    def __init__(
        self,
        method: Method,
        dataset: Dataset,
        config: TrainConfig,
        run_dir: str | Path,
        *,
        seed: int = 0,
        eval_fn: Callable[[Method], dict[str, float]] | None = None,
        checkpoint_extra: dict[str, Any] | None = None,
        distributed: DistributedContext | None = None,
    ) -> None:
        self.config = config
        self.distributed = distributed or DistributedContext()
        self.device = resolve_device(config.device)
        self.method = method.to(self.device)
        self.model: torch.nn.Module = self.method
        if self.distributed.enabled:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.method, device_ids=device_ids)
        self.batches = EpochBatches(
            dataset, config.batch_size, seed, rank=self.distributed.rank, world_size=self.distributed.world_size
        )
        if config.steps is not None:
            if config.steps < 1:
                raise ValueError(f"train.steps: expected a positive integer, got {config.steps}")
            self.total_steps = int(config.steps)
        else:
            if config.epochs <= 0:
                raise ValueError(f"train.epochs: expected > 0, got {config.epochs}")
            self.total_steps = max(1, math.ceil(config.epochs * self.batches.steps_per_epoch))
        self.precision = resolve_precision(config.precision, self.device)
        if config.grad_cache_micro_batch is not None:
            if not method.supports_grad_cache:
                raise ValueError(
                    f"train.grad_cache_micro_batch: {type(method).__name__} does not implement embeddings() and "
                    "loss_from_embeddings(), which gradient caching needs"
                )
        self.run_dir = Path(run_dir)
        self.checkpoint_dir = self.run_dir / "checkpoints"
        self.eval_fn = eval_fn
        self.checkpoint_extra = checkpoint_extra or {}
        self.optimizer = build_optimizer(
            config.optimizer, self.method, lr=config.lr, weight_decay=config.weight_decay, momentum=config.momentum,
            lr_scales=self.method.lr_scales(),
        )
        warmup = int(round(config.warmup_fraction * self.total_steps))
        self.scheduler = build_schedule(self.optimizer, self.total_steps, warmup, config.final_lr_fraction)
        self.step = 0
        self.elapsed = 0.0  # training seconds over all sessions of this run (restored on resume)
        self._sigterm = threading.Event()

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def _diverged(self, what: str) -> FloatingPointError:
        last = latest_checkpoint(self.checkpoint_dir) if self.checkpoint_dir.exists() else None
        where = f"the last checkpoint is {last}" if last is not None else "no checkpoint was written yet"
        return FloatingPointError(
            f"training diverged at step {self.step + 1}: {what}; lower train.lr (now {self.config.lr:g}) "
            f"or check the data ({where})"
        )

    def _check_finite(self, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            raise self._diverged(f"the loss became {loss.item()}")

    def _step_outputs(self, batch: Any) -> Any:
        """One step's forward and backward; a NaN/inf anywhere in it is reported as divergence."""
        config = self.config
        try:
            if config.grad_cache_micro_batch is None:
                with self._autocast():
                    output = self.model(batch)
                self._check_finite(output.loss)
                output.loss.backward()
            else:
                # The blocks' backward passes run on the bare method, outside DDP; the
                # gradients are then averaged once, as DDP would.
                output = grad_cache_backward(
                    self.method, batch, config.grad_cache_micro_batch, device=self.device, autocast=self._autocast
                )
                average_gradients(self.method, self.distributed)
                self._check_finite(output.loss)
        except NonFiniteError as error:
            raise self._diverged(str(error)) from error
        return output

    def _termination_requested(self) -> bool:
        """Whether SIGTERM arrived (on any rank: all stop at the same step boundary)."""
        requested = self._sigterm.is_set()
        if self.distributed.enabled:
            flag = torch.tensor([1.0 if requested else 0.0], device=self.device if self.device.type == "cuda" else "cpu")
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            requested = bool(flag.item())
        return requested

    def _catch_sigterm(self) -> Callable[[], None]:
        """Turn SIGTERM (what schedulers and ``kill`` send) into a checkpoint at the next step
        boundary; return the function that puts the previous handler back.

        Only the main thread can install handlers; elsewhere SIGTERM keeps its default.
        """
        self._sigterm.clear()
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: self._sigterm.set())
        return lambda: signal.signal(signal.SIGTERM, previous)

    def resume(self) -> int:
        """Restore the latest checkpoint of ``run_dir`` (weights, optimiser, schedule, RNG); return its step."""
        path = resolve_checkpoint(self.checkpoint_dir)  # the newest intact one, with a warning if not the latest
        if path is None:
            raise FileNotFoundError(
                f"cannot resume: no checkpoint in {self.checkpoint_dir} (expected {self.checkpoint_dir}/latest.json)"
            )
        rank = self.distributed.rank if self.distributed.enabled else None
        state = load_checkpoint(path, self.method, self.optimizer, self.scheduler, rng_rank=rank)
        self.step = state.step
        self.elapsed = float(state.extra.get("train_seconds", 0.0))
        return self.step

    def save(self) -> Path | None:
        """Write a checkpoint of the current step (rank 0 only; the others wait at a barrier)."""
        path = None
        rank_rng = None
        if self.distributed.enabled:  # every rank's random stream, so each resumes its own augmentations
            rank_rng = [None] * self.distributed.world_size
            dist.all_gather_object(rank_rng, capture_rng_state())
        if self.distributed.is_main:
            path = save_checkpoint(
                self.checkpoint_dir, self.step, self.method, self.optimizer, self.scheduler,
                extra={**self.checkpoint_extra, "train_seconds": self.elapsed}, keep_last=self.config.keep_last,
                rank_rng=rank_rng,
            )
        self.distributed.barrier()
        return path

    def fit(self, *, stop_at: int | None = None) -> TrainResult:
        """Train until ``total_steps`` (or ``stop_at``, used to simulate an interruption).

        Checkpoints are written every ``checkpoint_every`` steps and at the end.
        """
        config = self.config
        end = self.total_steps if stop_at is None else min(stop_at, self.total_steps)
        main = self.distributed.is_main
        log = MetricsLog(
            self.run_dir / "metrics.jsonl", self.run_dir / "tensorboard" if config.tensorboard and main else None,
            enabled=main,
        )
        log.truncate_after(self.step)
        progress = Progress(self.total_steps, start=self.step, enabled=config.progress and main)
        history: list[dict[str, Any]] = []
        loss_value = float("nan")
        restore_sigterm = self._catch_sigterm()
        session_start, elapsed_before = time.perf_counter(), self.elapsed
        try:
            while self.step < end:
                batch = self.batches.batch(self.step).to(self.device)
                self.method.train()
                self.optimizer.zero_grad(set_to_none=True)
                output = self._step_outputs(batch)
                loss = output.loss
                self.optimizer.step()
                self.scheduler.step()
                self.method.on_step_end(self.step, self.total_steps)
                self.step += 1
                loss_value = float(loss.detach())
                evaluate = main and bool(config.eval_every) and self.eval_fn is not None and self.step % config.eval_every == 0
                if self.step % config.log_every == 0 or self.step == end or evaluate:
                    record = {
                        "step": self.step,
                        "epoch": self.step / self.batches.steps_per_epoch,
                        "lr": self.optimizer.param_groups[0]["lr"],
                        **output.logs,
                        "loss": loss_value,
                    }
                    if evaluate:
                        record.update({f"eval/{k}": v for k, v in self.eval_fn(self.method).items()})
                    log.write(record)
                    history.append(record)
                progress.update(self.step, f"loss {loss_value:.4f}")
                self.elapsed = elapsed_before + time.perf_counter() - session_start
                if config.checkpoint_every and self.step % config.checkpoint_every == 0 and self.step < end:
                    self.save()
                if self.step < end and self._termination_requested():
                    self.save()  # at a step boundary, so the resumed run continues exactly
                    raise Preempted(self.step, self.run_dir)
            self.save()
            if self._sigterm.is_set():  # it came during the last step: training is done, evaluation is not
                raise Preempted(self.step, self.run_dir)
        except KeyboardInterrupt:
            if self.checkpoint_dir.exists() and latest_checkpoint(self.checkpoint_dir) is not None:
                hint = f"continue with: contrastkit train --resume {self.run_dir}"
            else:  # the run folder goes with the run (nothing to resume from)
                hint = "no checkpoint had been written yet (set train.checkpoint_every to keep progress)"
            print(f"\ninterrupted at step {self.step}; {hint}", file=sys.stderr)
            raise
        finally:
            restore_sigterm()
            progress.close()
            log.close()
        if history:
            final_loss = history[-1]["loss"]
        else:  # nothing left to train (e.g. resuming a finished run): report the logged last loss
            records = log.read()
            final_loss = records[-1]["loss"] if records else float("nan")
        return TrainResult(
            steps=self.step,
            seconds=self.elapsed,
            seconds_per_epoch=self.elapsed / max(1, self.step) * self.batches.steps_per_epoch,
            final_loss=final_loss,
            history=history,
        )

"""Checkpoints: safetensors for tensors, JSON for the rest, written atomically.

Layout inside a run directory::

    checkpoints/step-000500/model.safetensors   method weights + buffers, optimiser tensors, RNG states
    checkpoints/step-000500/state.json          step, optimiser/scheduler scalars, RNG states, config
    checkpoints/step-000500/checksums.json      SHA-256 of the two files above
    checkpoints/latest.json                     {"path": "step-000500", "step": 500}

A checkpoint folder is assembled under a temporary name, every file and the folder
fsynced, and renamed into place; then ``latest.json`` is replaced atomically, so an
interrupted run never leaves a half-written checkpoint behind: the previous one stays
the latest. Loading verifies the checksums; when the latest checkpoint is damaged
(a flipped byte, a truncated file), :func:`resolve_checkpoint` falls back to the newest
intact one and says so. Checkpoints of format 1 (written before checksums) load unverified.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from contrastkit.utils.atomic import (
    atomic_write_json,
    fsync_directory,
    fsync_file,
    replace_directory,
)
from contrastkit.utils.seed import capture_rng_state, restore_rng_state

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)  # 1: before checksums
MODEL_FILE = "model.safetensors"
STATE_FILE = "state.json"
CHECKSUMS_FILE = "checksums.json"
LATEST_FILE = "latest.json"


@dataclass
class CheckpointState:
    """What a loaded checkpoint restores besides tensors."""

    step: int
    path: Path
    extra: dict[str, Any]


def _split_optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _join_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for index, entry in meta["scalars"].items():
        state.setdefault(int(index), {}).update(entry)
    return {"state": state, "param_groups": meta["param_groups"]}


def _scheduler_state(scheduler: Any) -> dict | None:
    if scheduler is None:
        return None
    # lr_lambdas hold functions, which are rebuilt from the config, not saved.
    return {key: value for key, value in scheduler.state_dict().items() if key != "lr_lambdas"}


def save_checkpoint(
    root: str | Path,
    step: int,
    method: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    extra: dict[str, Any] | None = None,
    keep_last: int = 2,
    rank_rng: list[tuple[dict[str, torch.Tensor], dict]] | None = None,
) -> Path:
    """Write a checkpoint for ``step`` under ``root`` atomically and mark it latest.

    Args:
        root: the ``checkpoints`` folder of a run.
        step: number of optimiser steps completed.
        method: the module whose ``state_dict`` is saved (parameters and buffers, e.g. queues).
        optimizer: optional optimiser whose state is saved.
        scheduler: optional LR scheduler whose counters are saved.
        extra: JSON-able values to keep (e.g. the resolved config).
        keep_last: how many step folders to keep; older ones are removed after the new one is in place.
        rank_rng: under ``torchrun``, every rank's :func:`capture_rng_state` (gathered by
            the caller), so that each rank resumes its own random stream.

    Returns:
        The checkpoint folder.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:07d}"
    final = root / name
    tmp = root / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        # clone(): safetensors refuses tensors that share storage (e.g. tied weights).
        tensors = {f"model.{k}": v.detach().cpu().clone().contiguous() for k, v in method.state_dict().items()}
        meta: dict[str, Any] = {"format_version": FORMAT_VERSION, "step": step, "extra": extra or {}}
        if optimizer is not None:
            optim_tensors, meta["optimizer"] = _split_optimizer_state(optimizer)
            tensors.update({k: v.detach().cpu().clone().contiguous() for k, v in optim_tensors.items()})
        meta["scheduler"] = _scheduler_state(scheduler)
        rng_tensors, meta["rng"] = capture_rng_state()
        tensors.update(rng_tensors)
        if rank_rng is not None:
            meta["rng_ranks"] = []
            for rank, (rank_tensors, rank_json) in enumerate(rank_rng):
                tensors.update({f"rng_rank{rank}.{key[len('rng.'):]}": value for key, value in rank_tensors.items()})
                meta["rng_ranks"].append(rank_json)
        _save_tensors(tensors, tmp / MODEL_FILE, final / MODEL_FILE)
        fsync_file(tmp / MODEL_FILE)
        _write_synced(tmp / STATE_FILE, json.dumps(meta, indent=2))
        checksums = {name: file_sha256(tmp / name) for name in (MODEL_FILE, STATE_FILE)}
        _write_synced(tmp / CHECKSUMS_FILE, json.dumps({"sha256": checksums}, indent=2))
        fsync_directory(tmp)
        replace_directory(tmp, final)  # re-running a step after a resume replaces the old folder
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_json(root / LATEST_FILE, {"path": name, "step": step})
    _prune(root, keep_last)
    return final


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path, shown: Path) -> None:
    """``save_file``, with its I/O failures (a full disk, a read-only folder) raised as ``OSError``."""
    try:
        save_file(tensors, str(path))
    except SafetensorError as error:
        code = re.search(r"os error (\d+)", str(error))
        if code is not None:
            number = int(code.group(1))
            raise OSError(number, os.strerror(number), str(shown)) from error
        raise OSError(f"cannot write {shown}: {error}") from error


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _prune(root: Path, keep_last: int) -> None:
    steps = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in steps[: max(0, len(steps) - keep_last)]:
        shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(root: str | Path) -> Path | None:
    """The folder named by ``latest.json`` under ``root``, or ``None`` when there is none."""
    pointer = Path(root) / LATEST_FILE
    if not pointer.exists():
        return None
    try:
        name = json.loads(pointer.read_text(encoding="utf-8"))["path"]
    except (json.JSONDecodeError, KeyError) as error:
        raise ValueError(f"corrupt checkpoint pointer {pointer}: expected JSON with a 'path' key") from error
    return Path(root) / name


def verify_checkpoint(path: str | Path) -> None:
    """Check a checkpoint folder's files against its ``checksums.json``.

    Raises:
        FileNotFoundError: a required file is missing.
        ValueError: a checksum does not match, or a format-2 checkpoint has no checksums.
    """
    path = Path(path)
    model_file, state_file, sums_file = path / MODEL_FILE, path / STATE_FILE, path / CHECKSUMS_FILE
    for required in (model_file, state_file):
        if not required.exists():
            raise FileNotFoundError(f"checkpoint {path} is incomplete: expected {required.name}, which is missing")
    if not sums_file.exists():
        try:
            version = json.loads(state_file.read_text(encoding="utf-8")).get("format_version")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
            raise ValueError(f"corrupt checkpoint {state_file}: not valid JSON ({error})") from error
        if version == 1:
            return  # written before checksums existed: nothing to verify against
        raise ValueError(f"corrupt checkpoint {path}: expected {CHECKSUMS_FILE}, which is missing")
    try:
        expected = json.loads(sums_file.read_text(encoding="utf-8"))["sha256"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"corrupt checkpoint {sums_file}: expected JSON with a 'sha256' mapping") from error
    for name in (MODEL_FILE, STATE_FILE):
        actual = file_sha256(path / name)
        if expected.get(name) != actual:
            raise ValueError(
                f"corrupt checkpoint {path / name}: SHA-256 {actual[:12]}… does not match the recorded "
                f"{str(expected.get(name))[:12]}…"
            )


def resolve_checkpoint(root: str | Path, *, warn: bool = True) -> Path | None:
    """The newest intact checkpoint under a run's ``checkpoints`` folder, ``None`` when there is none.

    That is the one ``latest.json`` names when it verifies; otherwise the newest ``step-*``
    folder that does, with a warning on stderr naming both. When none verifies, the latest's
    error is raised.
    """
    root = Path(root)
    try:
        latest = latest_checkpoint(root)
    except ValueError as error:  # a damaged pointer: look at the folders themselves
        latest, pointer_error = None, error
    else:
        pointer_error = None
    candidates = sorted((p for p in root.glob("step-*") if p.is_dir()), reverse=True) if root.is_dir() else []
    if latest is None and pointer_error is None:
        return None
    first_error: Exception | None = pointer_error
    if latest is not None:
        try:
            verify_checkpoint(latest)
            return latest
        except (ValueError, FileNotFoundError) as error:
            first_error = error
    for candidate in candidates:
        if candidate == latest:
            continue
        try:
            verify_checkpoint(candidate)
        except (ValueError, FileNotFoundError):
            continue
        if warn:
            damaged = latest.name if latest is not None else LATEST_FILE
            print(f"warning: checkpoint {damaged} in {root} is damaged ({first_error}); "
                  f"using the newest intact one, {candidate.name}", file=sys.stderr)
        return candidate
    assert first_error is not None
    raise first_error


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    model_file, state_file = path / MODEL_FILE, path / STATE_FILE
    verify_checkpoint(path)
    try:
        tensors = load_file(str(model_file))
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"corrupt checkpoint {model_file}: not a readable safetensors file ({error})") from error
    try:
        meta = json.loads(state_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"corrupt checkpoint {state_file}: not valid JSON ({error})") from error
    if meta.get("format_version") not in READABLE_FORMATS:
        raise ValueError(
            f"checkpoint {path}: expected format_version in {list(READABLE_FORMATS)}, got {meta.get('format_version')!r}"
        )
    return tensors, meta


def load_model_weights(method: nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    """Load ``model.*`` tensors into ``method``; any mismatch raises ``ValueError`` listing it."""
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    prepare = getattr(method, "prepare_to_load", None)
    if callable(prepare):  # state that grows during training takes the checkpoint's size first
        prepare(weights)
    expected = method.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong_shape = [
        f"{k}: expected {tuple(expected[k].shape)}, got {tuple(weights[k].shape)}"
        for k in sorted(set(expected) & set(weights))
        if expected[k].shape != weights[k].shape
    ]
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s), e.g. {missing[:3]}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s), e.g. {unexpected[:3]}")
        if wrong_shape:
            parts.append(f"{len(wrong_shape)} shape mismatch(es), e.g. {wrong_shape[:3]}")
        raise ValueError(f"checkpoint {source} does not match this model: " + "; ".join(parts))
    method.load_state_dict(weights, strict=True)


def load_checkpoint(
    path: str | Path,
    method: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    restore_rng: bool = True,
    rng_rank: int | None = None,
) -> CheckpointState:
    """Restore a checkpoint folder (or a run's ``checkpoints`` folder, using its latest).

    Weights are read with safetensors (no pickle); optimiser and scheduler state
    and the RNG states are restored when given, so training continues exactly.
    With ``rng_rank`` (a ``torchrun`` rank) and a checkpoint that holds every rank's
    RNG states, that rank's own states are restored; otherwise rank 0's.
    """
    path = Path(path)
    if (path / LATEST_FILE).exists():
        resolved = resolve_checkpoint(path)
        assert resolved is not None
        path = resolved
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: expected a folder with {MODEL_FILE} and {STATE_FILE}")
    tensors, meta = _read(path)
    load_model_weights(method, tensors, path)
    if optimizer is not None:
        if "optimizer" not in meta:
            raise ValueError(f"checkpoint {path} has no optimizer state, but one was asked for")
        try:
            optimizer.load_state_dict(_join_optimizer_state(tensors, meta["optimizer"]))
        except (ValueError, KeyError, RuntimeError) as error:
            raise ValueError(f"checkpoint {path}: optimizer state does not match this optimizer ({error})") from error
    if scheduler is not None and meta.get("scheduler") is not None:
        scheduler.load_state_dict({**meta["scheduler"], "lr_lambdas": [None] * len(scheduler.lr_lambdas)})
    if restore_rng:
        ranks = meta.get("rng_ranks") or []
        if rng_rank is not None and rng_rank < len(ranks):
            prefix = f"rng_rank{rng_rank}."
            own = {"rng." + k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            restore_rng_state(own, ranks[rng_rank])
        else:
            restore_rng_state({k: v for k, v in tensors.items() if k.startswith("rng.")}, meta["rng"])
    return CheckpointState(step=int(meta["step"]), path=path, extra=meta.get("extra", {}))

"""What the seed checks share: seeds, the image training budget, and one image-training call.

Every check module in this folder exposes ``ROWS`` (the table rows it measures) and
``run(seed, quick) -> {row key: {"ours": float, "baseline": float, ...}}``;
``benchmarks/seed_checks.py`` runs them over :data:`SEEDS` and tabulates mean ± std.

The image rows (MoCHi, Mixed Barlow Twins, DirectPred, OBoW and their baselines) all train
with :func:`train_image`: the main recipe's encoder, batch, optimiser, schedule and
evaluation (weighted kNN, k=200, tau=0.1, on Fashion-MNIST), with only the method section
and the view preset changed and the same number of steps for method and baseline.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from contrastkit.utils.atomic import atomic_write_json

SEEDS = (0, 1, 2)
RECIPE = "simclr-fashion-mnist"
#: Optimiser steps of every image pretraining run (batch 128: about 0.85 epoch of Fashion-MNIST).
IMAGE_STEPS = 400
QUICK_STEPS = 5
#: Finished image runs, keyed by everything that defines them, so a baseline shared by two checks
#: (or a rerun after an interruption) is trained once. Delete the file to retrain everything.
RUN_CACHE = Path(__file__).resolve().parent.parent / "results" / "seed_checks_runs.json"


def image_overrides(seed: int, quick: bool, steps: int | None = None) -> list[str]:
    """The overrides every image check applies to the main recipe."""
    overrides = [
        f"seed={seed}",
        f"train.steps={QUICK_STEPS if quick else (steps or IMAGE_STEPS)}",
        "train.checkpoint_every=0",
        "train.progress=false",
        "eval.knn_k=200",
        "eval.knn_temperature=0.1",
        "eval.plots=false",
        "eval.baselines=false",
    ]
    if quick:
        overrides += ["data.name=digits", "eval.linear=false"]
    return overrides


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def train_image(method: dict[str, Any], views: str, seed: int, quick: bool, *, steps: int | None = None,
                extra: list[str] | None = None) -> dict[str, Any]:
    """Train ``method`` (a recipe ``method:`` section, with ``name``) with view preset ``views``.

    Returns the run's metrics (``knn_top1``, ``linear_top1``, ``train`` ...). Runs are written
    to a temporary folder and removed: the checks keep only the numbers. Full-mode results are
    cached in :data:`RUN_CACHE` (quick runs are not).
    """
    from contrastkit.train.config import load_config
    from contrastkit.train.run import run

    overrides = image_overrides(seed, quick, steps) + [
        f"method={json.dumps(method)}",  # JSON is YAML: the whole section is replaced
        f"views.preset={views}",
    ] + list(extra or [])
    key = json.dumps({"recipe": RECIPE, "overrides": overrides}, sort_keys=True)
    cache = json.loads(RUN_CACHE.read_text()) if RUN_CACHE.exists() and not quick else {}
    if key in cache:
        return cache[key]["metrics"]
    config = load_config(RECIPE, overrides)
    with tempfile.TemporaryDirectory(prefix="seed-check-") as folder:
        _, metrics = run(config, Path(folder) / "run", verbose=False)
    metrics.pop("run_dir", None)
    if not quick and os.environ.get("SEED_CHECKS_NO_CACHE") != "1":
        # Parallel workers share the file: hold a lock across read-modify-write so no entry is lost.
        with open(RUN_CACHE.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            cache = json.loads(RUN_CACHE.read_text()) if RUN_CACHE.exists() else {}
            cache[key] = {"commit": _commit(), "metrics": metrics}
            atomic_write_json(RUN_CACHE, cache)
    return metrics

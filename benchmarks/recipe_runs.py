"""One `contrastkit train RECIPE` per (row, seed) in its own process, and the mean ± std of the results.

The recipe benchmarks (`multimodal.py`, `music_sheets.py`, `symile_emoji_speech.py`) share this:
each run is a fresh process (so one run's caches and threads never touch the next), its
``metrics.json`` gives the run's scores and the baselines it measured itself.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def train_recipe(recipe: str, overrides: list[str], *, threads: int, label: str) -> dict[str, Any]:
    """Train ``recipe`` with ``--set`` ``overrides`` (no checkpoints, no progress bar) in a temporary run folder.

    Returns ``{"scores", "baselines", "wall_seconds", "overrides"}``; a failed run raises with its stderr's tail.
    """
    overrides = [*overrides, "train.checkpoint_every=0", "train.progress=false"]
    with tempfile.TemporaryDirectory(prefix=f"ck-{recipe}-") as folder:
        command = [sys.executable, "-m", "contrastkit", "train", recipe, "--run-dir", f"{folder}/run"]
        for override in overrides:
            command += ["--set", override]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{label} failed:\n{done.stderr[-3000:]}")
        metrics = json.loads(Path(folder, "run", "metrics.json").read_text())
    scores = {key: metrics[key] for key in metrics if isinstance(metrics[key], (int, float))}
    return {"scores": scores, "baselines": metrics["baselines"],
            "wall_seconds": round(time.perf_counter() - started, 1), "overrides": overrides}


def mean_std(values: list[float]) -> str:
    """``"m ± s"`` over seeds (``"m"`` for one value, ``"-"`` for none), 3 decimals."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"

"""The trainer under torchrun: two gloo processes on CPU, one writer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from contrastkit.data import ArrayDataset
from contrastkit.train.distributed import DistributedContext, setup_distributed
from contrastkit.train.loader import EpochBatches
from tests.conftest import free_port


def test_single_process_context_is_disabled(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    context = setup_distributed()
    assert context == DistributedContext() and context.is_main and not context.enabled
    context.barrier()  # no-ops without a process group
    context.shutdown()


def test_ranks_split_each_global_batch_like_one_process_with_the_doubled_batch():
    dataset = ArrayDataset(torch.arange(40, dtype=torch.float32).view(40, 1), None)
    single = EpochBatches(dataset, batch_size=8, seed=3)
    ranks = [EpochBatches(dataset, batch_size=4, seed=3, rank=r, world_size=2) for r in range(2)]
    assert single.steps_per_epoch == ranks[0].steps_per_epoch == 5
    for step in range(12):  # crosses an epoch boundary
        joined = torch.cat([ranks[0].batch(step).inputs, ranks[1].batch(step).inputs])
        assert torch.equal(joined, single.batch(step).inputs)


def test_torchrun_two_processes_train_and_write_exactly_one_checkpoint(tmp_path: Path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed beside this Python")
    run_dir = tmp_path / "run"
    command = [
        str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "-m", "contrastkit", "train",
        "--set", "data.name=digits", "--set", "train.steps=6", "--set", "train.batch_size=32",
        "--set", "train.log_every=1", "--set", "eval.plots=false", "--set", "eval.linear=false", "--run-dir", str(run_dir),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == str(run_dir) and lines.count(str(run_dir)) == 1  # printed once, by rank 0
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert checkpoints == ["latest.json", "step-0000006"]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 7))  # written once, not once per rank
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["train"]["steps"] == 6 and "knn_top1" in metrics

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


def _resume_worker(rank: int, port: int, out_dir: str) -> None:
    """Two ranks: an uninterrupted 6-step run, and one interrupted after 3 steps and resumed."""
    from datetime import timedelta

    import torch.distributed as dist

    from contrastkit.utils.seed import seed_everything
    from contrastkit.train.trainer import TrainConfig, Trainer
    from tests.conftest import make_method

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2,
                            timeout=timedelta(seconds=60))  # fmt: skip
    torch.set_num_threads(1)
    try:
        context = DistributedContext(rank, 2)
        data = ArrayDataset(torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.arange(64) % 4)
        config = TrainConfig(batch_size=8, steps=6, lr=1e-2, progress=False, log_every=1)

        def trainer(run_dir: str) -> Trainer:
            method = make_method("simclr")  # the same weights on both ranks
            seed_everything(1 + rank)  # each rank draws its own augmentations, as `contrastkit train` does
            return Trainer(method, data, config, Path(out_dir) / run_dir, seed=0, distributed=context)

        trainer("straight").fit()
        first = trainer("resumed")
        first.fit(stop_at=3)
        del first
        second = trainer("resumed")
        torch.manual_seed(1234)  # whatever the process drew since, resume restores this rank's own stream
        assert second.resume() == 3
        second.fit()
        dist.barrier()
        torch.save({"rank": rank}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.barrier()
        dist.destroy_process_group()


def test_resume_under_two_processes_continues_each_ranks_random_stream(tmp_path: Path) -> None:
    from tests.conftest import spawn_ranks

    spawn_ranks(_resume_worker, 2, tmp_path)

    def losses(run: str) -> list[float]:
        records = [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in records] == list(range(1, 7))
        return [r["loss"] for r in records]

    assert losses("resumed") == losses("straight")  # bit-identical, so both ranks' augmentations matched

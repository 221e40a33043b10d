"""Shared fixtures: tiny, fast building blocks for end-to-end tests."""

from __future__ import annotations

import pytest
import torch

from contrastkit.data import ArrayDataset, load_dataset
from contrastkit.methods import build_method
from contrastkit.nn.registry import build_encoder
from contrastkit.utils.seed import seed_everything
from contrastkit.views.image import build_views


@pytest.fixture(autouse=True)
def _seeded_global_rng():
    """Seed torch's global RNG before every test, so a test that draws from it gets the same
    numbers whichever tests ran before it (no order-dependent flakes)."""
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits (bundled, 8x8): the offline dataset every machine has."""
    return load_dataset("digits")


def make_method(name: str = "simclr", *, seed: int = 0, encoder: str = "mlp", **options):
    """A small method on 8x8 single-channel images, built deterministically from ``seed``."""
    seed_everything(seed)
    if encoder == "mlp":
        net = build_encoder("mlp", in_channels=1, image_size=8, hidden_dims=(64,), output_dim=32)
    else:
        net = build_encoder("small-resnet", in_channels=1, image_size=8, widths=(8, 16, 16))
    views = build_views("simclr", image_size=8, channels=1)
    return build_method(name, net, views, **options)


@pytest.fixture()
def tiny_images() -> ArrayDataset:
    generator = torch.Generator().manual_seed(0)
    return ArrayDataset(torch.rand(64, 1, 8, 8, generator=generator), torch.arange(64) % 4)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn_ranks(worker, world: int, out_dir) -> list[dict]:
    """Run ``worker(rank, port, out_dir)`` in ``world`` spawned processes (gloo on 127.0.0.1 at a
    free port); each writes ``out_dir/rank{r}.pt``, which is returned, loaded with ``weights_only``."""
    import torch.multiprocessing as mp

    mp.start_processes(worker, args=(free_port(), str(out_dir)), nprocs=world, join=True, start_method="spawn")
    return [torch.load(f"{out_dir}/rank{r}.pt", weights_only=True) for r in range(world)]


def parameter_grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``{name: grad}`` of every parameter that got one (copies)."""
    return {n: p.grad.detach().clone() for n, p in module.named_parameters() if p.grad is not None}


def ddp_step_results(rank: int, port: int, world: int, builders: dict, batch_of_rank) -> dict[str, torch.Tensor]:
    """In a gloo group of ``world`` processes: for each ``name -> build()`` a method wrapped in DDP, one
    forward + backward on ``batch_of_rank(rank)``; ``{name/loss, name/grad/param}`` of this rank.

    The parity tests of every distributed method (2 processes x B = 1 process x 2B) run this in
    :func:`spawn_ranks` workers; the group is left behind a barrier, as under torchrun.
    """
    from datetime import timedelta

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=60))
    try:
        local = batch_of_rank(rank)
        results = {}
        for name, build in builders.items():
            method = build()
            model = DistributedDataParallel(method)  # held: a collected wrapper takes its reducer with it
            output = model(local)
            output.loss.backward()
            results[f"{name}/loss"] = output.loss.detach()
            for key, value in parameter_grads(method).items():
                results[f"{name}/grad/{key}"] = value
        return results
    finally:
        dist.barrier()
        dist.destroy_process_group()


def cli_error_line(result) -> str:
    """The single ``error: ...`` line a refused command prints: exit code 2, no other output line, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def trained_run(run_dir):
    """``(splits, method)``: a run's data and model with its newest checkpoint, in eval mode."""
    from contrastkit.train.checkpoint import load_checkpoint, resolve_checkpoint
    from contrastkit.train.config import load_run_config, resolved
    from contrastkit.train.run import build_method_from_config, load_data

    config = resolved(load_run_config(run_dir))
    splits = load_data(config)
    method = build_method_from_config(config, splits)
    load_checkpoint(resolve_checkpoint(run_dir / "checkpoints"), method, restore_rng=False)
    return splits, method.eval()


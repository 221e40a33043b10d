"""Every method under DDP: 2 gloo processes x B rows take the step of 1 process x 2B rows.

Each method gathers what its objective needs (contrastkit.negatives.gather); this
checks the whole composition — views, encoder, heads, gather, objective, DDP's
gradient averaging — against one process holding the whole batch. Encoders and
heads have no BatchNorm here (per-process batch statistics would differ by design)
and the views are deterministic, so the two runs see identical inputs.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from contrastkit.data import Batch
from contrastkit.methods import build_method
from contrastkit.nn import MLPEncoder
from contrastkit.views.image import build_views
from tests.conftest import spawn_ranks

WORLD, LOCAL = 2, 4
METHODS = {
    "simclr": {}, "supcon": {}, "moco": {"queue_size": 16}, "barlow-twins": {}, "vicreg": {},
    "byol": {}, "simsiam": {},
}  # fmt: skip
IDENTITY_VIEWS = {"crop": False, "flip_p": 0.0, "jitter_p": 0.0, "blur_p": 0.0}


def _method(name: str):
    torch.manual_seed(0)
    encoder = MLPEncoder(64, hidden_dims=(16,), output_dim=8, batch_norm=False)
    method = build_method(name, encoder, build_views("simclr", 8, 1, **IDENTITY_VIEWS), **METHODS[name])
    for module in list(method.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.BatchNorm1d):
                setattr(module, child_name, nn.Identity())
    if hasattr(method, "target"):  # rebuild the momentum copy from the BN-free online network
        method.target.module.load_state_dict(nn.Sequential(method.encoder, method.projector).state_dict())
    if hasattr(method, "key_encoder"):
        method.key_encoder.module.load_state_dict(nn.Sequential(method.encoder, method.projector).state_dict())
    return method.double()


def _batch() -> Batch:
    generator = torch.Generator().manual_seed(1)
    inputs = torch.rand(WORLD * LOCAL, 1, 8, 8, generator=generator, dtype=torch.float64)
    return Batch(inputs, torch.tensor([0, 1, 2, 0, 1, 0, 2, 1]))


def _grads(method) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in method.named_parameters() if p.grad is not None}


def _worker(rank: int, port: int, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
                            timeout=timedelta(seconds=60))
    try:
        full = _batch()
        rows = slice(rank * LOCAL, (rank + 1) * LOCAL)
        local = Batch(full.inputs[rows], full.labels[rows])
        results = {}
        for name in METHODS:
            method = _method(name)
            model = DistributedDataParallel(method)
            output = model(local)
            output.loss.backward()
            results[f"{name}/loss"] = output.loss.detach()
            for key, value in _grads(method).items():
                results[f"{name}/grad/{key}"] = value
            if name == "moco":
                method.on_step_end(0, 10)
                results["moco/queue"] = method.queue.negatives().clone()
        torch.save(results, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.barrier()
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    out_dir = tmp_path_factory.mktemp("methods-ddp")
    return spawn_ranks(_worker, WORLD, out_dir)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_two_processes_equal_one_process_with_the_doubled_batch(ranks, name):
    method = _method(name)
    loss = method(_batch()).loss
    loss.backward()
    expected = _grads(method)
    for result in ranks:
        got = {key.split("/grad/", 1)[1]: value for key, value in result.items() if key.startswith(f"{name}/grad/")}
        assert got.keys() == expected.keys() and expected
        for key in expected:
            torch.testing.assert_close(got[key], expected[key], atol=1e-10, rtol=0, msg=lambda m: f"{key}: {m}")
    # The loss itself: global for the gathered objectives; for per-row ones (MoCo, BYOL, SimSiam)
    # each process holds its local mean, and their average is the global loss.
    average = sum(result[f"{name}/loss"] for result in ranks) / WORLD
    torch.testing.assert_close(average, loss.detach(), atol=1e-10, rtol=0)
    if name == "moco":
        method.on_step_end(0, 10)
        for result in ranks:  # every process enqueued the same global keys
            torch.testing.assert_close(result["moco/queue"], method.queue.negatives(), atol=1e-12, rtol=0)

"""Cross-device gather: 2 processes x B rows take the same step as 1 process x 2B rows.

The distributed tests spawn two CPU processes once (``gloo`` backend on
127.0.0.1), wrap a small float64 model in the real ``DistributedDataParallel``
and run every (objective, policy) scenario there; each scenario's loss and
DDP-averaged parameter gradients are compared with one process that sees the
whole batch.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from contrastkit.functional import (
    barlow_twins,
    clip_loss,
    info_nce,
    nt_xent,
    supcon,
    vicreg,
)
from contrastkit.negatives import (
    POLICIES,
    gather,
    local_positive_mask,
    rank_slice,
    world_size,
)
from tests.conftest import free_port, spawn_ranks

WORLD = 2
LOCAL_BATCH = 4
GLOBAL_BATCH = WORLD * LOCAL_BATCH
ATOL = 1e-10


# --------------------------------------------------------------------------- models and data


class SiameseEncoder(nn.Module):
    """One encoder for both views (SimCLR-style)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4))

    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x_a), self.encoder(x_b)


class TwoTower(nn.Module):
    """CLIP-style: one encoder per modality and a learnable logit scale."""

    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Linear(6, 4)
        self.text = nn.Linear(5, 4)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.image(x), self.text(t), self.log_scale.exp()


def make_model(kind: str) -> nn.Module:
    torch.manual_seed(0)
    return (TwoTower() if kind == "clip" else SiameseEncoder()).double()


def make_batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x_a = torch.randn(GLOBAL_BATCH, 6, generator=generator, dtype=torch.float64)
    return {
        "x_a": x_a,
        "x_b": x_a + 0.3 * torch.randn(GLOBAL_BATCH, 6, generator=generator, dtype=torch.float64),
        "text": torch.randn(GLOBAL_BATCH, 5, generator=generator, dtype=torch.float64),
        "labels": torch.tensor([0, 1, 2, 0, 1, 0, 2, 1]),
    }


# --------------------------------------------------------------------------- scenarios
# Each objective takes the local tensors and a policy, gathers what it needs and
# returns this process's loss. With policy "none" and no process group it is the
# single-process reference on the full batch.


def _pair_full(fn, policy):
    def objective(z_a, z_b, batch):
        return fn(gather(z_a, policy), gather(z_b, policy))

    return objective


def _info_nce_local(policy):
    def objective(z_a, z_b, batch):
        mask = local_positive_mask(z_a.shape[0], device=z_a.device)
        return info_nce(z_a, gather(z_b, policy), pos_mask=mask, temperature=0.1)

    return objective


def _supcon_full(z_a, z_b, batch):
    features = torch.stack([gather(z_a, "with_grad"), gather(z_b, "with_grad")], dim=1)
    return supcon(features, gather(batch["labels"], "no_grad"), temperature=0.1)


def _clip_full(image, text, scale, batch):
    return clip_loss(gather(image, "with_grad"), gather(text, "with_grad"), scale)


def _clip_local(image, text, scale, batch):
    # open_clip's local loss: local rows against gathered columns, both directions.
    mask = local_positive_mask(image.shape[0], device=image.device)
    images, texts = gather(image, "local_loss"), gather(text, "local_loss")
    return (
        info_nce(image, texts, pos_mask=mask, temperature=1 / scale)
        + info_nce(text, images, pos_mask=mask, temperature=1 / scale)
    ) / 2


def _info_nce(z_a, z_b):
    return info_nce(z_a, z_b, temperature=0.1)


# name -> (model kind, objective, how the per-process losses combine: "same" on every process or "mean")
SCENARIOS = {
    "info_nce/with_grad": ("siamese", _pair_full(_info_nce, "with_grad"), "same"),
    "info_nce/local_loss": ("siamese", _info_nce_local("local_loss"), "mean"),
    "nt_xent/with_grad": ("siamese", _pair_full(nt_xent, "with_grad"), "same"),
    "supcon/with_grad": ("siamese", _supcon_full, "same"),
    "clip/with_grad": ("clip", _clip_full, "same"),
    "clip/local_loss": ("clip", _clip_local, "mean"),
    "barlow_twins/with_grad": ("siamese", _pair_full(barlow_twins, "with_grad"), "same"),
    "vicreg/with_grad": ("siamese", _pair_full(vicreg, "with_grad"), "same"),
    # no_grad: the full loss on every process gives exactly 1/world of the gradient ...
    "info_nce/no_grad": ("siamese", _pair_full(_info_nce, "no_grad"), "same"),
    # ... while a local loss against constant columns misses the other processes' terms.
    "info_nce/no_grad_local": ("siamese", _info_nce_local("no_grad"), "mean"),
}


def _step(kind: str, module: nn.Module, objective, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    if kind == "clip":
        image, text, scale = module(batch["x_a"], batch["text"])
        return objective(image, text, scale, batch)
    z_a, z_b = module(batch["x_a"], batch["x_b"])
    return objective(z_a, z_b, batch)


def _run_scenarios(batch: dict[str, torch.Tensor]) -> dict[str, dict]:
    results: dict[str, dict] = {}
    for name, (kind, objective, _) in SCENARIOS.items():
        model = make_model(kind)
        ddp = DistributedDataParallel(model)
        loss = _step(kind, ddp, objective, batch)
        loss.backward()  # DDP averages the parameter gradients over the processes here
        reported = loss.detach().clone()
        dist.all_reduce(reported)
        results[name] = {
            "loss": loss.detach().clone(),
            "loss_mean": reported / WORLD,
            "grads": {n: p.grad.detach().clone() for n, p in model.named_parameters()},
        }
    return results


def _check_no_grad_rows(full: torch.Tensor) -> dict[str, torch.Tensor]:
    """Values and gradient routing of the ``no_grad`` gather, on this process."""
    local = full[rank_slice(LOCAL_BATCH)].clone().requires_grad_(True)
    gathered = gather(local, "no_grad")
    rows = rank_slice(LOCAL_BATCH)
    remote = torch.ones(GLOBAL_BATCH, dtype=torch.bool)
    remote[rows] = False
    (grad_local,) = torch.autograd.grad(gathered[rows].sum(), local)
    (grad_remote,) = torch.autograd.grad(gathered[remote].sum(), local, allow_unused=True, materialize_grads=True)
    return {"gathered": gathered.detach(), "grad_local": grad_local, "grad_remote": grad_remote}


def _worker(process_rank: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=process_rank,
        world_size=WORLD,
        timeout=timedelta(seconds=60),
    )
    try:
        full = make_batch()
        rows = slice(process_rank * LOCAL_BATCH, (process_rank + 1) * LOCAL_BATCH)
        local = {key: value[rows] for key, value in full.items()}
        results = {
            "world_size": world_size(),
            "scenarios": _run_scenarios(local),
            "no_grad_rows": _check_no_grad_rows(full["x_a"]),
        }
        torch.save(results, Path(out_dir) / f"rank{process_rank}.pt")
        # Destroying the group right after an autograd collective crashed here
        # without this barrier.
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def distributed_results(tmp_path_factory) -> list[dict]:
    out_dir = tmp_path_factory.mktemp("gather")
    return spawn_ranks(_worker, WORLD, out_dir)


def _reference(name: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One process, the whole batch of 2B rows: no process group, so every gather is a no-op."""
    kind, objective, _ = SCENARIOS[name]
    model = make_model(kind)
    loss = _step(kind, model, objective, make_batch())
    loss.backward()
    return loss.detach(), {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def _assert_grads_close(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], scale: float = 1.0) -> None:
    assert got.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name] * scale, atol=ATOL, rtol=0, msg=lambda m: f"{name}: {m}")


# --------------------------------------------------------------------------- distributed tests

EXACT = [name for name in SCENARIOS if not name.startswith("info_nce/no_grad")]


@pytest.mark.parametrize("name", EXACT)
def test_two_processes_equal_one_process_with_the_doubled_batch(distributed_results, name):
    ref_loss, ref_grads = _reference(name)
    assert torch.count_nonzero(torch.cat([g.flatten() for g in ref_grads.values()])) > 0
    combine = SCENARIOS[name][2]
    for process in distributed_results:
        assert process["world_size"] == WORLD
        result = process["scenarios"][name]
        loss = result["loss"] if combine == "same" else result["loss_mean"]
        torch.testing.assert_close(loss, ref_loss, atol=ATOL, rtol=0)
        _assert_grads_close(result["grads"], ref_grads)


def test_local_loss_per_process_differs_but_averages_to_the_global_loss(distributed_results):
    losses = [p["scenarios"]["info_nce/local_loss"]["loss"] for p in distributed_results]
    assert not torch.allclose(losses[0], losses[1])  # so the averaging above is what makes them equal


def test_no_grad_full_loss_gives_one_over_world_of_the_gradient(distributed_results):
    ref_loss, ref_grads = _reference("info_nce/with_grad")
    for process in distributed_results:
        result = process["scenarios"]["info_nce/no_grad"]
        torch.testing.assert_close(result["loss"], ref_loss, atol=ATOL, rtol=0)
        _assert_grads_close(result["grads"], ref_grads, scale=1 / WORLD)


def test_no_grad_local_loss_misses_the_remote_terms(distributed_results):
    ref_loss, ref_grads = _reference("info_nce/with_grad")
    result = distributed_results[0]["scenarios"]["info_nce/no_grad_local"]
    torch.testing.assert_close(result["loss_mean"], ref_loss, atol=ATOL, rtol=0)  # same loss value ...
    for scale in (1.0, 1 / WORLD):  # ... but not the gradient, at either scale
        got = torch.cat([g.flatten() for g in result["grads"].values()])
        expected = torch.cat([g.flatten() for g in ref_grads.values()]) * scale
        assert not torch.allclose(got, expected, atol=1e-6)


def test_no_grad_gather_keeps_only_the_local_rows_gradient(distributed_results):
    full = make_batch()["x_a"]
    for process in distributed_results:
        rows = process["no_grad_rows"]
        torch.testing.assert_close(rows["gathered"], full, atol=0, rtol=0)  # rank-major order
        torch.testing.assert_close(rows["grad_local"], torch.ones(LOCAL_BATCH, 6, dtype=torch.float64))
        torch.testing.assert_close(rows["grad_remote"], torch.zeros(LOCAL_BATCH, 6, dtype=torch.float64))


# --------------------------------------------------------------------------- without a process group


@pytest.mark.parametrize("policy", POLICIES)
def test_gather_is_a_no_op_without_a_process_group(policy):
    assert not dist.is_initialized()
    z = torch.randn(3, 4, requires_grad=True)
    assert gather(z, policy) is z


def test_helpers_without_a_process_group():
    assert world_size() == 1
    assert rank_slice(5) == slice(0, 5)
    torch.testing.assert_close(local_positive_mask(3), torch.eye(3, dtype=torch.bool))


def test_unknown_policy_names_the_four():
    with pytest.raises(ValueError) as error:
        gather(torch.randn(2, 3), "all")
    for policy in POLICIES:
        assert policy in str(error.value)


@pytest.mark.parametrize("bad", [torch.tensor(1.0), [1.0, 2.0]])
def test_gather_rejects_a_non_batch(bad):
    with pytest.raises(ValueError, match=r"\[B, \.\.\.\]"):
        gather(bad)


def test_rank_slice_rejects_an_empty_batch():
    with pytest.raises(ValueError, match="positive batch size"):
        rank_slice(0)


# --------------------------------------------------------------------------- docs/scaling.md


def _torchrun_example() -> str:
    text = (Path(__file__).resolve().parents[1] / "docs" / "scaling.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "train_ddp.py" in b]
    assert blocks, "docs/scaling.md lost its torchrun example"
    return blocks[0]


def test_docs_torchrun_example_runs_as_one_process(monkeypatch, capsys):
    for variable in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(variable, raising=False)
    namespace: dict = {"__name__": "__main__"}
    exec(compile(_torchrun_example(), "scaling.md", "exec"), namespace)  # noqa: S102 - our own documentation
    assert "step 30" in capsys.readouterr().out
    assert math.isfinite(namespace["final_loss"])


def test_docs_torchrun_example_runs_under_torchrun(tmp_path):
    script = tmp_path / "train_ddp.py"
    script.write_text(_torchrun_example(), encoding="utf-8")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(WORLD)]
    command += ["--master_addr", "127.0.0.1", "--master_port", str(free_port()), str(script)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("step 30: loss") == 1  # printed by rank 0 only

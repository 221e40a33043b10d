"""Pairwise MER under DDP: 2 gloo processes x B rows give the step of 1 process x 2B rows.

Three modalities (channel groups), deterministic towers (no timestamp masking, no dropout) and
the identity view, so every run sees identical inputs; each process gathers every modality's
projections with gradient, as CLIP does.
"""

from __future__ import annotations

import functools

import pytest
import torch

from contrastkit.data.arrays import ArrayDataset
from contrastkit.methods.pairwise_mer import PairwiseMER
from contrastkit.nn.channel_groups import build_channel_group_towers
from contrastkit.views.series import build_series_views
from tests.conftest import ddp_step_results, parameter_grads, spawn_ranks

WORLD, LOCAL = 2, 4
TOWER = {"output_dim": 6, "hidden_dim": 6, "depth": 2, "mask_mode": "all_true", "dropout": 0.0}
GROUPS = {"a": [0, 1], "b": [2], "c": [3, 4]}


def _method(reduction: str = "mean") -> PairwiseMER:
    torch.manual_seed(0)
    towers = build_channel_group_towers(5, channel_groups=GROUPS, tower_options=TOWER)
    return PairwiseMER(towers, build_series_views("identity")[:1], projection_hidden_dim=12, reduction=reduction)


def _dataset() -> ArrayDataset:
    return ArrayDataset(torch.randn(WORLD * LOCAL, 5, 16, generator=torch.Generator().manual_seed(3)))



def _worker(rank: int, port: int, out_dir: str) -> None:
    builders = {reduction: functools.partial(_method, reduction) for reduction in ("mean", "sum")}
    results = ddp_step_results(rank, port, WORLD, builders, lambda r: _dataset().__getitems__(list(range(r * LOCAL, (r + 1) * LOCAL))))
    torch.save(results, f"{out_dir}/rank{rank}.pt")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    return spawn_ranks(_worker, WORLD, tmp_path_factory.mktemp("pairwise-mer-ddp"))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_two_processes_equal_one_process_with_the_doubled_batch(ranks, reduction) -> None:
    method = _method(reduction)
    loss = method(_dataset().__getitems__(list(range(WORLD * LOCAL)))).loss
    loss.backward()
    expected = parameter_grads(method)
    assert {"encoder.towers.a.encoder.input_fc.weight", "encoder.towers.c.encoder.input_fc.weight",
            "heads.1.layers.0.weight"} <= expected.keys()
    for result in ranks:
        torch.testing.assert_close(result[f"{reduction}/loss"], loss.detach(), atol=1e-6, rtol=1e-6)
        for key in expected:
            torch.testing.assert_close(result[f"{reduction}/grad/{key}"], expected[key], atol=1e-6, rtol=1e-5,
                                       msg=lambda m: f"{key}: {m}")

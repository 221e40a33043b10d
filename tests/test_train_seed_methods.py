"""The seed-paper methods under the Trainer: an interrupted and resumed run equals an uninterrupted one.

Each of these methods keeps state outside its parameters (MoCHi's warm-up counter and queue, BECLR's
DyCE memory, SBCL's growing feature bank and subclasses, OBoW's vocabularies, DirectPred's running
correlation), so the checkpoint must carry it for a resume to be exact.
"""

from __future__ import annotations

import json

import pytest
import torch

from contrastkit.utils.seed import seed_everything
from contrastkit.train.trainer import TrainConfig, Trainer
from tests.conftest import make_method

#: Options that make each method's state change within 8 steps of batch 16.
OPTIONS = {
    "mochi": {"queue_size": 64, "mixing_start_step": 2, "num_hardest": 16, "num_mixed": 8, "num_query_mixed": 4},
    "beclr": {"memory_size": 64, "num_partitions": 4, "k": 2, "memory_start_step": 3},
    "sbcl": {"recluster_every": 3},
    "obow": {"num_words": 16},
    "directpred": {},
    "mixed-barlow-twins": {},
    "sepclr": {},
    "spark": {},
}
CONV = {"obow", "spark"}


def _trainer(name, dataset, run_dir):
    method = make_method(name, encoder="resnet" if name in CONV else "mlp", **OPTIONS[name])
    config = TrainConfig(batch_size=16, steps=8, lr=1e-2, progress=False, precision="fp32")
    seed_everything(1)
    return Trainer(method, dataset, config, run_dir, seed=0)


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path, tiny_images, name):
    straight = _trainer(name, tiny_images, tmp_path / "a")
    full = straight.fit()

    first = _trainer(name, tiny_images, tmp_path / "b")
    first.fit(stop_at=3)
    del first
    second = _trainer(name, tiny_images, tmp_path / "b")
    assert second.resume() == 3
    second.fit()

    losses = [json.loads(line)["loss"] for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert losses == [record["loss"] for record in full.history]
    assert all(torch.isfinite(torch.tensor(losses)))
    resumed = second.method.state_dict()
    for key, value in straight.method.state_dict().items():
        assert torch.equal(value, resumed[key]), key

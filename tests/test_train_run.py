"""The recipe job end to end: learning beats the baselines measured in the same run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contrastkit.data.builtin import find_fashion_mnist_files
from contrastkit.train.config import load_config
from contrastkit.train.run import run


def test_simclr_on_digits_beats_the_random_init_encoder(tmp_path):
    config = load_config(None, [
        "data.name=digits", "train.steps=120", "train.batch_size=128", "train.checkpoint_every=0",
        "train.precision=fp32", "eval.plots=false", "eval.knn_k=20", "train.lr=0.003", "train.eval_every=60",
    ])  # fmt: skip
    run_dir, metrics = run(config, tmp_path / "run", verbose=False)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    periodic = [record["eval/knn_top1"] for record in records if "eval/knn_top1" in record]
    assert len(periodic) == 2 and periodic[-1] == pytest.approx(metrics["knn_top1"])  # same protocol at the end
    random_init = metrics["baselines"]["random_init"]
    assert metrics["knn_top1"] > random_init["knn_top1"] + 0.03
    assert metrics["linear_top1"] > random_init["linear_top1"]
    assert metrics["train"]["steps"] == 120


@pytest.mark.parametrize("recipe", ["ts2vec", "autotcl"])
def test_series_recipe_on_gunpoint_beats_the_random_init_encoder(recipe: str, tmp_path: Path) -> None:
    """A tiny TS2Vec / AutoTCL (60 steps, a 4-block encoder) on real UCR data, TS2Vec's SVM protocol included."""
    config = load_config(recipe, [
        "data=ucr:GunPoint", "encoder.hidden_dim=32", "encoder.depth=4", "encoder.output_dim=64", "train.steps=60",
    ])  # fmt: skip
    _, metrics = run(config, tmp_path / "run", verbose=False)
    random_init = metrics["baselines"]["random_init"]
    assert metrics["knn_top1"] > random_init["knn_top1"] + 0.02
    assert 0.5 < metrics["svm_accuracy"] <= 1.0 and "svm_accuracy" in random_init
    assert metrics["dataset"] == "ucr:GunPoint" and metrics["train"]["steps"] == 60


def _has_fashion_mnist() -> bool:
    try:
        find_fashion_mnist_files()
    except FileNotFoundError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _has_fashion_mnist(), reason="needs `apt-get install dataset-fashion-mnist`")
def test_main_job_beats_both_baselines(tmp_path: Path):
    """The main job of `make run` (about 3 minutes on 2 cores): the issue's acceptance check."""
    _, metrics = run(load_config(None), tmp_path / "run", verbose=False)
    for baseline in ("raw_input", "random_init"):
        for key in ("knn_top1", "linear_top1"):
            assert metrics[key] > metrics["baselines"][baseline][key], (baseline, key)

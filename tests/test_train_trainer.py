"""Trainer: exact resume, atomic checkpoints, schedules, optimisers, bad input."""

from __future__ import annotations

import json
import os

import pytest
import torch

from contrastkit.train.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from contrastkit.train.optim import LARS, build_optimizer, warmup_cosine
from contrastkit.utils.seed import seed_everything
from contrastkit.train.trainer import TrainConfig, Trainer
from tests.conftest import make_method


def _trainer(method_name, dataset, run_dir, **overrides):
    method = make_method(method_name, **({"queue_size": 64} if method_name == "moco" else {}))
    config = TrainConfig(batch_size=16, steps=8, lr=1e-2, progress=False, **overrides)
    seed_everything(1)
    return Trainer(method, dataset, config, run_dir, seed=0)


@pytest.mark.parametrize("method_name", ["simclr", "moco", "byol"])
def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path, tiny_images, method_name):
    straight = _trainer(method_name, tiny_images, tmp_path / "a")
    full = straight.fit()

    first = _trainer(method_name, tiny_images, tmp_path / "b")
    first.fit(stop_at=3)  # "interrupted" after 3 steps; the final save of fit() is the checkpoint
    del first
    second = _trainer(method_name, tiny_images, tmp_path / "b")
    assert second.resume() == 3
    rest = second.fit()

    losses_full = [record["loss"] for record in full.history]
    records_b = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records_b] == list(range(1, 9))
    assert [r["loss"] for r in records_b] == losses_full  # bit-identical
    for (name, a), b in zip(straight.method.state_dict().items(), second.method.state_dict().values()):
        assert torch.equal(a, b), name
    assert rest.steps == 8


def test_checkpoint_round_trip_restores_optimizer_and_rng(tmp_path, tiny_images):
    trainer = _trainer("simclr", tiny_images, tmp_path)
    trainer.fit(stop_at=2)
    expected_rng = torch.get_rng_state()
    state_before = {k: v.clone() for k, v in trainer.optimizer.state_dict()["state"][0].items()
                    if isinstance(v, torch.Tensor)}
    torch.manual_seed(123)  # disturb
    other = _trainer("simclr", tiny_images, tmp_path)
    other.resume()
    assert torch.equal(torch.get_rng_state(), expected_rng)
    for key, value in state_before.items():
        assert torch.equal(other.optimizer.state_dict()["state"][0][key], value)
    assert other.scheduler.last_epoch == trainer.scheduler.last_epoch == 2


def test_failed_checkpoint_write_leaves_previous_latest(tmp_path, tiny_images, monkeypatch):
    method = make_method("simclr")
    root = tmp_path / "checkpoints"
    save_checkpoint(root, 1, method)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("contrastkit.train.checkpoint.save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(root, 2, method)
    assert latest_checkpoint(root).name == "step-0000001"
    assert sorted(p.name for p in root.iterdir()) == ["latest.json", "step-0000001"]  # no temp folder left


def test_corrupt_checkpoint_raises_clear_error(tmp_path):
    method = make_method("simclr")
    folder = save_checkpoint(tmp_path, 1, method)
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="corrupt checkpoint"):
        load_checkpoint(folder, make_method("simclr"))


def test_truncated_checkpoint_raises_clear_error(tmp_path):
    method = make_method("simclr")
    folder = save_checkpoint(tmp_path, 1, method)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt checkpoint"):
        load_checkpoint(folder, make_method("simclr"))


def test_mismatched_checkpoint_names_the_difference(tmp_path):
    folder = save_checkpoint(tmp_path, 1, make_method("simclr"))
    with pytest.raises(ValueError, match="does not match this model.*missing"):
        load_checkpoint(folder, make_method("byol"))
    with pytest.raises(ValueError, match="shape mismatch"):
        load_checkpoint(folder, make_method("simclr", projection_dim=64))


def test_missing_checkpoint_file_raises(tmp_path):
    folder = save_checkpoint(tmp_path, 1, make_method("simclr"))
    os.remove(folder / "state.json")
    with pytest.raises(FileNotFoundError, match="state.json"):
        load_checkpoint(folder, make_method("simclr"))


def test_resume_without_checkpoint_raises(tmp_path, tiny_images):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        _trainer("simclr", tiny_images, tmp_path).resume()


def test_keep_last_prunes_old_checkpoints(tmp_path, tiny_images):
    trainer = _trainer("simclr", tiny_images, tmp_path, checkpoint_every=2, keep_last=2)
    trainer.fit()
    names = sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*"))
    assert names == ["step-0000006", "step-0000008"]


def test_loss_decreases_on_digits(digits, tmp_path):
    method = make_method("simclr", encoder="mlp")
    config = TrainConfig(batch_size=128, steps=40, lr=3e-3, progress=False, log_every=1)
    result = Trainer(method, digits.train, config, tmp_path).fit()
    losses = [r["loss"] for r in result.history]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.2


def test_warmup_cosine_schedule_shape():
    values = [warmup_cosine(step, 100, 10) for step in range(100)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert values[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[10:], values[11:]))
    assert warmup_cosine(100, 100, 10) == pytest.approx(0.0)
    assert warmup_cosine(55, 100, 10) == pytest.approx(0.5)


def test_lars_trust_ratio_against_manual_update():
    weight = torch.nn.Parameter(torch.tensor([[3.0, 4.0]]))  # norm 5
    weight.grad = torch.tensor([[0.0, 1.0]])
    optimizer = LARS([{"params": [weight], "weight_decay": 0.0}], lr=0.1, momentum=0.0, eta=0.02)
    optimizer.step()
    # trust = 0.02 * 5 / 1 = 0.1 ; step = lr * trust * g = 0.01
    assert torch.allclose(weight.data, torch.tensor([[3.0, 3.99]]))


@pytest.mark.parametrize("name", ["adamw", "sgd", "lars"])
def test_optimizers_exclude_biases_and_norms_from_weight_decay(name):
    method = make_method("simclr", encoder="small-resnet")
    optimizer = build_optimizer(name, method, lr=0.1, weight_decay=0.5)
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.5 and plain["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decayed["params"]) and all(p.ndim <= 1 for p in plain["params"])


def test_bad_training_settings_raise(tiny_images, tmp_path):
    with pytest.raises(ValueError, match="unknown optimizer"):
        Trainer(make_method(), tiny_images, TrainConfig(batch_size=16, optimizer="adam-ish", progress=False), tmp_path)
    with pytest.raises(ValueError, match="batch_size"):
        Trainer(make_method(), tiny_images, TrainConfig(batch_size=1, progress=False), tmp_path)
    with pytest.raises(ValueError, match="fewer than batch_size"):
        Trainer(make_method(), tiny_images, TrainConfig(batch_size=128, progress=False), tmp_path)
    with pytest.raises(ValueError, match="lr"):
        Trainer(make_method(), tiny_images, TrainConfig(batch_size=16, lr=0.0, progress=False), tmp_path)


def test_non_finite_loss_stops_with_clear_error(tiny_images, tmp_path):
    method = make_method()
    with torch.no_grad():
        for parameter in method.encoder.parameters():
            parameter.fill_(float("nan"))
    trainer = Trainer(method, tiny_images, TrainConfig(batch_size=16, steps=2, progress=False), tmp_path)
    with pytest.raises((FloatingPointError, ValueError), match="NaN|nan"):
        trainer.fit()


def test_tensorboard_scalars_are_written(tmp_path, tiny_images):
    pytest.importorskip("tensorboard")
    trainer = _trainer("simclr", tiny_images, tmp_path, tensorboard=True)
    trainer.fit(stop_at=2)
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_bf16_autocast_trains_and_precision_is_validated(tmp_path, tiny_images):
    trainer = _trainer("simclr", tiny_images, tmp_path, precision="bf16")
    result = trainer.fit(stop_at=2)
    assert trainer.precision == "bf16" and result.steps == 2 and result.final_loss == result.final_loss
    assert _trainer("simclr", tiny_images, tmp_path / "auto", precision="auto").precision in ("bf16", "fp32")
    with pytest.raises(ValueError, match="train.precision"):
        _trainer("simclr", tiny_images, tmp_path / "bad", precision="fp8")


def test_progress_is_quiet_when_disabled(tmp_path, tiny_images, capsys):
    _trainer("simclr", tiny_images, tmp_path).fit(stop_at=2)  # progress=False in _trainer
    assert capsys.readouterr().err == ""


def test_periodic_evaluation_is_logged_every_eval_every_steps(tmp_path, tiny_images):
    calls = []

    def evaluate(method):
        calls.append(method.training)
        return {"knn_top1": 0.5}

    method = make_method("simclr")
    config = TrainConfig(batch_size=16, steps=6, eval_every=2, log_every=5, progress=False)
    result = Trainer(method, tiny_images, config, tmp_path, eval_fn=evaluate).fit()
    evaluated = [record["step"] for record in result.history if "eval/knn_top1" in record]
    assert evaluated == [2, 4, 6] and len(calls) == 3

"""The command line: ``contrastkit list | train | eval`` end to end on the bundled digits data."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from contrastkit.cli import app
from contrastkit.data import dataset_names
from contrastkit.methods import method_names
from contrastkit.recipes import recipe_names
from contrastkit.train.config import load_config, resolved
from tests.conftest import cli_error_line

runner = CliRunner()

#: A tiny budget on the bundled 8x8 digits: a whole run takes a few seconds.
TINY = ["--set", "data.name=digits", "--set", "train.steps=6", "--set", "train.batch_size=64"]
NO_EXTRAS = ["--set", "eval.plots=false", "--set", "eval.baselines=false"]


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]




@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One complete tiny run with baselines and plots on, checkpoints at steps 2, 4 and 6."""
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    result = runner.invoke(
        app, ["train", "--run-dir", str(run_dir), *TINY, "--set", "train.checkpoint_every=2", "--set", "train.log_every=1"]
    )
    assert result.exit_code == 0, (result.output, result.exception)
    return run_dir, result


@pytest.fixture()
def run_copy(finished_run, tmp_path):
    """A private copy of the finished run, for tests that modify it."""
    copy = tmp_path / "run"
    shutil.copytree(finished_run[0], copy)
    return copy


def test_list_shows_methods_datasets_and_recipes():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    for name in [*method_names(), *dataset_names(), *recipe_names()]:
        assert name in result.stdout
    for heading in ("methods:", "datasets:", "recipes:", "encoders:", "view presets:"):
        assert heading in result.stdout


def test_no_arguments_prints_help():
    result = runner.invoke(app, [])
    assert "train" in result.output and "eval" in result.output and "list" in result.output


def test_train_writes_a_complete_run_dir(finished_run):
    run_dir, result = finished_run
    assert result.stdout.strip().splitlines()[-1] == str(run_dir)
    for name in ("config.yaml", "metrics.json", "metrics.jsonl", "baselines.json", "checkpoints/latest.json",
                 "loss_curve.png", "embedding_2d.png"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    assert (run_dir / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert (run_dir / "embedding_2d.png").read_bytes()[:4] == b"\x89PNG"

    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("knn_top1", "linear_top1"):
        assert 0.0 <= metrics[key] <= 1.0
        for baseline in ("raw_input", "random_init"):
            assert 0.0 <= metrics["baselines"][baseline][key] <= 1.0
    assert metrics["baselines"] == json.loads((run_dir / "baselines.json").read_text())
    assert metrics["train"]["steps"] == 6
    assert metrics["dataset"] == "digits" and metrics["method"] == "simclr"
    # A trained encoder beats chance (10 classes) by a wide margin even after 6 steps.
    assert metrics["knn_top1"] > 0.5

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["train"]["steps"] == 6 and config["data"]["name"] == "digits"
    assert config["train"]["keep_last"] == 2  # the resolved config: defaults filled in

    records = _read_jsonl(run_dir / "metrics.jsonl")
    assert [record["step"] for record in records] == [1, 2, 3, 4, 5, 6]
    assert all(math.isfinite(record["loss"]) for record in records)
    latest = json.loads((run_dir / "checkpoints" / "latest.json").read_text())
    assert latest == {"path": "step-0000006", "step": 6}
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("step-*")) == ["step-0000004", "step-0000006"]


def test_train_without_run_dir_writes_under_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", *TINY, *NO_EXTRAS])
    assert result.exit_code == 0, (result.output, result.exception)
    last = Path(result.stdout.strip().splitlines()[-1])
    # METHOD-DATA-TIME: what was trained on what, not the recipe's name (simclr-fashion-mnist)
    assert last.parent == Path("runs") and last.name.startswith("simclr-digits-")
    assert (tmp_path / last / "metrics.json").is_file()
    assert not (tmp_path / last / "baselines.json").exists()
    assert not (tmp_path / last / "loss_curve.png").exists()


def test_train_refuses_to_overwrite_a_run(finished_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", "--run-dir", str(finished_run[0]), *TINY, *NO_EXTRAS])
    assert "already holds a run" in cli_error_line(result)


def test_eval_rewrites_metrics_json(run_copy, finished_run):
    original = json.loads((finished_run[0] / "metrics.json").read_text())
    stale = dict(original, knn_top1=-1.0, linear_top1=-1.0)
    (run_copy / "metrics.json").write_text(json.dumps(stale))
    result = runner.invoke(app, ["eval", str(run_copy)])
    assert result.exit_code == 0, (result.output, result.exception)
    metrics = json.loads((run_copy / "metrics.json").read_text())
    assert metrics["evaluated_step"] == 6
    assert metrics["knn_top1"] == pytest.approx(original["knn_top1"])
    assert metrics["linear_top1"] == pytest.approx(original["linear_top1"])
    assert metrics["baselines"] == original["baselines"]
    assert "learned" in result.stdout


def test_resume_of_a_finished_run_does_not_train_again(run_copy, finished_run):
    before = _read_jsonl(run_copy / "metrics.jsonl")
    result = runner.invoke(app, ["train", "--resume", str(run_copy)])
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout.strip().splitlines()[-1] == str(run_copy)
    assert "from step 6/6" in result.stderr
    assert _read_jsonl(run_copy / "metrics.jsonl") == before
    metrics = json.loads((run_copy / "metrics.json").read_text())
    original = json.loads((finished_run[0] / "metrics.json").read_text())
    assert metrics["train"]["steps"] == 6
    assert metrics["knn_top1"] == pytest.approx(original["knn_top1"])


def test_resume_of_a_finished_run_keeps_its_training_summary(run_copy, finished_run):
    original = json.loads((finished_run[0] / "metrics.json").read_text())
    result = runner.invoke(app, ["train", "--resume", str(run_copy)])
    assert result.exit_code == 0
    metrics = json.loads((run_copy / "metrics.json").read_text())
    assert math.isfinite(metrics["train"]["final_loss"])
    assert metrics["train"]["final_loss"] == pytest.approx(original["train"]["final_loss"])


def test_resume_of_an_interrupted_run_reproduces_the_same_losses(run_copy, finished_run):
    # Make the copy look like a run killed after step 4's checkpoint: no step 6, no metrics.json.
    shutil.rmtree(run_copy / "checkpoints" / "step-0000006")
    (run_copy / "checkpoints" / "latest.json").write_text(json.dumps({"path": "step-0000004", "step": 4}))
    (run_copy / "metrics.json").unlink()
    result = runner.invoke(app, ["train", "--resume", str(run_copy)])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "from step 4/6" in result.stderr

    uninterrupted = _read_jsonl(finished_run[0] / "metrics.jsonl")
    resumed = _read_jsonl(run_copy / "metrics.jsonl")
    assert [record["step"] for record in resumed] == [1, 2, 3, 4, 5, 6]
    assert [record["loss"] for record in resumed] == [record["loss"] for record in uninterrupted]  # exact
    metrics = json.loads((run_copy / "metrics.json").read_text())
    original = json.loads((finished_run[0] / "metrics.json").read_text())
    assert metrics["train"]["steps"] == 6
    assert metrics["knn_top1"] == pytest.approx(original["knn_top1"])
    assert json.loads((run_copy / "checkpoints" / "latest.json").read_text())["step"] == 6


# -- bad input: exit code 2 and one line naming what was expected ------------------------------------


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["train", "nope"], "unknown recipe 'nope'; expected one of: "),
        (["train", "missing.yaml"], "recipe file missing.yaml does not exist"),
        (["train", *TINY, "--set", "method.name=nope"], "unknown method 'nope'; expected one of: "),
        (["train", *TINY, "--set", "data.name=nope"], "unknown dataset 'nope'; expected one of: "),
        (["train", "--set", "bogus.x=1"], "unknown section 'bogus'; expected one of"),
        (["train", "--set", "train.lr"], "--set expects key=value (e.g. train.lr=0.01), got 'train.lr'"),
        (["train", "--set", "train.nope=1"], "train.nope: unknown key; expected some of:"),
        (["train", "--set", "eval.nope=1"], "eval.nope: unknown key; expected some of:"),
        (["train", "--set", "data.data_dir=/nonexistent"], "apt-get install dataset-fashion-mnist"),
        (["train", "ts2vec", "--set", "data=digits"],
         "dataset 'digits' is 'image' data, but method 'ts2vec' trains on 'series' data"),
        # SimCLR trains on series too; the image recipe's view preset does not exist there.
        (["train", "--set", "data=ucr:GunPoint"], "unknown series view preset 'simclr'; expected one of: identity"),
        (["train", "--set", "data=ucr:GunPoint", "--set", "method=obow"],
         "methods for 'series' data: autotcl, barlow-twins"),
        (["train", "grace-debian", "--set", "data=digits"], "methods for 'image' data: barlow-twins"),
        (["train", "--set", "data=karate-club"], "methods for 'graph' data: bgrl, dsla, grace"),
        # every modality's views are checked against their declarations, naming the recipe's key
        (["train", "ts2vec", "--set", "views.jiter_sigma=1"], "views.jiter_sigma: unknown key; did you mean 'jitter_sigma'?"),
        (["train", "grace-debian", "--set", "data=karate-club", "--set", "views.feature_mask_1=abc"],
         "views.feature_mask_1: expected a finite number, got 'abc'"),
        (["train", "--set", "views.crop_scale=abc"], "views.crop_scale: expected a list of 2 finite numbers, got 'abc'"),
    ],
)
def test_bad_train_input_exits_2_with_one_error_line(arguments, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = cli_error_line(runner.invoke(app, [arguments[0], "--run-dir", str(tmp_path / "run"), *arguments[1:]]))
    assert expected in line


@pytest.mark.parametrize(
    ("arguments", "known"),
    [
        (["train", "nope"], {"clip-emoji", "simclr-fashion-mnist", "ts2vec"}),
        (["train", *TINY, "--set", "method.name=nope"], {"simclr", "symile", "ts2vec"}),
        (["train", *TINY, "--set", "data.name=nope"], {"digits", "emoji", "ucr:GunPoint"}),
    ],
)
def test_unknown_name_lists_the_registered_names_sorted(arguments, known, tmp_path, monkeypatch):
    # The list grows with every registration, so the test checks its form, not a fixed prefix.
    monkeypatch.chdir(tmp_path)
    line = cli_error_line(runner.invoke(app, [arguments[0], "--run-dir", str(tmp_path / "run"), *arguments[1:]]))
    names = line.split("expected one of: ", 1)[1].split(", ")
    assert names == sorted(names) and known <= set(names), line


def test_fashion_mnist_error_names_the_missing_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = cli_error_line(runner.invoke(app, ["train", "--run-dir", "r", "--set", "data.data_dir=/nonexistent"]))
    assert "/nonexistent does not exist" in line and "data.data_dir=PATH" in line


def test_eval_of_a_folder_that_is_not_a_run_dir(tmp_path):
    line = cli_error_line(runner.invoke(app, ["eval", str(tmp_path)]))
    assert "is not a run directory: expected" in line and "config.yaml" in line


def test_eval_of_a_run_dir_without_checkpoints(tmp_path):
    config = resolved(load_config(None, ["data.name=digits", "eval.baselines=false"]))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    line = cli_error_line(runner.invoke(app, ["eval", str(tmp_path)]))
    assert "has no checkpoint" in line and "latest.json" in line


def test_resume_of_a_dir_without_checkpoints(tmp_path):
    config = resolved(load_config(None, ["data.name=digits", "train.steps=2", "eval.baselines=false"]))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    line = cli_error_line(runner.invoke(app, ["train", "--resume", str(tmp_path)]))
    assert "cannot resume: no checkpoint" in line and "latest.json" in line


def test_resume_of_a_folder_that_is_not_a_run_dir(tmp_path):
    line = cli_error_line(runner.invoke(app, ["train", "--resume", str(tmp_path / "absent")]))
    assert "is not a run directory" in line


def test_resume_refuses_a_recipe_or_a_change_of_what_it_trains(finished_run):
    line = cli_error_line(runner.invoke(app, ["train", "simclr", "--resume", str(finished_run[0])]))
    assert "--resume continues a run with its saved config" in line
    line = cli_error_line(runner.invoke(app, ["train", "--resume", str(finished_run[0]), "--set", "train.lr=0.5"]))
    assert "--resume --set train.lr: only train.steps" in line
    line = cli_error_line(runner.invoke(app, ["train", "--resume", str(finished_run[0]), "--set", "train.steps=abc"]))
    assert "train.steps: expected an integer or null, got 'abc'" in line


def test_resume_with_more_steps_extends_a_finished_run(run_copy):
    result = runner.invoke(app, ["train", "--resume", str(run_copy), "--set", "train.steps=9"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert json.loads((run_copy / "checkpoints" / "latest.json").read_text())["step"] == 9
    assert yaml.safe_load((run_copy / "config.yaml").read_text())["train"]["steps"] == 9
    assert json.loads((run_copy / "metrics.json").read_text())["train"]["steps"] == 9


def test_eval_of_a_run_with_other_eval_settings(run_copy):
    result = runner.invoke(app, ["eval", str(run_copy), "--set", "eval.knn_k=5"])
    assert result.exit_code == 0, (result.output, result.exception)
    metrics = json.loads((run_copy / "metrics.json").read_text())
    assert metrics["eval_settings"]["knn_k"] == 5
    assert "random_init" in metrics["baselines"]  # measured again with the same settings
    assert yaml.safe_load((run_copy / "config.yaml").read_text())["eval"]["knn_k"] != 5  # the run's own stay
    line = cli_error_line(runner.invoke(app, ["eval", str(run_copy), "--set", "train.steps=3"]))
    assert "eval RUN_DIR --set train.steps: only eval.*, train.device can change" in line
    result = runner.invoke(app, ["eval", str(run_copy), "--set", "train.device=cpu"])  # e.g. a GPU run on a laptop
    assert result.exit_code == 0, (result.output, result.exception)
    line = cli_error_line(runner.invoke(app, ["eval", str(run_copy), "--set", "eval.knn_k=0"]))
    assert "eval.knn_k: expected a value ≥ 1, got 0" in line


def test_version_and_plain_switches():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("contrastkit ")
    help_text = runner.invoke(app, ["list", "--help"]).stdout
    assert "--papers" in help_text and "<bool>" not in help_text


def test_rejected_train_leaves_no_run_dir_behind(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", "--run-dir", "run", *TINY, "--set", "method.name=nope"])
    assert result.exit_code == 2
    assert not (tmp_path / "run").exists()

"""Fault injection on real processes: kill -9 storms, SIGTERM, flipped bytes, a full disk, bad values.

Each test runs ``contrastkit train`` as a subprocess on the bundled 8x8 digits (a step takes
milliseconds), so what is checked is what a user's shell would see.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from contrastkit.train.checkpoint import resolve_checkpoint

STEPS = 12
RUN = [
    "--set", "data.name=digits", "--set", f"train.steps={STEPS}", "--set", "train.batch_size=64",
    "--set", "train.checkpoint_every=1", "--set", "eval.baselines=false", "--set", "eval.plots=false",
    "--set", "train.progress=false", "--set", "eval.linear=false",
]  # fmt: skip


def _environment() -> dict[str, str]:
    # one thread: the same arithmetic in every process, and no oversubscription on 2 cores
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _train(*arguments: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "contrastkit", "train", *arguments],
        cwd=cwd, env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _latest_step(run_dir: Path) -> int:
    try:
        return json.loads((run_dir / "checkpoints" / "latest.json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        return 0


def _kill_after_step(process: subprocess.Popen, run_dir: Path, step: int, timeout: float = 120.0) -> bool:
    """SIGKILL ``process`` once a checkpoint of at least ``step`` exists; False if it ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if _latest_step(run_dir) >= step:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.01)
    process.kill()
    pytest.fail(f"no checkpoint of step {step} within {timeout}s")


def _weights(run_dir: Path) -> dict:
    return load_file(str(resolve_checkpoint(run_dir / "checkpoints") / "model.safetensors"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("faults")
    run_dir = root / "clean"
    process = _train("--run-dir", str(run_dir), *RUN, cwd=root)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    return run_dir


def test_kill_9_storm_then_resume_equals_the_uninterrupted_run_bit_for_bit(uninterrupted, tmp_path):
    run_dir = tmp_path / "killed"
    generator = random.Random(0)
    kills, process = 0, _train("--run-dir", str(run_dir), *RUN, cwd=tmp_path)
    while kills < 4:
        target = min(STEPS - 1, _latest_step(run_dir) + generator.randint(1, 3))
        if not _kill_after_step(process, run_dir, target):
            break  # it finished first: nothing left to interrupt
        kills += 1
        process = _train("--resume", str(run_dir), cwd=tmp_path)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert kills >= 2, "the run finished before it could be interrupted twice"
    clean, resumed = _weights(uninterrupted), _weights(run_dir)
    assert clean.keys() == resumed.keys()
    assert all((clean[key] == resumed[key]).all() for key in clean if key.startswith(("model.", "optim.")))
    # nothing a killed writer left behind survives the resumes
    leftovers = [p.name for p in [*run_dir.iterdir(), *(run_dir / "checkpoints").iterdir()] if p.name.startswith(".")]
    assert leftovers == []


def test_sigterm_writes_a_checkpoint_and_prints_the_resume_command(uninterrupted, tmp_path):
    run_dir = tmp_path / "terminated"
    process = _train("--run-dir", str(run_dir), *RUN, "--set", "train.checkpoint_every=0", cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not (run_dir / "metrics.jsonl").exists() or not (run_dir / "metrics.jsonl").read_text().strip():
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.01)  # training has started: the handler is in place
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.skip("the run finished before SIGTERM reached a step boundary")
    assert process.returncode == 143, stderr
    assert f"continue with: contrastkit train --resume {run_dir}" in stderr
    stopped_at = _latest_step(run_dir)
    assert 1 <= stopped_at < STEPS  # checkpoint_every=0: only the SIGTERM handler wrote one
    process = _train("--resume", str(run_dir), cwd=tmp_path)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    clean, resumed = _weights(uninterrupted), _weights(run_dir)
    assert all((clean[key] == resumed[key]).all() for key in clean if key.startswith("model."))


def test_a_flipped_byte_is_detected_and_the_older_checkpoint_is_used(uninterrupted, tmp_path, capsys):
    run_dir = tmp_path / "flipped"
    shutil.copytree(uninterrupted, run_dir)
    latest = resolve_checkpoint(run_dir / "checkpoints")
    model = latest / "model.safetensors"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01  # inside the tensor data, past the header: safetensors alone loads it
    model.write_bytes(bytes(data))
    fallback = resolve_checkpoint(run_dir / "checkpoints")
    assert fallback is not None and fallback != latest
    warning = capsys.readouterr().err
    assert latest.name in warning and fallback.name in warning and "SHA-256" in warning
    process = subprocess.run(
        [sys.executable, "-m", "contrastkit", "eval", str(run_dir)], cwd=tmp_path, env=_environment(),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    assert json.loads((run_dir / "metrics.json").read_text())["evaluated_step"] == int(fallback.name.split("-")[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux mount namespaces")
def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path):
    """A tmpfs with room for one checkpoint and a half fills during the second write: the run fails
    in one line, and the first checkpoint stays intact and latest."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not available to mount a small tmpfs")
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a mount namespace here: {probe.stderr.decode().strip()}")
    sized = _train("--run-dir", str(tmp_path / "sized"), *RUN, "--set", "train.steps=1", cwd=tmp_path)
    assert sized.wait(timeout=300) == 0, sized.communicate()
    checkpoint = sum(p.stat().st_size for p in (tmp_path / "sized" / "checkpoints" / "step-0000001").iterdir())
    disk = tmp_path / "disk"
    disk.mkdir()
    size_kib = int(1.6 * checkpoint / 1024) + 256  # + config.yaml, metrics.jsonl and the pointer
    script = (
        f"mount -t tmpfs -o size={size_kib}k tmpfs {disk} && cd {disk} && "
        f"{sys.executable} -m contrastkit train --run-dir {disk}/run " + " ".join(RUN) +
        f"; echo rc=$?; ls -a {disk}/run/checkpoints; cat {disk}/run/checkpoints/latest.json"
    )  # fmt: skip
    result = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True,
                            env=_environment(), timeout=300)
    assert "rc=2" in result.stdout, (result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors and errors[-1].startswith("error: No space left on device: "), result.stderr
    assert "Traceback" not in result.stderr
    listing = result.stdout.split("rc=2", 1)[1]
    assert ".tmp-" not in listing  # the half-written checkpoint was removed
    pointer = json.loads(listing[listing.index("{"):])
    assert pointer["step"] >= 1 and pointer["path"] in listing  # latest.json names a checkpoint that exists


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.steps=abc", "train.steps: expected an integer or null, got 'abc'"),
        ("train.lr=abc", "train.lr: expected a finite number, got 'abc'"),
        ("train.epochs=abc", "train.epochs: expected a finite number, got 'abc'"),
        ("train=5", "train: expected a mapping of keys, got 5"),
        ("views.crop_scale=abc", "views.crop_scale: expected a list of 2 finite numbers, got 'abc'"),
        ("train.steps=2.5", "train.steps: expected an integer or null, got 2.5"),
        ("eval.knn_k=0", "eval.knn_k: expected a value ≥ 1, got 0"),
        ("train.device=cuda:7", "train.device: 'cuda:7' was asked for"),
        ("train.stesp=3", "train.stesp: unknown key; did you mean 'steps'?"),
    ],
)
def test_every_bad_value_is_rc_2_and_one_line_and_leaves_no_folder(override, expected, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "contrastkit", "train", "--set", "data.name=digits", "--set", override],
        cwd=tmp_path, env=_environment(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_diverging_run_names_the_step_and_the_learning_rate(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "contrastkit", "train", "--run-dir", str(tmp_path / "run"), *RUN,
         "--set", "train.lr=1e9", "--set", "train.warmup_fraction=0", "--set", "train.checkpoint_every=0"],
        cwd=tmp_path, env=_environment(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: training diverged at step ") and "lower train.lr (now 1e+09)" in line
    assert not (tmp_path / "run").exists()  # failed before its first checkpoint: no debris

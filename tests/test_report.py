"""The run report: what changed against the recipe, the results with baselines, a page a browser loads."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from contrastkit.cli import app
from contrastkit.train.report import config_diff, flatten, results_rows

runner = CliRunner()


def test_config_diff_lists_changed_and_added_keys_but_not_protocol_defaults():
    recipe = {"data": {"name": "fashion-mnist"}, "train": {"lr": 0.001, "steps": None}, "eval": {"knn_k": 200}}
    run = {"data": {"name": "digits"}, "train": {"lr": 0.001, "steps": 6, "progress": False},
           "eval": {"knn_k": 200, "batch_size": 1024}}
    assert config_diff(recipe, run) == [
        ("data.name", "fashion-mnist", "digits"),
        ("train.progress", "(absent)", False),
        ("train.steps", None, 6),
    ]
    assert config_diff(None, run) == []
    assert flatten({"a": {"b": {"c": 1}}, "d": [1, 2]}) == {"a.b.c": 1, "d": [1, 2]}


def test_results_rows_put_the_learned_row_first_and_mark_missing_scores():
    rows = results_rows({"knn_top1": 0.5}, {"raw_input": {"knn_top1": 0.25, "linear_top1": 0.75}},
                        ["knn_top1", "linear_top1"])
    assert rows == [["learned", "0.5000", "-"], ["raw_input", "0.2500", "0.7500"]]


@pytest.fixture(scope="module")
def reported_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("report") / "run"
    result = runner.invoke(app, ["train", "--run-dir", str(run_dir), "--set", "data.name=digits",
                                 "--set", "train.steps=6", "--set", "train.batch_size=64"])
    assert result.exit_code == 0, (result.output, result.exception)
    return run_dir


def test_a_run_writes_both_reports_with_the_diff_the_table_and_the_commands(reported_run):
    markdown = (reported_run / "report.md").read_text()
    assert "| data.name | fashion-mnist | digits |" in markdown  # the recipe is simclr-fashion-mnist
    assert re.search(r"^\| learned \| 0\.\d{4} \| 0\.\d{4} \|$", markdown, re.M)
    assert "| random_init |" in markdown and "| raw_input |" in markdown
    assert f"contrastkit train --resume {reported_run}" in markdown
    page = (reported_run / "report.html").read_text()
    assert "<script" not in page and "http" not in page.split("<body>", 1)[1]  # self-contained, loads nothing
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 3 and all(base64.b64decode(data).startswith(b"\x89PNG") for data in images)


def test_re_evaluation_rewrites_the_report(reported_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(reported_run, copy)
    (copy / "report.md").unlink()
    result = runner.invoke(app, ["eval", str(copy), "--set", "eval.knn_k=5"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "| learned |" in (copy / "report.md").read_text()


def test_report_html_renders_in_headless_chromium_without_console_errors(reported_run):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium here (Debian's chromium package; `make test` installs it when apt is available)")
    completed = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         "--dump-dom", (reported_run / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    console = [line for line in completed.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    dom = completed.stdout
    assert '<table id="results">' in dom and "<td>learned</td>" in dom and "<td>random_init</td>" in dom

"""Text runs end to end: a tiny fine-tune that must beat the zero-shot encoder, zero-shot
evaluation of a BEIR folder, and ``contrastkit embed`` / ``search``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contrastkit.cli import app
from contrastkit.data.stdlib_code import build_stdlib_code_records, split_of
from contrastkit.train.config import load_config, resolved
from contrastkit.train.run import (
    build_protocol,
    build_method_from_config,
    evaluate_untrained,
    load_data,
    run,
)


def _write_pairs(path: Path, records) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps({"query": record.query, "positive": record.document}) + "\n")


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory) -> tuple[Path, Path]:
    """Stdlib docstring -> code pairs: 512 training pairs and 120 test pairs from other packages."""
    records = build_stdlib_code_records()
    train = [r for r in records if split_of(r.package) == "train"][::4][:512]
    test = [r for r in records if split_of(r.package) == "test"][:120]
    folder = tmp_path_factory.mktemp("pairs")
    _write_pairs(folder / "train.jsonl", train)
    _write_pairs(folder / "test.jsonl", test)
    return folder / "train.jsonl", folder / "test.jsonl"


def _config(train: Path, test: Path, *extra: str) -> dict:
    return load_config("code-search", [
        "data=text-pairs", f"data.train={train}", f"data.test={test}",
        "encoder.max_length=64", "encoder.query_max_length=32",
        "train.steps=24", "train.batch_size=16", "train.lr=5e-5", "train.checkpoint_every=0",
        "train.progress=false", "train.device=cpu", "eval.plots=false", *extra,
    ])  # fmt: skip


def test_a_tiny_fine_tune_beats_the_zero_shot_encoder(pair_files, tmp_path):
    run_dir, metrics = run(_config(*pair_files), tmp_path / "run", verbose=False)
    zero_shot = metrics["baselines"]["zero_shot"]
    assert metrics["train"]["steps"] == 24
    for name in ("mrr@10", "ndcg@10", "recall@100", "map"):
        assert 0.0 <= metrics[name] <= 1.0
    assert metrics["mrr@10"] > zero_shot["mrr@10"] + 0.01, (metrics["mrr@10"], zero_shot["mrr@10"])
    assert 0.0 < metrics["baselines"]["bm25"]["mrr@10"] < 1.0
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["mrr@10"] == metrics["mrr@10"]

    # `contrastkit eval RUN_DIR` reloads the checkpoint and reproduces the retrieval metrics.
    runner = CliRunner()
    result = runner.invoke(app, ["eval", str(run_dir)])
    assert result.exit_code == 0, result.output
    reevaluated = json.loads((run_dir / "metrics.json").read_text())
    assert reevaluated["evaluated_step"] == 24
    assert reevaluated["mrr@10"] == pytest.approx(metrics["mrr@10"], abs=1e-6)

    # The trained encoder embeds a corpus and answers a query from the command line.
    corpus = tmp_path / "corpus.jsonl"
    with corpus.open("w") as handle:
        handle.write(json.dumps({"_id": "add", "text": "def add(a, b):\n    return a + b"}) + "\n")
        handle.write(json.dumps({"_id": "read", "title": "", "text": "def read(path):\n    return open(path).read()"}) + "\n")
        handle.write(json.dumps({"_id": "sock", "text": "def connect(host):\n    return socket.create_connection(host)"}) + "\n")
    out = tmp_path / "embedded"
    result = runner.invoke(app, ["embed", str(corpus), "--out", str(out), "--run", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert (out / "embeddings.npy").exists() and json.loads((out / "ids.json").read_text()) == ["add", "read", "sock"]
    result = runner.invoke(app, ["search", str(out), "read the contents of a file", "-k", "2"])
    assert result.exit_code == 0, result.output
    first_hit = result.output.splitlines()[1].split()
    assert first_hit[0] == "1" and first_hit[2] == "read", result.output
    # An existing folder is not overwritten by accident.
    result = runner.invoke(app, ["embed", str(corpus), "--out", str(out), "--run", str(run_dir)])
    assert result.exit_code == 2 and "--overwrite" in result.output


def _beir_folder(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    corpus = {
        "d1": ("Sorting", "def sort_items(items):\n    return sorted(items)"),
        "d2": ("", "def read_text(path):\n    with open(path) as handle:\n        return handle.read()"),
        "d3": ("", "def add_numbers(a, b):\n    return a + b"),
        "d4": ("", "def make_socket():\n    return socket.socket()"),
    }
    with (root / "corpus.jsonl").open("w") as handle:
        for doc_id, (title, text) in corpus.items():
            handle.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    queries = {"q1": "sort a list", "q2": "read a file into a string", "q3": "sum of two numbers"}
    with (root / "queries.jsonl").open("w") as handle:
        for query_id, text in queries.items():
            handle.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\nq3\td3\t1\n")
    return root


def test_eval_of_the_untrained_encoder_on_a_beir_folder(tmp_path):
    folder = _beir_folder(tmp_path / "beir")
    config = load_config("code-search", [f"data=beir:{folder}", "eval.plots=false"])
    metrics = evaluate_untrained(config, tmp_path / "out", verbose=False)
    assert metrics["mrr@10"] == pytest.approx(1.0)  # MiniLM finds each obvious match first
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["ndcg@10"] == pytest.approx(metrics["ndcg@10"]) and saved["trained"] is False
    assert "bm25" in saved["baselines"]
    # the pretrained encoder's row has the name training gives it (zero_shot), not "untrained"
    assert saved["row"] == "zero_shot" and "zero_shot" not in saved["baselines"]

    result = CliRunner().invoke(app, ["eval", "--set", f"data=beir:{folder}", "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "cli" / "metrics.json").read_text())["mrr@10"] == pytest.approx(1.0)


def test_periodic_torch_metrics_agree_with_the_final_trec_eval_scores(tmp_path):
    folder = _beir_folder(tmp_path / "beir")
    (folder / "qrels" / "test.tsv").write_text(  # graded, with a second relevant document
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td3\t2\nq2\td2\t2\nq3\td3\t1\nq3\td4\t1\n"
    )
    config = resolved(load_config("code-search", [f"data=beir:{folder}", "encoder.max_length=32"]))
    splits = load_data(config)
    evaluator = build_protocol(config, splits, device=None, seed=0)
    method = build_method_from_config(config, splits)
    periodic = evaluator(method)  # no dev qrels: the validation task is the test task
    final = evaluator.score(method)
    for name in ("mrr@10", "ndcg@10", "recall@100", "map"):
        assert periodic[f"val_{name}"] == pytest.approx(final[name], abs=1e-6), name


def test_training_on_a_beir_folder_uses_its_train_qrels(tmp_path):
    folder = _beir_folder(tmp_path / "beir")
    overrides = [f"data=beir:{folder}", "encoder.max_length=32", "train.steps=2", "train.batch_size=2",
                 "train.progress=false", "train.device=cpu", "eval.plots=false", "eval.bm25=false"]
    with pytest.raises(ValueError, match="qrels/train.tsv"):
        run(load_config("code-search", overrides), tmp_path / "no-train", verbose=False)
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td3\t1\n")
    _, metrics = run(load_config("code-search", overrides), tmp_path / "trained", verbose=False)
    assert metrics["train"]["steps"] == 2 and 0.0 <= metrics["mrr@10"] <= 1.0
    assert set(metrics["baselines"]) == {"zero_shot"}


def test_text_commands_fail_clearly(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["embed", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "corpus" in result.output
    result = runner.invoke(app, ["search", str(tmp_path), "a query"])
    assert result.exit_code == 2 and "contrastkit embed" in result.output
    result = runner.invoke(app, ["embed", str(tmp_path / "x.txt"), "--out", str(tmp_path / "o"), "--model",
                                 str(tmp_path / "no-model")])
    assert result.exit_code == 2
    result = runner.invoke(app, ["eval", "--set", "data=beir:" + str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "nowhere" in result.output

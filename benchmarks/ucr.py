"""TS2Vec and AutoTCL on every classification set aeon bundles, beside 1-NN DTW and ROCKET.

Run::

    .venv/bin/python benchmarks/ucr.py                                  # every bundled set, 3 seeds
    .venv/bin/python benchmarks/ucr.py --datasets ucr:GunPoint --seeds 0  # one set, one seed
    .venv/bin/python benchmarks/ucr.py --render-only                    # re-render BENCHMARKS.md from the JSON

Protocol (TS2Vec, Yue et al. AAAI 2022, classification): the ``ts2vec`` / ``autotcl``
recipes — batch 8, 320-dimensional representations, AdamW at a constant lr 1e-3,
200 iterations when the training set holds at most 100,000 values (``N * C * T``),
600 otherwise — then an RBF SVM (C by 5-fold grid search) on the max-pooled
instance representations of the whole series, computed with the averaged weights.
Both methods run with 3 seeds; the table gives test accuracy mean ± std (population
std over seeds) and the training seconds per run (mean over seeds; evaluation
excluded). In the same run, on the same arrays: 1-NN DTW (aeon, full window,
deterministic: one run) and ROCKET (aeon, 10,000 kernels, one run per seed).

Writes ``benchmarks/results/ucr.json`` after every dataset (an interrupted run keeps
what it measured; ``--resume`` skips datasets already there) and the section between
``<!-- ucr:start -->`` and ``<!-- ucr:end -->`` of ``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from contrastkit.data import dataset_names, load_dataset
from contrastkit.utils.atomic import atomic_write_json
from contrastkit.train.config import load_config, resolved
from contrastkit.train.run import build_method_from_config, build_protocol, load_data, run
from markdown_section import update_section  # benchmarks/ is on sys.path when run as a script
from series_baselines import one_nn_dtw, rocket

SECTION = "ucr"
ROOT = Path(__file__).resolve().parent.parent
METHODS = ["ts2vec", "autotcl"]
#: Published TS2Vec accuracies (Yue et al. 2022, full UCR/UEA result tables) where we quote them.
PUBLISHED_TS2VEC = {"ucr:GunPoint": 0.980}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--datasets", nargs="+", default=None, help="default: every bundled ucr:/uea: set")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--no-baselines", action="store_true", help="skip 1-NN DTW and ROCKET")
    parser.add_argument("--steps", type=int, default=None, help="override the TS2Vec iteration rule")
    parser.add_argument("--resume", action="store_true", help="keep datasets already in --results")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--add-random-init", action="store_true",
                        help="only add the random-init encoder's scores to the rows of --results that lack them")
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument("--merge-results", type=Path, nargs="+", default=[], metavar="FILE",
                        help="with --render-only: first merge these results files (e.g. runs over other datasets, "
                             "started in parallel) into --results")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "ucr.json")
    return parser.parse_args(argv)


def ts2vec_steps(train_values: int) -> int:
    """TS2Vec's default iteration count: 200 for training sets of at most 100,000 values, else 600."""
    return 200 if train_values <= 100_000 else 600


def bundled_series_sets() -> list[str]:
    return [name for name in dataset_names() if name.startswith(("ucr:", "uea:"))]


def train_and_score(method: str, dataset: str, seed: int, steps: int) -> dict[str, float]:
    config = load_config(method, [f"data={dataset}", f"seed={seed}", f"train.steps={steps}",
                                  "eval.baselines=false", "eval.plots=false", "train.progress=false"])  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        _, metrics = run(config, Path(tmp) / "run", verbose=False)
    return {
        "svm_accuracy": metrics["svm_accuracy"],
        "knn_top1": metrics["knn_top1"],
        "linear_top1": metrics["linear_top1"],
        "train_seconds": metrics["train"]["seconds"],
        "final_loss": metrics["train"]["final_loss"],
    }


def random_init_score(dataset: str, seed: int) -> dict[str, float]:
    """The untrained TS2Vec encoder (the recipe's, at seed ``seed``) under the same SVM protocol."""
    config = resolved(load_config("ts2vec", [f"data={dataset}", f"seed={seed}"]))
    splits = load_data(config)
    method = build_method_from_config(config, splits)
    evaluator = build_protocol(config, splits, torch.device("cpu"), seed)
    scores = evaluator.score(*evaluator.features(method))
    return {"svm_accuracy": scores["svm_accuracy"], "knn_top1": scores["knn_top1"], "linear_top1": scores["linear_top1"]}


def measure_dataset(dataset: str, args: argparse.Namespace) -> dict[str, Any]:
    splits = load_dataset(dataset)
    train_x, test_x = splits.train.inputs, splits.test.inputs
    assert splits.train.labels is not None and splits.test.labels is not None
    values = int(train_x.shape[0] * train_x.shape[1] * train_x.shape[2])
    steps = args.steps or ts2vec_steps(values)
    row: dict[str, Any] = {
        "dataset": dataset, "train_rows": int(train_x.shape[0]), "test_rows": int(test_x.shape[0]),
        "channels": int(train_x.shape[1]), "length": int(train_x.shape[2]), "classes": splits.num_classes,
        "unequal_length": bool(torch.isnan(train_x).any() or torch.isnan(test_x).any()), "steps": steps,
    }  # fmt: skip
    for method in args.methods:
        runs = []
        for seed in args.seeds:
            result = train_and_score(method, dataset, seed, steps)
            print(f"{dataset:<28} {method:<8} seed {seed}: svm {result['svm_accuracy']:.3f} "
                  f"({result['train_seconds']:.0f} s)", flush=True)  # fmt: skip
            runs.append(result)
        row[method] = runs
    row["random_init"] = [random_init_score(dataset, seed) for seed in args.seeds]
    if not args.no_baselines:
        arrays = [a.numpy() for a in (train_x, splits.train.labels, test_x, splits.test.labels)]
        row["dtw"] = [one_nn_dtw(*arrays, seed=0)]
        print(f"{dataset:<28} 1-NN DTW: {row['dtw'][0]['accuracy']:.3f} ({row['dtw'][0]['seconds']:.0f} s)", flush=True)
        row["rocket"] = [rocket(*arrays, seed=seed) for seed in args.seeds]
        print(f"{dataset:<28} ROCKET: {[round(r['accuracy'], 3) for r in row['rocket']]}", flush=True)
    return row


def _stats(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.pstdev(values) if len(values) > 1 else 0.0)


def _cell(runs: list[dict[str, float]] | None, key: str) -> str:
    if not runs:
        return "-"
    mean, std = _stats([r[key] for r in runs])
    return f"{mean:.3f} ± {std:.3f}" if len(runs) > 1 else f"{mean:.3f}"


def render(results: dict[str, Any]) -> str:
    meta, rows = results["meta"], results["rows"]
    lines = [
        "## Time series: TS2Vec and AutoTCL on aeon's bundled UCR/UEA sets",
        "",
        "Test accuracy of an RBF SVM on max-pooled representations (TS2Vec's protocol: batch 8, 320 dims, "
        "AdamW lr 1e-3, 200 iterations, 600 when the training set holds over 100,000 values), mean ± std over "
        f"seeds {meta['seeds']}; 1-NN DTW (aeon, full window) and ROCKET (aeon, 10,000 kernels, one run per seed) "
        f"on the same arrays, in the same run. Random-init encoder: the recipe's encoder untrained (same seeds, same "
        f"SVM protocol) — random dilated convolutions are a strong baseline on small sets, as ROCKET shows. "
        f"Seconds: training time per run (mean over seeds), CPU, "
        f"{meta['threads']} torch thread(s), {meta['cpu_count']} cores.",
        "",
        "| dataset | train / test, C × T | TS2Vec | AutoTCL | random-init encoder | 1-NN DTW | ROCKET | TS2Vec published "
        "| TS2Vec s | AutoTCL s |",
        "|---|---|---|---|---|---|---|---|---:|---:|",
    ]
    wins = []
    for row in rows:
        shape = f"{row['train_rows']} / {row['test_rows']}, {row['channels']} × {row['length']}"
        if row["unequal_length"]:
            shape += " (unequal)"
        seconds = [f"{_stats([r['train_seconds'] for r in row[m]])[0]:.0f}" if row.get(m) else "-" for m in METHODS]
        published = PUBLISHED_TS2VEC.get(row["dataset"])
        lines.append(
            f"| {row['dataset']} | {shape} | {_cell(row.get('ts2vec'), 'svm_accuracy')} | "
            f"{_cell(row.get('autotcl'), 'svm_accuracy')} | {_cell(row.get('random_init'), 'svm_accuracy')} | "
            f"{_cell(row.get('dtw'), 'accuracy')} | "
            f"{_cell(row.get('rocket'), 'accuracy')} | {'-' if published is None else f'{published:.3f}'} | "
            f"{seconds[0]} | {seconds[1]} |"
        )
        if row.get("ts2vec") and row.get("autotcl"):
            wins.append(_stats([r["svm_accuracy"] for r in row["autotcl"]])[0]
                        - _stats([r["svm_accuracy"] for r in row["ts2vec"]])[0])  # fmt: skip
    averages = []
    for key, field in (("ts2vec", "svm_accuracy"), ("autotcl", "svm_accuracy"), ("random_init", "svm_accuracy"),
                       ("dtw", "accuracy"), ("rocket", "accuracy")):
        per_set = [_stats([r[field] for r in row[key]])[0] for row in rows if row.get(key)]
        averages.append(f"{statistics.fmean(per_set):.3f}" if per_set and len(per_set) == len(rows) else "-")
    lines.append(f"| **average** | | {' | '.join(averages)} | | | |")
    if wins:
        better = sum(w > 0 for w in wins)
        lines += ["", f"AutoTCL − TS2Vec, mean accuracy per set: {', '.join(f'{w:+.3f}' for w in wins)} "
                      f"(AutoTCL ahead on {better} of {len(wins)} sets, average {statistics.fmean(wins):+.3f})."]  # fmt: skip
    lines += ["", f"Command: `{meta['command']}` ({meta['date']}, torch {meta['torch']}, {meta['platform']}). "
                  "Raw numbers per seed (kNN and linear-probe accuracy too): `benchmarks/results/ucr.json`."]  # fmt: skip
    for note in meta.get("notes", []):  # context added to the results file by hand, e.g. what was not run
        lines += ["", note]
    if meta.get("random_init_added"):
        lines += ["", f"Random-init scores added afterwards for the rows that lacked them: `{meta['random_init_added']}`."]
    for extra in meta.get("merged_runs", []):
        lines += ["", f"Merged from a run started in parallel (`--render-only --merge-results`): `{extra['command']}` "
                      f"({extra['date']}, {extra['threads']} torch thread(s))."]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render_only:
        results = json.loads(args.results.read_text(encoding="utf-8"))
        if args.merge_results:
            merged = {row["dataset"]: row for row in results["rows"]}
            for extra_path in args.merge_results:
                extra = json.loads(extra_path.read_text(encoding="utf-8"))
                merged.update({row["dataset"]: row for row in extra["rows"]})
                results["meta"].setdefault("merged_runs", []).append(extra["meta"])
            order = bundled_series_sets()
            results["rows"] = sorted(merged.values(), key=lambda r: order.index(r["dataset"]) if r["dataset"] in order else 99)
            atomic_write_json(args.results, results)
        update_section(args.out, SECTION, render(results))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.add_random_init:
        results = json.loads(args.results.read_text(encoding="utf-8"))
        for row in results["rows"]:
            if "random_init" not in row:
                row["random_init"] = [random_init_score(row["dataset"], seed) for seed in results["meta"]["seeds"]]
                print(f"{row['dataset']:<28} random init: {_cell(row['random_init'], 'svm_accuracy')}", flush=True)
        results["meta"]["random_init_added"] = "python benchmarks/ucr.py --add-random-init " + " ".join(
            shlex.quote(a) for a in (argv or sys.argv[1:]) if a != "--add-random-init")
        atomic_write_json(args.results, results)
        update_section(args.out, SECTION, render(results))
        return 0
    datasets = args.datasets or bundled_series_sets()
    meta = {
        "seeds": args.seeds, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "torch": torch.__version__, "platform": platform.platform(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python benchmarks/ucr.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
    }  # fmt: skip
    rows: list[dict[str, Any]] = []
    if args.resume and args.results.exists():
        rows = [r for r in json.loads(args.results.read_text(encoding="utf-8"))["rows"] if r["dataset"] in datasets]
    done = {r["dataset"] for r in rows}
    started = time.perf_counter()
    for dataset in datasets:
        if dataset in done:
            continue
        rows.append(measure_dataset(dataset, args))
        rows.sort(key=lambda r: datasets.index(r["dataset"]))
        args.results.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.results, {"meta": meta, "rows": rows})
        update_section(args.out, SECTION, render({"meta": meta, "rows": rows}))
    print(render({"meta": meta, "rows": rows}))
    print(f"total {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

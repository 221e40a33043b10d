"""LightGCL on ``debian-tags`` at the official batch size (4096): test Recall@20 against steps.

Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lightgcl_curve.py            # 600 s of training
    .venv/bin/python benchmarks/lightgcl_curve.py --seconds 30 --eval-every 5   # a quick look

The official script (HKUDS/LightGCL ``main.py``, ``parser.py``) trains 100 epochs of 4096 BPR
triples (``--inter_batch``), Adam at lr 1e-3, and scores the test users every 3 epochs. Here:
the recipe ``lightgcl-tags`` (q 5, lambda_1 0.2, lambda_2 1e-7, tau 0.2, 2 layers, 64 dims,
Xavier), AdamW at lr 1e-3 without optimiser weight decay (= Adam), batch 4096, trained on the
recipe's training split until ``--seconds`` of training time (evaluation excluded) have passed,
with the full-ranking test Recall@20 / NDCG@20 every ``--eval-every`` steps. Nothing is
selected from the curve: it is reported as measured, the last point as the result. The loop
is :func:`simgcl_sweep.train_and_score` (the Trainer's seeded per-epoch permutation).
Writes ``benchmarks/results/lightgcl_curve.json`` and prints the curve.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

import torch
from simgcl_sweep import build, train_and_score  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "lightgcl_curve.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--seconds", type=float, default=600.0, help="training-time budget")
    parser.add_argument("--eval-every", type=int, default=21, help="steps between test scores (21 = an epoch)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--render-only", action="store_true")
    return parser.parse_args(argv)


def render(results: dict[str, Any]) -> str:
    meta, run = results.get("meta", {}), results.get("run")
    if not run:
        return ""
    lines = ["| step | epoch | train s | Recall@20 | NDCG@20 | BPR | L_s (unweighted) |", "|---|---|---|---|---|---|---|"]
    for point in run["curve"]:
        lines.append(f"| {point['step']} | {point['epoch']:.1f} | {point['train_seconds']:.0f} | "
                     f"{point['recall_at_20']:.3f} | {point['ndcg_at_20']:.3f} | {point.get('bpr', float('nan')):.3f} | "
                     f"{point.get('cl', float('nan')):.3f} |")  # fmt: skip
    head = (f"LightGCL at batch {meta.get('batch_size', '?')}, seed {meta.get('seed', '?')}, "
            f"{meta.get('seconds', '?'):g} s of training: {run['steps']} steps = {run['epochs']} epochs "
            f"({run['steps_per_epoch']} steps each; the official run is 100 epochs). Test Recall@20 by full ranking. "
            f"Command: `{meta.get('command', '?')}` ({meta.get('date', '?')}; {meta.get('machine', '?')}, "
            f"{meta.get('threads', '?')} torch thread).")  # fmt: skip
    return head + "\n\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.render_only:
        print(render(json.loads(args.results.read_text())))
        return
    from contrastkit.data import load_dataset
    from contrastkit.utils.atomic import atomic_write_json

    torch.set_num_threads(args.threads)
    data = load_dataset("debian-tags").test  # the recipe's split: test_fraction 0.2, seed 0
    method = build("lightgcl", data, args.seed)
    run = train_and_score(method, data, steps=None, seconds=args.seconds, eval_every=args.eval_every,
                          seed=args.seed, batch_size=args.batch_size)  # fmt: skip
    results = {
        "meta": {"command": "python benchmarks/lightgcl_curve.py " + shlex.join(sys.argv[1:]),
                 "date": _dt.date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
                 "torch": torch.__version__, "threads": args.threads, "batch_size": args.batch_size,
                 "seconds": args.seconds, "seed": args.seed, "eval_every": args.eval_every},
        "run": run,
    }  # fmt: skip
    args.results.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.results, results)
    print(render(results))


if __name__ == "__main__":
    main()

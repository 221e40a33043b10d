"""SimGCL's lambda x eps sweep on a validation split of ``debian-tags`` (never its test split).

Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/simgcl_sweep.py            # the grid, 200 steps each
    .venv/bin/python benchmarks/simgcl_sweep.py --lambdas 0.02 --eps 0.1 --steps 50   # a quick look
    .venv/bin/python benchmarks/simgcl_sweep.py --render-only                 # the table from the JSON

``debian-tags`` has no validation split: its training pairs (the recipe's 80 % per-package
hold-out, ``data.seed=0``) are split again, per package and seeded (``--validation-seed``), into
fitting pairs and validation pairs (``--validation-fraction`` of each package's training tags,
the same rule as the test hold-out). Every configuration trains on the fitting pairs only and
is scored by full ranking of the validation tags (fitting tags masked); the test tags are never
read. LightGCN + BPR is trained in the same loop as the reference.

The loop is the recipe's (``lightgcl-tags``): LightGCN encoder, 64 dims, 2 layers, Xavier
initialisation; AdamW, lr 1e-3, no optimiser weight decay, constant learning rate; batch 1024
BPR triples; one seeded permutation of the training pairs per epoch (as the Trainer's loader).
Validation Recall@20 / NDCG@20 are recorded every ``--eval-every`` steps; the table reports the
last step (no early stopping). Writes ``benchmarks/results/simgcl_sweep.json`` after every
configuration (``--resume`` keeps configurations already there) and prints the table.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import itertools
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "simgcl_sweep.json"
LAMBDAS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5]
EPS = [0.05, 0.1, 0.2]
#: The recipe's encoder and schedule (src/contrastkit/recipes/lightgcl-tags.yaml).
ENCODER = {"embedding_dim": 64, "num_layers": 2, "init": "xavier"}
LR, BATCH = 1e-3, 1024


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lambdas", nargs="+", type=float, default=LAMBDAS)
    parser.add_argument("--eps", nargs="+", type=float, default=EPS)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0, help="training seed (initialisation, batches, noise)")
    parser.add_argument("--validation-fraction", type=float, default=0.2)
    parser.add_argument("--validation-seed", type=int, default=1)
    parser.add_argument("--no-reference", action="store_true", help="skip the LightGCN + BPR reference")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--render-only", action="store_true")
    return parser.parse_args(argv)


def validation_split(validation_fraction: float, validation_seed: int) -> tuple[Any, Any]:
    """``(fit, validation)``: :class:`InteractionData` on the fitting pairs, scored on the validation pairs.

    The second one is the first with ``test_pairs`` = validation pairs (the ranking masks the
    fitting pairs). Built from ``debian-tags``' training pairs only.
    """
    from contrastkit.data import load_dataset
    from contrastkit.data.interactions import InteractionData, split_interactions

    source = load_dataset("debian-tags").test  # test_fraction 0.2, seed 0: the recipe's split
    fit_pairs, validation_pairs = split_interactions(
        source.train_pairs, source.num_users, source.num_items, test_fraction=validation_fraction,
        seed=validation_seed,
    )  # fmt: skip
    data = InteractionData(source.num_users, source.num_items, fit_pairs, validation_pairs)
    return data, {"users": source.num_users, "items": source.num_items, "train_pairs": int(source.train_pairs.shape[1]),
                  "fit_pairs": int(fit_pairs.shape[1]), "validation_pairs": int(validation_pairs.shape[1]),
                  "validation_users": len(data)}  # fmt: skip


def build(method_name: str, data: Any, seed: int, **options: Any) -> torch.nn.Module:
    from contrastkit.methods.recommendation import LightGCL, LightGCNBPR, SimGCL
    from contrastkit.nn.lightgcn import LightGCN

    torch.manual_seed(seed)
    encoder = LightGCN(data.num_users, data.num_items, data.train_pairs, **ENCODER)
    cls = {"simgcl": SimGCL, "lightgcn": LightGCNBPR, "lightgcl": LightGCL}[method_name]
    return cls(encoder, (), **options)


def train_and_score(method: torch.nn.Module, data: Any, *, steps: int | None, eval_every: int, seed: int,
                    batch_size: int = BATCH, seconds: float | None = None) -> dict[str, Any]:  # fmt: skip
    """Train ``method`` on ``data.train_pairs``; score ``data.test_pairs`` every ``eval_every`` steps.

    Stops after ``steps`` steps or, with ``seconds``, when the training time (evaluation
    excluded) passes it, whichever comes first. Returns the curve and the final scores.
    """
    from contrastkit.data.interactions import InteractionDataset
    from contrastkit.eval.recommendation import recall_ndcg_at_k

    dataset = InteractionDataset(data)
    optimizer = torch.optim.AdamW(method.parameters(), lr=LR, weight_decay=0.0)
    steps_per_epoch = len(dataset) // batch_size
    torch.manual_seed(seed)  # negatives and noise draw from the global RNG

    def score() -> dict[str, float]:
        method.eval()
        users, items = method.user_item_embeddings()
        method.train()
        return recall_ndcg_at_k(users, items, data.train_pairs, data.test_pairs, k=20, batch_users=4096)

    curve, logs, train_seconds, step, order = [], {}, 0.0, 0, None
    method.train()
    while (steps is None or step < steps) and (seconds is None or train_seconds < seconds):
        epoch, position = divmod(step, steps_per_epoch)
        if position == 0:
            order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed * 100003 + epoch))
        started = time.perf_counter()
        batch = dataset.__getitems__(order[position * batch_size : (position + 1) * batch_size].tolist())
        output = method(batch)
        optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        optimizer.step()
        train_seconds += time.perf_counter() - started
        step += 1
        logs = {key: round(float(value), 5) for key, value in output.logs.items()}
        if step % eval_every == 0:
            curve.append({"step": step, "epoch": round(step / steps_per_epoch, 2), "train_seconds": round(train_seconds, 1),
                          **score(), **logs})  # fmt: skip
            print(f"    step {step}: {curve[-1]}", file=sys.stderr, flush=True)
    if not curve or curve[-1]["step"] != step:
        curve.append({"step": step, "epoch": round(step / steps_per_epoch, 2), "train_seconds": round(train_seconds, 1),
                      **score(), **logs})  # fmt: skip
    return {**{key: curve[-1][key] for key in ("recall_at_20", "ndcg_at_20")}, "steps": step,
            "epochs": round(step / steps_per_epoch, 2), "train_seconds": round(train_seconds, 1),
            "steps_per_epoch": steps_per_epoch, "curve": curve}  # fmt: skip


def key(lambd: float, eps: float) -> str:
    return f"lambda={lambd:g},eps={eps:g}"


def best(results: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The configuration with the highest validation Recall@20 (NDCG@20 breaks ties)."""
    runs = results.get("runs", {})
    if not runs:
        return None
    name = max(runs, key=lambda k: (runs[k]["recall_at_20"], runs[k]["ndcg_at_20"]))
    return name, runs[name]


def render(results: dict[str, Any]) -> str:
    """A markdown table: validation Recall@20 (NDCG@20) per (lambda, eps), LightGCN's beside it."""
    meta, runs = results.get("meta", {}), results.get("runs", {})
    if not runs:
        return ""
    lambdas = sorted({run["lambda"] for run in runs.values()})
    epsilons = sorted({run["eps"] for run in runs.values()})
    lines = [
        "| SimGCL lambda | " + " | ".join(f"eps {eps:g}" for eps in epsilons) + " |",
        "|---|" + "---|" * len(epsilons),
    ]
    top = best(results)
    for lambd in lambdas:
        cells = []
        for eps in epsilons:
            run = runs.get(key(lambd, eps))
            if run is None:
                cells.append("-")
                continue
            cell = f"{run['recall_at_20']:.3f} ({run['ndcg_at_20']:.3f})"
            cells.append(f"**{cell}**" if top and top[0] == key(lambd, eps) else cell)
        lines.append(f"| {lambd:g} | " + " | ".join(cells) + " |")
    reference = results.get("reference")
    text = (f"Validation Recall@20 (NDCG@20) after {meta.get('steps', '?')} steps of {BATCH} triples, seed "
            f"{meta.get('seed', '?')}, bold: the best")  # fmt: skip
    if reference:
        text += (f"; LightGCN + BPR in the same loop: {reference['recall_at_20']:.3f} "
                 f"({reference['ndcg_at_20']:.3f})")  # fmt: skip
    data = meta.get("data", {})
    text += (f". Validation = {meta.get('validation_fraction', '?')} of each package's training tags "
             f"({data.get('validation_pairs', '?')} pairs, {data.get('validation_users', '?')} packages), "
             f"carved from the training split (seed {meta.get('validation_seed', '?')}); fitting on the other "
             f"{data.get('fit_pairs', '?')} pairs; the test tags unused. Command: `{meta.get('command', '?')}` "
             f"({meta.get('date', '?')}; {meta.get('machine', '?')}, {meta.get('threads', '?')} torch thread).")
    return text + "\n\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results: dict[str, Any] = {"meta": {}, "runs": {}}
    if (args.resume or args.render_only) and args.results.exists():
        results = json.loads(args.results.read_text())
    if args.render_only:
        print(render(results))
        return
    from contrastkit.utils.atomic import atomic_write_json

    torch.set_num_threads(args.threads)
    data, data_meta = validation_split(args.validation_fraction, args.validation_seed)
    results["meta"] = {
        "command": "python benchmarks/simgcl_sweep.py " + shlex.join(sys.argv[1:]),
        "date": _dt.date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "torch": torch.__version__, "threads": args.threads, "steps": args.steps, "eval_every": args.eval_every,
        "seed": args.seed, "validation_fraction": args.validation_fraction, "validation_seed": args.validation_seed,
        "data": data_meta,
    }  # fmt: skip
    args.results.parent.mkdir(parents=True, exist_ok=True)
    todo = [("lightgcn", None, None)] if not args.no_reference else []
    todo += [("simgcl", lambd, eps) for lambd, eps in itertools.product(args.lambdas, args.eps)]
    for name, lambd, eps in todo:
        done = results.get("reference") if name == "lightgcn" else results["runs"].get(key(lambd, eps))
        if args.resume and done is not None and done.get("steps") == args.steps:
            continue
        print(f"== {name}" + ("" if lambd is None else f" {key(lambd, eps)}"), file=sys.stderr, flush=True)
        options = {} if name == "lightgcn" else {"lambd": lambd, "eps": eps}
        method = build(name, data, args.seed, **options)
        outcome = train_and_score(method, data, steps=args.steps, eval_every=args.eval_every, seed=args.seed)
        if name == "lightgcn":
            results["reference"] = outcome
        else:
            results["runs"][key(lambd, eps)] = {"lambda": lambd, "eps": eps, **outcome}
        print(f"   recall@20 {outcome['recall_at_20']:.4f} ndcg@20 {outcome['ndcg_at_20']:.4f} "
              f"({outcome['train_seconds']} s)", file=sys.stderr, flush=True)  # fmt: skip
        atomic_write_json(args.results, results)
    top = best(results)
    if top is not None:
        results["best"] = {"config": top[0], "lambda": top[1]["lambda"], "eps": top[1]["eps"],
                           "recall_at_20": top[1]["recall_at_20"], "ndcg_at_20": top[1]["ndcg_at_20"]}  # fmt: skip
    atomic_write_json(args.results, results)
    print(render(results))


if __name__ == "__main__":
    main()

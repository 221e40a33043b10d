"""The XOR check of Symile (Saporta et al., NeurIPS 2024, Section 5.1): Symile vs pairwise CLIP.

Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/symile_xor.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/symile_xor.py --seeds 0 1 2 --steps 500 --encoder mlp

Data: ``a, b ~ Bernoulli(0.5)`` i.i.d., ``c = a XOR b`` (the paper's ``p_hat = 1``, one bit
per modality, ``d_v = 1``). ``c`` is independent of ``a`` and of ``b`` one at a time, so
every pairwise statistic is that of independent bits; only the triple carries information.

Setup (the official ``examples/binary_xor.py`` of github.com/rajesh-lab/symile): one
encoder per modality from the bit (a ``[1]`` float input) to ``d = 16`` dimensions,
linear with bias (``--encoder mlp``: ``Linear(1, 32) - ReLU - Linear(32, 16)``),
L2-normalised; a learned ``log logit_scale`` initialised to ``-0.3``; AdamW, ``lr = 0.1``,
weight decay 0.01 (torch's default, as in the official code); a training set of 10000
tuples in shuffled batches of 1000 (``--steps`` batches, default 300; the official example runs 50 epochs = 500);
a fresh test set of 5000 tuples. Unlike the official example, the final model is tested
(no validation set, no best-validation-loss checkpoint).

Objectives: (i) ``contrastkit.functional.symile_loss`` (``--negatives``, default ``n``,
the official O(N) sampling); (ii) ``pairwise_clip_loss``, the mean of CLIP's symmetric
loss over the three pairs. The same seed gives both the same data and initialisation.

Zero-shot test: given ``a`` and ``b``, predict ``c`` by scoring the two candidate
embeddings ``f_c(0), f_c(1)``: Symile with ``symile_zero_shot_scores([r_a, r_b], r_c)``
(the MIP); pairwise CLIP with ``r_a . r_c + r_b . r_c`` (the official ``clip`` scores add
``r_a . r_b``, the same for both candidates). Accuracy over the test set; ties (a
collapsed encoder) go to candidate 0, which is right half the time.

Writes ``benchmarks/results/symile_xor.json`` and ``benchmarks/results/symile_xor.md``
(the markdown section, also printed).
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
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from contrastkit.functional.symile import pairwise_clip_loss, symile_loss, symile_zero_shot_scores
from contrastkit.utils.atomic import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("symile", "pairwise-clip")


def xor_data(size: int, generator: torch.Generator) -> torch.Tensor:
    """``[size, 3]`` float bits ``(a, b, a XOR b)``."""
    a = torch.randint(0, 2, (size,), generator=generator)
    b = torch.randint(0, 2, (size,), generator=generator)
    return torch.stack([a, b, a ^ b], dim=1).float()


class Encoders(nn.Module):
    """One encoder per modality, bit -> ``dim``, and the learned log logit scale."""

    def __init__(self, dim: int, kind: str, logit_scale_init: float) -> None:
        super().__init__()

        def encoder() -> nn.Module:
            if kind == "linear":
                return nn.Linear(1, dim)
            return nn.Sequential(nn.Linear(1, 32), nn.ReLU(), nn.Linear(32, dim))

        self.encoders = nn.ModuleList(encoder() for _ in range(3))
        self.log_scale = nn.Parameter(torch.tensor(float(logit_scale_init)))

    def embed(self, modality: int, bits: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.encoders[modality](bits.unsqueeze(1)), dim=1)

    def forward(self, batch: torch.Tensor) -> list[torch.Tensor]:
        return [self.embed(m, batch[:, m]) for m in range(3)]


def accuracy(model: Encoders, method: str, test: torch.Tensor) -> float:
    """Zero-shot accuracy of predicting ``c`` from ``a`` and ``b``."""
    with torch.no_grad():
        r_a, r_b = model.embed(0, test[:, 0]), model.embed(1, test[:, 1])
        candidates = model.embed(2, torch.tensor([0.0, 1.0]))
        if method == "symile":
            scores = symile_zero_shot_scores([r_a, r_b], candidates)
        else:
            scores = r_a @ candidates.T + r_b @ candidates.T
        return float((scores.argmax(dim=1) == test[:, 2].long()).float().mean())


def run_one(method: str, seed: int, args: argparse.Namespace) -> dict:
    """Train one objective from ``seed`` and test it; the data depend only on ``seed``."""
    data_rng = torch.Generator().manual_seed(seed)
    train, test = xor_data(args.train_n, data_rng), xor_data(args.test_n, data_rng)
    torch.manual_seed(seed)
    model = Encoders(args.dim, args.encoder, args.logit_scale_init)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    negatives_rng = torch.Generator().manual_seed(seed + 1)
    batch_rng = torch.Generator().manual_seed(seed + 2)
    order, position, losses = torch.randperm(args.train_n, generator=batch_rng), 0, []
    start = time.perf_counter()
    for _ in range(args.steps):
        if position + args.batch_size > args.train_n:
            order, position = torch.randperm(args.train_n, generator=batch_rng), 0
        batch = train[order[position : position + args.batch_size]]
        position += args.batch_size
        reps = model(batch)
        scale = model.log_scale.exp()
        if method == "symile":
            loss = symile_loss(reps, scale, negatives=args.negatives, generator=negatives_rng)
        else:
            loss = pairwise_clip_loss(reps, scale)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    tail = losses[-10:]
    return {
        "method": method,
        "seed": seed,
        "test_accuracy": accuracy(model, method, test),
        "final_train_loss": sum(tail) / len(tail),
        "logit_scale": model.log_scale.detach().exp().item(),
        "train_seconds": round(seconds, 3),
    }


def summarize(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def markdown(result: dict) -> str:
    config, summary = result["config"], result["summary"]
    lines = [
        "## Symile XOR check",
        "",
        f"`c = a XOR b`, predict `c` from `a`, `b` zero-shot; {config['steps']} steps of batch "
        f"{config['batch_size']}, {config['encoder']} encoders, {len(config['seeds'])} seeds, "
        f"{config['test_n']} test tuples. `{result['command']}`",
        "",
        "| method | " + " | ".join(f"seed {s}" for s in config["seeds"]) + " | mean ± std | s / run |",
        "|---|" + "---:|" * (len(config["seeds"]) + 2),
    ]
    for method in METHODS:
        runs = [r for r in result["runs"] if r["method"] == method]
        cells = " | ".join(f"{r['test_accuracy']:.3f}" for r in runs)
        s = summary[method]
        seconds = statistics.fmean(r["train_seconds"] for r in runs)
        lines.append(f"| {method} | {cells} | {s['mean']:.3f} ± {s['std']:.3f} | {seconds:.1f} |")
    machine = result["machine"]
    lines += [
        "",
        "Symile scores a candidate by the MIP `(r_a ⊙ r_b) · r_c`, pairwise CLIP by `r_a · r_c + r_b · r_c`. "
        "Chance is 0.5: `c` is independent of `a` and of `b` alone, so no pairwise score can predict it.",
        f"Symile negatives: `{config['negatives']}`. Setup of the official `examples/binary_xor.py` "
        "(linear encoders, AdamW lr 0.1, logit scale init exp(-0.3)); the final model is tested.",
        f"torch {result['torch']}, {config['threads']} thread(s), {machine['platform']}, "
        f"{machine['cpu_count']} CPUs, {result['date']}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per run (default 300)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--train-n", type=int, default=10000)
    parser.add_argument("--test-n", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--encoder", choices=("linear", "mlp"), default="linear")
    parser.add_argument("--negatives", choices=("n", "n_squared"), default="n")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--logit-scale-init", type=float, default=-0.3, help="initial log logit_scale")
    parser.add_argument("--out", type=Path, default=RESULTS / "symile_xor.json")
    args = parser.parse_args(argv)
    if args.batch_size > args.train_n:
        parser.error(f"--batch-size: expected at most --train-n ({args.train_n}), got {args.batch_size}")
    torch.set_num_threads(args.threads)

    runs = []
    for seed in args.seeds:
        for method in METHODS:
            run = run_one(method, seed, args)
            print(
                f"{method:14s} seed {seed}: accuracy {run['test_accuracy']:.4f} "
                f"loss {run['final_train_loss']:.4f} ({run['train_seconds']:.1f} s)",
                file=sys.stderr,
            )
            runs.append(run)
    words = sys.argv[1:] if argv is None else argv
    result = {
        "benchmark": "symile_xor",
        "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/symile_xor.py"
        + "".join(" " + shlex.quote(w) for w in words),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        },
        "config": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()},
        "runs": runs,
        "summary": {
            method: summarize([r["test_accuracy"] for r in runs if r["method"] == method]) for method in METHODS
        },
    }
    section = markdown(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    atomic_write_text(args.out.with_suffix(".md"), section + "\n")
    print(section)
    return result


if __name__ == "__main__":
    main()

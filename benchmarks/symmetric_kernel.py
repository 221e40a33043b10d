"""CLIP's symmetric loss: one logit block for both directions vs two one-direction kernels.

Run::

    .venv/bin/python benchmarks/symmetric_kernel.py                 # B in 256 1024 4096 8192, D = 256
    .venv/bin/python benchmarks/symmetric_kernel.py --batch-sizes 1024 --repeats 5

Forward + backward of the loss over ``B`` L2-normalised random pairs of ``D`` float32
features, three implementations, repeated in interleaved order (a, b, c, a, b, c, ...)
so that a shared machine's load falls on all of them alike; reported are medians and
the ratio of medians (two one-direction calls / symmetric):

* ``two-calls``: ``paired_contrastive_loss`` once per direction (the former ``clip_loss``);
* ``symmetric``: ``symmetric_paired_loss`` (the current ``clip_loss``);
* ``naive``: the ``[B, B]`` logit matrix and two ``F.cross_entropy`` through autograd.

At two scales: 14.3 (CLIP's initial ``1/0.07``: the static shift, one ``exp`` per logit)
and 100 (CLIP's clamp: running maxima per row and column). Results go to the
``symmetric_kernel`` section of ``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from markdown_section import update_section  # noqa: E402

from contrastkit.functional.paired import paired_contrastive_loss  # noqa: E402
from contrastkit.functional.symmetric_paired import symmetric_paired_loss  # noqa: E402


def _two_calls(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    index = torch.arange(a.shape[0])
    return (paired_contrastive_loss(a, b, scale, index).mean() + paired_contrastive_loss(b, a, scale, index).mean()) / 2


def _naive(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    logits = scale * a @ b.T
    target = torch.arange(a.shape[0])
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


IMPLEMENTATIONS = {"two-calls": _two_calls, "symmetric": symmetric_paired_loss, "naive": _naive}


def _time(function, a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> tuple[float, float]:
    a, b, scale = a.detach().requires_grad_(), b.detach().requires_grad_(), scale.detach().requires_grad_()
    start = time.perf_counter()
    loss = function(a, b, scale)
    loss.backward()
    return time.perf_counter() - start, float(loss.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 1024, 4096, 8192])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--scales", type=float, nargs="+", default=[1 / 0.07, 100.0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    torch.manual_seed(0)
    lines = []
    for batch in args.batch_sizes:
        a = F.normalize(torch.randn(batch, args.dim), dim=1)
        b = F.normalize(a + 0.5 * torch.randn(batch, args.dim), dim=1)
        for scale_value in args.scales:
            scale = torch.tensor(scale_value)
            times: dict[str, list[float]] = {name: [] for name in IMPLEMENTATIONS}
            losses: dict[str, float] = {}
            for name, function in IMPLEMENTATIONS.items():  # warm-up
                _time(function, a, b, scale)
            for _ in range(args.repeats):
                for name, function in IMPLEMENTATIONS.items():
                    elapsed, losses[name] = _time(function, a, b, scale)
                    times[name].append(elapsed)
            median = {name: statistics.median(values) for name, values in times.items()}
            row = (f"| {batch} | {scale_value:.1f} | {median['naive'] * 1e3:.1f} | {median['two-calls'] * 1e3:.1f} | "
                   f"{median['symmetric'] * 1e3:.1f} | {median['two-calls'] / median['symmetric']:.2f} | "
                   f"{max(abs(losses[n] - losses['naive']) for n in losses):.1e} |")
            print(row, flush=True)
            lines.append(row)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = "python benchmarks/symmetric_kernel.py " + " ".join(sys.argv[1:])
    section = "\n".join([
        "## CLIP's symmetric loss: one logit block for both directions",
        "",
        f"Command: `{command.strip()}` ({stamp}; {platform.machine()}, {torch.get_num_threads()} torch thread(s), "
        f"torch {torch.__version__}; D = {args.dim}, float32, forward + backward, median of {args.repeats} "
        "interleaved repetitions after a warm-up). `two-calls` is the one-direction fused kernel once per "
        "direction (`clip_loss` before), `symmetric` the kernel `clip_loss` runs now "
        "(`functional/symmetric_paired.py`), `naive` the logit matrix through autograd. "
        "Scale 14.3 takes the static shift (one exp per logit), 100 the running maxima.",
        "",
        "| B | scale | naive ms | two-calls ms | symmetric ms | two-calls / symmetric | max loss diff |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *lines,
    ])
    update_section(args.out, "symmetric_kernel", section)


if __name__ == "__main__":
    main()

"""How the InfoNCE loss scales with the batch: time and peak memory of forward + backward.

Run::

    .venv/bin/python benchmarks/loss_scaling.py                    # B in 1024 ... 262144
    .venv/bin/python benchmarks/loss_scaling.py --quick            # B in {1024, 4096}
    .venv/bin/python benchmarks/loss_scaling.py --batch-sizes 1024 4096 16384 65536

The problem at every point: ``B`` paired rows ``query, key`` of ``D = 128`` float32
features (random), the paired InfoNCE loss with temperature 0.1 (cosine
similarity, the ``B x B`` logit matrix, the diagonal as positives), one forward and
one backward pass. Implementations:

* ``contrastkit-naive``: ``contrastkit.functional.info_nce(..., chunk_size=None)``
  (the logit matrix through plain autograd and ``F.cross_entropy``);
* ``contrastkit-default``: ``info_nce(...)`` with the default ``chunk_size="auto"``:
  the fused one-positive kernel (``contrastkit.functional.paired``), cached while the
  logits fit ``CACHE_MAX_BYTES`` (64 MiB), tiled beyond;
* ``contrastkit-tiled``: ``info_nce(..., chunk_size=C)`` (the fused kernel, always
  tiled: recomputation in backward; ``C = --chunk``, default
  ``default_chunk_size(cpu)`` = 1024);
* ``pml-ntxent``: pytorch-metric-learning ``NTXentLoss`` with ``ref_emb = key`` and
  labels ``arange(B)`` (the same loss; ``ref_labels`` must be a distinct tensor object,
  else PML drops the diagonal positives);
* ``info-nce-pytorch``: ``info_nce.InfoNCE`` (the same loss).

Every point runs in a FRESH PROCESS (this script with ``--point IMPL B``): the peak
RSS is ``ru_maxrss`` after the work minus ``ru_maxrss`` before the inputs are
allocated (so it includes the inputs and their gradients, ``4 B D`` floats), and the
time is the median of up to 5 forward + backward passes (fewer when one is long)
after a small warm-up. A point whose memory estimate (:data:`BYTES_PER_LOGIT` x
``B^2``; pytorch-metric-learning: :data:`PML_BYTES_PER_CUBE` x ``B^3``) exceeds
``--memory-cap-gib`` (default 16) is not run and marked ``OOM (est.)``; the child also gets an address-space limit of that size, so a real
allocation failure reads ``OOM``; one that runs past ``--timeout`` reads ``timeout``.
pytorch-metric-learning's ``NTXentLoss`` is run only up to ``B = 16384`` (its memory
and time grow as ``B^3``: 17 GiB and 79 s at ``B = 1024``, so in practice only the
``B = 256`` row runs under the default cap).

The GEMM bound is ``6 B^2 D`` flops (forward ``Q K^T``; backward ``dQ``, ``dK``;
the tiled path recomputes the logits, so it does ``8 B^2 D``) divided by a GEMM
rate measured in the same run: float32 ``M x 128 @ 128 x N`` products with
``M = N = 4096`` (the "4096 bound": its output leaves the cache, like a naive
logit matrix) and with ``M = N = 1024`` repeated on the same operands (in cache:
the fastest rate this machine shows). The table reports the tiled path against
both; the stricter one uses the faster rate.

Writes ``benchmarks/results/loss_scaling.json`` and the section between
``<!-- loss_scaling:start -->`` and ``<!-- loss_scaling:end -->`` of ``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from markdown_section import update_section  # benchmarks/ is on sys.path when run as a script

SECTION = "loss_scaling"
ROOT = Path(__file__).resolve().parent.parent

IMPLS = ["contrastkit-naive", "contrastkit-default", "contrastkit-tiled", "pml-ntxent", "info-nce-pytorch"]
OURS = ["contrastkit-naive", "contrastkit-default", "contrastkit-tiled"]
FULL_BATCH_SIZES = [256, 1024, 4096, 16384, 65536, 262144]
QUICK_BATCH_SIZES = [1024, 4096]
PML_MAX_BATCH = 16384
TEMPERATURE = 0.1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="B in {1024, 4096} only")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None, help="override the batch sizes")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--chunk", type=int, default=None, help="tiled block size (default: default_chunk_size(cpu))")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--impls", nargs="+", default=IMPLS, choices=IMPLS)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per point (default 600)")
    parser.add_argument("--memory-cap-gib", type=float, default=16.0, help="skip points estimated above this")
    parser.add_argument("--merge-results", type=Path, default=None, metavar="FILE",
                        help="with --render-only: first merge FILE's rows (e.g. a separate run of the largest B) "
                             "into --results, replacing rows of the same B")
    parser.add_argument("--render-only", action="store_true",
                        help="only re-render BENCHMARKS.md's section from the --results file (no measuring)")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "loss_scaling.json")
    parser.add_argument("--point", nargs=2, metavar=("IMPL", "B"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- one point (child process)


def _loss_fn(impl: str, chunk: int | None) -> Any:
    import torch

    if impl in OURS:
        from contrastkit.functional import info_nce
        from contrastkit.functional.paired import default_chunk_size

        size = {"contrastkit-naive": None, "contrastkit-default": "auto"}.get(
            impl, chunk or default_chunk_size(torch.device("cpu"))
        )
        return lambda q, k: info_nce(q, k, temperature=TEMPERATURE, chunk_size=size)
    if impl == "pml-ntxent":
        from pytorch_metric_learning.losses import NTXentLoss

        loss = NTXentLoss(temperature=TEMPERATURE)

        def pml(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
            labels = torch.arange(q.shape[0])
            # A distinct ref_labels object: PML treats ``ref_labels is labels`` as one set and drops the diagonal.
            return loss(q, labels, ref_emb=k, ref_labels=labels.clone())

        return pml
    if impl == "info-nce-pytorch":
        from info_nce import InfoNCE

        return InfoNCE(temperature=TEMPERATURE)
    raise ValueError(f"unknown implementation {impl!r}")


def run_point(impl: str, batch: int, dim: int, chunk: int | None, threads: int | None) -> dict[str, Any]:
    import torch

    if threads:
        torch.set_num_threads(threads)
    fn = _loss_fn(impl, chunk)
    torch.manual_seed(0)
    warm_q = torch.randn(64, dim, requires_grad=True)
    fn(warm_q, torch.randn(64, dim)).backward()  # load kernels and thread pools before the baseline
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    q = torch.randn(batch, dim, requires_grad=True)
    k = torch.randn(batch, dim, requires_grad=True)
    times: list[float] = []
    value = float("nan")
    # Up to 5 timings; at least 3 while they take under 2 minutes in all (this machine is shared: one
    # timing of a long point can be off by a third), a single one beyond.
    while len(times) < 5 and (not times or sum(times) < 2.0 or (len(times) < 3 and sum(times) * 1.5 < 120.0)):
        q.grad = k.grad = None
        start = time.perf_counter()
        loss = fn(q, k)
        loss.backward()
        times.append(time.perf_counter() - start)
        value = float(loss.detach())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    factor = 1 if sys.platform == "darwin" else 1024
    return {
        "status": "ok",
        "seconds": statistics.median(times),
        "repeats": len(times),
        "peak_rss_mib": (peak - base) * factor / 2**20,
        "loss": value,
    }


def gemm_rate(threads: int | None, dim: int = 128) -> dict[int, float]:
    """Float32 flop/s of ``n x dim @ dim x n`` matmuls for ``n`` in {4096, 1024} (best of 5 timings each)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    rates: dict[int, float] = {}
    for n, repeats in ((4096, 10), (1024, 160)):
        a, b = torch.randn(n, dim), torch.randn(dim, n)
        out = a @ b
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(repeats):
                torch.mm(a, b, out=out)
            best = min(best, (time.perf_counter() - start) / repeats)
        rates[n] = 2 * n * n * dim / best
    return rates


# --------------------------------------------------------------------------- the grid (parent process)


#: Peak bytes per logit of the implementations that build the whole ``B x B`` matrix
#: (measured on CPU, float32: contrastkit-naive ~35, info-nce-pytorch ~12), rounded up.
#: contrastkit-default keeps one float32 matrix only while it fits 64 MiB (then tiles).
BYTES_PER_LOGIT = {"contrastkit-naive": 40, "info-nce-pytorch": 16}
#: pytorch-metric-learning's NTXentLoss with ``ref_emb`` builds a ``B x B x B`` tensor:
#: measured 17.0 GiB (and 79 s) at B = 1024.
PML_BYTES_PER_CUBE = 17


def estimate_bytes(impl: str, batch: int) -> int:
    """Peak-memory estimate of one point (0 for the tiled path, linear in ``B``)."""
    if impl == "pml-ntxent":
        return PML_BYTES_PER_CUBE * batch**3
    return BYTES_PER_LOGIT.get(impl, 0) * batch * batch


def measure(impl: str, batch: int, args: argparse.Namespace) -> dict[str, Any]:
    if impl == "pml-ntxent" and batch > PML_MAX_BATCH:
        return {"status": "skipped", "note": f"PML only up to B={PML_MAX_BATCH}"}
    cap = int(args.memory_cap_gib * 2**30)
    if estimate_bytes(impl, batch) > cap:
        return {"status": "OOM (est.)", "estimate_gib": estimate_bytes(impl, batch) / 2**30}
    command = [sys.executable, str(Path(__file__).resolve()), "--point", impl, str(batch), "--dim", str(args.dim)]
    if args.chunk:
        command += ["--chunk", str(args.chunk)]
    if args.threads:
        command += ["--threads", str(args.threads)]

    def limit() -> None:  # the child's address space; a failed allocation then raises, not the OOM killer
        resource.setrlimit(resource.RLIMIT_AS, (cap + 4 * 2**30, cap + 4 * 2**30))

    start = time.perf_counter()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=args.timeout, preexec_fn=limit, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "timeout_s": args.timeout}
    wall = time.perf_counter() - start
    if done.returncode != 0:
        text = done.stderr[-2000:]
        oom = any(s in text for s in ("MemoryError", "DefaultCPUAllocator", "out of memory", "std::bad_alloc"))
        return {"status": "OOM" if oom else "error", "returncode": done.returncode, "stderr_tail": text[-500:]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = wall
    return result


def _fmt_time(entry: dict[str, Any]) -> str:
    if entry.get("status") != "ok":
        return entry.get("status", "?")
    seconds = entry["seconds"]
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _fmt_mem(entry: dict[str, Any]) -> str:
    if entry.get("status") != "ok":
        return "-"
    mib = entry["peak_rss_mib"]
    return f"{mib / 1024:.2f} GiB" if mib >= 1024 else f"{mib:.0f} MiB"


def _ok(entry: dict[str, Any] | None) -> float | None:
    return entry["seconds"] if entry and entry.get("status") == "ok" else None


def ratios(row: dict[str, Any]) -> dict[str, float | None]:
    naive, tiled = _ok(row.get("contrastkit-naive")), _ok(row.get("contrastkit-tiled"))
    default = _ok(row.get("contrastkit-default"))
    peers = [t for t in (_ok(row.get("pml-ntxent")), _ok(row.get("info-nce-pytorch"))) if t is not None]
    return {
        "tiled_over_naive": tiled / naive if tiled and naive else None,
        "default_over_fastest_peer": default / min(peers) if default and peers else None,
        "tiled_over_gemm_bound": tiled / row["gemm_bound_s"] if tiled else None,
        "tiled_over_gemm4096_bound": tiled / row["gemm4096_bound_s"] if tiled and row.get("gemm4096_bound_s") else None,
    }


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        "## Loss scaling: InfoNCE forward + backward vs batch size",
        "",
        f"Paired InfoNCE (temperature {TEMPERATURE}, cosine similarity), D = {meta['dim']}, float32, CPU "
        f"({meta['threads']} torch thread(s), {meta['cpu_count']} cores), one fresh process per point. "
        f"Time: median forward + backward; memory: peak RSS growth over the process before the inputs "
        f"(inputs and gradients, 4·B·D floats, included). Tiled block size {meta['chunk']}. "
        f"GEMM bound: 6·B²·D flop at the best GEMM rate measured in this run ({meta['gemm_gflops']:.1f} GFLOP/s, "
        f"1024 × 128 × 1024 products in cache); the 4096 bound uses the rate of 4096 × 128 × 4096 products "
        f"({meta.get('gemm4096_gflops', float('nan')):.1f} GFLOP/s). "
        f"`OOM (est.)`: not run, the memory estimate (B² × bytes per logit; PML: 17 bytes × B³, "
        f"measured 17 GiB and 79 s at B = 1024) exceeds {meta['memory_cap_gib']:.0f} GiB; "
        f"`timeout`: over {meta['timeout_s']:.0f} s.",
        "",
        "| B | contrastkit naive | contrastkit default | contrastkit tiled | pytorch-metric-learning NTXentLoss "
        "| info-nce-pytorch InfoNCE | GEMM bound | default / fastest peer | tiled / naive | tiled / GEMM bound "
        "| tiled / 4096 bound |",
        "|---:|---|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        cells = [str(row["batch"])]
        for impl in IMPLS:
            entry = row.get(impl, {"status": "not run"})
            cell = _fmt_time(entry)
            if entry.get("status") == "ok":
                cell += f", {_fmt_mem(entry)}"
            cells.append(cell)
        cells.append(f"{row['gemm_bound_s'] * 1000:.0f} ms" if row["gemm_bound_s"] < 1 else f"{row['gemm_bound_s']:.2f} s")
        r = row["ratios"]
        for name in ("default_over_fastest_peer", "tiled_over_naive", "tiled_over_gemm_bound", "tiled_over_gemm4096_bound"):
            cells.append("-" if r.get(name) is None else f"{r[name]:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Ratios are times (below 1: the first is faster). The default `chunk_size=\"auto\"` runs the fused "
        "one-positive kernel cached (no recomputation) while the logits fit 64 MiB (B ≤ 4096 here) and tiled "
        "beyond; `naive` is the plain-autograd reference path (`chunk_size=None`).",
        "",
        f"Command: `{meta['command']}` ({meta['date']}, torch {meta['torch']}, {meta['platform']}). "
        "Raw numbers (and the loss values, which agree across implementations): "
        "`benchmarks/results/loss_scaling.json`.",
    ]
    for extra in meta.get("merged_runs", []):
        lines += [
            "",
            f"Rows for B = {', '.join(str(b) for b in extra['batches'])} come from a separate run "
            f"(`{extra['command']}`, {extra['date']}, GEMM rate {extra['gemm_gflops']:.1f} GFLOP/s, which its GEMM "
            "bound uses), merged with `--render-only --merge-results FILE`; implementations not listed there show "
            "`not run`.",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.point:
        impl, batch = args.point[0], int(args.point[1])
        print(json.dumps(run_point(impl, batch, args.dim, args.chunk, args.threads)))
        return 0
    if args.render_only:
        results = json.loads(args.results.read_text(encoding="utf-8"))
        if args.merge_results is not None:
            extra = json.loads(args.merge_results.read_text(encoding="utf-8"))
            merged = {row["batch"]: row for row in results["rows"]}
            merged.update({row["batch"]: row for row in extra["rows"]})
            results["rows"] = [merged[batch] for batch in sorted(merged)]
            # Each row keeps the GEMM bound of the run that measured it.
            results["meta"].setdefault("merged_runs", []).append(
                {"command": extra["meta"]["command"], "date": extra["meta"]["date"],
                 "gemm_gflops": extra["meta"]["gemm_gflops"], "batches": [row["batch"] for row in extra["rows"]]}
            )
            from contrastkit.utils.atomic import atomic_write_json

            atomic_write_json(args.results, results)
        update_section(args.out, SECTION, render(results))
        return 0

    import torch

    from contrastkit.functional.paired import default_chunk_size
    from contrastkit.utils.atomic import atomic_write_json

    sizes = args.batch_sizes or (QUICK_BATCH_SIZES if args.quick else FULL_BATCH_SIZES)
    rates = gemm_rate(args.threads, args.dim)
    rate = max(rates.values())
    meta = {
        "dim": args.dim,
        "chunk": args.chunk or default_chunk_size(torch.device("cpu")),
        "threads": args.threads or torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "gemm_gflops": rate / 1e9,
        "gemm4096_gflops": rates[4096] / 1e9,
        "memory_cap_gib": args.memory_cap_gib,
        "timeout_s": args.timeout,
        "torch": torch.__version__,
        "platform": platform.platform(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python benchmarks/loss_scaling.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
    }
    rows = []
    for batch in sizes:
        row: dict[str, Any] = {"batch": batch, "gemm_bound_s": 6 * batch * batch * args.dim / rate,
                               "gemm4096_bound_s": 6 * batch * batch * args.dim / rates[4096]}
        for impl in args.impls:
            row[impl] = measure(impl, batch, args)
            print(f"B={batch:>7} {impl:<18} {json.dumps(row[impl])}", flush=True)
        row["ratios"] = ratios(row)
        rows.append(row)
    results = {"meta": meta, "rows": rows}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.results, results)
    update_section(args.out, SECTION, render(results))
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The seed papers' honest checks: each FULL component of issue 6 against its baseline, 3 seeds, one table.

    .venv/bin/python benchmarks/seed_checks.py                       # every check, seeds 0 1 2
    .venv/bin/python benchmarks/seed_checks.py --checks mochi obow   # some checks
    .venv/bin/python benchmarks/seed_checks.py --resume              # skip (check, seed) pairs already recorded
    .venv/bin/python benchmarks/seed_checks.py --rerun --checks obow --threads 1   # redo one check, keep the rest
    .venv/bin/python benchmarks/seed_checks.py --quick --out /tmp/S.md --results /tmp/s.json   # smoke run
    .venv/bin/python benchmarks/seed_checks.py --render-only         # rewrite the table from the JSON

Every check lives in ``benchmarks/checks/<name>.py`` and exposes ``ROWS`` (what is compared,
on which data, with which metric and budget, and the paper's claim) and
``run(seed, quick) -> {row key: {"ours": x, "baseline": y, ...}}``: ours and the baseline get
the same budget and differ only in the component. Each (check, seed) runs in its own process
(so one failure does not stop the others, and peak memory is per run); ``--jobs 2`` runs two at
a time with the cores split between them (the seconds then include that sharing).

Verdict per row, from the paired (same-seed) differences d = ours - baseline (sign flipped for
lower-is-better metrics): "as claimed" when mean(d) > 0 by more than one standard error
(std(d) / sqrt(seeds)); otherwise "not reproduced", with "(worse)" when mean(d) < 0 by more than
one standard error, "(no difference)" when every d is 0, else "(within noise)".

Writes ``benchmarks/results/seed_checks.json``, the ``seed_checks`` section of ``BENCHMARKS.md``
and ``src/contrastkit/catalog/check_results.json`` (what ``contrastkit list --papers`` and
``docs/methods.md`` show); the quick mode writes only where ``--out``/``--results`` say.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import math
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from image_ssl import machine  # benchmarks/ is on sys.path when run as a script
from markdown_section import update_section

from contrastkit.catalog.render import format_metric
from contrastkit.utils.atomic import atomic_write_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SECTION = "seed_checks"
CATALOG_RESULTS = ROOT / "src" / "contrastkit" / "catalog" / "check_results.json"

#: The check modules, in the order they run and are tabulated.
CHECKS = ["mochi", "mixed_barlow_twins", "directpred", "obow", "beclr", "sbcl", "supremix", "sepclr", "pcl_sr",
          "spark", "pairwise_mer", "preference_bandit", "contrastive_rl", "smore"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the seed papers' checks (benchmarks/checks/*.py).")
    parser.add_argument("--checks", nargs="+", default=CHECKS, choices=CHECKS, metavar="CHECK",
                        help=f"which checks (default all: {' '.join(CHECKS)})")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="tiny budgets on digits: a smoke test, numbers meaningless")
    parser.add_argument("--resume", action="store_true", help="keep recorded (check, seed) results and run the rest")
    parser.add_argument("--rerun", action="store_true",
                        help="run --checks again and keep every other check's recorded results (implies --resume)")
    parser.add_argument("--render-only", action="store_true", help="only rewrite the table from the results JSON")
    parser.add_argument("--jobs", type=int, default=1, help="(check, seed) runs at a time, sharing the cores")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per run (default: the cores divided by --jobs)")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--results", type=Path, default=HERE / "results" / "seed_checks.json")
    parser.add_argument("--worker", nargs=3, metavar=("CHECK", "SEED", "OUT"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def load_check(name: str) -> Any:
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return importlib.import_module(f"checks.{name}")


def worker(name: str, seed: int, out: Path, quick: bool) -> int:
    """Run one (check, seed) in this process and write its rows, time and peak memory to ``out``."""
    start = time.time()
    rows = load_check(name).run(seed, quick)
    payload = {
        "rows": {key: {k: float(v) for k, v in values.items()} for key, values in rows.items()},
        "seconds": round(time.time() - start, 1),
        "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    atomic_write_json(out, payload)
    return 0


def start_worker(name: str, seed: int, quick: bool, scratch: Path, threads: int) -> tuple[subprocess.Popen, Path]:
    out = scratch / f"{name}-{seed}.json"
    out.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", name, str(seed), str(out)]
    if quick:
        command.append("--quick")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    return subprocess.Popen(command, cwd=ROOT, env=env), out


def worker_result(process: subprocess.Popen, out: Path) -> dict[str, Any]:
    if process.returncode != 0 or not out.exists():
        return {"error": f"exit status {process.returncode}"}
    return json.loads(out.read_text())


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def verdict(ours: list[float], baseline: list[float], higher_is_better: bool) -> tuple[str, float, float]:
    """``(verdict, mean paired difference, its standard error)``; the difference is in the better direction."""
    sign = 1.0 if higher_is_better else -1.0
    diffs = [sign * (o - b) for o, b in zip(ours, baseline)]
    mean, std = _mean_std(diffs)
    stderr = std / math.sqrt(len(diffs)) if len(diffs) > 1 else 0.0
    if mean > 0 and mean > stderr:
        return "as claimed", mean, stderr
    if mean < 0 and -mean > stderr:
        return "not reproduced (worse)", mean, stderr
    if mean == 0 and stderr == 0:
        return "not reproduced (no difference)", mean, stderr
    return "not reproduced (within noise)", mean, stderr


def summarise(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One record per row: means, stds, paired difference and verdict over the recorded seeds."""
    records: dict[str, dict[str, Any]] = {}
    for name in CHECKS:
        runs = results["runs"].get(name)
        if not runs:
            continue
        module = load_check(name)
        for row in module.ROWS:
            key = row["key"]
            seeds = sorted(int(s) for s, r in runs.items() if key in r.get("rows", {}))
            if not seeds:
                continue
            ours = [runs[str(s)]["rows"][key]["ours"] for s in seeds]
            base = [runs[str(s)]["rows"][key]["baseline"] for s in seeds]
            word, diff, stderr = verdict(ours, base, row.get("higher_is_better", True))
            (ours_mean, ours_std), (base_mean, base_std) = _mean_std(ours), _mean_std(base)
            extras = sorted({k for s in seeds for k in runs[str(s)]["rows"][key]} - {"ours", "baseline"})
            records[key] = {
                "check": name, "label": row["method"], "baseline": row["baseline"], "data": row["data"],
                "metric": row["metric"], "budget": row["budget"], "claim": row.get("claim", ""),
                "higher_is_better": row.get("higher_is_better", True), "seeds": seeds,
                "ours_mean": ours_mean, "ours_std": ours_std, "baseline_mean": base_mean, "baseline_std": base_std,
                "difference": diff, "difference_stderr": stderr, "verdict": word,
                "extras": {k: _mean_std([runs[str(s)]["rows"][key][k] for s in seeds if k in runs[str(s)]["rows"][key]])
                           for k in extras},
                "seconds": max(runs[str(s)].get("seconds", 0.0) for s in seeds),
                "peak_mib": max(runs[str(s)].get("peak_mib", 0) for s in seeds),
            }
    return records


def render_section(results: dict[str, Any], records: dict[str, dict[str, Any]]) -> str:
    quick = results.get("quick", False)
    title = "## Seed papers: honest checks" + (" (quick smoke run; numbers are meaningless)" if quick else "")
    machine = results.get("machine", {})
    lines = [
        title, "",
        f"Commands: {'; '.join(f'`{c}`' for c in results.get('commands', []))} "
        f"({results.get('date', '')}; {machine.get('cpu', '')}, {machine.get('cores', '')} cores, "
        f"{machine.get('torch_threads', '')} torch thread(s) per run, {results.get('jobs', 1)} run(s) at a time; "
        f"torch {torch.__version__}). Each (check, seed) ran in its own process. Ours and the baseline share data, encoder, budget and seed and differ only in the "
        "component. Mean ± std over the seeds listed; verdict from the paired per-seed differences: "
        "\"as claimed\" when ours is better by more than one standard error, else \"not reproduced\".",
        "",
        "| paper's component | baseline | data | metric | budget | ours | baseline | difference (± s.e.) "
        "| verdict | seeds | slowest s | peak MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, r in records.items():
        metric = r["metric"] + ("" if r["higher_is_better"] else " (lower is better)")
        lines.append(
            f"| {r['label']} | {r['baseline']} | {r['data']} | {metric} | {r['budget']} | "
            f"{format_metric(r['ours_mean'], r['metric'])} ± {format_metric(r['ours_std'], r['metric'])} | "
            f"{format_metric(r['baseline_mean'], r['metric'])} ± {format_metric(r['baseline_std'], r['metric'])} | "
            f"{r['difference']:+.3f} ± {r['difference_stderr']:.3f} | {r['verdict']} | "
            f"{', '.join(map(str, r['seeds']))} | {r['seconds']:.0f} | {r['peak_mib']} |"
        )
    lines += ["", "Claims tested, and extra measurements per row (mean ± std):", ""]
    shown: set[tuple[str, str]] = set()
    for key, r in records.items():
        if (r["check"], r["claim"]) not in shown:  # one claim per check, even when it has several rows
            shown.add((r["check"], r["claim"]))
            lines.append(f"- **{r['check']}**: {r['claim'].rstrip('.')}.")
        extras = "; ".join(f"{k} {m:.3f} ± {s:.3f}" for k, (m, s) in r["extras"].items())
        if extras:
            lines.append(f"  - `{key}`: {extras}.")
    failed = [f"{name} seed {seed}: {run['error']}" for name, runs in results["runs"].items()
              for seed, run in runs.items() if "error" in run]
    if failed:
        lines += ["", "Runs that failed: " + "; ".join(failed) + "."]
    # A check may derive a line from its runs (e.g. SparK's accuracy lost from 100% to 1% labels).
    derived = []
    for name, runs in results["runs"].items():
        summary = getattr(load_check(name), "summary", None)
        if summary is not None and runs and all("error" not in r for r in runs.values()):
            derived.append(summary(runs))
    notes = derived + (results.get("notes") or [])
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def write_outputs(args: argparse.Namespace, results: dict[str, Any]) -> None:
    records = summarise(results)
    atomic_write_json(args.results, results)
    update_section(args.out, SECTION, render_section(results, records))
    if not results.get("quick") and args.results == HERE / "results" / "seed_checks.json":
        atomic_write_json(CATALOG_RESULTS, {"source": "benchmarks/seed_checks.py", "date": results.get("date"),
                                            "rows": records})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        name, seed, out = args.worker
        return worker(name, int(seed), Path(out), args.quick)
    previous = json.loads(args.results.read_text()) \
        if args.results.exists() and (args.resume or args.rerun or args.render_only) else None
    if args.render_only:
        if previous is None:
            print(f"no results at {args.results}", file=sys.stderr)
            return 1
        write_outputs(args, previous)
        return 0
    command = "python benchmarks/seed_checks.py " + shlex.join(sys.argv[1:])
    results = previous or {"runs": {}, "commands": []}
    if args.rerun:
        for name in args.checks:
            results["runs"].pop(name, None)
    results.update(quick=bool(args.quick), date=_dt.date.today().isoformat(), machine=machine(), jobs=args.jobs)
    # --jobs workers at a time, the cores split between them (1 thread each on 2 cores and 2 jobs),
    # unless --threads says how many (e.g. 1 on a machine shared with other work).
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    results["machine"]["torch_threads"] = threads
    results["commands"] = list(dict.fromkeys([*results.get("commands", []), command.strip()]))
    scratch = args.results.parent / ".seed_checks_scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    pending = []
    for name in args.checks:
        for seed in args.seeds:
            done = results["runs"].get(name, {}).get(str(seed))
            if done and "error" not in done:
                print(f"{name} seed {seed}: recorded, skipped", flush=True)
            else:
                pending.append((name, seed))
    running: list[tuple[str, int, subprocess.Popen, Path]] = []
    while pending or running:
        while pending and len(running) < args.jobs:
            name, seed = pending.pop(0)
            print(f"{name} seed {seed} ...", flush=True)
            running.append((name, seed, *start_worker(name, seed, args.quick, scratch, threads)))
        time.sleep(1)
        for item in [r for r in running if r[2].poll() is not None]:
            running.remove(item)
            name, seed, process, out = item
            outcome = worker_result(process, out)
            results["runs"].setdefault(name, {})[str(seed)] = outcome
            print(f"{name} seed {seed}: {json.dumps(outcome)}", flush=True)
            write_outputs(args, results)  # after every run, so an interruption loses at most the running ones
    write_outputs(args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Every registered image method on Fashion-MNIST, with one shared encoder and one shared budget.

Run by ``make bench``::

    .venv/bin/python benchmarks/image_ssl.py                      # all methods, the main recipe's budget
    .venv/bin/python benchmarks/image_ssl.py --methods simclr byol --steps 100
    .venv/bin/python benchmarks/image_ssl.py --quick --out /tmp/B.md --results /tmp/b.json   # smoke test

Every method starts from the main recipe (``simclr-fashion-mnist``): the same encoder,
batch size, optimiser, learning-rate schedule, number of steps, seed and evaluation
(weighted kNN with k=200, tau=0.1, and a linear probe on frozen backbone features).
Only the ``method`` section (and the view preset where a paper prescribes another)
changes, as listed in :data:`METHOD_SETTINGS`.

The raw-pixel and random-init baselines are measured once, in the first method's run.
The random-init baseline is the shared encoder at its initialisation with the shared
seed, which the encoder receives before any method-specific head is built, so it is
the same for every method.

Writes ``benchmarks/results/image_ssl.json`` (all metrics) and the section between
``<!-- image_ssl:start -->`` and ``<!-- image_ssl:end -->`` of ``BENCHMARKS.md``
(other sections of that file are left as they are). On 2 CPU cores the full run takes
roughly 7 x (the main job's time); ``--quick`` (digits, 5 steps) takes about a minute.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shlex
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch

import contrastkit
from contrastkit.methods import method_names
from contrastkit.utils.atomic import atomic_write_json
from contrastkit.train.config import load_config
from contrastkit.train.run import run
from markdown_section import update_section  # benchmarks/ is on sys.path when run as a script

RECIPE = "simclr-fashion-mnist"
SECTION = "image_ssl"

#: The image methods, in the order they are run and tabulated.
IMAGE_METHODS = ["simclr", "moco", "byol", "simsiam", "barlow-twins", "vicreg", "supcon"]

#: What differs between methods, per paper: the view preset and the method's own options.
#: Options not listed keep the method's defaults (see ``contrastkit.methods.method_options``).
METHOD_SETTINGS: dict[str, dict[str, Any]] = {
    # SimCLR (Chen et al. 2020): NT-Xent, 2-layer projector to 128; temperature 0.2 as in the main
    # recipe (it beat the paper's 0.5 at this batch size in a 1-epoch sweep).
    "simclr": {"views": "simclr", "method": {"temperature": 0.2, "projection_hidden_dim": 512, "projection_dim": 128}},
    # MoCo v2: SimCLR's augmentation, temperature 0.2, a queue of negatives.
    "moco": {"views": "moco-v2", "method": {"temperature": 0.2, "queue_size": 4096}},
    # BYOL (Grill et al. 2020): the asymmetric pair of view transforms (blur / solarisation differ).
    "byol": {"views": "byol", "method": {}},
    # SimSiam (Chen & He 2021): MoCo v2's symmetric augmentation.
    "simsiam": {"views": "moco-v2", "method": {}},
    # Barlow Twins (Zbontar et al. 2021): BYOL's augmentation, lambda 5e-3.
    "barlow-twins": {"views": "byol", "method": {"lambd": 5e-3}},
    # VICReg (Bardes et al. 2022): BYOL's augmentation, coefficients 25 / 25 / 1.
    "vicreg": {"views": "byol", "method": {"sim_coeff": 25.0, "std_coeff": 25.0, "cov_coeff": 1.0}},
    # SupCon (Khosla et al. 2020): supervised (uses labels), temperature 0.1.
    "supcon": {"views": "simclr", "method": {"temperature": 0.1}},
}

#: Shared evaluation protocol.
KNN_K = 200
KNN_TEMPERATURE = 0.1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train every registered image method on Fashion-MNIST with one shared encoder and budget.",
    )
    parser.add_argument("--steps", type=int, default=None,
                        help="optimiser steps per method (default: the main recipe's budget, train.epochs)")
    parser.add_argument("--methods", nargs="+", default=None, metavar="NAME",
                        help=f"a subset of {', '.join(IMAGE_METHODS)} (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test of this script: the digits dataset, 5 steps (numbers are meaningless)")
    parser.add_argument("--render-only", action="store_true",
                        help="only re-render BENCHMARKS.md's section from the --results file (no training)")
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"), help="the Markdown file to update")
    parser.add_argument("--results", type=Path, default=Path("benchmarks/results/image_ssl.json"),
                        help="where to write all metrics as JSON")
    parser.add_argument("--run-root", type=Path, default=None,
                        help="folder for the per-method run directories (default runs/bench-image-ssl-TIME)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="an extra override shared by every method, e.g. --set train.device=cuda (repeatable)")
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps: expected a positive integer, got {args.steps}")
    methods = args.methods or list(IMAGE_METHODS)
    unknown = [name for name in methods if name not in METHOD_SETTINGS]
    if unknown:
        parser.error(f"--methods: unknown {unknown}; expected some of {IMAGE_METHODS}")
    missing = sorted(set(IMAGE_METHODS) - set(METHOD_SETTINGS))
    if missing:  # pragma: no cover - a guard for whoever edits the dicts
        parser.error(f"METHOD_SETTINGS lacks {missing}")
    args.methods = list(dict.fromkeys(methods))
    if args.quick and args.steps is None:
        args.steps = 5
    return args


def shared_overrides(args: argparse.Namespace) -> list[str]:
    """Overrides every method gets (the shared budget and evaluation)."""
    overrides = [f"eval.knn_k={KNN_K}", f"eval.knn_temperature={KNN_TEMPERATURE}", "eval.plots=false"]
    if args.quick:
        overrides.append("data.name=digits")
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    return overrides + list(args.overrides)


def method_overrides(name: str, *, baselines: bool) -> list[str]:
    """The method section (replaced whole: options of one method are unknown to another) and views."""
    settings = METHOD_SETTINGS[name]
    method_section = {"name": name, **settings["method"]}
    return [
        f"method={json.dumps(method_section)}",  # JSON is YAML: the whole section is replaced
        f"views.preset={settings['views']}",
        f"eval.baselines={'true' if baselines else 'false'}",
    ]


def machine() -> dict[str, Any]:
    """CPU model, core count, RAM and accelerator, read from the OS."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = None
    try:
        match = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        if match:
            ram_gib = round(int(match.group(1)) / 2**20, 1)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": cores,
        "torch_threads": torch.get_num_threads(),
        "ram_gib": ram_gib,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
    }


def versions() -> dict[str, str]:
    return {"python": platform.python_version(), "torch": torch.__version__, "contrastkit": contrastkit.__version__}


def command_line() -> str:
    executable = Path(sys.executable)
    try:
        executable = executable.relative_to(Path.cwd())
    except ValueError:
        pass
    return shlex.join([str(executable), *sys.argv])


def _percent(value: Any) -> str:
    return "-" if value is None else f"{100.0 * float(value):.1f}"


def _seconds(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f}"


def render_section(results: dict[str, Any]) -> str:
    """The Markdown between the section markers."""
    rows = results["methods"]
    baselines = results["baselines"]
    raw, rand = baselines.get("raw_input", {}), baselines.get("random_init", {})
    shared = results["shared"]
    title = "## Image self-supervised methods on " + ("digits (quick smoke run; numbers are meaningless)"
                                                      if results["quick"] else "Fashion-MNIST")
    lines = [title, ""]
    budget = f"{shared['steps']} steps" if shared.get("steps") else f"{shared['epochs']} epochs"
    precisions = sorted({entry.get("train", {}).get("precision", "?") for entry in rows.values() if "error" not in entry})
    lines.append(
        f"Recipe `{shared['recipe']}` for every method: encoder `{shared['encoder']}`, the recipe's views "
        f"(crop, flip, jitter; no blur) under each method's preset, {budget} "
        f"(precision {'/'.join(precisions)}), batch {shared['batch_size']}, optimiser {shared['optimizer']} (lr {shared['lr']}, weight decay "
        f"{shared['weight_decay']}, warm-up {shared['warmup_fraction']:.0%} then cosine), seed {shared['seed']}, "
        f"evaluation on frozen backbone features: weighted kNN (k={KNN_K}, τ={KNN_TEMPERATURE}) and a linear probe "
        f"({shared['eval_train_rows']} train / {shared['eval_test_rows']} test rows)."
    )
    lines.append("")
    lines.append("| method | kNN top-1 (%) | linear top-1 (%) | s/epoch | train steps |")
    lines.append("|---|---:|---:|---:|---:|")
    for name, entry in rows.items():
        if "error" in entry:
            lines.append(f"| {name} | failed | failed | - | - |")
            continue
        train = entry.get("train", {})
        lines.append(
            f"| {name} | {_percent(entry.get('knn_top1'))} | {_percent(entry.get('linear_top1'))} "
            f"| {_seconds(train.get('seconds_per_epoch'))} | {train.get('steps', '-')} |"
        )
    lines.append(f"| raw pixels | {_percent(raw.get('knn_top1'))} | {_percent(raw.get('linear_top1'))} | - | - |")
    lines.append(f"| random init | {_percent(rand.get('knn_top1'))} | {_percent(rand.get('linear_top1'))} | - | 0 |")
    lines.append("")
    lines.append(f"Beat both baselines (raw pixels and random init) on kNN and linear top-1: "
                 f"{', '.join(results['beat_both']) or 'none'}. Did not: "
                 f"{', '.join(name for name in rows if name not in results['beat_both']) or 'none'}.")
    lines.append("")
    lines.append("s/epoch is training time only (no evaluation), measured on a shared 2-core machine: "
                 "compare methods by ratio within one run, not across runs.")
    lines.append("")
    lines.append(
        "Baselines were measured once, in the first method's run "
        f"(`{results['baselines_from']}`). The random-init row is the shared encoder at its initialisation with "
        "the shared seed, built before any method-specific head, so it is the same for every method."
        + (" `supcon` is supervised (it trains on the labels); the others are self-supervised." if "supcon" in rows else "")
    )
    lines.append("")
    lines.append("Per-method settings (everything else is shared; unlisted options keep the method's defaults):")
    lines.append("")
    for name in rows:
        settings = METHOD_SETTINGS[name]
        options = ", ".join(f"{key}={value}" for key, value in settings["method"].items()) or "defaults"
        lines.append(f"- `{name}`: views `{settings['views']}`; {options}")
    lines.append("")
    m, v = results["machine"], results["versions"]
    accelerator = f", {m['cuda']}" if m.get("cuda") else ""
    lines.append(f"Machine: {m['cpu']}, {m['cores']} cores ({m['torch_threads']} torch threads), "
                 f"{m['ram_gib']} GiB RAM{accelerator}.  ")
    lines.append(f"Versions: python {v['python']}, torch {v['torch']}, contrastkit {v['contrastkit']}.  ")
    lines.append(f"Command: `{results['command']}`  ")
    lines.append(f"Date: {results['date']}; total wall time {results['seconds'] / 60:.1f} min.")
    return "\n".join(lines)


def beats_both(entry: dict[str, Any], baselines: dict[str, Any]) -> bool:
    for metric in ("knn_top1", "linear_top1"):
        value = entry.get(metric)
        if value is None:
            return False
        for baseline in ("raw_input", "random_init"):
            reference = baselines.get(baseline, {}).get(metric)
            if reference is None or value <= reference:
                return False
    return True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render_only:  # rewrite the Markdown from a saved results file, without training
        results = json.loads(args.results.read_text(encoding="utf-8"))
        update_section(args.out, SECTION, render_section(results))
        print(f"rendered {args.results} into the {SECTION} section of {args.out}")
        return 0
    registered = set(method_names())
    not_registered = [name for name in args.methods if name not in registered]
    if not_registered:
        print(f"error: methods not registered in contrastkit: {not_registered}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    run_root = args.run_root or Path("runs") / f"bench-image-ssl-{_dt.datetime.now():%Y%m%d-%H%M%S}"
    shared = shared_overrides(args)
    base_config = load_config(RECIPE, shared)

    print(f"image_ssl benchmark: {len(args.methods)} method(s) on {base_config['data']['name']}; runs in {run_root}")
    print(f"shared overrides: {shared}")
    print("per-method settings:")
    for name in args.methods:
        print(f"  {name:<13} views={METHOD_SETTINGS[name]['views']:<8} method={METHOD_SETTINGS[name]['method']}")

    results: dict[str, Any] = {
        "benchmark": SECTION,
        "quick": bool(args.quick),
        "command": command_line(),
        "date": date,
        "machine": machine(),
        "versions": versions(),
        "shared_overrides": shared,
        "method_settings": {name: METHOD_SETTINGS[name] for name in args.methods},
        "baselines": {},
        "baselines_from": None,
        "methods": {},
    }
    for index, name in enumerate(args.methods):
        measure_baselines = not results["baselines"]
        config = load_config(RECIPE, shared + method_overrides(name, baselines=measure_baselines))
        print(f"[{index + 1}/{len(args.methods)}] {name}: training ...", flush=True)
        method_started = time.perf_counter()
        try:
            run_dir, metrics = run(config, run_root / name, verbose=False)
        except Exception as error:  # one failing method must not lose the others' numbers
            traceback.print_exc()
            results["methods"][name] = {"error": f"{type(error).__name__}: {error}"}
            print(f"[{index + 1}/{len(args.methods)}] {name}: FAILED ({error})", flush=True)
            continue
        metrics["run_dir"] = str(run_dir)
        if measure_baselines and metrics.get("baselines"):
            results["baselines"] = metrics["baselines"]
            results["baselines_from"] = name
        results["methods"][name] = metrics
        results.setdefault("eval_rows", metrics.get("eval_rows"))
        print(
            f"[{index + 1}/{len(args.methods)}] {name}: kNN {_percent(metrics.get('knn_top1'))}%  "
            f"linear {_percent(metrics.get('linear_top1'))}%  {metrics['train']['seconds_per_epoch']} s/epoch  "
            f"{metrics['train']['steps']} steps  ({time.perf_counter() - method_started:.0f}s with evaluation)",
            flush=True,
        )

    train = base_config.get("train", {})
    eval_rows = results.get("eval_rows") or {}
    results["shared"] = {
        "recipe": RECIPE,
        "dataset": base_config["data"]["name"],
        "encoder": base_config["encoder"]["name"],
        "batch_size": train.get("batch_size"),
        "optimizer": train.get("optimizer"),
        "lr": train.get("lr"),
        "weight_decay": train.get("weight_decay"),
        "warmup_fraction": train.get("warmup_fraction", 0.05),
        "steps": train.get("steps"),
        "epochs": train.get("epochs"),
        "seed": base_config.get("seed", 0),
        "eval_train_rows": eval_rows.get("train"),
        "eval_test_rows": eval_rows.get("test"),
    }
    results["beat_both"] = [
        name for name, entry in results["methods"].items()
        if "error" not in entry and beats_both(entry, results["baselines"])
    ]  # fmt: skip
    results["seconds"] = round(time.perf_counter() - started, 1)
    atomic_write_json(args.results, results)
    section = render_section(results)
    update_section(args.out, SECTION, section)
    print()
    print(section)
    print()
    print(f"wrote {args.results} and the {SECTION} section of {args.out}")
    failed = [name for name, entry in results["methods"].items() if "error" in entry]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

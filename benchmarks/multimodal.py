"""Image–text checks on the emoji data set: CLIP, SigLIP, multi-positive CLIP, LiT, FDT and M3CoL vs baselines.

Each (row, seed) is one `contrastkit train clip-emoji ...` in its own process (the
recipe's own baselines, random embeddings and the untrained towers, are measured in the
same run). Results go to ``benchmarks/results/multimodal.json`` (``--resume`` keeps the
runs already there) and the ``multimodal`` section of ``BENCHMARKS.md``, which also
carries the Symile XOR table of ``benchmarks/symile_xor.py``.

    python benchmarks/multimodal.py                       # every row, seeds 0 1 2
    python benchmarks/multimodal.py --rows clip --seeds 0 --resume
    python benchmarks/multimodal.py --render-only
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from markdown_section import update_section  # noqa: E402
from recipe_runs import mean_std, train_recipe  # noqa: E402

from contrastkit.utils.atomic import atomic_write_json  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "multimodal.json"
XOR_RESULTS = ROOT / "benchmarks" / "results" / "symile_xor.md"

#: row -> (label, overrides of the clip-emoji recipe)
ROWS: dict[str, tuple[str, list[str]]] = {
    "clip": ("CLIP (small ResNet from scratch + locked MiniLM)", []),
    "siglip": ("SigLIP (same towers; t'=log 10, b=-10)", ["method=siglip"]),
    # b0 = log(1/B): the prior of one positive per row, a check of whether the init explains SigLIP's gap
    "siglip-log-bias": ("SigLIP, bias initialised at log(1/B)", ["method=siglip", "method.bias_init=log_inverse_batch"]),
    "multi-positive": ("multi-positive CLIP (every alias a positive)", ["method.multi_positive=true"]),
    "lit": ("LiT (locked ImageNet EfficientNet-Lite0 + locked MiniLM, heads only)",
            ["method=lit", "encoder.image_tower=efficientnet-lite0", "views=none"]),
    # FDT (#7): the same towers read as tokens (8x8 ResNet patches, MiniLM word states), a 1024 x 128
    # codebook (the paper's 16384 x 512 does not fit the budget), tau_F = 1000 dividing as officially
    "fdt": ("FDT (same towers as tokens; codebook 1024 x 128, tau_F = 1000)",
            ["encoder=image-text-token-towers", "method=fdt", "method.codebook_size=1024", "method.codebook_dim=128"]),
    # M3CoL (#37): CLIP + 0.1 x (M3Co mixup contrast for the first 33 % of steps, then SoftCLIP)
    "m3col": ("M3CoL (CLIP + 0.1 x M3Co, then SoftCLIP after 33 %)", ["method=m3col"]),
}
COLUMNS = ("i2t_r@1", "i2t_r@5", "t2i_r@1", "t2i_r@5", "zero_shot_top1")


def run_one(row: str, seed: int, steps: int, threads: int) -> dict[str, Any]:
    overrides = [*ROWS[row][1], f"seed={seed}", f"data.seed={seed}", f"train.steps={steps}"]
    return train_recipe("clip-emoji", overrides, threads=threads, label=f"{row} seed {seed}")


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = ["## Multimodal: image–text contrast on emoji, and Symile", "",
             f"Commands: {'; '.join(f'`{c}`' for c in meta['commands'])} ({meta['date']}; {meta['machine']}; "
             f"torch {meta['torch']}). Data: `emoji`, 32x32 Noto Color Emoji glyphs with their names "
             "(aliases as extra captions); a quarter of the name families held out, so every test name is unseen. "
             "Each run measures its baselines itself; mean ± std over seeds (the seed also draws the split).", "",
             "| representation | seeds | " + " | ".join(COLUMNS) + " | wall s |",
             "|---|---|" + "---|" * len(COLUMNS) + "---|"]
    runs = results["runs"]
    baseline_rows: dict[str, dict[str, list[float]]] = {}
    for row, (label, _) in ROWS.items():
        seeds = runs.get(row, {})
        if not seeds:
            continue
        cells = [mean_std([run["scores"][key] for run in seeds.values()]) for key in COLUMNS]
        wall = max(run["wall_seconds"] for run in seeds.values())
        lines.append(f"| {label} | {', '.join(sorted(seeds))} | " + " | ".join(cells) + f" | {wall:.0f} |")
        for run in seeds.values():
            for name, scores in run["baselines"].items():
                key = "random embeddings" if name == "random" else f"untrained towers ({row})"
                for column in COLUMNS:
                    baseline_rows.setdefault(key, {}).setdefault(column, []).append(scores[column])
    for key, columns in sorted(baseline_rows.items()):
        if key == "random embeddings" or key in ("untrained towers (clip)", "untrained towers (lit)", "untrained towers (fdt)"):
            count = len(columns[COLUMNS[0]])
            lines.append(f"| {key} | {count} runs | " + " | ".join(mean_std(columns[c]) for c in COLUMNS) + " | - |")
    lines += ["", *meta.get("notes", [])]
    verdicts = []
    for row, seeds in runs.items():
        for seed, run in seeds.items():
            beaten = all(run["scores"][c] > max(b[c] for b in run["baselines"].values()) for c in COLUMNS)
            verdicts.append((row, seed, beaten))
    if verdicts:
        failed = [f"{row} seed {seed}" for row, seed, ok in verdicts if not ok]
        lines.append("- Every run beats every baseline it printed, on every column: "
                     + ("yes." if not failed else "NO: " + ", ".join(failed) + "."))
    if XOR_RESULTS.exists():
        lines += ["", XOR_RESULTS.read_text().strip().replace("## ", "### ", 1)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--resume", action="store_true", help="keep the runs already in the results file")
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}, "meta": {}}
    if not args.render_only:
        import torch

        command = "python benchmarks/multimodal.py " + shlex.join(sys.argv[1:] if argv is None else argv)
        meta = results.setdefault("meta", {})
        meta["commands"] = [c for c in meta.get("commands", []) if c != command.strip()] + [command.strip()]
        meta.update(date=_dt.date.today().isoformat(), torch=torch.__version__,
                    machine=f"{platform.machine()}, {os.cpu_count()} CPU cores, {args.threads} torch thread(s)")
        for row in args.rows:
            for seed in args.seeds:
                if args.resume and str(seed) in results["runs"].get(row, {}):
                    continue
                print(f"== {row} seed {seed}", flush=True)
                result = run_one(row, seed, args.steps, args.threads)
                results["runs"].setdefault(row, {})[str(seed)] = result
                atomic_write_json(RESULTS, results)
                print("   " + ", ".join(f"{c}={result['scores'][c]:.4f}" for c in COLUMNS)
                      + f", wall {result['wall_seconds']} s", flush=True)
    update_section(ROOT / "BENCHMARKS.md", "multimodal", render(results))


if __name__ == "__main__":
    main()

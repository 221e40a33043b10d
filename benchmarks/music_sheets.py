"""Audio <-> sheet-music retrieval on the ``music-sheets`` snapshot (seed #11): CLIP-style towers vs baselines.

Each (row, seed) is one ``contrastkit train clip-music-sheets ...`` in its own process; the
recipe's own baselines (random embeddings, the untrained towers) are measured in the same
run. Rows: cross-modal InfoNCE from scratch, and the paper's two stages (per-modality SimCLR
for the first part of the steps, then the cross-modal loss) at the same total step count.
Results go to ``benchmarks/results/music_sheets.json`` (``--resume`` keeps the runs already
there) and the ``music-sheets`` section of ``BENCHMARKS.md``.

    python -m contrastkit.data.music_sheets_build --tunes 1000     # the snapshot, once (~5-15 min)
    python benchmarks/music_sheets.py                               # every row, seeds 0 1 2
    python benchmarks/music_sheets.py --rows clip --seeds 0 --resume
    python benchmarks/music_sheets.py --render-only
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

from markdown_section import update_section
from recipe_runs import mean_std, train_recipe

from contrastkit.utils.atomic import atomic_write_json

RESULTS = ROOT / "benchmarks" / "results" / "music_sheets.json"
SECTION = "music-sheets"

#: row -> (label, overrides of the clip-music-sheets recipe; "{pretrain}" is replaced by half the steps)
ROWS: dict[str, tuple[str, list[str]]] = {
    "clip": ("cross-modal InfoNCE from scratch", []),
    "pretrain": ("per-modality SimCLR for half the steps, then cross-modal InfoNCE (the paper's two stages)",
                 ["method.pretrain_steps={pretrain}"]),
}
COLUMNS = ("a2s_r@1", "a2s_r@10", "a2s_mrr", "a2s_median_rank", "s2a_r@1", "s2a_r@10", "s2a_mrr", "s2a_median_rank",
           "a2s_piece_r@1")
#: Columns where lower is better.
LOWER = {"a2s_median_rank", "s2a_median_rank"}


def run_one(row: str, seed: int, steps: int, threads: int, tunes: int) -> dict[str, Any]:
    overrides = [item.replace("{pretrain}", str(steps // 2)) for item in ROWS[row][1]]
    overrides += [f"seed={seed}", f"data.split_seed={seed}", f"data.tunes={tunes}", f"train.steps={steps}"]
    return train_recipe("clip-music-sheets", overrides, threads=threads, label=f"{row} seed {seed}")


def _beats(scores: dict[str, float], baseline: dict[str, float], column: str) -> bool:
    return scores[column] < baseline[column] if column in LOWER else scores[column] > baseline[column]


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    snapshot = meta.get("snapshot", {})
    lines = ["## music-sheets: audio <-> sheet-music snippet retrieval (seed #11)", "",
             f"Commands: {'; '.join(f'`{c}`' for c in meta['commands'])} ({meta['date']}; {meta['machine']}; "
             f"torch {meta['torch']}). Data: `music-sheets`, {snapshot.get('tunes', '?')} Essen folk tunes of music21 "
             f"({snapshot.get('snippets', '?')} snippets of 4 bars, {snapshot.get('megabytes', '?')} MB snapshot, "
             f"built in {snapshot.get('build_seconds', '?')} s on one shared core): verovio 64x256 staff image <-> "
             "fluidsynth 80x128 log-mel; a fifth of the tunes held out (the seed draws which), so every test "
             "snippet is of an unseen tune. Retrieval is among all test snippets; ranks are 1-based, ties count "
             "against the query; `a2s_piece_r@1`: the best-ranked sheet snippet is of the query's tune (its own pair "
             "excluded). Each run measures its baselines itself; mean ± std over seeds.", "",
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
        if row != "clip":
            continue  # the other rows build the same towers from the same seed: the same baselines
        for run in seeds.values():
            for name, scores in run["baselines"].items():
                key = "random embeddings" if name == "random" else "untrained towers"
                for column in COLUMNS:
                    baseline_rows.setdefault(key, {}).setdefault(column, []).append(scores[column])
    for key, columns in sorted(baseline_rows.items()):
        count = len(columns[COLUMNS[0]])
        lines.append(f"| {key} | {count} runs | " + " | ".join(mean_std(columns[c]) for c in COLUMNS) + " | - |")
    lines += ["", *meta.get("notes", [])]
    verdicts = []
    for row, seeds in runs.items():
        for seed, run in seeds.items():
            beaten = all(_beats(run["scores"], baseline, c) for baseline in run["baselines"].values() for c in COLUMNS)
            verdicts.append((row, seed, beaten))
    if verdicts:
        failed = [f"{row} seed {seed}" for row, seed, ok in verdicts if not ok]
        lines.append("- Every run beats every baseline it printed, on every column: "
                     + ("yes." if not failed else "NO: " + ", ".join(failed) + "."))
    return "\n".join(lines)


def _snapshot_facts(tunes: int) -> dict[str, Any]:
    from contrastkit.data.music_sheets import MANIFEST_NAME, default_snapshot_dir
    from contrastkit.data.music_sheets_build import BuildOptions

    path = default_snapshot_dir(BuildOptions(tunes=tunes)) / MANIFEST_NAME
    if not path.is_file():
        return {}
    manifest = json.loads(path.read_text("utf-8"))
    return {"tunes": manifest["counts"]["tunes"], "snippets": manifest["counts"]["snippets"],
            "megabytes": round(manifest["snapshot_bytes"] / 1e6, 1), "build_seconds": manifest["build_seconds"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--tunes", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--resume", action="store_true", help="keep the runs already in the results file")
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}, "meta": {}}
    if not args.render_only:
        import torch

        command = "python benchmarks/music_sheets.py " + shlex.join(sys.argv[1:] if argv is None else argv)
        meta = results.setdefault("meta", {})
        meta["commands"] = [c for c in meta.get("commands", []) if c != command.strip()] + [command.strip()]
        meta.update(date=_dt.date.today().isoformat(), torch=torch.__version__, snapshot=_snapshot_facts(args.tunes),
                    machine=(f"{platform.machine()}, {os.cpu_count()} CPU cores (shared), "
                             f"{args.threads} torch thread(s)"))
        for row in args.rows:
            for seed in args.seeds:
                if args.resume and str(seed) in results["runs"].get(row, {}):
                    continue
                print(f"== {row} seed {seed}", flush=True)
                result = run_one(row, seed, args.steps, args.threads, args.tunes)
                results["runs"].setdefault(row, {})[str(seed)] = result
                atomic_write_json(RESULTS, results)
                print("   " + ", ".join(f"{c}={result['scores'][c]:.4f}" for c in COLUMNS)
                      + f"  ({result['wall_seconds']:.0f} s)", flush=True)
    update_section(ROOT / "BENCHMARKS.md", SECTION, render(results))
    print(f"wrote the {SECTION} section of BENCHMARKS.md")


if __name__ == "__main__":
    main()

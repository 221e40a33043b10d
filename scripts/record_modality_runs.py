"""Record (or check) one quick run per modality: the metrics a refactor must leave unchanged.

``python scripts/record_modality_runs.py`` runs each quick recipe of
:data:`QUICK_RUNS` through :func:`contrastkit.train.run.run` and writes its numeric
metrics (learned and baselines) to ``tests/golden/modality_runs.json``;
``tests/test_modality_runs.py`` reruns the same configurations and compares, to the
4th decimal. Rerecord only for a change that is meant to move these numbers, and say
which in the commit.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden" / "modality_runs.json"
QUIET = ["train.progress=false", "train.checkpoint_every=0", "eval.plots=false", "train.precision=fp32"]

#: modality -> (recipe, overrides). Small enough for the default test run (seconds each).
QUICK_RUNS: dict[str, tuple[str | None, list[str]]] = {
    "image": (None, ["data.name=digits", "train.steps=20", "train.batch_size=64", "eval.knn_k=20"]),
    "series": ("ts2vec", ["data=ucr:GunPoint", "encoder.hidden_dim=16", "encoder.depth=2", "encoder.output_dim=32",
                          "train.steps=8"]),
    "graph": ("grace-debian", ["data=karate-club", "train.steps=4", "train.batch_size=16"]),
    "graphs": ("graphcl-synthetic", ["data.num_graphs=48", "train.steps=3", "train.batch_size=8", "eval.knn_k=5"]),
    "interactions": ("lightgcl-tags", ["method.name=lightgcn", "train.steps=10", "train.batch_size=64"]),
    "text": ("code-search", ["data=text-pairs", "encoder.max_length=32", "encoder.query_max_length=16",
                             "train.steps=3", "train.batch_size=8", "train.device=cpu"]),
}


def write_inputs(folder: Path) -> dict[str, list[str]]:
    """Files the quick runs read (an interaction log, text pairs): ``{modality: extra overrides}``."""
    log = folder / "log.csv"
    lines = ["user,item"] + [f"u{user},i{(user % 2) * 20 + (user + k) % 20}" for user in range(60) for k in range(8)]
    log.write_text("\n".join(lines) + "\n")
    from contrastkit.data.stdlib_code import build_stdlib_code_records, split_of

    records = build_stdlib_code_records()
    train = [r for r in records if split_of(r.package) == "train"][::16][:48]
    test = [r for r in records if split_of(r.package) == "test"][:40]
    for name, rows in (("train.jsonl", train), ("test.jsonl", test)):
        with (folder / name).open("w", encoding="utf-8") as handle:
            for record in rows:
                handle.write(json.dumps({"query": record.query, "positive": record.document}) + "\n")
    return {"interactions": [f"data=interactions:{log}"],
            "text": [f"data.train={folder / 'train.jsonl'}", f"data.test={folder / 'test.jsonl'}"]}


def numbers(metrics: dict[str, Any]) -> dict[str, Any]:
    """The learned and baseline scores of a run (floats only; timings and environment dropped)."""
    def scores(values: dict[str, Any]) -> dict[str, float]:
        return {key: value for key, value in values.items() if isinstance(value, float) and not key.endswith("seconds")}

    baselines = {name: scores(values) for name, values in metrics.get("baselines", {}).items()}
    return {"learned": scores(metrics), "baselines": baselines, "final_loss": metrics["train"]["final_loss"]}


def quick_run(modality: str, folder: Path, extra: dict[str, list[str]]) -> dict[str, Any]:
    from contrastkit.train.config import load_config
    from contrastkit.train.run import run

    recipe, overrides = QUICK_RUNS[modality]
    config = load_config(recipe, [*overrides, *extra.get(modality, []), *QUIET])
    _, metrics = run(config, folder / f"run-{modality}", verbose=False)
    return numbers(metrics)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modalities", nargs="*", default=list(QUICK_RUNS))
    args = parser.parse_args()
    recorded = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        extra = write_inputs(folder)
        for modality in args.modalities:
            recorded[modality] = quick_run(modality, folder, extra)
            print(modality, json.dumps(recorded[modality]), file=sys.stderr)
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()

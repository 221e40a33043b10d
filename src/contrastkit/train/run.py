"""The job a recipe describes: build, measure baselines, train, evaluate, plot, report.

This is what ``contrastkit train`` (and ``make run``) executes. Every modality goes
through the same steps and writes the same ``metrics.json`` shape::

    {"knn_top1": ..., "linear_top1": ..., ...,
     "baselines": {"raw_input": {"knn_top1": ..., "linear_top1": ...},
                   "random_init": {"knn_top1": ..., "linear_top1": ...}},
     "train": {"steps": ..., "seconds": ..., "seconds_per_epoch": ...}}

The keys come from the data's evaluation protocol, which its modality names
(:mod:`contrastkit.modalities`, :mod:`contrastkit.eval.protocols`): series data adds
``svm_accuracy`` (TS2Vec's RBF-SVM protocol); text data is scored by retrieval
(trec_eval's MRR@10, nDCG@10, Recall@100 and MAP, baselines ``bm25`` and ``zero_shot``).
Nothing here names a modality: the modality builds the views and supplies the encoder
arguments, the protocol measures.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import platform
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from contrastkit.data import DatasetSplits, load_dataset
from contrastkit.eval import plot_embedding_2d, plot_loss_curve, print_table
from contrastkit.eval.projector import write_projector
from contrastkit.eval.protocols import EvaluationProtocol
from contrastkit.methods import Method, build_method
from contrastkit.modalities import check_method, modality_of
from contrastkit.nn.registry import build_encoder
from contrastkit.train.checkpoint import latest_checkpoint, load_checkpoint, resolve_checkpoint
from contrastkit.train.config import (
    eval_config,
    load_config,
    load_run_config,
    protocol_settings,
    resolved,
    train_config,
)
from contrastkit.train.distributed import DistributedContext, device_for, setup_distributed
from contrastkit.train.report import write_report
from contrastkit.train.trainer import Trainer, resolve_device
from contrastkit.utils.atomic import atomic_write_json, atomic_write_text, remove_stale_temporaries
from contrastkit.utils.seed import seed_everything

BASELINES_FILE = "baselines.json"
METRICS_FILE = "metrics.json"
#: Where ``eval.tensorboard_projector`` puts the projector files: beside the scalars of ``train.tensorboard``.
PROJECTOR_DIR = "tensorboard"


def load_data(config: dict[str, Any]) -> DatasetSplits:
    """The recipe's dataset (``data.name`` plus its options)."""
    options = dict(config["data"])
    name = options.pop("name")
    return load_dataset(name, **options)


def build_method_from_config(config: dict[str, Any], splits: DatasetSplits) -> Method:
    """Encoder + views + method as the recipe names them, seeded by ``config['seed']``.

    The data's modality checks that the method trains on it, supplies the encoder
    arguments that come from the data and builds the views.
    """
    method_options = dict(config["method"])
    name = method_options.pop("name")
    modality = check_method(name, splits)
    seed_everything(int(config.get("seed", 0)))
    encoder_options = dict(config["encoder"])
    encoder_name = encoder_options.pop("name")
    try:
        encoder = build_encoder(encoder_name, **modality.encoder_arguments(splits), **encoder_options)
    except TypeError as error:  # an option the encoder's class does not take (its factory forwards **options)
        raise ValueError(f"encoder {encoder_name!r}: {error}") from error
    views = modality.build_views(dict(config["views"]), splits, encoder)
    return build_method(name, encoder, views, **method_options)


def build_protocol(config: dict[str, Any], splits: DatasetSplits, device: torch.device, seed: int) -> EvaluationProtocol:
    """The evaluation protocol of the data's modality, with the recipe's protocol settings."""
    return modality_of(splits).build_protocol(splits, protocol_settings(config), device, seed)


def _with_protocol_settings(config: dict[str, Any], protocol: EvaluationProtocol) -> dict[str, Any]:
    """``config`` with every setting of ``protocol`` filled in under ``eval`` (as saved in config.yaml)."""
    return {**config, "eval": {**config["eval"], **dataclasses.asdict(protocol.settings)}}


def run_name(config: dict[str, Any]) -> str:
    """``METHOD-DATA`` for a run folder: what was trained on what (``simclr-digits``, ``ts2vec-ucr-GunPoint``).

    A path in the data name (``beir:/data/scifact``) contributes its last part only.
    """
    data = str(config["data"]["name"])
    prefix, separator, path = data.partition(":")
    if separator:
        data = f"{prefix}-{Path(path.rstrip('/')).name or 'data'}"
    text = f"{config['method']['name']}-{data}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def _new_run_dir(name: str, root: str | Path = "runs") -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{name}-{stamp}"
    path, counter = base, 1
    while path.exists():
        counter += 1
        path = Path(f"{base}-{counter}")
    return path


def _environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
    }


def run(
    config: dict[str, Any],
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    verbose: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """Run a recipe end to end and return ``(run_dir, metrics)``.

    Under ``torchrun`` every process trains (DDP) and rank 0 alone measures the
    baselines, evaluates and writes; the process group is set up and torn down here.

    Args:
        config: a loaded recipe (see :func:`contrastkit.train.config.load_config`).
        run_dir: where to write; default ``runs/NAME-TIMESTAMP``.
        resume: continue the run in ``run_dir`` from its latest checkpoint.
        verbose: print progress and the result table.
    """
    context = setup_distributed(str((config.get("train") or {}).get("device", "auto")))
    try:
        if context.enabled and run_dir is None and not resume:
            import torch.distributed as dist

            chosen = [str(_new_run_dir(run_name(config))) if context.is_main else None]
            dist.broadcast_object_list(chosen, src=0)  # every rank must write into rank 0's folder
            run_dir = chosen[0]
        return _run(config, run_dir, resume=resume, verbose=verbose and context.is_main, context=context)
    finally:
        context.shutdown()


def _run(
    config: dict[str, Any],
    run_dir: str | Path | None,
    *,
    resume: bool,
    verbose: bool,
    context: DistributedContext,
) -> tuple[Path, dict[str, Any]]:
    config = resolved(config)
    main = context.is_main

    def say(message: str) -> None:
        if verbose:
            print(message, file=sys.stderr, flush=True)

    if resume:
        if run_dir is None:
            raise ValueError("resume needs the run directory")
        run_dir = Path(run_dir)
        if resolve_checkpoint(run_dir / "checkpoints", warn=False) is None:
            raise FileNotFoundError(
                f"cannot resume: no checkpoint in {run_dir} (expected {run_dir}/checkpoints/latest.json)"
            )
    else:
        run_dir = Path(run_dir) if run_dir is not None else _new_run_dir(run_name(config))
        if main and (run_dir / "checkpoints").exists():
            raise ValueError(f"{run_dir} already holds a run; pass --resume to continue it or pick a new directory")
    created = not run_dir.exists()
    try:
        return _run_in(config, run_dir, resume=resume, say=say, context=context, verbose=verbose)
    except BaseException as error:
        if main and not resume and latest_checkpoint(run_dir / "checkpoints") is None and run_dir.exists():
            _discard_failed_run(run_dir, created, error)
        raise


def _discard_failed_run(run_dir: Path, created: bool, error: BaseException) -> None:
    """A run that failed before its first checkpoint leaves nothing behind: its folder goes if this
    run made it; a folder the user named and that existed keeps a ``FAILED`` note with the error."""
    if created:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    try:
        atomic_write_text(run_dir / "FAILED", f"{type(error).__name__}: {message}\n")
    except OSError:
        pass  # the failure may be the disk itself; the error reaches the user anyway


def _run_in(
    config: dict[str, Any],
    run_dir: Path,
    *,
    resume: bool,
    say: Any,
    context: DistributedContext,
    verbose: bool,
) -> tuple[Path, dict[str, Any]]:
    seed = int(config["seed"])
    main = context.is_main

    # Everything that can reject the config runs before the run directory is created.
    splits = load_data(config)
    if splits.train is None:
        raise ValueError(
            f"dataset {splits.name!r} has no training split (a BEIR folder needs qrels/train.tsv, "
            "a text-pairs dataset its train file); evaluate it with `contrastkit eval --set data=...` instead"
        )
    method = build_method_from_config(config, splits)
    evaluation = eval_config(config)
    training = train_config(config)
    training.device = device_for(context, training.device)
    device = resolve_device(training.device)
    if not verbose:
        training.progress = False
    evaluator = build_protocol(config, splits, device, seed)
    config = _with_protocol_settings(config, evaluator)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        # What a killed writer left (temporary files, half-assembled checkpoints) goes first.
        for folder in (run_dir, run_dir / "checkpoints"):
            remove_stale_temporaries(folder)
        (run_dir / "FAILED").unlink(missing_ok=True)
        # On resume this records what --set changed (train.steps to extend a finished run).
        atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))

    baselines_path = run_dir / BASELINES_FILE
    if main and evaluation.baselines and not baselines_path.exists():
        started = time.perf_counter()
        say("measuring baselines ...")
        method.to(device)
        baselines = evaluator.baselines(method)
        atomic_write_json(baselines_path, baselines)
        say(f"baselines done in {time.perf_counter() - started:.0f}s")
    context.barrier()
    baselines = json.loads(baselines_path.read_text()) if baselines_path.exists() else {}

    # Re-seed so training draws the same random numbers whether or not baselines ran; under
    # torchrun each rank draws its own augmentations.
    seed_everything(seed + 1 + context.rank)
    trainer = Trainer(
        method, splits.train, training, run_dir, seed=seed,
        eval_fn=evaluator if training.eval_every else None, checkpoint_extra={"config": config},
        distributed=context,
    )  # fmt: skip
    if resume:
        step = trainer.resume()
        say(f"resuming {run_dir} from step {step}/{trainer.total_steps}")
    say(f"training {config['method']['name']} on {splits.name}: {trainer.total_steps} steps "
        f"of batch {training.batch_size} on {trainer.device} ({trainer.precision})")
    result = trainer.fit()
    if not main:  # rank 0 evaluates and writes; the others are done
        return run_dir, {}

    started = time.perf_counter()
    say(f"evaluating ({evaluator.describe()}) ...")
    learned, test_features = evaluator.final(method)
    say(f"evaluation done in {time.perf_counter() - started:.0f}s")
    metrics: dict[str, Any] = {
        "recipe": config["name"],
        "method": config["method"]["name"],
        "dataset": splits.name,
        **learned,
        "baselines": baselines,
        "train": {
            "steps": result.steps,
            "seconds": round(result.seconds, 2),
            "seconds_per_epoch": round(result.seconds_per_epoch, 2),
            "final_loss": result.final_loss if math.isfinite(result.final_loss) else None,
            "precision": trainer.precision,
        },
        "eval_rows": evaluator.evaluated_rows(),
        "environment": _environment(),
    }
    metrics["eval_seconds"] = round(time.perf_counter() - started, 2)
    # metrics.json first: a failing plot must not lose the numbers.
    atomic_write_json(run_dir / METRICS_FILE, metrics)
    if evaluation.plots:
        plot_loss_curve(run_dir / "metrics.jsonl", run_dir / "loss_curve.png", keys=["loss"],
                        title=f"{config['method']['name']} on {splits.name}")
        plot_labels = evaluator.plot_labels()
        if test_features is not None and plot_labels is not None:
            plot_embedding_2d(test_features, plot_labels, run_dir / "embedding_2d.png",
                              method=evaluation.plot_method, seed=seed, class_names=splits.class_names,
                              title=f"{config['method']['name']} test embeddings ({evaluation.plot_method})")
    if evaluation.tensorboard_projector:
        write_run_projector(run_dir, evaluator, method, say=say)
    _report(run_dir, config, learned, baselines, evaluator, metrics, plots=evaluation.plots, say=say)
    if verbose:
        print_table({"learned": learned, **baselines}, columns=evaluator.columns(),
                    title=f"{config['method']['name']} on {splits.name} ({evaluator.describe()})")
    return run_dir, metrics


def write_run_projector(run_dir: Path, evaluator: EvaluationProtocol, method: Method, *, say: Any = None) -> Path:
    """TensorBoard's embedding projector for the run's test split, in ``RUN_DIR/tensorboard``.

    The protocol's ``embed`` gives the tables (the rows ``contrastkit embed RUN_DIR`` exports, with
    their labels, and thumbnails for image rows); one table sits beside ``projector_config.pbtxt``,
    several get a sub-folder each, as in an embedding folder.

    Returns:
        The config file's path.
    """
    started = time.perf_counter()
    tables = evaluator.embed(method, "test")
    placed = [(".", tables[0])] if len(tables) == 1 else [(table.name, table) for table in tables]
    config = write_projector(run_dir / PROJECTOR_DIR, placed)
    if say is not None:
        rows = ", ".join(f"{table.name} {len(table)}" for table in tables)
        say(f"projector written to {config.parent} ({rows} rows) in {time.perf_counter() - started:.0f}s")
    return config


def _recipe_as_shipped(config: dict[str, Any]) -> dict[str, Any] | None:
    """The recipe the run started from, resolved as the run was (``None`` when it is not a known recipe)."""
    try:
        return resolved(load_config(str(config.get("name"))))
    except (ValueError, OSError):
        return None


def _report(run_dir: Path, config: dict[str, Any], learned: dict[str, Any], baselines: dict[str, Any],
            evaluator: EvaluationProtocol, metrics: dict[str, Any], *, plots: bool, say: Any) -> None:
    """``report.html`` and ``report.md``; a report that fails is a warning, never a lost run."""
    try:
        write_report(run_dir, config=config, recipe=_recipe_as_shipped(config), learned=learned,
                     baselines=baselines, columns=evaluator.columns(), description=evaluator.describe(),
                     train=metrics.get("train"), environment=metrics.get("environment"), plots=plots)
    except (OSError, ValueError, ImportError) as error:
        say(f"warning: no report written ({error})")


def evaluate_run(run_dir: str | Path, overrides: list[str] | None = None, *, verbose: bool = True) -> dict[str, Any]:
    """Re-evaluate the newest intact checkpoint of a finished (or interrupted) run; update ``metrics.json``.

    ``overrides`` (``eval.KEY=VALUE`` only) change the evaluation, not the run: the baselines are
    then measured again with the same settings, and ``metrics.json`` records the settings used
    (``eval_settings``); ``config.yaml`` keeps the run's own.
    """
    run_dir = Path(run_dir)
    config = resolved(load_run_config(run_dir, overrides, allowed=("eval", "train.device"), command="eval RUN_DIR"))
    checkpoint = resolve_checkpoint(run_dir / "checkpoints")
    if checkpoint is None:
        raise FileNotFoundError(f"{run_dir} has no checkpoint (expected {run_dir}/checkpoints/latest.json)")
    splits = load_data(config)
    method = build_method_from_config(config, splits)
    device = resolve_device(config["train"]["device"])
    evaluator = build_protocol(config, splits, device, int(config["seed"]))
    fresh_baselines = None
    settings_changed = any(text.strip().startswith("eval.") for text in overrides or [])
    if settings_changed and eval_config(config).baselines:  # the untrained model, as the run measured them
        method.to(device)
        fresh_baselines = evaluator.baselines(method)
    state = load_checkpoint(checkpoint, method, restore_rng=False)
    method.to(device)
    learned, _ = evaluator.final(method)
    metrics_path = run_dir / METRICS_FILE
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    metrics.update(learned)
    metrics["evaluated_step"] = state.step
    metrics["eval_settings"] = dataclasses.asdict(evaluator.settings)
    if eval_config(config).tensorboard_projector:
        write_run_projector(run_dir, evaluator, method,
                            say=lambda message: print(message, file=sys.stderr) if verbose else None)
    baselines_path = run_dir / BASELINES_FILE
    if fresh_baselines is not None:
        metrics["baselines"] = fresh_baselines
    metrics.setdefault("baselines", json.loads(baselines_path.read_text()) if baselines_path.exists() else {})
    atomic_write_json(metrics_path, metrics)
    _report(run_dir, config, learned, metrics["baselines"], evaluator, metrics,
            plots=eval_config(config).plots, say=lambda message: print(message, file=sys.stderr) if verbose else None)
    if verbose:
        print_table({"learned": learned, **metrics["baselines"]}, columns=evaluator.columns(),
                    title=f"{run_dir} at step {state.step}")
    return metrics


def evaluate_untrained(config: dict[str, Any], out_dir: str | Path, *, verbose: bool = True) -> dict[str, Any]:
    """Evaluate a recipe's encoder *before* any training (e.g. zero-shot all-MiniLM-L6-v2 on a
    BEIR folder) and write ``OUT_DIR/metrics.json``; baselines (BM25 for text) are included."""
    config = resolved(config)
    out_dir = Path(out_dir)
    splits = load_data(config)
    method = build_method_from_config(config, splits)
    device = resolve_device(config["train"]["device"])
    method.to(device)
    evaluation = eval_config(config)
    evaluator = build_protocol(config, splits, device, int(config["seed"]))
    config = _with_protocol_settings(config, evaluator)
    learned, _ = evaluator.final(method)
    baselines = evaluator.baselines(method) if evaluation.baselines else {}
    # The untrained encoder is what "learned" measures here; its row takes the name a training run
    # gives it among the baselines (zero_shot for a pretrained text encoder, random_init elsewhere).
    row = "random_init" if "random_init" in baselines else "zero_shot"
    baselines.pop("zero_shot", None)
    baselines.pop("random_init", None)
    metrics: dict[str, Any] = {
        "recipe": config["name"], "method": config["method"]["name"], "dataset": splits.name, "trained": False,
        "row": row, **learned, "baselines": baselines, "environment": _environment(),
    }  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    atomic_write_json(out_dir / METRICS_FILE, metrics)
    if verbose:
        print_table({row: learned, **baselines}, columns=evaluator.columns(),
                    title=f"untrained {config['encoder']['name']} on {splits.name}")
    return metrics

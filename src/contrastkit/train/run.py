"""The job a recipe describes: build, measure baselines, train, evaluate, plot, report.

This is what ``contrastkit train`` (and ``make run``) executes. Every modality goes
through the same steps and writes the same ``metrics.json`` shape::

    {"knn_top1": ..., "linear_top1": ..., ...,
     "baselines": {"raw_input": {"knn_top1": ..., "linear_top1": ...},
                   "random_init": {"knn_top1": ..., "linear_top1": ...}},
     "train": {"steps": ..., "seconds": ..., "seconds_per_epoch": ...}}

Series data adds ``svm_accuracy`` (TS2Vec's RBF-SVM protocol) beside the kNN and
linear-probe keys, for the learned representation and both baselines.

Text data is scored by retrieval instead (:class:`contrastkit.train.text_eval.TextEvaluator`):
trec_eval's MRR@10, nDCG@10, Recall@100 and MAP on the test queries, with the baselines
``bm25`` and ``zero_shot`` (the encoder before training).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from contrastkit.data import ArrayDataset, DatasetSplits, load_dataset
from contrastkit.eval import (
    alignment_uniformity,
    evaluate_representation,
    extract_features,
    plot_embedding_2d,
    plot_loss_curve,
    print_table,
)
from contrastkit.eval.svm import svm_probe
from contrastkit.methods import Method, build_method
from contrastkit.methods.registry import method_modality, method_names
from contrastkit.nn.registry import build_encoder
from contrastkit.utils.atomic import atomic_write_json, atomic_write_text
from contrastkit.train.checkpoint import latest_checkpoint, load_checkpoint
from contrastkit.train.config import (
    EvalConfig,
    eval_config,
    load_run_config,
    resolved,
    train_config,
)
from contrastkit.train.distributed import (
    DistributedContext,
    device_for,
    setup_distributed,
)
from contrastkit.utils.seed import seed_everything
from contrastkit.train.trainer import Trainer, resolve_device
from contrastkit.views.image import build_views
from contrastkit.views.series import build_series_views

BASELINES_FILE = "baselines.json"
METRICS_FILE = "metrics.json"


def load_data(config: dict[str, Any]) -> DatasetSplits:
    """The recipe's dataset (``data.name`` plus its options)."""
    options = dict(config["data"])
    name = options.pop("name")
    return load_dataset(name, **options)


def build_method_from_config(config: dict[str, Any], splits: DatasetSplits) -> Method:
    """Encoder + views + method as the recipe names them, seeded by ``config['seed']``."""
    method_options = dict(config["method"])
    name = method_options.pop("name")
    expected = method_modality(name)
    if splits.modality != expected:
        raise ValueError(
            f"dataset {splits.name!r} is {splits.modality!r} data, but method {name!r} trains on {expected!r} data; "
            f"methods for {splits.modality!r} data: {', '.join(method_names(splits.modality)) or '(none yet)'}"
        )
    seed_everything(int(config.get("seed", 0)))
    encoder_options = dict(config["encoder"])
    view_options = dict(config["views"])
    if splits.modality == "text":
        from contrastkit.views.text import build_text_views

        encoder = build_encoder(encoder_options.pop("name"), **encoder_options)
        view_options.setdefault("mask_token_id", getattr(encoder, "mask_token_id", None))
        pad_token_id = getattr(getattr(encoder, "tokenizer", None), "pad_token_id", None)
        if pad_token_id is not None:
            view_options.setdefault("pad_token_id", pad_token_id)
        views = build_text_views(view_options.pop("preset"), **view_options)
        return build_method(name, encoder, views, **method_options)
    if splits.modality in ("graph", "graphs"):
        from contrastkit.views.graph import build_graph_views

        encoder = build_encoder(encoder_options.pop("name"), in_channels=splits.input_shape[0], **encoder_options)
        views = build_graph_views(view_options.pop("preset", "none"), **view_options)
        return build_method(name, encoder, views, **method_options)
    if splits.modality == "interactions":
        train = splits.train
        encoder = build_encoder(encoder_options.pop("name"), num_users=train.num_users, num_items=train.num_items,
                                train_pairs=train.pairs, **encoder_options)
        return build_method(name, encoder, (), **method_options)
    if splits.modality == "series":
        encoder = build_encoder(encoder_options.pop("name"), in_channels=splits.input_shape[0], **encoder_options)
        views = build_series_views(view_options.pop("preset"), **view_options)
        return build_method(name, encoder, views, **method_options)
    channels, image_size = splits.input_shape[0], splits.input_shape[-1]
    encoder = build_encoder(encoder_options.pop("name"), in_channels=channels, image_size=image_size,
                            **encoder_options)
    # views.image_size lets a run train on smaller crops than it evaluates on (cheaper on CPU);
    # the encoders pool globally, so they accept both sizes.
    view_size = int(view_options.pop("image_size", image_size))
    views = build_views(view_options.pop("preset"), image_size=view_size, channels=channels, **view_options)
    return build_method(name, encoder, views, **method_options)


def _subset(dataset: ArrayDataset, size: int | None, seed: int) -> ArrayDataset:
    if size is None or size >= len(dataset):
        return dataset
    rows = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:size]
    return dataset.subset(rows.sort().values)


class Evaluator:
    """Embeds the (sub-sampled) train and test splits and scores the features."""

    def __init__(self, splits: DatasetSplits, config: EvalConfig, device: torch.device, seed: int) -> None:
        self.config, self.device = config, device
        self.train = _subset(splits.train, config.train_subset, seed)
        self.test = _subset(splits.test, config.test_subset, seed + 1)
        self.num_classes = splits.num_classes
        if self.train.labels is None or self.test.labels is None:
            raise ValueError(f"dataset {splits.name!r} has no labels: kNN and linear-probe evaluation need them")
        # The RBF-SVM probe is the TS2Vec protocol; by default it runs on series data only.
        self.svm = splits.modality == "series" if config.svm is None else bool(config.svm)
        self.seed = seed

    def features(self, method: Method) -> tuple[torch.Tensor, torch.Tensor]:
        """Backbone features of the train and test rows (eval mode, no augmentation)."""
        was_training = method.training
        method.eval()
        try:
            train, _ = extract_features(method.embed, self.train, self.config.batch_size, self.device)
            test, _ = extract_features(method.embed, self.test, self.config.batch_size, self.device)
        finally:
            method.train(was_training)
        return train, test

    def score(self, train_features: torch.Tensor, test_features: torch.Tensor, linear: bool | None = None) -> dict:
        """kNN, linear probe (unless ``linear=False``: periodic evaluation) and, where enabled, the SVM probe."""
        assert self.train.labels is not None and self.test.labels is not None
        linear = self.config.linear if linear is None else linear
        scores: dict[str, float] = evaluate_representation(
            train_features, self.train.labels, test_features, self.test.labels,
            knn_k=self.config.knn_k, knn_temperature=self.config.knn_temperature,
            linear=linear, num_classes=self.num_classes,
        )  # fmt: skip
        if self.svm and linear:
            scores.update(svm_probe(train_features, self.train.labels, test_features, self.test.labels, seed=self.seed))
        return scores

    def __call__(self, method: Method) -> dict[str, float]:
        """Periodic evaluation during training: kNN only (cheap)."""
        return self.score(*self.features(method), linear=False)

    def baselines(self, method: Method) -> dict[str, dict[str, float]]:
        """Raw inputs and the randomly initialised encoder, scored like the learned features."""
        return {"raw_input": self.raw_input(), "random_init": self.score(*self.features(method))}

    def final(self, method: Method) -> tuple[dict[str, float], torch.Tensor | None]:
        """The learned representation's scores (kNN, probes, view geometry) and the test features."""
        train_features, test_features = self.features(method)
        learned = self.score(train_features, test_features)
        learned.update(_view_geometry(method, self))
        return learned, test_features

    def columns(self) -> list[str]:
        return ["knn_top1", "linear_top1"] + (["svm_accuracy"] if self.svm else [])

    def raw_input(self) -> dict[str, float]:
        """The raw-input baseline: flattened inputs as features (missing values, e.g. series padding, as 0)."""
        return self.score(
            torch.nan_to_num(self.train.inputs.flatten(1).float()), torch.nan_to_num(self.test.inputs.flatten(1).float())
        )


def build_evaluator(splits: DatasetSplits, config: EvalConfig, device: torch.device, seed: int) -> Any:
    """The evaluator for the data's modality: retrieval for text, node probes and link prediction
    for a graph, ranking for interactions, kNN and probes otherwise."""
    if splits.modality == "text":
        from contrastkit.train.text_eval import TextEvaluator

        return TextEvaluator(splits, config, device, seed)
    if splits.modality == "graph":
        from contrastkit.train.graph_eval import NodeGraphEvaluator

        return NodeGraphEvaluator(splits, config, device, seed)
    if splits.modality == "graphs":
        from contrastkit.train.graph_eval import GraphSetEvaluator

        return GraphSetEvaluator(splits, config, device, seed)
    if splits.modality == "interactions":
        from contrastkit.train.recommendation_eval import RecommendationEvaluator

        return RecommendationEvaluator(splits, config, device, seed)
    return Evaluator(splits, config, device, seed)


def _view_geometry(method: Method, evaluator: Evaluator, rows: int = 2000) -> dict[str, float]:
    """Alignment and uniformity of backbone features of two augmented views of test rows."""
    inputs = evaluator.test.inputs[:rows].to(evaluator.device)
    method.eval()
    with torch.no_grad():
        view_a = getattr(method, "view_a", None)
        view_b = getattr(method, "view_b", None)
        if view_a is None or view_b is None:
            return {}
        features_a = method.embed(view_a(inputs)).float().cpu()
        features_b = method.embed(view_b(inputs)).float().cpu()
    return alignment_uniformity(features_a, features_b)


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

            chosen = [str(_new_run_dir(str(config.get("name", "run")))) if context.is_main else None]
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
    seed = int(config["seed"])
    main = context.is_main

    def say(message: str) -> None:
        if verbose:
            print(message, file=sys.stderr, flush=True)

    if resume:
        if run_dir is None:
            raise ValueError("resume needs the run directory")
        run_dir = Path(run_dir)
        if latest_checkpoint(run_dir / "checkpoints") is None:
            raise FileNotFoundError(
                f"cannot resume: no checkpoint in {run_dir} (expected {run_dir}/checkpoints/latest.json)"
            )
    else:
        run_dir = Path(run_dir) if run_dir is not None else _new_run_dir(str(config["name"]))
        if main and (run_dir / "checkpoints").exists():
            raise ValueError(f"{run_dir} already holds a run; pass --resume to continue it or pick a new directory")

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
    evaluator = build_evaluator(splits, evaluation, device, seed)
    if not resume and main:
        run_dir.mkdir(parents=True, exist_ok=True)
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
    learned, test_features = evaluator.final(method)
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
        "eval_rows": {"train": len(evaluator.train) if hasattr(evaluator, "train") else None,
                      "test": len(evaluator.test)},
        "environment": _environment(),
    }
    metrics["eval_seconds"] = round(time.perf_counter() - started, 2)
    # metrics.json first: a failing plot must not lose the numbers.
    atomic_write_json(run_dir / METRICS_FILE, metrics)
    if evaluation.plots:
        plot_loss_curve(run_dir / "metrics.jsonl", run_dir / "loss_curve.png", keys=["loss"],
                        title=f"{config['method']['name']} on {splits.name}")
        plot_labels = getattr(evaluator, "plot_labels", None)
        if plot_labels is None:
            plot_labels = getattr(evaluator.test, "labels", None)
        if test_features is not None and plot_labels is not None:
            plot_embedding_2d(test_features, plot_labels, run_dir / "embedding_2d.png",
                              method=evaluation.plot_method, seed=seed, class_names=splits.class_names,
                              title=f"{config['method']['name']} test embeddings ({evaluation.plot_method})")
    if verbose:
        protocol = _protocol(splits.modality, evaluation, len(evaluator.test))
        print_table({"learned": learned, **baselines}, columns=evaluator.columns(),
                    title=f"{config['method']['name']} on {splits.name} ({protocol})")
    return run_dir, metrics


def _protocol(modality: str, evaluation: EvalConfig, test_rows: int) -> str:
    """The one-line description of how the result table was measured."""
    if modality == "text":
        return f"dense retrieval, trec_eval; test queries {test_rows}"
    if modality == "graph":
        return f"logistic probe on {test_rows} test nodes; link prediction on held-out edges"
    if modality == "interactions":
        return f"full ranking, training items masked; {test_rows} test users"
    return f"kNN k={evaluation.knn_k}, τ={evaluation.knn_temperature}; test rows {test_rows}"


def evaluate_run(run_dir: str | Path, *, verbose: bool = True) -> dict[str, Any]:
    """Re-evaluate the latest checkpoint of a finished (or interrupted) run; update ``metrics.json``."""
    run_dir = Path(run_dir)
    config = resolved(load_run_config(run_dir))
    checkpoint = latest_checkpoint(run_dir / "checkpoints")
    if checkpoint is None:
        raise FileNotFoundError(f"{run_dir} has no checkpoint (expected {run_dir}/checkpoints/latest.json)")
    splits = load_data(config)
    method = build_method_from_config(config, splits)
    state = load_checkpoint(checkpoint, method, restore_rng=False)
    device = resolve_device(config["train"]["device"])
    method.to(device)
    evaluator = build_evaluator(splits, eval_config(config), device, int(config["seed"]))
    learned, _ = evaluator.final(method)
    metrics_path = run_dir / METRICS_FILE
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    metrics.update(learned)
    metrics["evaluated_step"] = state.step
    baselines_path = run_dir / BASELINES_FILE
    metrics.setdefault("baselines", json.loads(baselines_path.read_text()) if baselines_path.exists() else {})
    atomic_write_json(metrics_path, metrics)
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
    evaluator = build_evaluator(splits, evaluation, device, int(config["seed"]))
    learned, _ = evaluator.final(method)
    baselines = evaluator.baselines(method) if evaluation.baselines else {}
    baselines.pop("zero_shot", None)  # the untrained encoder is what "learned" measures here
    metrics: dict[str, Any] = {
        "recipe": config["name"], "method": config["method"]["name"], "dataset": splits.name, "trained": False,
        **learned, "baselines": baselines, "environment": _environment(),
    }  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    atomic_write_json(out_dir / METRICS_FILE, metrics)
    if verbose:
        print_table({"untrained": learned, **baselines}, columns=evaluator.columns(),
                    title=f"untrained {config['encoder']['name']} on {splits.name}")
    return metrics

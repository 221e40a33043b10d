"""Run configuration: a recipe (YAML read with a ``yaml.SafeLoader``) plus ``--set key=value`` overrides.

Sections: ``seed``, ``name``, ``data``, ``encoder``, ``views``, ``method``, ``train``, ``eval``.
``data``/``encoder``/``method`` carry a ``name`` (looked up in a registry) plus
keyword options for it; ``views`` carries a ``preset``; ``train`` maps onto
:class:`~contrastkit.train.trainer.TrainConfig` and ``eval`` onto :class:`EvalConfig`.
"""

from __future__ import annotations

import copy
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from contrastkit.recipes import DEFAULT_RECIPE, recipe_path
from contrastkit.train.trainer import TrainConfig

SECTIONS = ("name", "seed", "data", "encoder", "views", "method", "train", "eval")
PLOT_METHODS = ("pca", "tsne")


class _RecipeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e-3`` as a float (YAML 1.1 insists on ``1.0e-3``)."""


_RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(text: str) -> Any:
    """Parse YAML safely (no object construction), with ``1e-3`` read as a float."""
    return yaml.load(text, Loader=_RecipeLoader)  # noqa: S506 - _RecipeLoader is a SafeLoader


@dataclass
class EvalConfig:
    """Evaluation settings (the ``eval:`` section of a recipe).

    Attributes:
        knn_k: neighbours of the weighted kNN (InstDisc protocol).
        knn_temperature: vote temperature of the weighted kNN.
        linear: run the linear probe.
        baselines: also evaluate raw inputs and the randomly initialised encoder in the same run.
        train_subset: evaluate with at most this many training rows (kNN bank and probe fit); ``None``: all.
        test_subset: evaluate on at most this many test rows; ``None``: all.
        batch_size: rows per forward pass when extracting features.
        plots: write ``loss_curve.png`` and ``embedding_2d.png``.
        plot_method: ``pca`` or ``tsne`` for the 2-D scatter.
        svm: run the RBF-SVM probe (TS2Vec's protocol); ``None`` (default): on series data only.
        retrieval_metrics: text data: trec_eval metrics to report (``ndcg@10``, ``mrr@10``,
            ``recall@100``, ``map``, ``map@k``, ``precision@k``); ``None``: MRR@10, nDCG@10,
            Recall@100 and MAP.
        remove_self_hits: text data: drop a retrieved document whose id equals the query id
            (BEIR's ``--remove-query``, for corpora that contain the queries).
        bm25: text data: also score BM25 as a baseline.
        encode_batch_size: text data: texts per forward pass when encoding a corpus.
        validation_queries: text data: validation queries sampled for periodic evaluation.
    """

    knn_k: int = 200
    knn_temperature: float = 0.1
    linear: bool = True
    baselines: bool = True
    train_subset: int | None = None
    test_subset: int | None = None
    batch_size: int = 1024
    plots: bool = True
    plot_method: str = "pca"
    svm: bool | None = None
    retrieval_metrics: list[str] | None = None
    remove_self_hits: bool = False
    bm25: bool = True
    encode_batch_size: int = 64
    validation_queries: int | None = 500


def load_config(recipe: str | None = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """Load a recipe (name or YAML path; default: the main job) and apply ``key=value`` overrides."""
    path = recipe_path(recipe or DEFAULT_RECIPE)
    try:
        config = read_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"recipe {path} is not valid YAML: {error}") from error
    if not isinstance(config, dict):
        raise ValueError(f"recipe {path}: expected a mapping of sections, got {type(config).__name__}")
    config.setdefault("name", path.stem)
    config = apply_overrides(config, overrides or [])
    validate_config(config)
    return config


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=value``; the value is read as YAML (``1e-3`` → float, ``[1,2]`` → list, ``null`` → None)."""
    if "=" not in text:
        raise ValueError(f"--set expects key=value (e.g. train.lr=0.01), got {text!r}")
    key, raw = text.split("=", 1)
    keys = [part for part in key.strip().split(".") if part]
    if not keys:
        raise ValueError(f"--set expects key=value with a non-empty key, got {text!r}")
    try:
        value = read_yaml(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        raise ValueError(f"--set {key}: cannot parse value {raw!r} ({error})") from error
    return keys, value


def apply_overrides(config: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``config`` with each ``key=value`` applied (nested keys with dots)."""
    config = copy.deepcopy(config)
    for text in overrides:
        keys, value = parse_override(text)
        if keys[0] not in SECTIONS:
            raise ValueError(f"--set {'.'.join(keys)}: unknown section {keys[0]!r}; expected one of {list(SECTIONS)}")
        if keys == ["data"] and isinstance(value, str):
            # --set data=NAME picks another dataset: its options start from scratch.
            config["data"] = {"name": value}
            continue
        node = config
        for part in keys[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ValueError(f"--set {'.'.join(keys)}: {part!r} is a value, not a section")
            node = child
        node[keys[-1]] = value
    return config


def _check_keys(section: str, given: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise ValueError(f"{section}: unknown key(s) {unknown}; expected some of: {', '.join(sorted(allowed))}")


def validate_config(config: dict[str, Any]) -> None:
    """Raise ``ValueError`` for unknown sections or keys, and for missing names."""
    _check_keys("recipe", config, set(SECTIONS))
    for section, key in (("data", "name"), ("encoder", "name"), ("method", "name"), ("views", "preset")):
        value = config.get(section)
        if not isinstance(value, dict) or not value.get(key):
            raise ValueError(f"recipe: expected section {section!r} with a {key!r}, got {value!r}")
    _check_keys("train", config.get("train") or {}, {f.name for f in fields(TrainConfig)})
    _check_keys("eval", config.get("eval") or {}, {f.name for f in fields(EvalConfig)})
    plot_method = (config.get("eval") or {}).get("plot_method", "pca")
    if plot_method not in PLOT_METHODS:
        raise ValueError(f"eval.plot_method: expected one of {list(PLOT_METHODS)}, got {plot_method!r}")
    if not isinstance(config.get("seed", 0), int):
        raise ValueError(f"seed: expected an integer, got {config.get('seed')!r}")


def train_config(config: dict[str, Any]) -> TrainConfig:
    """The ``train`` section as a :class:`TrainConfig`."""
    return TrainConfig(**(config.get("train") or {}))


def eval_config(config: dict[str, Any]) -> EvalConfig:
    """The ``eval`` section as an :class:`EvalConfig`."""
    return EvalConfig(**(config.get("eval") or {}))


def resolved(config: dict[str, Any]) -> dict[str, Any]:
    """The config with every default filled in, as written to ``RUN_DIR/config.yaml``."""
    out = copy.deepcopy(config)
    out.setdefault("seed", 0)
    out["train"] = asdict(train_config(config))
    out["eval"] = asdict(eval_config(config))
    return out


def load_run_config(run_dir: str | Path) -> dict[str, Any]:
    """Read ``RUN_DIR/config.yaml`` written by a run."""
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory: expected {path}")
    try:
        config = read_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid YAML: {error}") from error
    validate_config(config)
    return config

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

from contrastkit.eval.protocols import protocol_setting_names
from contrastkit.recipes import DEFAULT_RECIPE, recipe_path
from contrastkit.train.trainer import TrainConfig

SECTIONS = ("name", "seed", "data", "encoder", "views", "method", "train", "eval")
#: Sections that ``--set SECTION=NAME`` replaces whole (their options start from scratch),
#: with the key the name goes to.
NAMED_SECTIONS = {"data": "name", "encoder": "name", "views": "preset", "method": "name"}
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
    """What a run does around its evaluation (the run-level keys of a recipe's ``eval:`` section).

    The other ``eval:`` keys belong to the data's evaluation protocol, which declares and
    checks them (:mod:`contrastkit.eval.protocols`: ``knn_k`` and ``linear`` for
    classification, ``bm25`` and ``retrieval_metrics`` for retrieval, ...).

    Attributes:
        baselines: also evaluate the protocol's baselines (raw inputs, the randomly
            initialised encoder, BM25, ...) in the same run.
        plots: write ``loss_curve.png`` and ``embedding_2d.png``.
        plot_method: ``pca`` or ``tsne`` for the 2-D scatter.
    """

    baselines: bool = True
    plots: bool = True
    plot_method: str = "pca"


#: The run-level ``eval:`` keys; the rest of the section belongs to the protocol.
_RUN_LEVEL = frozenset(field.name for field in fields(EvalConfig))


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
        if len(keys) == 1 and keys[0] in NAMED_SECTIONS and isinstance(value, str):
            # --set data=NAME (encoder=, method=NAME, views=PRESET) picks another one: its options start from scratch.
            config[keys[0]] = {NAMED_SECTIONS[keys[0]]: value}
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
    _check_keys("eval", config.get("eval") or {}, {f.name for f in fields(EvalConfig)} | protocol_setting_names())
    plot_method = (config.get("eval") or {}).get("plot_method", "pca")
    if plot_method not in PLOT_METHODS:
        raise ValueError(f"eval.plot_method: expected one of {list(PLOT_METHODS)}, got {plot_method!r}")
    if not isinstance(config.get("seed", 0), int):
        raise ValueError(f"seed: expected an integer, got {config.get('seed')!r}")


def train_config(config: dict[str, Any]) -> TrainConfig:
    """The ``train`` section as a :class:`TrainConfig`."""
    return TrainConfig(**(config.get("train") or {}))


def eval_config(config: dict[str, Any]) -> EvalConfig:
    """The run-level keys of the ``eval`` section as an :class:`EvalConfig`."""
    return EvalConfig(**{key: value for key, value in (config.get("eval") or {}).items() if key in _RUN_LEVEL})


def protocol_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The ``eval`` keys that belong to the evaluation protocol (all but :class:`EvalConfig`'s)."""
    return {key: value for key, value in (config.get("eval") or {}).items() if key not in _RUN_LEVEL}


def resolved(config: dict[str, Any]) -> dict[str, Any]:
    """The config with every default filled in, as written to ``RUN_DIR/config.yaml``."""
    out = copy.deepcopy(config)
    out.setdefault("seed", 0)
    out["train"] = asdict(train_config(config))
    # The protocol's own keys stay as given; the run adds the protocol's defaults once it knows
    # the data (contrastkit.train.run), before it writes RUN_DIR/config.yaml.
    out["eval"] = {**asdict(eval_config(config)), **protocol_settings(config)}
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

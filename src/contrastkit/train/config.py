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

from contrastkit.data.registry import dataset_parameters
from contrastkit.eval.protocols import PROTOCOLS
from contrastkit.methods.registry import METHODS, method_options
from contrastkit.nn.registry import ENCODERS
from contrastkit.recipes import DEFAULT_RECIPE, recipe_path
from contrastkit.train.trainer import TrainConfig, check_device
from contrastkit.utils.schema import (
    ConfigError,
    Parameter,
    bounded,
    callable_parameters,
    check_section,
    check_value,
    dataclass_parameters,
    did_you_mean,
)

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
        tensorboard_projector: at the end of the run, write TensorBoard's embedding projector
            files for the test split into ``RUN_DIR/tensorboard`` (what ``contrastkit embed RUN_DIR
            --format tensorboard`` writes: vectors, labels as metadata, a sprite of thumbnails for
            image rows); view them with ``tensorboard --logdir RUN_DIR/tensorboard``.
    """

    baselines: bool = True
    plots: bool = True
    plot_method: str = bounded("pca", choices=PLOT_METHODS)
    tensorboard_projector: bool = False


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
            raise ConfigError(f"--set {'.'.join(keys)}: unknown section {keys[0]!r}{did_you_mean(keys[0], SECTIONS)}; "
                              f"expected one of {list(SECTIONS)}")
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
    for key in given:
        if key not in allowed:
            raise ConfigError(f"{section}: unknown key {key!r}{did_you_mean(key, sorted(allowed))}; "
                              f"expected some of: {', '.join(sorted(allowed))}")


def _protocol_parameters() -> dict[str, list[Parameter]]:
    """Every protocol's ``eval:`` keys, each with the declarations of the protocols that read it."""
    declared: dict[str, list[Parameter]] = {}
    for protocol in PROTOCOLS.values():
        for key, parameter in dataclass_parameters(protocol.settings_type).items():
            declared.setdefault(key, []).append(parameter)
    return declared


def _check_eval(section: dict[str, Any]) -> dict[str, Any]:
    """The ``eval:`` section: the run-level keys, then each protocol key against a protocol that reads it.

    Which protocol applies depends on the data, known only once it is loaded; here a value
    must fit at least one protocol's declaration (the protocol checks it again when built).
    """
    run_level = dataclass_parameters(EvalConfig)
    protocol_keys = _protocol_parameters()
    checked = check_section("eval", {k: v for k, v in section.items() if k in run_level}, run_level)
    for key, value in section.items():
        if key in run_level:
            continue
        if key not in protocol_keys:
            known = sorted({*run_level, *protocol_keys})
            raise ConfigError(f"eval.{key}: unknown key{did_you_mean(key, known)}; expected some of: {', '.join(known)}")
        errors = []
        for parameter in protocol_keys[key]:
            try:
                checked[key] = check_value(f"eval.{key}", value, parameter)
                break
            except ConfigError as error:
                errors.append(error)
        else:
            raise errors[0]
    return checked


def _check_named_section(section: str, options: dict[str, Any], key: str) -> dict[str, Any]:
    """``data``/``encoder``/``method``: the registered name, then its options against its signature."""
    name = options[key]
    rest = {k: v for k, v in options.items() if k != key}
    if section == "data":
        parameters, takes_any = dataset_parameters(name)
    elif section == "method":
        cls = METHODS[name]
        declared, _ = callable_parameters(cls, skip=("encoder", "views"))
        known = method_options(name)
        parameters, takes_any = {k: declared.get(k, Parameter(default=v)) for k, v in known.items()}, False
    else:  # encoder: factories forward **options to the module, so only what they name is typed
        parameters, takes_any = callable_parameters(ENCODERS[name])
    return {key: name, **check_section(section, rest, parameters, takes_any=takes_any)}


def validate_config(config: dict[str, Any]) -> None:
    """Check every section, key, type, range and choice; coerce values in place where that loses nothing.

    Runs before anything is built or any folder is created, so that a bad recipe or ``--set``
    fails in one line naming its key (:class:`~contrastkit.utils.schema.ConfigError`, a
    ``ValueError``). Views and the protocol's own settings are checked once more when they are
    built from the loaded data.
    """
    _check_keys("recipe", config, set(SECTIONS))
    if not isinstance(config.get("name", ""), str):
        raise ConfigError(f"name: expected a string, got {config.get('name')!r}")
    seed = config.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed: expected an integer, got {seed!r}")
    for section, key in NAMED_SECTIONS.items():
        value = config.get(section)
        if not isinstance(value, dict) or not value.get(key):
            raise ConfigError(f"{section}: expected a mapping with a {key!r}, got {value!r}")
        if not isinstance(value[key], str):
            raise ConfigError(f"{section}.{key}: expected a string, got {value[key]!r}")
    for section in ("train", "eval"):
        if config.get(section) is not None and not isinstance(config[section], dict):
            raise ConfigError(f"{section}: expected a mapping of keys, got {config[section]!r}")
    config["train"] = check_section("train", config.get("train") or {}, dataclass_parameters(TrainConfig))
    check_device(config["train"].get("device", "auto"))
    config["eval"] = _check_eval(config.get("eval") or {})
    for section in ("data", "encoder", "method"):
        config[section] = _check_named_section(section, config[section], NAMED_SECTIONS[section])


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


#: ``train`` keys ``--resume --set`` may change: how long and how the run continues, never what it trains.
#: ``eval RUN_DIR`` and ``embed RUN_DIR`` take ``eval.*`` and ``train.device`` (a run trained on a GPU
#: evaluated on a machine without one: ``--set train.device=cpu``).
RESUMABLE_TRAIN_KEYS = ("steps", "epochs", "checkpoint_every", "eval_every", "log_every", "keep_last", "device",
                        "progress", "tensorboard")


def load_run_config(run_dir: str | Path, overrides: list[str] | None = None, *,
                    allowed: tuple[str, ...] = ("eval",), command: str = "--resume") -> dict[str, Any]:
    """Read ``RUN_DIR/config.yaml`` written by a run, with ``overrides`` of the sections in ``allowed``.

    ``allowed`` names whole sections (``"eval"``) or ``train`` keys (``"train.steps"``).

    Raises:
        FileNotFoundError: ``run_dir`` holds no ``config.yaml``.
        ValueError: the file is not valid, or an override touches a key not in ``allowed``.
    """
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory: expected {path}")
    try:
        config = read_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a mapping of sections, got {type(config).__name__}")
    for text in overrides or []:
        keys, _ = parse_override(text)
        dotted = ".".join(keys)
        if not any(dotted == key or dotted.startswith(key + ".") for key in allowed) or dotted in ("eval", "train"):
            raise ConfigError(f"{command} --set {dotted}: only {', '.join(k + '.*' if '.' not in k else k for k in allowed)} "
                              "can change for a saved run")
    config = apply_overrides(config, overrides or [])
    validate_config(config)
    return config

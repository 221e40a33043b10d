"""The dataset registry: names -> loaders that return a train/test pair.

Recipes and the command line refer to datasets by name only. A loader is a function
taking keyword arguments (``data_dir`` and its own options) and returning
:class:`DatasetSplits`; :func:`register_dataset` adds it under a name.

A *prefix* handler serves a whole family of names of the form ``PREFIX:PATH``
(e.g. ``beir:/data/scifact``): :func:`register_dataset_prefix` adds it, and
``load_dataset("beir:/data/scifact", **options)`` calls its loader with
``path="/data/scifact"``. Exactly registered names take precedence over prefixes.

Example:
    >>> splits = load_dataset("digits")
    >>> splits.train.inputs.shape, splits.num_classes
    (torch.Size([1437, 1, 8, 8]), 10)
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contrastkit.data.arrays import ArrayDataset
from contrastkit.utils.registry import Registry, unknown_name_error

#: Modules whose import registers the built-in datasets.
_BUILTIN_MODULES = (
    "contrastkit.data.builtin",
    "contrastkit.data.files",
    "contrastkit.data.series",
    "contrastkit.data.stdlib_code",
    "contrastkit.data.text_files",
    "contrastkit.data.graph",
    "contrastkit.data.emoji",
    "contrastkit.data.caption_files",
    "contrastkit.data.emoji_speech",
    "contrastkit.data.channel_groups",
    "contrastkit.data.music_sheets",
    "contrastkit.data.hf_datasets",
)


@dataclass
class DatasetSplits:
    """A dataset's train and test splits and what a model needs to know about them.

    Text datasets hold a :class:`~contrastkit.data.text.TextPairDataset` as ``train``
    (``None`` when the data has no training pairs, e.g. a BEIR folder without train
    qrels) and :class:`~contrastkit.data.text.RetrievalTask` objects as ``test`` and
    ``validation``, with ``num_classes=0``, ``input_shape=()`` and ``modality="text"``.

    Attributes:
        train: the training split.
        test: the test split (used for evaluation only).
        num_classes: the number of classes; 0 for unlabelled data.
        input_shape: the shape of one sample, e.g. ``(1, 28, 28)``.
        name: the registered name.
        description: a one-line description.
        modality: ``"image"``, ``"series"``, ``"text"``, ``"graph"``, ...
        class_names: optional human-readable class names, indexed by label.
        validation: an optional validation split (model selection, monitoring during
            training); ``None`` when the dataset has none.
    """

    train: ArrayDataset
    test: ArrayDataset
    num_classes: int
    input_shape: tuple[int, ...]
    name: str = ""
    description: str = ""
    modality: str = "image"
    class_names: list[str] | None = None
    validation: Any = None


DatasetLoader = Callable[..., DatasetSplits]

_REGISTRY: Registry[DatasetLoader] = Registry("dataset")
_PREFIXES: Registry[DatasetLoader] = Registry("dataset prefix")


def register_dataset(name: str, *, description: str | None = None) -> Callable[[DatasetLoader], DatasetLoader]:
    """Register a dataset loader under ``name`` (decorator).

    The loader is called with keyword arguments only: ``data_dir`` (``None`` when not
    given) and the dataset's own options, and returns :class:`DatasetSplits`.

    Args:
        name: the dataset's name, as recipes and the command line write it.
        description: a one-line description for ``contrastkit list``; defaults to the
            first line of the loader's docstring.

    Raises:
        ValueError: when ``name`` is already registered to another loader.
    """
    return _REGISTRY.register(name, description=description)


def register_splits(name: str, splits: DatasetSplits, *, description: str | None = None,
                    replace: bool = False) -> DatasetSplits:
    """Register splits you built in Python (a DataFrame, a PyG graph, ...) under ``name``.

    Recipes and :func:`contrastkit.train.run.run` then find them by name like any dataset
    (``load_config("ts2vec", ["data=my-series"])``). The loader returns the same object every
    time and takes no options besides ``data_dir`` (ignored).

    Args:
        name: the dataset's name.
        splits: the splits to serve.
        description: a one-line description; default ``"your own splits (registered in Python)"``.
        replace: replace a dataset already registered under ``name`` (e.g. when a notebook cell
            runs again); without it a taken name raises.

    Returns:
        ``splits``, unchanged.

    Raises:
        ValueError: when ``splits`` is not a :class:`DatasetSplits`, or ``name`` is taken and
            ``replace`` is false.
    """
    if not isinstance(splits, DatasetSplits):
        raise ValueError(f"register_splits({name!r}): expected DatasetSplits, got {type(splits).__name__}")
    _ensure_builtins()
    if name in _REGISTRY:
        if not replace:
            raise ValueError(f"dataset {name!r} is already registered; pick another name or pass replace=True")
        _REGISTRY.unregister(name)

    def load_registered_splits(*, data_dir: str | Path | None = None) -> DatasetSplits:
        return splits

    _REGISTRY.register(name, load_registered_splits,
                       description=description or "your own splits (registered in Python)")
    return splits


def register_dataset_prefix(prefix: str, loader: DatasetLoader, *, description: str | None = None) -> DatasetLoader:
    """Register a loader for every dataset name of the form ``PREFIX:PATH``.

    ``load_dataset(f"{prefix}:{path}", data_dir=..., **options)`` calls
    ``loader(path=path, data_dir=..., **options)``; the loader must take a ``path``
    keyword. ``dataset_descriptions()`` lists the family as ``PREFIX:PATH``.

    Args:
        prefix: the part before the first ``:``, e.g. ``"beir"`` (letters, digits, ``_``, ``-``).
        loader: the loader, called with keyword arguments only.
        description: a one-line description; defaults to the first line of the loader's docstring.

    Returns:
        The loader, unchanged.

    Raises:
        ValueError: for a malformed prefix, a loader without a ``path`` keyword, or a
            prefix already registered to another loader.
    """
    if not prefix or not all(character.isalnum() or character in "_-" for character in prefix):
        raise ValueError(f"dataset prefix: expected letters, digits, '_' or '-' (no ':'), got {prefix!r}")
    if "path" not in inspect.signature(loader).parameters:
        raise ValueError(f"dataset prefix {prefix!r}: the loader {loader.__qualname__} must take a 'path' keyword")
    return _PREFIXES.register(prefix, loader, description=description)


def _ensure_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def dataset_names() -> list[str]:
    """The registered dataset names, sorted."""
    _ensure_builtins()
    return _REGISTRY.names()


def dataset_descriptions() -> dict[str, str]:
    """``{name: one-line description}`` of every registered dataset, sorted by name.

    Prefix families appear as ``PREFIX:PATH`` (e.g. ``beir:PATH``).
    """
    _ensure_builtins()
    descriptions = _REGISTRY.descriptions()
    descriptions.update({f"{prefix}:PATH": text for prefix, text in _PREFIXES.descriptions().items()})
    return dict(sorted(descriptions.items()))


def _check_options(name: str, loader: DatasetLoader, options: dict[str, Any], reserved: tuple[str, ...]) -> None:
    """Raise a clear ``ValueError`` for options the loader does not take (or that the registry sets itself)."""
    parameters = inspect.signature(loader).parameters
    clashing = sorted(key for key in options if key in reserved)
    accepted = [key for key in parameters if key not in reserved]
    takes_any = any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters.values())
    unexpected = clashing if takes_any else sorted(key for key in options if key not in parameters or key in reserved)
    if unexpected:
        extra = [key for key in accepted if parameters[key].kind is not inspect.Parameter.VAR_KEYWORD]
        raise ValueError(
            f"dataset {name!r}: unexpected option(s) {', '.join(unexpected)}; "
            f"expected some of: data_dir, {', '.join(extra) or '(no other options)'}"
        )


def dataset_parameters(name: str) -> tuple[dict[str, Any], bool]:
    """The options dataset ``name`` takes (:class:`contrastkit.utils.schema.Parameter` each, with
    ``data_dir``) and whether it takes any other; checked by the config schema before loading.

    Raises:
        ValueError: for an unknown name (with a "did you mean").
    """
    from contrastkit.utils.schema import Parameter, callable_parameters

    _ensure_builtins()
    if name in _REGISTRY:
        loader, reserved = _REGISTRY[name], ("data_dir",)
    else:
        prefix, separator, path = name.partition(":")
        if not separator or prefix not in _PREFIXES:
            raise unknown_name_error("dataset", name, [*_REGISTRY, *(f"{key}:PATH" for key in _PREFIXES)])
        loader, reserved = _PREFIXES[prefix], ("data_dir", "path")
    parameters, takes_any = callable_parameters(loader, skip=reserved)
    return {"data_dir": Parameter(annotation=str | None), **parameters}, takes_any


def load_dataset(name: str, *, data_dir: str | Path | None = None, **kwargs: Any) -> DatasetSplits:
    """Load a registered dataset's train and test splits.

    Args:
        name: a registered name (see :func:`dataset_names`), or ``PREFIX:PATH`` for a
            registered prefix (see :func:`register_dataset_prefix`).
        data_dir: where the dataset's files are (required by some datasets, optional for others).
        **kwargs: the dataset's own options (e.g. ``train_subset``, ``image_size``, ``seed``).

    Returns:
        The :class:`DatasetSplits`, with ``name`` and ``description`` filled in.

    Raises:
        ValueError: for an unknown name or an option the dataset does not take.
        FileNotFoundError: when the dataset's files are missing (the message says how to get them).
    """
    _ensure_builtins()
    if name in _REGISTRY:
        loader, description = _REGISTRY[name], _REGISTRY.description(name)
        _check_options(name, loader, kwargs, reserved=("data_dir",))
        splits = loader(data_dir=data_dir, **kwargs)
    else:
        prefix, separator, path = name.partition(":")
        if not separator or prefix not in _PREFIXES:
            raise unknown_name_error("dataset", name, [*_REGISTRY, *(f"{key}:PATH" for key in _PREFIXES)])
        if not path:
            raise ValueError(f"dataset {name!r}: expected {prefix}:PATH with a non-empty PATH")
        loader, description = _PREFIXES[prefix], _PREFIXES.description(prefix)
        _check_options(name, loader, kwargs, reserved=("data_dir", "path"))
        splits = loader(path=path, data_dir=data_dir, **kwargs)
    splits.name = splits.name or name
    splits.description = splits.description or description
    return splits

"""The dataset registry: names -> loaders that return a train/test pair.

Recipes and the command line refer to datasets by name only. A loader is a function
taking keyword arguments (``data_dir`` and its own options) and returning
:class:`DatasetSplits`; :func:`register_dataset` adds it under a name.

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
from contrastkit.errors import unknown_name_error

#: Modules whose import registers the built-in datasets.
_BUILTIN_MODULES = ("contrastkit.data.builtin", "contrastkit.data.files", "contrastkit.data.series")


@dataclass
class DatasetSplits:
    """A dataset's train and test splits and what a model needs to know about them.

    Attributes:
        train: the training split.
        test: the test split (used for evaluation only).
        num_classes: the number of classes; 0 for unlabelled data.
        input_shape: the shape of one sample, e.g. ``(1, 28, 28)``.
        name: the registered name.
        description: a one-line description.
        modality: ``"image"``, ``"series"``, ``"text"``, ``"graph"``, ...
        class_names: optional human-readable class names, indexed by label.
    """

    train: ArrayDataset
    test: ArrayDataset
    num_classes: int
    input_shape: tuple[int, ...]
    name: str = ""
    description: str = ""
    modality: str = "image"
    class_names: list[str] | None = None


DatasetLoader = Callable[..., DatasetSplits]


@dataclass(frozen=True)
class _Entry:
    loader: DatasetLoader
    description: str


_REGISTRY: dict[str, _Entry] = {}


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

    def decorator(loader: DatasetLoader) -> DatasetLoader:
        text = description
        if text is None:
            text = (inspect.getdoc(loader) or "").strip().splitlines()[0] if loader.__doc__ else ""
        existing = _REGISTRY.get(name)
        if existing is not None and existing.loader.__qualname__ != loader.__qualname__:
            raise ValueError(f"dataset {name!r} is already registered (by {existing.loader.__qualname__})")
        _REGISTRY[name] = _Entry(loader, text)
        return loader

    return decorator


def _ensure_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def dataset_names() -> list[str]:
    """The registered dataset names, sorted."""
    _ensure_builtins()
    return sorted(_REGISTRY)


def dataset_descriptions() -> dict[str, str]:
    """``{name: one-line description}`` of every registered dataset, sorted by name."""
    _ensure_builtins()
    return {name: _REGISTRY[name].description for name in sorted(_REGISTRY)}


def load_dataset(name: str, *, data_dir: str | Path | None = None, **kwargs: Any) -> DatasetSplits:
    """Load a registered dataset's train and test splits.

    Args:
        name: a registered name (see :func:`dataset_names`).
        data_dir: where the dataset's files are (required by some datasets, optional for others).
        **kwargs: the dataset's own options (e.g. ``train_subset``, ``image_size``, ``seed``).

    Returns:
        The :class:`DatasetSplits`, with ``name`` and ``description`` filled in.

    Raises:
        ValueError: for an unknown name or an option the dataset does not take.
        FileNotFoundError: when the dataset's files are missing (the message says how to get them).
    """
    _ensure_builtins()
    if name not in _REGISTRY:
        raise unknown_name_error("dataset", name, _REGISTRY)
    entry = _REGISTRY[name]
    parameters = inspect.signature(entry.loader).parameters
    takes_any = any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters.values())
    if not takes_any:
        accepted = [key for key in parameters if key != "data_dir"]
        unexpected = sorted(key for key in kwargs if key not in parameters)
        if unexpected:
            raise ValueError(
                f"dataset {name!r}: unexpected option(s) {', '.join(unexpected)}; "
                f"expected some of: data_dir, {', '.join(accepted) or '(no other options)'}"
            )
    splits = entry.loader(data_dir=data_dir, **kwargs)
    splits.name = splits.name or name
    splits.description = splits.description or entry.description
    return splits

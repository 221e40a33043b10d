"""Train a recipe's method on arrays held in memory, and embed arrays with it.

The scikit-learn and aeon integrations (:mod:`contrastkit.sklearn`, :mod:`contrastkit.aeon`)
are thin adapters over these two functions: :func:`fit_on_arrays` turns the user's array
into an :class:`~contrastkit.data.ArrayDataset`, builds the recipe's encoder, views and
method exactly as ``contrastkit train`` does (:func:`contrastkit.train.run.build_method_from_config`)
and trains it with the same :class:`~contrastkit.train.trainer.Trainer`; :func:`embed_arrays`
returns ``method.embed`` of every row as a NumPy array.

What differs from a recipe run, and why:

* the data is the array, not the recipe's ``data:`` section, and nothing is evaluated
  (the caller's own pipeline does that);
* a ``train.batch_size`` larger than the array is cut to the number of rows (as TS2Vec's
  own ``fit`` does), so small arrays train instead of failing;
* checkpoints and ``metrics.jsonl`` go into a temporary folder that is removed afterwards;
* the caller's global random state (Python, NumPy, torch) is put back after training, so
  fitting inside a larger program does not change what that program draws next.

Example:
    >>> config = load_config("ts2vec", ["train.steps=2", "encoder.depth=2"])
    >>> method = fit_on_arrays(config, torch.randn(16, 1, 32), modality="series")
    >>> embed_arrays(method, torch.randn(4, 1, 32)).shape
    (4, 320)
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from contrastkit.data.arrays import ArrayDataset
from contrastkit.data.registry import DatasetSplits
from contrastkit.eval.features import extract_features
from contrastkit.methods.base import Method
from contrastkit.train.config import resolved, train_config
from contrastkit.train.run import build_method_from_config
from contrastkit.train.trainer import Trainer
from contrastkit.utils.seed import capture_rng_state, restore_rng_state, seed_everything

#: Rows per ``embed`` call when the recipe's ``eval`` section names no ``batch_size``.
DEFAULT_EMBED_BATCH = 256


@contextlib.contextmanager
def preserved_global_rng() -> Iterator[None]:
    """Put Python's, NumPy's and torch's global random state back on exit (whatever ran inside)."""
    tensors, json_state = capture_rng_state()
    try:
        yield
    finally:
        restore_rng_state(tensors, json_state)


def array_splits(inputs: torch.Tensor, labels: torch.Tensor | None, modality: str) -> DatasetSplits:
    """``DatasetSplits`` whose training split is ``inputs`` (and whose test split is empty).

    Args:
        inputs: the samples ``[N, ...]`` in the modality's layout (images ``[N, C, H, W]``,
            series ``[N, C, T]``).
        labels: optional integer labels ``[N]`` (for supervised methods).
        modality: the registered modality name the method and views are built for.
    """
    train = ArrayDataset(inputs, labels)
    test = ArrayDataset(inputs[:0], None if labels is None else labels[:0])
    return DatasetSplits(train=train, test=test, num_classes=train.num_classes, input_shape=train.input_shape,
                         name="arrays", description="in-memory arrays", modality=modality)  # fmt: skip


def fit_on_arrays(
    config: dict[str, Any],
    inputs: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    modality: str,
    verbose: bool = False,
) -> Method:
    """Build the recipe's method for ``inputs`` and train it with the recipe's ``train`` section.

    Args:
        config: a loaded, validated recipe (:func:`contrastkit.train.config.load_config`);
            its ``seed`` seeds the model, the augmentations and the batch order, so the same
            config and data give the same weights on the same machine.
        inputs: float samples ``[N, ...]`` in the modality's layout.
        labels: integer labels ``[N]``; needed only by supervised methods (``needs_labels``).
        modality: ``"image"``, ``"series"`` or another registered modality name.
        verbose: show the trainer's progress.

    Returns:
        The trained method, in eval mode, on the device ``train.device`` names.

    Raises:
        ValueError: fewer than 2 rows, a supervised method without labels, or anything the
            recipe's method, encoder or views reject for this data.
    """
    rows = int(inputs.shape[0])
    if rows < 2:
        raise ValueError(f"fit: expected at least 2 samples (a contrastive batch needs negatives), got {rows} sample")
    config = resolved(config)
    seed = int(config["seed"])
    splits = array_splits(inputs, labels, modality)
    training = train_config(config)
    training.batch_size = max(2, min(int(training.batch_size), rows))
    training.progress = bool(verbose)
    with preserved_global_rng():
        method = build_method_from_config(config, splits)
        if method.needs_labels and labels is None:
            raise ValueError(f"fit: method {config['method']['name']!r} is supervised: expected labels y, got None")
        seed_everything(seed + 1)  # as contrastkit.train.run: training draws after the model is built
        with tempfile.TemporaryDirectory(prefix="contrastkit-fit-") as run_dir:
            Trainer(method, splits.train, training, run_dir, seed=seed).fit()
    return method.eval()


def embed_arrays(method: Method, inputs: torch.Tensor, *, batch_size: int = DEFAULT_EMBED_BATCH) -> np.ndarray:
    """``method.embed`` of every row of ``inputs``, in order, as float32 ``[N, D]`` NumPy.

    The method is put in eval mode first (batch-norm statistics and dropout as at test time);
    inputs go to the device of the method's parameters.

    Raises:
        ValueError: for an empty ``inputs`` or embeddings that are not finite (naming the row).
    """
    method.eval()
    parameter = next(method.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    features, _ = extract_features(method.embed, ArrayDataset(inputs), batch_size=batch_size, device=device)
    return features.numpy().astype(np.float32, copy=False)

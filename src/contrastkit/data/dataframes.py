"""pandas DataFrames as datasets, in Python: series (one row per series) and tabular rows.

Two constructors return :class:`~contrastkit.data.registry.DatasetSplits`, ready for
:func:`~contrastkit.data.registry.register_splits` (then a recipe's ``data: NAME``):

- :func:`series_splits_from_dataframe`: **one row per series, one column per channel, each
  cell the channel's values over time** (a list, numpy array or pandas Series), plus an
  optional label column. This is sktime's ``nested_univ`` layout (aeon's before 1.0), so such
  frames go in as they are; a row is a sample as in every contrastkit dataset; unequal
  lengths and several channels need no extra rules (shorter series are right-padded with NaN). The long format
  (``id, time, value`` rows) would need rules for sorting, duplicate and missing time
  steps: pivot it first (``df.groupby("id")["value"].apply(list)``), so those choices stay
  visible in your own code. The result is what the ``series`` file loader returns for the
  same values: float32 ``[N, C, T]``, TS2Vec's per-channel standardisation fitted on train.
- :func:`rows_splits_from_dataframe`: one row per sample, numeric feature columns, an
  optional label column: float32 ``[N, F]``. No built-in modality trains on flat feature
  rows yet: the splits name ``modality="tabular"`` (or yours), for a modality you register
  (``docs/adding-a-method.md``, "A new modality", builds exactly that), and the rows feed
  :mod:`contrastkit.eval`'s kNN and probes as they are.

Labels (both): integers or strings, mapped to ``0..K-1`` by the sorted union of train and
test labels (numerically when all are integers), names kept in ``class_names``. Without a
``test`` frame a seeded ``test_fraction`` of ``train`` is held out (class-stratified).

Example:
    >>> frame = pd.DataFrame({"accel": [np.sin(np.arange(50) / f) for f in range(1, 41)],
    ...                       "label": ["slow", "fast"] * 20})
    >>> splits = series_splits_from_dataframe(frame, label="label")
    >>> splits.train.inputs.shape, splits.class_names
    (torch.Size([32, 1, 50]), ['fast', 'slow'])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from contrastkit.data.arrays import ArrayDataset
from contrastkit.data.registry import DatasetSplits
from contrastkit.data.series import _pad_to, encode_labels, standardize_series
from contrastkit.data.splits import split_indices, test_size_from_fraction

__all__ = ["rows_splits_from_dataframe", "series_splits_from_dataframe"]


def _check_frame(frame: Any, what: str, role: str) -> Any:
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{what}: expected {role} as a pandas DataFrame, got {type(frame).__name__}")
    if len(frame) == 0:
        raise ValueError(f"{what}: the {role} DataFrame has no rows")
    return frame


def _columns(frame: Any, chosen: Sequence[str] | None, label: str | None, what: str, role: str) -> list[Any]:
    """The value columns: ``chosen`` (each must exist), else every column but the label."""
    if label is not None and label not in frame.columns:
        raise ValueError(f"{what}: label column {label!r} is not in the {role} DataFrame; it has "
                         f"{', '.join(map(str, frame.columns))}")
    if chosen is None:
        columns = [column for column in frame.columns if column != label]
    else:
        columns = list(chosen)
        missing = [str(column) for column in columns if column not in frame.columns]
        if missing:
            raise ValueError(f"{what}: column(s) {', '.join(missing)} not in the {role} DataFrame; it has "
                             f"{', '.join(map(str, frame.columns))}")
        if label is not None and label in columns:
            raise ValueError(f"{what}: column {label!r} is the label; it cannot be a value column too")
    if not columns:
        raise ValueError(f"{what}: the {role} DataFrame has no value columns besides the label {label!r}")
    return columns


def _labels(frame: Any, label: str | None, what: str, role: str) -> list[str] | None:
    """The label column as canonical strings (``7``, not ``7.0``), one clear error for a bad value."""
    if label is None:
        return None
    out = []
    for position, value in enumerate(frame[label].tolist()):
        if isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{what}: {role} label column {label!r}, row {position}: expected an integer or a "
                             f"string label, got bool {value}")
        if isinstance(value, (int, np.integer)):
            out.append(str(int(value)))
        elif isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
            out.append(str(int(value)))
        elif isinstance(value, str) and value.strip():
            out.append(value)
        else:
            raise ValueError(f"{what}: {role} label column {label!r}, row {position}: expected an integer or a "
                             f"non-empty string label, got {type(value).__name__} {value!r}")
    return out


def _holdout(count: int, labels: list[str] | None, test_fraction: float, seed: int,
             what: str) -> tuple[np.ndarray, np.ndarray]:
    size = test_size_from_fraction(count, test_fraction, what=what)
    if size == 0:
        raise ValueError(f"{what}: no test DataFrame and test_fraction is 0; expected a test DataFrame or "
                         "test_fraction > 0")
    stratify = None if labels is None else encode_labels(labels)[0]
    return split_indices(count, stratify, test_size=size, seed=seed)


def _series_array(frame: Any, columns: list[Any], what: str, role: str) -> np.ndarray:
    """``[N, C, T]`` float64 of the frame's array cells (NaN-padded to the longest)."""
    rows: list[list[np.ndarray]] = []
    for position, (_, record) in enumerate(frame[columns].iterrows()):
        channels = []
        for column in columns:
            cell = record[column]
            values = np.asarray(cell.to_numpy() if hasattr(cell, "to_numpy") else cell)
            if values.ndim != 1 or values.dtype.kind not in "biuf":
                got = (f"{type(cell).__name__} {cell!r}" if values.ndim == 0
                       else f"{type(cell).__name__} of shape {values.shape}, dtype {values.dtype}")
                raise ValueError(f"{what}: {role} column {column!r}, row {position}: expected an array of numbers "
                                 f"over time (list, numpy array or pandas Series), got {got[:120]}; one row per "
                                 "series, one column per channel")
            if values.size == 0 or np.isnan(values.astype(np.float64)).all():
                raise ValueError(f"{what}: {role} column {column!r}, row {position}: the series has no values; "
                                 "expected at least one number (drop empty series)")
            channels.append(values.astype(np.float64))
        rows.append(channels)
    length = max(channel.shape[0] for channels in rows for channel in channels)
    out = np.full((len(rows), len(columns), length), np.nan, dtype=np.float64)
    for row, channels in enumerate(rows):
        for channel, values in enumerate(channels):
            out[row, channel, : values.shape[0]] = values
    if np.isinf(out).any():
        row = int(np.flatnonzero(np.isinf(out).any(axis=(1, 2)))[0])
        raise ValueError(f"{what}: {role} row {row} holds an infinite value; expected finite numbers or NaN")
    return out


def _finish(train_x: np.ndarray, test_x: np.ndarray, train_names: list[str] | None, test_names: list[str] | None,
            *, modality: str, input_shape: tuple[int, ...]) -> DatasetSplits:
    train_y = test_y = None
    class_names = None
    if train_names is not None:
        train_y, test_y, class_names = encode_labels(train_names, test_names)

    def dataset(array: np.ndarray, labels: np.ndarray | None) -> ArrayDataset:
        inputs = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        return ArrayDataset(inputs, None if labels is None else torch.from_numpy(labels))

    return DatasetSplits(
        train=dataset(train_x, train_y), test=dataset(test_x, test_y),
        num_classes=0 if class_names is None else len(class_names), input_shape=input_shape,
        modality=modality, class_names=class_names,
    )


def series_splits_from_dataframe(
    train: Any,
    test: Any = None,
    *,
    channels: Sequence[str] | None = None,
    label: str | None = None,
    normalize: str = "ts2vec",
    test_fraction: float = 0.2,
    seed: int = 0,
) -> DatasetSplits:
    """Series from DataFrames with one row per series and one array cell per channel.

    Args:
        train: the training frame: each row a series, each channel column a cell holding that
            channel's values over time (list, numpy array or pandas Series; NaN = missing).
        test: the test frame, same columns; ``None`` holds out ``test_fraction`` of ``train``.
        channels: the channel columns, in order; ``None``: every column but ``label``.
        label: the label column (integers or strings); ``None`` for unlabelled series.
        normalize: ``"ts2vec"`` (per-channel standardisation fitted on train, NaN-aware) or ``"none"``.
        test_fraction: the fraction held out when ``test`` is not given (seeded, class-stratified).
        seed: the seed of that split.

    Returns:
        float32 ``[N, C, T]`` splits (``modality="series"``), ``T`` the longest series over
        both frames, shorter ones right-padded with NaN.

    Raises:
        ValueError: naming the frame, column and row, for a cell that is not a 1-D numeric
            array, an empty series, an infinite value, a bad label, a missing column, an
            empty frame or an unknown ``normalize``.
    """
    what = "series DataFrame"
    if normalize not in ("ts2vec", "none"):
        raise ValueError(f"{what}: expected normalize 'ts2vec' or 'none', got {normalize!r}")
    train = _check_frame(train, what, "train")
    columns = _columns(train, channels, label, what, "train")
    train_x, train_names = _series_array(train, columns, what, "train"), _labels(train, label, what, "train")
    if test is None:
        train_rows, test_rows = _holdout(len(train_x), train_names, test_fraction, seed, what)
        test_x, train_x = train_x[test_rows], train_x[train_rows]
        if train_names is not None:
            test_names = [train_names[row] for row in test_rows]
            train_names = [train_names[row] for row in train_rows]
        else:
            test_names = None
    else:
        test = _check_frame(test, what, "test")
        _columns(test, columns, label, what, "test")
        test_x, test_names = _series_array(test, columns, what, "test"), _labels(test, label, what, "test")
    length = max(train_x.shape[2], test_x.shape[2])
    train_x, test_x = _pad_to(train_x, length), _pad_to(test_x, length)
    if normalize == "ts2vec":
        train_x, test_x = standardize_series(train_x, test_x, per_channel=True, source="train DataFrame")
    return _finish(train_x, test_x, train_names, test_names, modality="series", input_shape=(len(columns), length))


def _rows_array(frame: Any, columns: list[Any], what: str, role: str) -> np.ndarray:
    import pandas as pd

    for column in columns:
        dtype = frame[column].dtype
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            raise ValueError(f"{what}: {role} column {column!r} has dtype {dtype}; expected numbers (encode "
                             "categories first, e.g. pd.get_dummies, or leave the column out with features=)")
    values = frame[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        row, column = (int(index) for index in np.argwhere(bad)[0])
        raise ValueError(f"{what}: {role} column {columns[column]!r} has {int(bad[:, column].sum())} missing or "
                         f"infinite value(s), first at row {row}; expected finite numbers (impute or drop them)")
    return values


def rows_splits_from_dataframe(
    train: Any,
    test: Any = None,
    *,
    features: Sequence[str] | None = None,
    label: str | None = None,
    modality: str = "tabular",
    test_fraction: float = 0.2,
    seed: int = 0,
) -> DatasetSplits:
    """Tabular rows from DataFrames: numeric feature columns and an optional label column.

    Args:
        train: the training frame, one row per sample.
        test: the test frame, same columns; ``None`` holds out ``test_fraction`` of ``train``.
        features: the feature columns, in order; ``None``: every column but ``label``.
        label: the label column (integers or strings); ``None`` for unlabelled rows.
        modality: the ``DatasetSplits.modality`` name of a modality that trains on ``[F]`` rows.
        test_fraction: the fraction held out when ``test`` is not given (seeded, class-stratified).
        seed: the seed of that split.

    Returns:
        float32 ``[N, F]`` splits, values as given (no scaling), ``input_shape=(F,)``.

    Raises:
        ValueError: naming the frame and column, for a non-numeric column, a missing or
            infinite value, a bad label, a missing column or an empty frame.
    """
    what = "rows DataFrame"
    train = _check_frame(train, what, "train")
    columns = _columns(train, features, label, what, "train")
    train_x, train_names = _rows_array(train, columns, what, "train"), _labels(train, label, what, "train")
    if test is None:
        train_rows, test_rows = _holdout(len(train_x), train_names, test_fraction, seed, what)
        test_x, train_x = train_x[test_rows], train_x[train_rows]
        test_names = None if train_names is None else [train_names[row] for row in test_rows]
        train_names = None if train_names is None else [train_names[row] for row in train_rows]
    else:
        test = _check_frame(test, what, "test")
        _columns(test, columns, label, what, "test")
        test_x, test_names = _rows_array(test, columns, what, "test"), _labels(test, label, what, "test")
    return _finish(train_x, test_x, train_names, test_names, modality=modality, input_shape=(len(columns),))

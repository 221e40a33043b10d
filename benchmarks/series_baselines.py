"""Two strong non-contrastive baselines for time-series classification, from aeon.

Imported by the UCR/UEA benchmark scripts (``benchmarks/`` is on ``sys.path`` when they
run), so that every contrastive method is reported next to:

- :func:`one_nn_dtw`: the 1-nearest-neighbour classifier under dynamic time warping with
  a full (unconstrained) warping window, the reference classifier of the UCR archive
  ("DTW (w=100)" in its tables; Dau et al., "The UCR Time Series Archive", 2019).
- :func:`rocket`: ROCKET (Dempster, Petitjean and Webb, "ROCKET: exceptionally fast and
  accurate time series classification using random convolutional kernels", DMKD 2020):
  10,000 random convolutional kernels, each giving two features (the proportion of
  positive values and the maximum), then a ridge classifier with its penalty chosen by
  leave-one-out cross-validation over ``logspace(-3, 3, 10)``.

Both take the arrays the data loaders produce: ``X [N, C, T]`` floats, where a series
shorter than ``T`` is right-padded with NaN (the same length on every channel), and
integer labels ``y [N]``. They return ``{"accuracy": float, "seconds": float}``: the test
accuracy as a fraction in ``[0, 1]`` and the wall-clock seconds of fitting on the
training split and predicting the test split.

Unequal lengths. aeon's kNN accepts a list of ``[C, T_i]`` arrays, so DTW sees every
series at its true length (the NaNs are stripped). aeon's ROCKET does not accept unequal
lengths, so every series of both splits is padded with zeros on the right to the longest
length in either split (as aeon's own ``Padder`` does by default). Zero is the mean of a
z-normalised series, as the UCR archive's are; the padded tail still adds a flat stretch
that the kernels respond to, so ROCKET's accuracy on unequal-length data is that of this
padding, not of the original variable-length ROCKET.

Timing. Both classifiers are numba-compiled on first use in a process (several seconds).
Each function first fits and predicts on two training series, untimed, so that
``seconds`` measures the classifier and not the compiler, whichever baseline runs first.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

#: The number of random kernels of ROCKET (the paper's default).
ROCKET_KERNELS: int = 10000


def one_nn_dtw(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    seed: int = 0,
    *,
    n_jobs: int = 1,
) -> dict[str, float]:
    """Test accuracy of 1-NN under full-window DTW (aeon ``KNeighborsTimeSeriesClassifier``).

    Args:
        X_train: ``[N, C, T]`` float training series; shorter series right-padded with NaN.
        y_train: ``[N]`` integer labels.
        X_test: ``[M, C, T']`` float test series, padded the same way (``T'`` may differ from ``T``).
        y_test: ``[M]`` integer labels.
        seed: unused (1-NN DTW is deterministic); accepted so every baseline is called alike.
        n_jobs: threads of aeon's distance computation.

    Returns:
        ``{"accuracy": float, "seconds": float}``: accuracy as a fraction in ``[0, 1]``; seconds
        of fit + predict, without numba compilation.
    """
    from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier

    del seed  # deterministic: ties between equally distant neighbours are broken by training order
    train_lengths = _check_series("X_train", X_train)
    test_lengths = _check_series("X_test", X_test, channels=X_train.shape[1])
    y_train = _check_labels("y_train", y_train, X_train.shape[0])
    y_test = _check_labels("y_test", y_test, X_test.shape[0])
    # aeon's kNN takes unequal lengths as a list of [C, T_i] arrays: DTW then sees each series as recorded.
    train = _strip_padding(X_train, train_lengths)
    test = _strip_padding(X_test, test_lengths)

    def build() -> Any:
        # No distance_params: aeon's DTW then has window=None, the full warping window of the UCR archive's DTW.
        return KNeighborsTimeSeriesClassifier(n_neighbors=1, distance="dtw", n_jobs=n_jobs)

    return _fit_and_score(build, train, y_train, test, y_test)


def rocket(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    seed: int = 0,
    *,
    n_kernels: int = ROCKET_KERNELS,
    n_jobs: int = 1,
) -> dict[str, float]:
    """Test accuracy of ROCKET (aeon ``RocketClassifier``: random kernels + ridge with CV).

    Args:
        X_train: ``[N, C, T]`` float training series; shorter series right-padded with NaN.
        y_train: ``[N]`` integer labels.
        X_test: ``[M, C, T']`` float test series, padded the same way (``T'`` may differ from ``T``).
        y_test: ``[M]`` integer labels.
        seed: the random state of the kernels (same seed, same kernels, same accuracy).
        n_kernels: the number of random kernels (paper: 10,000).
        n_jobs: threads of the transform.

    Returns:
        ``{"accuracy": float, "seconds": float}``: accuracy as a fraction in ``[0, 1]``; seconds
        of fit + predict, without numba compilation. Series of unequal length are zero-padded
        on the right to the longest length in either split (see the module docstring).
    """
    from aeon.classification.convolution_based import RocketClassifier

    if int(n_kernels) < 1:
        raise ValueError(f"rocket: expected n_kernels >= 1, got {n_kernels}")
    train_lengths = _check_series("X_train", X_train)
    test_lengths = _check_series("X_test", X_test, channels=X_train.shape[1])
    y_train = _check_labels("y_train", y_train, X_train.shape[0])
    y_test = _check_labels("y_test", y_test, X_test.shape[0])
    # aeon's ROCKET needs one length for fit and predict alike: zero-pad both splits to the longest series.
    length = int(max(train_lengths.max(), test_lengths.max()))
    train = _zero_pad(X_train, length)
    test = _zero_pad(X_test, length)

    def build() -> Any:
        return RocketClassifier(n_kernels=int(n_kernels), n_jobs=n_jobs, random_state=seed)

    return _fit_and_score(build, train, y_train, test, y_test)


def _fit_and_score(build, train, y_train: np.ndarray, test, y_test: np.ndarray) -> dict[str, float]:
    """Fit ``build()`` on the training split and score it on the test split, timing only the real run.

    A first fit on two training series (one from each of two classes, when there are two),
    predicting one, compiles the numba kernels for these input types outside the timed run.
    """
    classes, first_rows = np.unique(y_train, return_index=True)
    warm_rows = first_rows[:2] if len(classes) >= 2 else np.arange(min(2, len(y_train)))
    build().fit(_take(train, warm_rows), y_train[warm_rows]).predict(_take(test, np.arange(1)))

    start = time.perf_counter()
    predicted = build().fit(train, y_train).predict(test)
    seconds = time.perf_counter() - start
    return {"accuracy": float(np.mean(np.asarray(predicted) == y_test)), "seconds": float(seconds)}


def _take(collection, rows: np.ndarray):
    """Rows of a 3-D array or of a list of 2-D arrays, keeping its kind."""
    if isinstance(collection, list):
        return [collection[int(row)] for row in rows]
    return collection[rows]


def _check_series(name: str, X: Any, *, channels: int | None = None) -> np.ndarray:
    """Raise ``ValueError`` unless ``X`` is a float ``[N, C, T]`` array, NaN only as right padding; return lengths ``[N]``."""
    if not isinstance(X, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array of shape [N, C, T], got {type(X).__name__}")
    if X.ndim != 3:
        raise ValueError(f"{name}: expected shape [N, C, T], got {X.shape}")
    if not np.issubdtype(X.dtype, np.floating):
        raise ValueError(f"{name}: expected a floating-point array, got dtype {X.dtype}")
    if X.shape[0] < 1 or X.shape[2] < 1:
        raise ValueError(f"{name}: expected at least one series of at least one time step, got shape {X.shape}")
    if channels is not None and X.shape[1] != channels:
        raise ValueError(f"{name}: expected C={channels} channels (as in X_train), got shape {X.shape}")
    if np.isinf(X).any():
        raise ValueError(f"{name}: expected finite values (NaN only as right padding), got {int(np.isinf(X).sum())} inf entries")
    observed = ~np.isnan(X)  # [N, C, T]
    lengths = observed.sum(axis=2)  # [N, C]
    if (lengths != lengths[:, :1]).any():
        row = int(np.flatnonzero((lengths != lengths[:, :1]).any(axis=1))[0])
        raise ValueError(f"{name}: expected every channel of a series padded to the same length, series {row} has lengths {lengths[row].tolist()}")
    lengths = lengths[:, 0]
    # Right padding: the observed steps of each series are exactly its first `length` steps.
    contiguous = observed == (np.arange(X.shape[2]) < lengths[:, None, None])
    if not contiguous.all():
        row = int(np.flatnonzero(~contiguous.all(axis=(1, 2)))[0])
        raise ValueError(f"{name}: expected NaN only as right padding, series {row} has NaN inside it")
    if lengths.min() < 1:
        raise ValueError(f"{name}: expected every series to have at least one value, series {int(lengths.argmin())} is all NaN")
    return lengths


def _check_labels(name: str, y: Any, rows: int) -> np.ndarray:
    """Raise ``ValueError`` unless ``y`` is an integer array ``[rows]``; return it as ``int64``."""
    y = np.asarray(y)
    if y.shape != (rows,):
        raise ValueError(f"{name}: expected integer labels of shape [{rows}], got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name}: expected integer labels, got dtype {y.dtype}")
    return y.astype(np.int64, copy=False)


def _strip_padding(X: np.ndarray, lengths: np.ndarray) -> np.ndarray | list[np.ndarray]:
    """A ``[N, C, L]`` array when every series has length ``L``, else a list of ``[C, T_i]`` arrays."""
    X = X.astype(np.float64, copy=False)
    if (lengths == lengths[0]).all():
        return np.ascontiguousarray(X[:, :, : int(lengths[0])])
    return [np.ascontiguousarray(series[:, : int(length)]) for series, length in zip(X, lengths)]


def _zero_pad(X: np.ndarray, length: int) -> np.ndarray:
    """``[N, C, length]`` float64: the observed values, then zeros (NaN padding and any extension alike)."""
    padded = np.zeros((X.shape[0], X.shape[1], length), dtype=np.float64)
    kept = min(length, X.shape[2])
    padded[:, :, :kept] = np.nan_to_num(X[:, :, :kept], nan=0.0)
    return padded


__all__ = ["ROCKET_KERNELS", "one_nn_dtw", "rocket"]

"""Seeded, class-stratified train/test splits and subsets.

Both functions rank rows by a seeded random order in which every class is spread
evenly, so that the first ``m`` rows of that order hold each class in proportion to
its frequency. Unlabelled data falls back to a plain seeded permutation. Returned
indices are sorted (original order); shuffling is the loader's job.
"""

from __future__ import annotations

import numpy as np


def stratified_order(num_rows: int, labels: np.ndarray | None = None, *, seed: int = 0) -> np.ndarray:
    """A seeded permutation of ``range(num_rows)`` whose every prefix is class-stratified.

    Args:
        num_rows: the number of rows ``N``.
        labels: optional non-negative integer labels ``[N]``; ``None`` gives a plain permutation.
        seed: the random seed.

    Returns:
        An ``int64`` array ``[N]``: a permutation of the row indices.
    """
    rng = np.random.default_rng(seed)
    permutation = rng.permutation(num_rows)
    if labels is None or num_rows == 0:
        return permutation
    labels = np.asarray(labels).astype(np.int64, copy=False)
    if labels.shape != (num_rows,):
        raise ValueError(f"stratified_order: expected labels of shape ({num_rows},), got {labels.shape}")
    if labels.min() < 0:
        raise ValueError(f"stratified_order: expected non-negative labels, got minimum {labels.min()}")
    permuted = labels[permutation]
    by_class = np.argsort(permuted, kind="stable")  # groups classes, keeps the random order inside each
    sorted_labels = permuted[by_class]
    counts = np.bincount(sorted_labels)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(num_rows, dtype=np.float64)
    rank[by_class] = np.arange(num_rows) - starts[sorted_labels]
    key = (rank + 0.5) / counts[permuted]  # position of the row inside its class, as a fraction
    return permutation[np.argsort(key, kind="stable")]


def split_indices(
    num_rows: int, labels: np.ndarray | None = None, *, test_size: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(num_rows)`` into seeded, class-stratified train and test indices.

    Args:
        num_rows: the number of rows ``N``.
        labels: optional non-negative integer labels ``[N]`` to stratify on.
        test_size: how many rows go to the test split (``0 <= test_size <= N``).
        seed: the random seed.

    Returns:
        ``(train_indices, test_indices)``, each sorted.
    """
    if not 0 <= test_size <= num_rows:
        raise ValueError(f"split_indices: expected 0 <= test_size <= {num_rows}, got {test_size}")
    order = stratified_order(num_rows, labels, seed=seed)
    return np.sort(order[test_size:]), np.sort(order[:test_size])


def test_size_from_fraction(num_rows: int, test_fraction: float, *, what: str) -> int:
    """The number of test rows for ``test_fraction`` of ``num_rows``, keeping both splits non-empty.

    Args:
        num_rows: the number of rows.
        test_fraction: a fraction in ``[0, 1)``.
        what: the data's name, used in error messages.
    """
    if not 0.0 <= float(test_fraction) < 1.0:
        raise ValueError(f"{what}: expected test_fraction in [0, 1), got {test_fraction}")
    if test_fraction == 0:
        return 0
    if num_rows < 2:
        raise ValueError(f"{what}: need at least 2 samples to split into train and test, got {num_rows}")
    return min(max(1, round(num_rows * float(test_fraction))), num_rows - 1)


def subset_indices(num_rows: int, size: int | None, labels: np.ndarray | None = None, *, seed: int = 0) -> np.ndarray:
    """Seeded, class-stratified subset of ``size`` row indices (all rows when ``size`` is ``None`` or >= N).

    Args:
        num_rows: the number of rows ``N``.
        size: the subset size, or ``None`` for every row.
        labels: optional labels ``[N]`` to stratify on.
        seed: the random seed.

    Returns:
        The sorted indices of the subset.
    """
    if size is None or int(size) >= num_rows:
        return np.arange(num_rows)
    if int(size) < 1:
        raise ValueError(f"subset_indices: expected a subset size >= 1 (or None for all rows), got {size}")
    return np.sort(stratified_order(num_rows, labels, seed=seed)[: int(size)])

import sys
from pathlib import Path

# benchmarks/ is a folder of scripts, not a package: the UCR benchmark imports this module the same way.
BENCHMARKS = str(Path(__file__).resolve().parents[1] / "benchmarks")
if BENCHMARKS not in sys.path:
    sys.path.insert(0, BENCHMARKS)

import numpy as np
import pytest
from aeon.classification.convolution_based import RocketClassifier
from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier
from aeon.datasets import load_gunpoint
from series_baselines import one_nn_dtw, rocket

#: 1 - the UCR archive's published error of 1-NN DTW with a full window on GunPoint (0.093).
GUNPOINT_DTW_ACCURACY = 0.907


@pytest.fixture(scope="module")
def gunpoint():
    X_train, y_train = load_gunpoint(split="train")
    X_test, y_test = load_gunpoint(split="test")
    return X_train, y_train.astype(np.int64), X_test, y_test.astype(np.int64)  # labels ship as "1" / "2"


def unequal_series(rows: int, seed: int, channels: int = 2) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Two classes (a slow sine vs. a fast sine) of lengths 20..39, NaN right-padded to 40; also the unpadded list."""
    rng = np.random.default_rng(seed)
    labels = np.arange(rows) % 2
    padded = np.full((rows, channels, 40), np.nan)
    series = []
    for row, label in enumerate(labels):
        length = int(rng.integers(20, 40))
        time = np.linspace(0, 1, length)
        frequency = 1.0 if label == 0 else 3.0
        values = np.stack([np.sin(2 * np.pi * (frequency * time + channel / 4)) for channel in range(channels)])
        values += 0.2 * rng.normal(size=values.shape)
        padded[row, :, :length] = values
        series.append(values)
    return padded, labels, series


def test_one_nn_dtw_matches_the_ucr_archive_on_gunpoint(gunpoint):
    result = one_nn_dtw(*gunpoint, seed=0)
    assert result["accuracy"] == pytest.approx(GUNPOINT_DTW_ACCURACY, abs=0.02)
    assert 0.0 < result["seconds"] < 60.0


def test_rocket_is_accurate_on_gunpoint(gunpoint):
    # 1000 kernels: about 1 s, plus about 15 s of numba compilation when its disk cache is cold.
    result = rocket(*gunpoint, seed=0, n_kernels=1000)
    assert result["accuracy"] > 0.9
    assert 0.0 < result["seconds"] < 60.0


@pytest.mark.slow
def test_rocket_with_the_papers_10000_kernels_on_gunpoint(gunpoint):
    # About 5 s warm, 20 s with a cold numba cache; it scores 1.0 here with seed 0.
    assert rocket(*gunpoint, seed=0)["accuracy"] > 0.95


def ramps(lengths: list[int], labels: list[int], width: int) -> np.ndarray:
    """Class 0 rises from 0 to 1, class 1 falls from 1 to 0, over each series' length; NaN right-padded to ``width``."""
    X = np.full((len(lengths), 1, width), np.nan)
    for row, (length, label) in enumerate(zip(lengths, labels)):
        rise = np.linspace(0, 1, length)
        X[row, 0, :length] = rise if label == 0 else 1 - rise
    return X


def test_unequal_lengths_dtw_sees_the_series_without_padding():
    # Under DTW a ramp matches a ramp of any length; a short rise followed by padding zeros
    # would match a full-length fall (ending at 0) better than a full-length rise, and fail.
    y_train, y_test = np.array([0, 1, 0, 1]), np.array([0, 0, 0, 1, 1, 1])
    X_train = ramps([40, 40, 40, 40], y_train.tolist(), width=40)
    X_test = ramps([10, 15, 20, 12, 18, 22], y_test.tolist(), width=30)
    assert one_nn_dtw(X_train, y_train, X_test, y_test)["accuracy"] == 1.0


def test_unequal_lengths_smoke_both_baselines_match_aeon():
    X_train, y_train, train_list = unequal_series(16, seed=0)
    X_test, y_test, test_list = unequal_series(10, seed=1)
    longest_test = max(series.shape[1] for series in test_list)
    X_test = X_test[:, :, :longest_test]  # narrower padding than train's: the splits need not share T

    dtw = one_nn_dtw(X_train, y_train, X_test, y_test)
    reference = KNeighborsTimeSeriesClassifier(n_neighbors=1, distance="dtw").fit(train_list, y_train)
    assert dtw["accuracy"] == float(np.mean(reference.predict(test_list) == y_test))
    assert dtw["accuracy"] >= 0.9

    # ROCKET: both splits zero-padded on the right to the longest series of either.
    length = max(series.shape[1] for series in train_list + test_list)

    def zero_padded(series_list: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(series_list), series_list[0].shape[0], length))
        for row, series in enumerate(series_list):
            out[row, :, : series.shape[1]] = series
        return out

    result = rocket(X_train, y_train, X_test, y_test, seed=3, n_kernels=200)
    reference = RocketClassifier(n_kernels=200, random_state=3).fit(zero_padded(train_list), y_train)
    assert result["accuracy"] == float(np.mean(reference.predict(zero_padded(test_list)) == y_test))
    assert result["accuracy"] >= 0.9


@pytest.mark.parametrize("baseline", [one_nn_dtw, rocket])
def test_bad_input_raises_a_clear_error(baseline):
    X, y, _ = unequal_series(6, seed=2)
    with pytest.raises(ValueError, match=r"X_train: expected shape \[N, C, T\]"):
        baseline(X[:, 0], y, X, y)
    inside = X.copy()
    inside[1, :, 3] = np.nan
    with pytest.raises(ValueError, match="NaN only as right padding, series 1"):
        baseline(inside, y, X, y)
    ragged = X.copy()
    ragged[2, 0, 10:] = np.nan
    with pytest.raises(ValueError, match="same length, series 2"):
        baseline(ragged, y, X, y)
    with pytest.raises(ValueError, match="C=2 channels"):
        baseline(X, y, X[:, :1], y)
    with pytest.raises(ValueError, match=r"y_test: expected integer labels of shape \[6\]"):
        baseline(X, y, X, y[:5])
    with pytest.raises(ValueError, match="expected integer labels, got dtype"):
        baseline(X, y.astype(float), X, y)

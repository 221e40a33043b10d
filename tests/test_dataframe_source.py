"""pandas DataFrames as datasets: series (one row per series, array cells) and tabular rows.

The series constructor is checked against the ``series`` file loader on the same values (the
slow reference: ``.npy`` files read from disk, same labels, same normalisation), on aeon's
GunPoint as a nested frame, on unequal lengths, and by a TS2Vec-recipe run on a registered
frame; the rows constructor against the numpy values of scikit-learn's iris frame.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contrastkit.data import load_dataset, register_splits
from contrastkit.data.dataframes import rows_splits_from_dataframe, series_splits_from_dataframe

pd = pytest.importorskip("pandas", reason="DataFrame sources need pandas")


def teardown_module() -> None:
    """Take back the dataset this file registers, so that no other test sees it."""
    from contrastkit.data.registry import _REGISTRY as DATASETS

    if "frame-waves" in DATASETS:
        DATASETS.unregister("frame-waves")


def _frame(array: np.ndarray, labels: list | None, channels: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({name: [array[row, channel] for row in range(len(array))]
                          for channel, name in enumerate(channels)})
    if labels is not None:
        frame["label"] = labels
    return frame


def test_series_frame_equals_the_series_file_loader_on_the_same_values(tmp_path):
    generator = np.random.default_rng(0)
    train, test = generator.normal(2.0, 3.0, (30, 2, 40)), generator.normal(2.0, 3.0, (12, 2, 40))
    train_labels, test_labels = (np.arange(30) % 3) * 5, (np.arange(12) % 3) * 5  # 0, 5, 10: sorted numerically
    for name, value in {"train": train, "test": test, "train_y": train_labels, "test_y": test_labels}.items():
        np.save(tmp_path / f"{name}.npy", value)
    reference = load_dataset("series", data_dir=str(tmp_path), train="train.npy", test="test.npy",
                             train_labels="train_y.npy", test_labels="test_y.npy")
    splits = series_splits_from_dataframe(_frame(train, train_labels.tolist(), ["x", "y"]),
                                          _frame(test, test_labels.tolist(), ["x", "y"]), label="label")
    assert splits.modality == "series" and splits.input_shape == (2, 40)
    assert splits.class_names == reference.class_names == ["0", "5", "10"]
    torch.testing.assert_close(splits.train.inputs, reference.train.inputs)
    torch.testing.assert_close(splits.test.inputs, reference.test.inputs)
    assert torch.equal(splits.train.labels, reference.train.labels) and torch.equal(splits.test.labels,
                                                                                    reference.test.labels)


def test_nested_frame_of_pandas_series_goes_in_as_it_is():
    from aeon.datasets import load_classification

    x, y = load_classification("GunPoint", split="train")
    nested = pd.DataFrame({"dim_0": [pd.Series(x[row, 0]) for row in range(len(x))]})  # sktime's nested_univ
    splits = series_splits_from_dataframe(nested.assign(label=list(y)), label="label", normalize="none",
                                          test_fraction=0.2, seed=1)
    assert splits.input_shape == (1, 150) and len(splits.train) == 40 and len(splits.test) == 10
    rows = {x[row, 0].astype(np.float32).tobytes(): y[row] for row in range(len(x))}
    for inputs, label in zip(splits.test.inputs[:, 0].numpy(), splits.test.labels.tolist()):
        assert rows[inputs.tobytes()] == splits.class_names[label]  # each held-out series keeps its own label


def test_unequal_lengths_are_right_padded_with_nan():
    frame = pd.DataFrame({"v": [np.arange(5.0), np.arange(3.0), [1.0, np.nan, 2.0, 4.0]] * 4})
    splits = series_splits_from_dataframe(frame, normalize="none", test_fraction=0.25)
    everything = torch.cat([splits.train.inputs, splits.test.inputs])
    assert splits.input_shape == (1, 5) and splits.num_classes == 0 and splits.train.labels is None
    short = everything[torch.isnan(everything[:, 0, 3]) & ~torch.isnan(everything[:, 0, 1])]
    assert len(short) == 4 and torch.isnan(short[:, 0, 3:]).all() and short[0, 0, :3].tolist() == [0.0, 1.0, 2.0]


def test_series_frame_trains_by_name_through_a_recipe(tmp_path):
    from contrastkit.train.config import load_config
    from contrastkit.train.run import run

    generator = np.random.default_rng(0)
    labels = np.arange(48) % 2
    waves = np.sin(np.linspace(0, 6, 32)[None] * (1 + labels[:, None])) + 0.1 * generator.normal(size=(48, 32))
    register_splits("frame-waves", series_splits_from_dataframe(_frame(waves[:, None], labels.tolist(), ["w"]),
                                                                label="label"), replace=True)
    config = load_config("simclr-series", ["data=frame-waves", "train.steps=2", "train.batch_size=8",
                                           "train.progress=false", "eval.baselines=false", "eval.plots=false",
                                           "encoder.depth=2", "encoder.hidden_dim=8", "encoder.output_dim=16",
                                           "method.projection_hidden_dim=16", "method.projection_dim=8"])
    _, metrics = run(config, tmp_path / "run", verbose=False)
    assert metrics["dataset"] == "frame-waves" and metrics["eval_rows"]["test"] == 10
    assert 0.0 <= metrics["svm_accuracy"] <= 1.0
    with pytest.raises(ValueError, match="frame-waves"):
        register_splits("frame-waves", load_dataset("frame-waves"))  # taken, without replace=True


def test_rows_frame_keeps_the_feature_values_and_label_names():
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True)
    frame = iris.frame.assign(species=[iris.target_names[target] for target in iris.target]).drop(columns="target")
    splits = rows_splits_from_dataframe(frame, label="species", test_fraction=0.2, seed=0)
    assert splits.input_shape == (4,) and splits.modality == "tabular" and splits.class_names == list(iris.target_names)
    assert len(splits.train) == 120 and torch.bincount(splits.test.labels).tolist() == [10, 10, 10]
    values = {tuple(row): name for row, name in zip(iris.data.to_numpy(np.float32).tolist(), frame["species"])}
    for split in (splits.train, splits.test):
        for row, label in zip(split.inputs.tolist(), split.labels.tolist()):
            assert values[tuple(row)] == splits.class_names[label]
    chosen = rows_splits_from_dataframe(frame, frame.iloc[:10], features=["petal width (cm)", "sepal length (cm)"],
                                        label="species")
    assert chosen.test.inputs[0].tolist() == pytest.approx([0.2, 5.1]) and len(chosen.train) == 150


def _error(function, *args, **options) -> str:
    with pytest.raises(ValueError) as caught:
        function(*args, **options)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_bad_frames_are_one_clear_line():
    series = pd.DataFrame({"v": [np.arange(4.0)] * 6, "label": [0, 1] * 3})
    assert "expected train as a pandas DataFrame" in _error(series_splits_from_dataframe, np.zeros((3, 4)))
    message = _error(series_splits_from_dataframe, series.assign(v=[1.5] * 6))
    assert "column 'v', row 0" in message and "expected an array of numbers over time" in message
    message = _error(series_splits_from_dataframe, series.assign(v=[["a", "b"]] * 6))
    assert "column 'v', row 0" in message and "dtype <U1" in message
    assert "label column 'kind' is not in the train DataFrame" in _error(series_splits_from_dataframe, series,
                                                                         label="kind")
    message = _error(series_splits_from_dataframe, series.assign(label=[0, 1, 0.5, 1, 0, 1]), label="label")
    assert "label column 'label', row 2" in message
    assert "has no values" in _error(series_splits_from_dataframe, series.assign(v=[[]] * 6))
    rows = pd.DataFrame({"a": [1.0, 2.0, None, 4.0], "b": ["x", "y", "z", "w"], "y": [0, 1, 0, 1]})
    message = _error(rows_splits_from_dataframe, rows, features=["b"], label="y")
    assert "column 'b' has dtype" in message and "expected numbers" in message
    message = _error(rows_splits_from_dataframe, rows, features=["a"], label="y")
    assert "column 'a' has 1 missing or infinite value(s), first at row 2" in message
    assert "column(s) c not in" in _error(rows_splits_from_dataframe, rows, features=["c"])

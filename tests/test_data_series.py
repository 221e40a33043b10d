import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from contrastkit.data import dataset_descriptions, dataset_names, load_dataset
from contrastkit.data.series import (
    TS2VEC_UNNORMALIZED_UCR,
    aeon_data_dir,
    find_ts_classification_problems,
    load_ts_problem,
)

BUNDLED = [
    "ucr:ACSF1", "ucr:ArrowHead", "ucr:Covid3Month_disc", "ucr:GunPoint", "ucr:ItalyPowerDemand", "ucr:OSULeaf",
    "ucr:PickupGestureWiimoteZ", "ucr:UnitTest", "uea:BasicMotions", "uea:JapaneseVowels",
]  # fmt: skip
#: The equal-length twins aeon ships beside its unequal-length sets: (name, classes, train, test, [C, T]).
EQUAL_LENGTH_TWINS = [
    ("ucr:PickupGestureWiimoteZ_eq", 10, 50, 50, (1, 361)),
    ("uea:JapaneseVowels_eq", 9, 270, 370, (12, 25)),
]


def aeon_split(name, split):
    """The raw series and labels as aeon's own reader returns them (a twin ``<Name>_eq`` from ``<Name>/``)."""
    from aeon.datasets import load_from_ts_file

    return load_from_ts_file(str(aeon_data_dir() / name.removesuffix("_eq") / f"{name}_{split}.ts"))


# ------------------------------------------------------------------ registry and discovery


def test_registry_lists_bundled_classification_sets_only():
    names = dataset_names()
    for name in [*BUNDLED, *(twin[0] for twin in EQUAL_LENGTH_TWINS), "series"]:
        assert name in names and dataset_descriptions()[name]
    series_names = [name for name in names if name.startswith(("ucr:", "uea:"))]
    assert not any("TimeStamps" in name for name in series_names)
    # every <Name>_eq is the twin of a bundled <Name>
    assert all(name.removesuffix("_eq") in series_names for name in series_names if name.endswith("_eq"))
    for regression in ("ucr:Covid3Month", "uea:CardanoSentiment", "ucr:CardanoSentiment"):
        assert regression not in names
    descriptions = dataset_descriptions()
    assert descriptions["ucr:GunPoint"] == "UCR GunPoint (aeon bundled): 50 train / 150 test, 1 channel, length 150, 2 classes"
    assert descriptions["uea:BasicMotions"] == "UEA BasicMotions (aeon bundled): 40 train / 40 test, 6 channels, length 100, 4 classes"
    assert "length 7-29 (unequal)" in descriptions["uea:JapaneseVowels"]
    assert descriptions["ucr:PickupGestureWiimoteZ_eq"] == (
        "UCR PickupGestureWiimoteZ_eq (aeon bundled, equal-length twin of ucr:PickupGestureWiimoteZ): "
        "50 train / 50 test, 1 channel, length 361, 10 classes"
    )
    assert "equal-length twin of uea:JapaneseVowels" in descriptions["uea:JapaneseVowels_eq"]
    assert "length 25, 9 classes" in descriptions["uea:JapaneseVowels_eq"]


def test_contrastkit_list_shows_the_equal_length_twins():
    from typer.testing import CliRunner

    from contrastkit.cli import app

    result = CliRunner().invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for name, *_ in EQUAL_LENGTH_TWINS:
        line = next(line for line in lines if line.split()[:1] == [name])
        assert "equal-length twin of" in line and "(unequal)" not in line


def test_listing_does_not_import_aeon():
    code = (
        "import sys; from contrastkit.data import dataset_names; "
        "assert 'ucr:GunPoint' in dataset_names(); assert 'aeon' not in sys.modules, 'aeon imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def write_ts(path, rows, *, univariate=True, equal=True, label_header="@classLabel true a B c"):
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ["# a comment", "@problemName X", f"@univariate {str(univariate).lower()}",
              f"@equalLength {str(equal).lower()}", label_header, "@data"]  # fmt: skip
    path.write_text("\n".join(header + rows) + "\n")


def test_discovery_rules_and_loading_a_ts_problem(tmp_path):
    write_ts(tmp_path / "Uni" / "Uni_TRAIN.ts", ["1,2,3:a", "2,3:B", "5,6,7,8:a"], equal=False)
    write_ts(tmp_path / "Uni" / "Uni_TEST.ts", ["1,2:c"], equal=False)
    write_ts(tmp_path / "Uni" / "Uni_eq_TRAIN.ts", ["1,2:a"])  # an equal-length copy without its test file
    write_ts(tmp_path / "Multi" / "Multi_eq_TRAIN.ts", ["1,2:3,4:a", "0,2:3,5:B"], univariate=False)
    write_ts(tmp_path / "Multi" / "Multi_eq_TEST.ts", ["1,2:3,4:B"], univariate=False)  # a complete twin
    write_ts(tmp_path / "Lone" / "Lone_eq_TRAIN.ts", ["1,2:a", "3,4:B"])  # a twin needs no <Name> pair
    write_ts(tmp_path / "Lone" / "Lone_eq_TEST.ts", ["1,2:c"])
    write_ts(tmp_path / "Lone" / "Other_eq_TRAIN.ts", ["1,2:a"])  # not named after its folder: ignored
    write_ts(tmp_path / "Lone" / "Other_eq_TEST.ts", ["1,2:a"])
    write_ts(tmp_path / "Multi" / "Multi_TRAIN.ts", ["1,2:3,4:a", "0,2:3,5:B"], univariate=False)
    write_ts(tmp_path / "Multi" / "Multi_TEST.ts", ["1,2:3,4:B"], univariate=False)
    write_ts(tmp_path / "Reg" / "Reg_TRAIN.ts", ["1,2:0.5"], label_header="@targetlabel true")
    write_ts(tmp_path / "Reg" / "Reg_TEST.ts", ["1,2:0.7"], label_header="@targetlabel true")
    write_ts(tmp_path / "Lonely" / "Lonely_TRAIN.ts", ["1,2:a"])  # no test file
    problems = {problem.registered_name: problem for problem in find_ts_classification_problems(tmp_path)}
    assert sorted(problems) == ["ucr:Lone_eq", "ucr:Uni", "uea:Multi", "uea:Multi_eq"]
    assert problems["ucr:Uni"].description() == "UCR Uni (aeon bundled): 3 train / 1 test, 1 channel, length 2-4 (unequal), 3 classes"
    assert problems["ucr:Uni"].twin_of is None and problems["uea:Multi_eq"].twin_of == "Multi"
    assert problems["ucr:Lone_eq"].description() == (
        "UCR Lone_eq (aeon bundled, equal-length twin of ucr:Lone): 2 train / 1 test, 1 channel, length 2, 3 classes"
    )
    assert problems["uea:Multi_eq"].train_path.name == "Multi_eq_TRAIN.ts"

    splits = load_ts_problem(problems["ucr:Uni"], normalize="none")
    # the test-only class 'c' still gets an index; aeon lower-cases labels, the header's spelling comes back
    assert splits.class_names == ["a", "B", "c"] and splits.num_classes == 3
    assert splits.train.labels.tolist() == [0, 1, 0] and splits.test.labels.tolist() == [2]
    assert splits.input_shape == (1, 4) and splits.modality == "series"
    expected = torch.tensor([[1, 2, 3, np.nan], [2, 3, np.nan, np.nan], [5, 6, 7, 8]], dtype=torch.float32)
    assert torch.equal(torch.nan_to_num(splits.train.inputs[:, 0], nan=-9), torch.nan_to_num(expected, nan=-9))
    multi = load_ts_problem(problems["uea:Multi"], normalize="ts2vec")
    assert multi.train.inputs.shape == (2, 2, 2)
    assert torch.allclose(multi.train.inputs.mean(dim=(0, 2)), torch.zeros(2), atol=1e-6)


# ------------------------------------------------------------------ real bundled sets


def test_gunpoint_matches_aeon():
    splits = load_dataset("ucr:GunPoint", normalize="none")
    assert splits.train.inputs.shape == (50, 1, 150) and splits.test.inputs.shape == (150, 1, 150)
    assert splits.input_shape == (1, 150) and splits.num_classes == 2 and splits.modality == "series"
    assert splits.class_names == ["1", "2"] and splits.train.inputs.dtype == torch.float32
    for dataset, split in ((splits.train, "TRAIN"), (splits.test, "TEST")):
        values, labels = aeon_split("GunPoint", split)
        assert torch.equal(dataset.inputs, torch.from_numpy(values.astype(np.float32)))
        assert dataset.labels.tolist() == [int(label) - 1 for label in labels]
    # GunPoint is z-normalised per series by the archive, so TS2Vec leaves it as it is
    assert "GunPoint" not in TS2VEC_UNNORMALIZED_UCR
    assert torch.equal(load_dataset("ucr:GunPoint").train.inputs, splits.train.inputs)


def test_bundled_sets_that_are_not_z_normalised_are_standardised():
    # UnitTest is a cut-down Chinatown (on TS2Vec's list): raw pedestrian counts in the hundreds
    raw = load_dataset("ucr:UnitTest", normalize="none").train.inputs.double()
    assert float(raw.max()) > 100
    normalised = load_dataset("ucr:UnitTest").train.inputs.double()
    assert torch.allclose(normalised, (raw - raw.mean()) / raw.std(unbiased=False), atol=1e-5)


def test_basic_motions_per_channel_standardisation():
    from sklearn.preprocessing import StandardScaler

    splits = load_dataset("uea:BasicMotions")
    assert splits.train.inputs.shape == (40, 6, 100) and splits.test.inputs.shape == (40, 6, 100)
    assert splits.class_names == ["Badminton", "Running", "Standing", "Walking"]
    train = splits.train.inputs.double()
    assert torch.allclose(train.mean(dim=(0, 2)), torch.zeros(6, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(train.std(dim=(0, 2), unbiased=False), torch.ones(6, dtype=torch.float64), atol=1e-5)
    # the TS2Vec reference: StandardScaler fitted on the training split's [N * T, C]
    raw_train, _ = aeon_split("BasicMotions", "TRAIN")
    raw_test, _ = aeon_split("BasicMotions", "TEST")
    scaler = StandardScaler().fit(raw_train.transpose(0, 2, 1).reshape(-1, 6))
    reference = scaler.transform(raw_test.transpose(0, 2, 1).reshape(-1, 6)).reshape(40, 100, 6).transpose(0, 2, 1)
    assert np.allclose(splits.test.inputs.numpy(), reference, atol=1e-5)


def test_unequal_length_sets_are_nan_padded():
    raw = {split: aeon_split("PickupGestureWiimoteZ", split)[0] for split in ("TRAIN", "TEST")}
    assert isinstance(raw["TRAIN"], list)  # aeon gives a list of [C, T_i] arrays for unequal lengths
    longest = max(series.shape[1] for values in raw.values() for series in values)
    splits = load_dataset("ucr:PickupGestureWiimoteZ", normalize="none")
    assert splits.input_shape == (1, longest) and splits.num_classes == 10
    assert splits.class_names == [str(k) for k in range(1, 11)]  # numeric order: '10' last
    for dataset, split in ((splits.train, "TRAIN"), (splits.test, "TEST")):
        inputs = dataset.inputs[:, 0]
        assert torch.isnan(inputs).any()
        for row, series in zip(inputs, raw[split]):
            length = series.shape[1]
            assert not torch.isnan(row[:length]).any() and torch.isnan(row[length:]).all()
            assert torch.equal(row[:length], torch.from_numpy(series[0].astype(np.float32)))
    # PickupGestureWiimoteZ is on TS2Vec's list: one global, train-fitted standardisation; padding stays NaN
    normalised = load_dataset("ucr:PickupGestureWiimoteZ")
    everything = np.concatenate([series[0] for series in raw["TRAIN"]])
    expected = (splits.test.inputs.double() - everything.mean()) / everything.std()
    assert torch.allclose(normalised.test.inputs.double(), expected, atol=1e-5, equal_nan=True)
    train = normalised.train.inputs.numpy().astype(np.float64)
    assert abs(np.nanmean(train)) < 1e-6 and abs(np.nanstd(train) - 1) < 1e-5

    vowels = load_dataset("uea:JapaneseVowels")
    assert vowels.train.inputs.shape == (270, 12, 29) and vowels.test.inputs.shape == (370, 12, 29)
    assert torch.isnan(vowels.train.inputs).any()
    channel_means = np.nanmean(vowels.train.inputs.numpy().astype(np.float64), axis=(0, 2))
    assert np.allclose(channel_means, 0, atol=1e-5)


@pytest.mark.parametrize(("name", "classes", "train_size", "test_size", "shape"), EQUAL_LENGTH_TWINS)
def test_equal_length_twins_load_without_padding(name, classes, train_size, test_size, shape):
    stem = name.split(":", 1)[1]
    raw = load_dataset(name, normalize="none")
    assert raw.train.inputs.shape == (train_size, *shape) and raw.test.inputs.shape == (test_size, *shape)
    assert raw.input_shape == shape and raw.modality == "series"
    assert raw.num_classes == classes and raw.class_names == [str(k) for k in range(1, classes + 1)]
    assert not torch.isnan(raw.train.inputs).any() and not torch.isnan(raw.test.inputs).any()  # equal length
    for dataset, split in ((raw.train, "TRAIN"), (raw.test, "TEST")):
        values, labels = aeon_split(stem, split)  # aeon/datasets/data/<Name>/<Name>_eq_<SPLIT>.ts
        assert isinstance(values, np.ndarray) and values.shape == (len(dataset), *shape)
        assert torch.equal(dataset.inputs, torch.from_numpy(values.astype(np.float32)))
        assert dataset.labels.tolist() == [int(label) - 1 for label in labels]
        assert set(dataset.labels.tolist()) == set(range(classes))
    # normalised as the set it is a twin of: PickupGestureWiimoteZ is on TS2Vec's list (one global
    # train-fitted mean/std), JapaneseVowels is multivariate (per channel)
    train = load_dataset(name).train.inputs.numpy().astype(np.float64)
    if name.startswith("ucr:"):
        assert stem.removesuffix("_eq") in TS2VEC_UNNORMALIZED_UCR
        assert abs(train.mean()) < 1e-6 and abs(train.std() - 1) < 1e-5
    else:
        assert np.allclose(train.mean(axis=(0, 2)), 0, atol=1e-5) and np.allclose(train.std(axis=(0, 2)), 1, atol=1e-5)


def test_loading_never_touches_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    splits = load_dataset("ucr:ArrowHead")
    assert splits.train.inputs.shape == (36, 1, 251) and splits.num_classes == 3


def test_bad_normalize_option():
    with pytest.raises(ValueError, match="normalize.*'ts2vec', 'none'.*'zscore'"):
        load_dataset("ucr:GunPoint", normalize="zscore")


# ------------------------------------------------------------------ your own series


def test_npy_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.normal(3.0, 2.0, size=(12, 2, 9)).astype(np.float32)
    test = rng.normal(3.0, 2.0, size=(6, 2, 7)).astype(np.float32)
    train[0, :, 6:] = np.nan  # a shorter, padded series
    np.save(tmp_path / "train.npy", train)
    np.save(tmp_path / "test.npy", test)
    np.save(tmp_path / "train_y.npy", np.array(["walk", "run", "sit"] * 4))
    np.save(tmp_path / "test_y.npy", np.array(["run"] * 5 + ["jump"]))  # 'jump' never seen in training

    raw = load_dataset("series", data_dir=tmp_path, train="train.npy", test="test.npy",
                       train_labels="train_y.npy", test_labels="test_y.npy", normalize="none")  # fmt: skip
    assert raw.modality == "series" and raw.input_shape == (2, 9)
    assert raw.class_names == ["jump", "run", "sit", "walk"] and raw.num_classes == 4
    assert raw.train.labels.tolist() == [3, 1, 2] * 4 and raw.test.labels.tolist() == [1] * 5 + [0]
    assert torch.equal(torch.nan_to_num(raw.train.inputs, nan=-1), torch.nan_to_num(torch.from_numpy(train), nan=-1))
    assert torch.equal(raw.test.inputs[:, :, :7], torch.from_numpy(test)) and torch.isnan(raw.test.inputs[:, :, 7:]).all()

    normalised = load_dataset("series", train=tmp_path / "train.npy", test=tmp_path / "test.npy")
    assert normalised.train.labels is None and normalised.num_classes == 0
    values = normalised.train.inputs.numpy().astype(np.float64)
    assert np.allclose(np.nanmean(values, axis=(0, 2)), 0, atol=1e-5)
    assert np.allclose(np.nanstd(values, axis=(0, 2)), 1, atol=1e-5)
    mean, std = np.nanmean(train, axis=(0, 2), keepdims=True), np.nanstd(train, axis=(0, 2), keepdims=True)
    assert np.allclose(normalised.test.inputs.numpy()[:, :, :7], (test - mean) / std, atol=1e-5)

    # [N, T] is univariate; without a test file a seeded, stratified fraction is held out
    np.save(tmp_path / "flat.npy", train[:, 0])
    np.save(tmp_path / "flat_y.npy", np.arange(12) % 2)
    split = load_dataset("series", train=tmp_path / "flat.npy", train_labels=tmp_path / "flat_y.npy",
                         test_fraction=0.25, seed=1)  # fmt: skip
    assert split.train.inputs.shape == (9, 1, 9) and split.test.inputs.shape == (3, 1, 9)
    assert split.class_names == ["0", "1"] and sorted(torch.bincount(split.test.labels).tolist()) == [1, 2]
    again = load_dataset("series", train=tmp_path / "flat.npy", train_labels=tmp_path / "flat_y.npy",
                         test_fraction=0.25, seed=1)  # fmt: skip
    assert torch.equal(again.test.inputs, split.test.inputs)


def test_csv_round_trip(tmp_path):
    (tmp_path / "train.csv").write_text("t0,t1,label,t2\n1,2,10,3\n4,5,9,\n7,NaN,10,9\n\n")
    (tmp_path / "test.csv").write_text("t0,label,t1,t2,t3\n1,9,2,3,4\n")
    splits = load_dataset("series", train=tmp_path / "train.csv", test=tmp_path / "test.csv", normalize="none")
    assert splits.class_names == ["9", "10"]  # integers sort numerically
    assert splits.train.labels.tolist() == [1, 0, 1] and splits.test.labels.tolist() == [0]
    assert splits.input_shape == (1, 4)
    expected = torch.tensor([[1, 2, 3, np.nan], [4, 5, np.nan, np.nan], [7, np.nan, 9, np.nan]])
    assert torch.equal(torch.nan_to_num(splits.train.inputs[:, 0], nan=-1), torch.nan_to_num(expected, nan=-1).float())
    assert splits.test.inputs[0, 0].tolist() == [1, 2, 3, 4]

    # no header: every cell is a value; labels from a text file, one per line
    (tmp_path / "plain.csv").write_text("1,2,3\n4,5,6\n7,8,9\n10,11,12\n")
    (tmp_path / "labels.txt").write_text("label\nb\na\nb\na\n\n")
    plain = load_dataset("series", train=tmp_path / "plain.csv", train_labels=tmp_path / "labels.txt",
                         test_fraction=0.5, normalize="none")  # fmt: skip
    assert plain.class_names == ["a", "b"] and len(plain.train) == 2 and len(plain.test) == 2
    assert sorted(torch.cat([plain.train.inputs, plain.test.inputs])[:, 0, 0].tolist()) == [1, 4, 7, 10]


def test_own_series_errors(tmp_path):
    good = np.zeros((4, 2, 5), dtype=np.float32)
    np.save(tmp_path / "good.npy", good)
    with pytest.raises(ValueError, match="train is required"):
        load_dataset("series")
    with pytest.raises(FileNotFoundError, match="absent.npy"):
        load_dataset("series", train=tmp_path / "absent.npy")
    with pytest.raises(FileNotFoundError, match="no_labels.npy"):
        load_dataset("series", train=tmp_path / "good.npy", train_labels=tmp_path / "no_labels.npy")
    with pytest.raises(ValueError, match=r"expected a file ending in \.npy, \.csv"):
        load_dataset("series", train=tmp_path / "good.parquet")
    with pytest.raises(ValueError, match="normalize"):
        load_dataset("series", train=tmp_path / "good.npy", normalize="minmax")

    np.save(tmp_path / "ragged.npy", np.array([np.zeros(3), np.zeros(5)], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"expected a rectangular \[N, C, T\] array; pad unequal lengths with NaN"):
        load_dataset("series", train=tmp_path / "ragged.npy")
    np.save(tmp_path / "rank4.npy", np.zeros((2, 1, 3, 3)))
    with pytest.raises(ValueError, match=r"expected an array \[N, C, T\] or \[N, T\].*\(2, 1, 3, 3\)"):
        load_dataset("series", train=tmp_path / "rank4.npy")
    np.save(tmp_path / "rank1.npy", np.zeros(3))
    with pytest.raises(ValueError, match=r"expected an array \[N, C, T\]"):
        load_dataset("series", train=tmp_path / "rank1.npy")

    empty = good.copy()
    empty[2] = np.nan
    np.save(tmp_path / "empty.npy", empty)
    with pytest.raises(ValueError, match=r"empty.npy: series 2 \(0-based\) is all NaN"):
        load_dataset("series", train=tmp_path / "empty.npy")
    (tmp_path / "blank_row.csv").write_text("1,2\n,\n")
    with pytest.raises(ValueError, match="series 1 .* is all NaN"):
        load_dataset("series", train=tmp_path / "blank_row.csv")
    (tmp_path / "word.csv").write_text("1,2\n3,oops\n")
    with pytest.raises(ValueError, match=r"word.csv, line 2, column 2: cannot read 'oops' as a number"):
        load_dataset("series", train=tmp_path / "word.csv")

    np.save(tmp_path / "three_labels.npy", np.array([0, 1, 0]))
    with pytest.raises(ValueError, match="as many labels as series, got 3 labels .* and 4 series"):
        load_dataset("series", train=tmp_path / "good.npy", train_labels=tmp_path / "three_labels.npy")
    np.save(tmp_path / "one_channel.npy", np.zeros((3, 1, 5)))
    with pytest.raises(ValueError, match="same number of channels, got 2 .* and 1"):
        load_dataset("series", train=tmp_path / "good.npy", test=tmp_path / "one_channel.npy")

    np.save(tmp_path / "fractions.npy", np.array([0.5, 1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="expected integer or string labels, got non-integer floats"):
        load_dataset("series", train=tmp_path / "good.npy", train_labels=tmp_path / "fractions.npy")
    np.save(tmp_path / "flags.npy", np.array([True, False, True, False]))
    with pytest.raises(ValueError, match="expected integer or string labels, got dtype bool"):
        load_dataset("series", train=tmp_path / "good.npy", train_labels=tmp_path / "flags.npy")
    np.save(tmp_path / "ints.npy", np.array([0, 1, 0, 1]))
    np.save(tmp_path / "words.npy", np.array(["cat", "dog", "cat", "dog"]))
    with pytest.raises(ValueError, match="train labels are integers but test labels are not .*'cat'"):
        load_dataset("series", train=tmp_path / "good.npy", train_labels=tmp_path / "ints.npy",
                     test=tmp_path / "good.npy", test_labels=tmp_path / "words.npy")  # fmt: skip
    with pytest.raises(ValueError, match="is labelled but .* is not"):
        load_dataset("series", train=tmp_path / "good.npy", train_labels=tmp_path / "ints.npy", test=tmp_path / "good.npy")

    (tmp_path / "with_label.csv").write_text("label,t0\n0,1\n1,2\n0,3\n1,4\n")
    with pytest.raises(ValueError, match="has a 'label' column and train_labels=.* was given too"):
        load_dataset("series", train=tmp_path / "with_label.csv", train_labels=tmp_path / "ints.npy")
    with pytest.raises(ValueError, match="test_labels given without test"):
        load_dataset("series", train=tmp_path / "good.npy", train_labels=tmp_path / "ints.npy", test_labels=tmp_path / "ints.npy")

    # a test label never seen in training is fine: it gets its own index
    np.save(tmp_path / "new_class.npy", np.array([0, 1, 2, 7]))
    splits = load_dataset("series", train=tmp_path / "good.npy", train_labels=tmp_path / "ints.npy",
                          test=tmp_path / "good.npy", test_labels=tmp_path / "new_class.npy")  # fmt: skip
    assert splits.class_names == ["0", "1", "2", "7"] and splits.test.labels.tolist() == [0, 1, 2, 3]
    assert torch.equal(splits.train.inputs, torch.zeros(4, 2, 5))  # constant channels keep a scale of 1

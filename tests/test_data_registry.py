import numpy as np
import pytest
import torch

from contrastkit.data import (
    ArrayDataset,
    DatasetSplits,
    dataset_descriptions,
    dataset_names,
    load_dataset,
    register_dataset,
    split_indices,
    subset_indices,
)


def test_builtin_names_and_descriptions():
    names = dataset_names()
    for name in ("digits", "fashion-mnist", "image-folder", "npy"):
        assert name in names
        assert dataset_descriptions()[name]


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match=r"unknown dataset 'no-such'.*digits"):
        load_dataset("no-such")


def test_unexpected_option_is_a_clear_error():
    with pytest.raises(ValueError, match="unexpected option.*imagesize"):
        load_dataset("digits", imagesize=3)


def test_digits_shapes_range_and_stratified_split():
    splits = load_dataset("digits")
    assert isinstance(splits, DatasetSplits)
    assert splits.train.inputs.shape == (1437, 1, 8, 8) and splits.test.inputs.shape == (360, 1, 8, 8)
    assert splits.num_classes == 10 and splits.input_shape == (1, 8, 8) and splits.modality == "image"
    assert float(splits.train.inputs.min()) == 0.0 and float(splits.train.inputs.max()) == 1.0
    counts = torch.bincount(splits.test.labels, minlength=10)
    assert int(counts.min()) >= 35 and int(counts.max()) <= 37
    again = load_dataset("digits")
    assert torch.equal(again.test.inputs, splits.test.inputs)  # seeded
    other = load_dataset("digits", seed=1)
    assert not torch.equal(other.test.inputs, splits.test.inputs)


def test_register_custom_dataset():
    @register_dataset("tiny-test-dataset")
    def load_tiny(*, data_dir=None, size: int = 4) -> DatasetSplits:
        """A tiny dataset for tests."""
        train = ArrayDataset(torch.zeros(size, 3), torch.zeros(size, dtype=torch.long))
        return DatasetSplits(train=train, test=train, num_classes=1, input_shape=(3,), modality="vector")

    splits = load_dataset("tiny-test-dataset", size=6)
    assert len(splits.train) == 6 and splits.name == "tiny-test-dataset"
    assert splits.description == "A tiny dataset for tests."


def test_split_and_subset_are_disjoint_stratified_and_seeded():
    labels = np.repeat(np.arange(4), [50, 30, 15, 5])
    train, test = split_indices(100, labels, test_size=20, seed=0)
    assert len(set(train) & set(test)) == 0 and len(train) + len(test) == 100
    assert np.bincount(labels[test], minlength=4).tolist() == [10, 6, 3, 1]
    assert np.array_equal(split_indices(100, labels, test_size=20, seed=0)[1], test)
    assert not np.array_equal(split_indices(100, labels, test_size=20, seed=1)[1], test)
    subset = subset_indices(100, 50, labels, seed=0)
    assert np.abs(np.bincount(labels[subset], minlength=4) - np.array([25, 15, 7.5, 2.5])).max() <= 1
    assert len(np.unique(subset)) == 50
    assert np.array_equal(subset_indices(100, None), np.arange(100))

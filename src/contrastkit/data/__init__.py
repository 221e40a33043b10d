"""Datasets: a registry of named datasets and loaders for a user's own data.

Every loader returns :class:`DatasetSplits` whose splits are :class:`ArrayDataset`
objects; use :func:`collate_batches` as the ``DataLoader``'s ``collate_fn``.
"""

from contrastkit.data.arrays import ArrayDataset, collate_batches
from contrastkit.data.batch import Batch
from contrastkit.data.idx import read_idx, write_idx
from contrastkit.data.registry import (
    DatasetSplits,
    dataset_descriptions,
    dataset_names,
    load_dataset,
    register_dataset,
    register_splits,
)
from contrastkit.data.splits import split_indices, stratified_order, subset_indices

__all__ = [
    "ArrayDataset",
    "Batch",
    "DatasetSplits",
    "collate_batches",
    "dataset_descriptions",
    "dataset_names",
    "load_dataset",
    "read_idx",
    "register_dataset",
    "register_splits",
    "split_indices",
    "stratified_order",
    "subset_indices",
    "write_idx",
]

"""Deterministic, resumable batching: batch ``i`` of epoch ``e`` depends only on (seed, e, i).

That property is what makes ``--resume`` exact: a resumed run asks for the same
batches the interrupted run would have seen, without replaying the epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from contrastkit.data.batch import Batch


class EpochBatches:
    """Shuffled mini-batches over an indexable dataset, drop-last.

    Datasets that implement ``__getitems__(indices) -> Batch`` (all in-memory
    datasets of :mod:`contrastkit.data`) are fetched with one indexing call per
    batch; others are collated from single items.

    Under ``torchrun`` every process draws the same permutation and takes its own
    slice of each global batch of ``batch_size * world_size`` rows, so two
    processes with batch ``B`` see exactly the rows one process with ``2B`` sees.

    Args:
        dataset: the training set.
        batch_size: samples per batch and process.
        seed: seeds each epoch's permutation (``seed * 100003 + epoch``).
        rank: this process's rank.
        world_size: number of processes.
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        size = len(dataset)  # type: ignore[arg-type]
        if batch_size < 2:
            raise ValueError(f"batch_size: expected at least 2 (a contrastive batch needs negatives), got {batch_size}")
        if size < batch_size * world_size:
            raise ValueError(
                f"dataset has {size} samples, fewer than batch_size={batch_size} x {world_size} process(es); "
                "lower the batch size"
            )
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.global_batch_size = batch_size * world_size
        self.steps_per_epoch = size // self.global_batch_size
        self._epoch: int | None = None
        self._order: torch.Tensor | None = None

    def _permutation(self, epoch: int) -> torch.Tensor:
        if self._epoch != epoch:
            generator = torch.Generator().manual_seed(self.seed * 100003 + epoch)
            self._order = torch.randperm(len(self.dataset), generator=generator)  # type: ignore[arg-type]
            self._epoch = epoch
        assert self._order is not None
        return self._order

    def batch(self, step: int) -> Batch:
        """The batch of global step ``step`` (epoch = step // steps_per_epoch)."""
        epoch, position = divmod(step, self.steps_per_epoch)
        start = position * self.global_batch_size + self.rank * self.batch_size
        indices = self._permutation(epoch)[start : start + self.batch_size]
        return fetch(self.dataset, indices.tolist())


def fetch(dataset: Dataset, indices: Sequence[int]) -> Batch:
    """Fetch a batch, using ``__getitems__`` when the dataset has it."""
    getitems = getattr(dataset, "__getitems__", None)
    if getitems is not None:
        return getitems(list(indices))
    items = [dataset[i] for i in indices]
    inputs = torch.stack([item.inputs for item in items])
    labels = None if items[0].labels is None else torch.stack([item.labels for item in items])
    return Batch(inputs=inputs, labels=labels, index=torch.as_tensor(list(indices)))

"""An in-memory dataset of tensors with a fast batched fetch.

``ArrayDataset`` holds every sample in one tensor. Besides the per-sample
``__getitem__`` it implements ``__getitems__``, which ``torch.utils.data.DataLoader``
calls with a whole list of indices: one tensor index per batch instead of one
Python call per sample and a stacking collate. Pass :func:`collate_batches` as the
loader's ``collate_fn`` so that the already-built :class:`Batch` goes through as is.

Example:
    >>> dataset = ArrayDataset(torch.rand(100, 1, 8, 8), torch.randint(0, 10, (100,)))
    >>> loader = DataLoader(dataset, batch_size=32, shuffle=True, collate_fn=collate_batches)
    >>> next(iter(loader)).inputs.shape
    torch.Size([32, 1, 8, 8])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from contrastkit.data.batch import Batch


class ArrayDataset(Dataset):
    """A dataset whose samples are the rows of one tensor.

    Args:
        inputs: the samples ``[N, ...]`` (images ``[N, C, H, W]``, series, features ...).
        labels: optional integer class labels ``[N]``; ``None`` for unlabelled data.

    Raises:
        ValueError: when ``inputs`` is not a tensor with at least one dimension, or
            ``labels`` is not a 1-D integer tensor of the same length.
    """

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        if not isinstance(inputs, torch.Tensor) or inputs.dim() < 1:
            shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
            raise ValueError(f"ArrayDataset: expected inputs as a tensor [N, ...], got {shape}")
        if labels is not None:
            if not isinstance(labels, torch.Tensor) or labels.dim() != 1:
                shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
                raise ValueError(f"ArrayDataset: expected labels as a 1-D tensor [N], got {shape}")
            if labels.is_floating_point() or labels.is_complex():
                raise ValueError(f"ArrayDataset: expected integer labels, got dtype {labels.dtype}")
            if labels.shape[0] != inputs.shape[0]:
                raise ValueError(
                    f"ArrayDataset: inputs and labels must have the same length, "
                    f"got {inputs.shape[0]} inputs and {labels.shape[0]} labels"
                )
            labels = labels.long()
        self.inputs = inputs
        self.labels = labels

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def __getitem__(self, index: int) -> Batch:
        """One sample as a :class:`Batch` of un-batched tensors (``inputs [...]``, scalar label and index)."""
        i = int(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"ArrayDataset: index {index} out of range for {len(self)} samples")
        return Batch(
            inputs=self.inputs[i],
            labels=None if self.labels is None else self.labels[i],
            index=torch.tensor(i, dtype=torch.long),
        )

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        """Many samples as one :class:`Batch` (``inputs [B, ...]``, ``labels [B]``, ``index [B]``)."""
        rows = torch.as_tensor(list(indices), dtype=torch.long)
        rows = torch.where(rows < 0, rows + len(self), rows)
        if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= len(self)):
            raise IndexError(f"ArrayDataset: indices out of range for {len(self)} samples")
        return Batch(
            inputs=self.inputs[rows],
            labels=None if self.labels is None else self.labels[rows],
            index=rows,
        )

    @property
    def num_classes(self) -> int:
        """The number of classes (``max(label) + 1``); 0 when unlabelled or empty."""
        if self.labels is None or self.labels.numel() == 0:
            return 0
        return int(self.labels.max()) + 1

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one sample, e.g. ``(1, 28, 28)``."""
        return tuple(int(size) for size in self.inputs.shape[1:])

    def subset(self, rows: torch.Tensor | Sequence[int]) -> "ArrayDataset":
        """A new dataset with the given rows (copied), keeping their order."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        return ArrayDataset(self.inputs[rows], None if self.labels is None else self.labels[rows])

    def __repr__(self) -> str:
        labelled = "labelled" if self.labels is not None else "unlabelled"
        return f"ArrayDataset(n={len(self)}, input_shape={self.input_shape}, {labelled})"


def collate_batches(samples: Batch | list[Batch]) -> Batch:
    """Collate for loaders over :class:`ArrayDataset` (pass as ``collate_fn``).

    An already-built :class:`Batch` (from ``__getitems__``) is returned as is; a list of
    single-sample batches (from ``__getitem__``, e.g. a custom sampler path) is stacked.

    Args:
        samples: a :class:`Batch`, or a list of one-sample :class:`Batch` objects.

    Returns:
        One :class:`Batch` with a leading batch dimension.
    """
    if isinstance(samples, Batch):
        return samples
    samples = list(samples)
    if not samples:
        raise ValueError("collate_batches: expected at least one sample, got an empty list")
    labels = None
    if all(sample.labels is not None for sample in samples):
        labels = torch.stack([torch.as_tensor(sample.labels) for sample in samples])
    index = None
    if all(sample.index is not None for sample in samples):
        index = torch.stack([torch.as_tensor(sample.index) for sample in samples])
    return Batch(inputs=torch.stack([sample.inputs for sample in samples]), labels=labels, index=index)

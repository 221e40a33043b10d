"""Paired multi-modal data: one image per item and one or more captions of it.

:class:`ImageCaptionDataset` is the in-memory form of an image–text data set (the
``emoji`` data set, a user's folder of images with a JSONL of captions). A batch is a
:class:`~contrastkit.data.batch.Batch` whose ``inputs`` is a dict:

* ``"image"``: the images ``[B, C, H, W]``;
* ``"caption"``: one caption per row, drawn uniformly from the row's captions with the
  global torch generator (so a seeded run draws the same captions);
* ``"captions"``: every caption of each row (a list of lists), for multi-positive
  objectives and any-match retrieval.

``labels`` are the item (class) ids and ``index`` the row numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from contrastkit.data.batch import Batch

__all__ = ["ImageCaptionDataset"]


class ImageCaptionDataset(Dataset):
    """Images with one or more captions each.

    Args:
        images: ``[N, C, H, W]`` floats in ``[0, 1]``.
        captions: ``N`` non-empty lists of caption strings.
        labels: optional item ids ``[N]`` (default ``0..N-1``: every image its own class).
        class_names: optional one name per item id (what zero-shot classification scores
            against); default each row's first caption.

    Raises:
        ValueError: when the lengths disagree or a row has no caption.
    """

    def __init__(self, images: torch.Tensor, captions: Sequence[Sequence[str]], labels: torch.Tensor | None = None,
                 class_names: Sequence[str] | None = None) -> None:
        if not isinstance(images, torch.Tensor) or images.dim() != 4:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"ImageCaptionDataset: expected images [N, C, H, W], got {shape}")
        if len(captions) != images.shape[0]:
            raise ValueError(f"ImageCaptionDataset: expected {images.shape[0]} caption lists (one per image), "
                             f"got {len(captions)}")
        empty = [row for row, texts in enumerate(captions) if not texts or not all(isinstance(t, str) and t.strip()
                                                                                    for t in texts)]
        if empty:
            raise ValueError(f"ImageCaptionDataset: row {empty[0]} has no caption or an empty one "
                             f"({len(empty)} such rows)")
        if labels is None:
            labels = torch.arange(images.shape[0])
        if labels.shape != (images.shape[0],):
            raise ValueError(f"ImageCaptionDataset: expected labels [{images.shape[0]}], got {tuple(labels.shape)}")
        self.images, self.captions, self.labels = images, [list(texts) for texts in captions], labels.long()
        if class_names is None:
            names: dict[int, str] = {}
            for label, texts in zip(self.labels.tolist(), self.captions):
                names.setdefault(label, texts[0])
            class_names = [names[label] for label in range(max(names) + 1)] if names else []
        self.class_names = list(class_names)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(size) for size in self.images.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        rows = torch.as_tensor(list(indices), dtype=torch.long)
        if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= len(self)):
            raise IndexError(f"ImageCaptionDataset: indices out of range for {len(self)} rows")
        groups = [self.captions[row] for row in rows.tolist()]
        picks = [int(torch.randint(len(texts), ())) if len(texts) > 1 else 0 for texts in groups]
        inputs = {"image": self.images[rows], "caption": [texts[pick] for texts, pick in zip(groups, picks)],
                  "captions": groups}
        return Batch(inputs=inputs, labels=self.labels[rows], index=rows)

    def __getitem__(self, index: int) -> Batch:
        return self.__getitems__([int(index)])

    def __repr__(self) -> str:
        count = sum(len(texts) for texts in self.captions)
        return f"ImageCaptionDataset(n={len(self)}, input_shape={self.input_shape}, captions={count})"

"""Embedding a dataset with a frozen model, batch by batch."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch.utils.data import Dataset

from contrastkit.data.arrays import ArrayDataset, collate_batches
from contrastkit.utils.progress import Progress


def _fetch(dataset: Dataset, start: int, stop: int):
    if hasattr(dataset, "__getitems__"):
        return dataset.__getitems__(list(range(start, stop)))
    return collate_batches([dataset[i] for i in range(start, stop)])


@contextmanager
def _closing(progress: Progress) -> Iterator[None]:
    try:
        yield
    finally:
        progress.close()


def extract_features(
    embed_fn: Callable[[torch.Tensor], torch.Tensor],
    dataset: ArrayDataset,
    batch_size: int = 1024,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Embed every sample of ``dataset`` in order, under ``torch.no_grad``.

    Put the model in eval mode first (e.g. ``method.eval()``) so that batch-norm and
    dropout behave as at test time.

    Args:
        embed_fn: maps an input batch (on ``device``) to features ``[B, D]``, e.g. ``method.embed``.
        dataset: the samples (an :class:`ArrayDataset`, or any dataset of :class:`~contrastkit.data.batch.Batch` samples).
        batch_size: rows per call of ``embed_fn``.
        device: where the inputs are moved before ``embed_fn``.

    Returns:
        ``(features [N, D] float32 on CPU, labels [N] or None when unlabelled)``.

    Raises:
        ValueError: when ``embed_fn`` returns something other than a ``[B, D]`` tensor or
            non-finite values (naming the rows), or the dataset is empty.
    """
    if int(batch_size) < 1:
        raise ValueError(f"extract_features: expected batch_size >= 1, got {batch_size}")
    total = len(dataset)
    if total == 0:
        raise ValueError("extract_features: the dataset is empty")
    features: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    unlabelled = False
    # A bar on a terminal for extractions of several batches (evaluation, baselines, embedding
    # can take minutes); nothing at all in logs and pipes.
    progress = Progress(total, enabled=sys.stderr.isatty() and total > 2 * int(batch_size), label="embed",
                        unit="row")
    with torch.no_grad(), _closing(progress):
        for start in range(0, total, int(batch_size)):
            stop = min(start + int(batch_size), total)
            batch = _fetch(dataset, start, stop).to(device)
            output = embed_fn(batch.inputs)
            if not isinstance(output, torch.Tensor) or output.dim() != 2 or output.shape[0] != stop - start:
                shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
                raise ValueError(f"extract_features: embed_fn must return [B, D] with B={stop - start}, got {shape}")
            output = output.detach().float().cpu()
            if not torch.isfinite(output).all():
                bad_rows = (~torch.isfinite(output)).any(dim=1).nonzero().flatten()
                raise ValueError(
                    f"extract_features: embed_fn returned non-finite values (NaN/inf) for "
                    f"{bad_rows.numel()} row(s), first at dataset row {start + int(bad_rows[0])}"
                )
            features.append(output)
            progress.update(stop)
            if batch.labels is None:
                unlabelled = True
            else:
                labels.append(batch.labels.detach().long().cpu())
    return torch.cat(features), None if unlabelled else torch.cat(labels)

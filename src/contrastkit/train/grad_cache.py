"""Gradient caching (Gao et al., 2021, "Scaling Deep Contrastive Learning Batch Size under
Memory Limited Setup"): train on a batch larger than activation memory allows.

One step, for a batch split into row blocks of ``micro_batch_size``:

1. embed every block without autograd (only the embeddings are kept), saving the RNG
   state before each block;
2. compute the whole batch's loss from the concatenated embeddings and back-propagate
   it to the embeddings only;
3. re-run each block with autograd, replaying its saved RNG state so dropout and
   augmentations draw the same numbers, and back-propagate the cached embedding
   gradients into the parameters.

Parameter gradients equal the one-big-batch gradients whenever a block's embeddings do
not depend on the other blocks — so not with BatchNorm in training mode, whose
statistics are per block (use an encoder without batch statistics, e.g. LayerNorm, or
accept the per-block statistics as an approximation).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch

from contrastkit.data.batch import Batch
from contrastkit.methods.base import Method, Output


def _rng_state(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


def _set_rng_state(state: tuple[torch.Tensor, torch.Tensor | None], device: torch.device) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def _rows_of(inputs: object) -> int:
    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0])
    if isinstance(inputs, dict) and inputs:
        sizes = {key: _rows_of(value) for key, value in inputs.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"gradient caching: every input field needs the same number of rows, got {sizes}")
        return next(iter(sizes.values()))
    if isinstance(inputs, (list, tuple)):
        return len(inputs)
    raise ValueError(
        "gradient caching needs inputs it can split into row blocks: a tensor, a list, or a dict of them; "
        f"got {type(inputs).__name__}"
    )


def _slice(inputs: object, start: int, stop: int) -> object:
    if isinstance(inputs, dict):
        return {key: _slice(value, start, stop) for key, value in inputs.items()}
    return inputs[start:stop]  # type: ignore[index]


def split_batch(batch: Batch, size: int) -> list[Batch]:
    """Row blocks of ``size`` rows (tensor, list or dict-of-those inputs, e.g. text pairs); a 1-row
    remainder joins the block before it, since methods refuse single-row batches."""
    rows = _rows_of(batch.inputs)
    starts = list(range(0, rows, size))
    if len(starts) > 1 and rows - starts[-1] == 1:
        starts.pop()
    blocks = []
    for position, start in enumerate(starts):
        stop = starts[position + 1] if position + 1 < len(starts) else rows
        blocks.append(Batch(
            _slice(batch.inputs, start, stop),
            None if batch.labels is None else batch.labels[start:stop],
            None if batch.index is None else batch.index[start:stop],
        ))  # fmt: skip
    return blocks


def grad_cache_backward(
    method: Method,
    batch: Batch,
    micro_batch_size: int,
    *,
    device: torch.device,
    autocast: Callable[[], AbstractContextManager] = nullcontext,
) -> Output:
    """Run forward and backward for ``batch`` in row blocks; gradients accumulate in ``.grad``.

    Args:
        method: a method with ``supports_grad_cache`` (it implements ``embeddings`` and
            ``loss_from_embeddings``).
        batch: the whole batch, on ``device``.
        micro_batch_size: rows per block (at least 2, since methods refuse single rows).
        device: where the batch lives (selects the RNG to replay).
        autocast: a context factory applied to every forward computation.

    Returns:
        The whole batch's :class:`Output` (its loss is detached from the parameters).
    """
    if not method.supports_grad_cache:
        raise ValueError(
            f"train.grad_cache_micro_batch: {type(method).__name__} does not implement embeddings() and "
            "loss_from_embeddings(), which gradient caching needs"
        )
    if micro_batch_size < 2:
        raise ValueError(f"train.grad_cache_micro_batch: expected at least 2 rows per block, got {micro_batch_size}")
    method.check_batch(batch)
    blocks = split_batch(batch, micro_batch_size)
    states, cached = [], []
    with torch.no_grad():
        for block in blocks:
            states.append(_rng_state(device))
            with autocast():
                cached.append(method.embeddings(block))
    after = _rng_state(device)
    # Leaves for the loss: one per embedding output, the blocks concatenated in row order.
    joined = [torch.cat([outputs[i] for outputs in cached]).detach().requires_grad_(True) for i in range(len(cached[0]))]
    with autocast():
        output = method.loss_from_embeddings(tuple(joined), batch)
    output.loss.backward()
    gradients = [leaf.grad for leaf in joined]
    start = 0
    for block, state in zip(blocks, states):
        rows = _rows_of(block.inputs)
        _set_rng_state(state, device)
        with autocast():
            outputs = method.embeddings(block)
        # Outputs without a gradient path (momentum targets, stop-gradient branches) are skipped.
        pairs = [
            (out, gradient[start : start + rows].to(out.dtype))
            for gradient, out in zip(gradients, outputs)
            if gradient is not None and out.requires_grad
        ]
        if pairs:
            torch.autograd.backward([out for out, _ in pairs], [gradient for _, gradient in pairs])
        start += rows
    _set_rng_state(after, device)
    return Output(output.loss.detach(), output.logs)

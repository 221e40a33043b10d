"""First-in, first-out queue of negative keys (MoCo, He et al. 2020)."""

from __future__ import annotations

import torch
from torch import nn

from contrastkit.utils.checks import check_embeddings


class Queue(nn.Module):
    """A fixed-size FIFO of past keys, used as extra negatives.

    The storage is one pre-allocated ``[size, dim]`` buffer written in place, so
    enqueueing never allocates, and — being a registered buffer together with
    the write pointer and the fill count — it is saved in the owner's
    ``state_dict`` and restored on resume.

    The queue starts empty and ``negatives()`` returns only the rows written so
    far. MoCo's reference code instead fills the queue with random normalised
    vectors; those are not keys of any image, so here a MoCo run simply has
    fewer negatives during its first ``ceil(size / B)`` steps (and the in-batch
    negatives are always there).

    Args:
        size: number of keys kept (MoCo: 65536; a few thousand suffice for
            Fashion-MNIST-sized runs).
        dim: feature size of a key.

    Example:
        >>> queue = Queue(size=4, dim=2)
        >>> queue.enqueue(torch.ones(3, 2))
        >>> queue.negatives().shape
        torch.Size([3, 2])
    """

    keys: torch.Tensor
    ptr: torch.Tensor
    filled: torch.Tensor

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"Queue: expected positive size and dim, got size={size}, dim={dim}")
        self.size = int(size)
        self.dim = int(dim)
        self.register_buffer("keys", torch.zeros(self.size, self.dim))
        # int64 scalars as buffers (not Python ints) so they travel with the
        # state_dict and with .to(device).
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))

    def __len__(self) -> int:
        """Number of keys currently stored (``<= size``)."""
        return int(self.filled)

    @property
    def is_full(self) -> bool:
        """Whether every row holds a key."""
        return int(self.filled) == self.size

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write ``keys [B, dim]`` after the newest rows, overwriting the oldest when full.

        Keys are detached (the queue never carries gradient) and cast to the
        queue's dtype. Writes wrap around the end of the buffer.

        Args:
            keys: a finite float batch ``[B, dim]`` with ``1 <= B <= size``.

        Raises:
            ValueError: wrong rank or feature size, ``B > size``, non-float or
                non-finite values.
        """
        # The shared check: [N, dim], float, at least one row, finite.
        check_embeddings("Queue.enqueue keys", keys, dim=self.dim)
        batch = keys.shape[0]
        if batch > self.size:
            raise ValueError(
                f"Queue.enqueue: expected at most size={self.size} keys per call, got {batch}; "
                "make the queue larger than the batch"
            )
        keys = keys.detach().to(dtype=self.keys.dtype, device=self.keys.device)
        start = int(self.ptr)
        first = min(batch, self.size - start)
        # At most two slice copies: up to the end of the buffer, then from row 0.
        self.keys[start : start + first].copy_(keys[:first])
        if first < batch:
            self.keys[: batch - first].copy_(keys[first:])
        self.ptr.fill_((start + batch) % self.size)
        self.filled.fill_(min(int(self.filled) + batch, self.size))

    def negatives(self) -> torch.Tensor:
        """The stored keys ``[filled, dim]`` (all ``size`` rows once full).

        Row order is storage order, not age order; objectives treat negatives as
        a set. The result is a view of the buffer (no copy of up to ``size``
        rows per step): a loss that used it must run ``backward`` before the
        next ``enqueue`` (i.e. enqueue in ``on_step_end``), otherwise autograd
        reports the in-place overwrite of a tensor it saved.
        """
        return self.keys[: int(self.filled)]

    def reset(self) -> None:
        """Forget every key (keeps the allocation)."""
        self.keys.zero_()
        self.ptr.zero_()
        self.filled.zero_()

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}, filled={int(self.filled)}"

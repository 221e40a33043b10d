"""One FIFO queue of negatives per group: CCP's language-specific memory bank.

Contrastive Context Prediction (Wu et al., 2022) draws the negatives of an anchor
from a memory bank of its *own* language: with a shared bank, telling the language
apart would already separate most negatives, and the model would learn language
identity instead of meaning. :class:`GroupedQueue` keeps ``num_groups`` MoCo-style
FIFOs (see :class:`contrastkit.negatives.queue.Queue`) in one buffer, so that a
single objective call serves a mixed-language batch with column weights::

    bank = GroupedQueue(dim=128, size_per_group=1024, num_groups=2)
    weights = bank.column_weights(query_languages, key_languages).to(query.dtype)
    loss = info_nce(query, key, negatives=bank.all_negatives(), weights=weights)
    bank.enqueue(key.detach(), key_languages)      # after backward (on_step_end)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from contrastkit.utils.checks import check_embeddings

__all__ = ["GroupedQueue"]


class GroupedQueue(nn.Module):
    """``num_groups`` fixed-size FIFOs of past keys, one per group (language).

    Storage is one pre-allocated ``[num_groups, size_per_group, dim]`` buffer;
    group ``g`` owns the rows ``[g * size_per_group, (g + 1) * size_per_group)``
    of :meth:`all_negatives`. The keys, the per-group write pointers and fill
    counts are registered buffers, so they are saved in the owner's
    ``state_dict`` and restored on resume. Each group starts empty.

    Args:
        dim: feature size of a key.
        size_per_group: keys kept per group.
        num_groups: number of groups (e.g. languages); group ids are
            ``0 .. num_groups - 1``.

    Example:
        >>> bank = GroupedQueue(dim=2, size_per_group=3, num_groups=2)
        >>> bank.enqueue(torch.ones(4, 2), torch.tensor([0, 1, 1, 1]))
        >>> bank.negatives(1).shape
        torch.Size([3, 2])
    """

    keys: torch.Tensor
    ptr: torch.Tensor
    filled: torch.Tensor

    def __init__(self, dim: int, size_per_group: int, num_groups: int) -> None:
        super().__init__()
        if min(dim, size_per_group, num_groups) < 1:
            raise ValueError(
                "GroupedQueue: expected positive dim, size_per_group and num_groups, got "
                f"dim={dim}, size_per_group={size_per_group}, num_groups={num_groups}"
            )
        self.dim = int(dim)
        self.size_per_group = int(size_per_group)
        self.num_groups = int(num_groups)
        self.register_buffer("keys", torch.zeros(self.num_groups, self.size_per_group, self.dim))
        self.register_buffer("ptr", torch.zeros(self.num_groups, dtype=torch.long))
        self.register_buffer("filled", torch.zeros(self.num_groups, dtype=torch.long))

    def __len__(self) -> int:
        """Number of keys stored over all groups."""
        return int(self.filled.sum())

    def _check_groups(self, groups: torch.Tensor, rows: int | None = None, name: str = "groups") -> torch.Tensor:
        """A checked ``[rows]`` (any length when ``rows`` is ``None``) int64 tensor of group ids."""
        expected = "N" if rows is None else str(rows)
        if not isinstance(groups, torch.Tensor) or groups.dim() != 1 or (rows is not None and groups.shape[0] != rows):
            got = tuple(groups.shape) if isinstance(groups, torch.Tensor) else type(groups).__name__
            raise ValueError(f"{name}: expected an integer tensor of shape [{expected}], got {got}")
        if groups.is_floating_point() or groups.is_complex() or groups.dtype == torch.bool:
            raise ValueError(f"{name}: expected integer group ids, got dtype {groups.dtype}")
        if groups.numel() and (int(groups.min()) < 0 or int(groups.max()) >= self.num_groups):
            raise ValueError(
                f"{name}: expected ids in [0, {self.num_groups}), got values in "
                f"[{int(groups.min())}, {int(groups.max())}]"
            )
        return groups.to(device=self.keys.device, dtype=torch.long)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor, groups: torch.Tensor) -> None:
        """Append each row of ``keys [B, dim]`` to the FIFO of its group ``groups [B]``.

        Within a group, rows are written in batch order after that group's newest
        key, overwriting its oldest keys when full (wrapping around); when a batch
        holds more than ``size_per_group`` rows of one group, only its last
        ``size_per_group`` rows remain, as with repeated single writes. Keys are
        detached and cast to the bank's dtype. One scatter, no loop over rows or
        groups.

        Args:
            keys: a finite float batch ``[B, dim]``.
            groups: ``[B]`` integer group ids.

        Raises:
            ValueError: on a bad key batch or group ids out of range.
        """
        check_embeddings("GroupedQueue.enqueue keys", keys, dim=self.dim)
        groups = self._check_groups(groups, keys.shape[0])
        keys = keys.detach().to(dtype=self.keys.dtype, device=self.keys.device)
        one_hot = F.one_hot(groups, self.num_groups)  # [B, G]
        rank = one_hot.cumsum(dim=0).gather(1, groups.unsqueeze(1)).squeeze(1) - 1  # order within its group
        counts = one_hot.sum(dim=0)  # [G]
        # Rows that a later row of the same batch would overwrite anyway are skipped, so that the
        # scatter below never writes one slot twice (its order would then be undefined).
        survives = rank >= counts[groups] - self.size_per_group
        slots = (self.ptr[groups] + rank) % self.size_per_group
        flat = self.keys.view(self.num_groups * self.size_per_group, self.dim)
        flat.index_copy_(0, (groups * self.size_per_group + slots)[survives], keys[survives])
        self.ptr.copy_((self.ptr + counts) % self.size_per_group)
        self.filled.copy_((self.filled + counts).clamp(max=self.size_per_group))

    def negatives(self, group: int) -> torch.Tensor:
        """The stored keys of ``group``: ``[K_g, dim]``, ``K_g = min(written, size_per_group)``.

        Storage order, not age order (objectives treat negatives as a set); a view
        of the buffer, so run ``backward`` before the next :meth:`enqueue`.
        """
        if isinstance(group, bool) or not isinstance(group, int) or not 0 <= group < self.num_groups:
            raise ValueError(f"group: expected an int in [0, {self.num_groups}), got {group!r}")
        return self.keys[group, : int(self.filled[group])]

    def all_negatives(self) -> torch.Tensor:
        """Every slot of every group, ``[num_groups * size_per_group, dim]`` (a view; empty slots are zeros).

        Pair it with :meth:`negatives_mask` or :meth:`column_weights`, which remove
        other groups' keys and the empty slots.
        """
        return self.keys.view(self.num_groups * self.size_per_group, self.dim)

    def negatives_mask(self, groups: torch.Tensor) -> torch.Tensor:
        """``[B, num_groups * size_per_group]`` bool: the filled slots of each row's own group.

        Column ``c`` of :meth:`all_negatives` belongs to group ``c // size_per_group``
        and is filled when ``c % size_per_group < filled[group]``.

        Args:
            groups: ``[B]`` the group id of each query row.
        """
        groups = self._check_groups(groups)
        slot = torch.arange(self.size_per_group, device=self.keys.device)
        filled_slots = (slot.unsqueeze(0) < self.filled.unsqueeze(1)).flatten()  # [G * S]
        column_group = torch.arange(self.num_groups, device=self.keys.device).repeat_interleave(self.size_per_group)
        return (groups.unsqueeze(1) == column_group.unsqueeze(0)) & filled_slots.unsqueeze(0)

    def column_weights(
        self,
        query_groups: torch.Tensor,
        key_groups: torch.Tensor | None = None,
        *,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Column weights for ``info_nce(query, key, negatives=all_negatives(), weights=...)``.

        In-batch key columns are kept when the key shares the query's group (all
        kept when ``key_groups`` is ``None``), then the bank's columns as
        :meth:`negatives_mask`; 1 keeps, 0 drops.

        Args:
            query_groups: ``[B]`` the group of each query.
            key_groups: ``[M]`` the group of each in-batch key, or ``None``.
            dtype: the float dtype of the result (default float32).

        Returns:
            ``[B, M + num_groups * size_per_group]`` weights; ``M = B`` when
            ``key_groups`` is ``None``.
        """
        query_groups = self._check_groups(query_groups, name="query_groups")
        bank = self.negatives_mask(query_groups)
        rows = query_groups.shape[0]
        if key_groups is None:
            in_batch = torch.ones(rows, rows, dtype=torch.bool, device=bank.device)
        else:
            key_groups = self._check_groups(key_groups, name="key_groups")
            in_batch = query_groups.unsqueeze(1) == key_groups.unsqueeze(0)
        return torch.cat([in_batch, bank], dim=1).to(dtype)

    def reset(self) -> None:
        """Forget every key (keeps the allocation)."""
        self.keys.zero_()
        self.ptr.zero_()
        self.filled.zero_()

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, size_per_group={self.size_per_group}, num_groups={self.num_groups}, "
            f"filled={self.filled.tolist()}"
        )

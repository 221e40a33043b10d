"""DyCE: BECLR's dynamic clustered memory, a source of extra (class-like) positives.

Poulakakis-Daktylidis & Jamali-Rad, "BECLR: Batch Enhanced Contrastive Few-Shot Learning",
ICLR 2024. DyCE keeps a FIFO memory of past embeddings split into ``P`` partitions with
prototypes ``gamma_p``:

1. while the memory fills, batches are written in FIFO order;
2. the first time it is full, it is clustered with k-means (``P`` clusters);
3. from then on, each incoming batch is assigned to partitions by balanced Sinkhorn-Knopp on
   the cosine similarities ``z . gamma^T`` (an equipartition constraint: every partition
   receives the same share of the batch), written over the oldest rows with its labels, and
   every prototype is recomputed as the mean of its partition (empty partitions keep theirs);
4. :meth:`DyCEMemory.enhance` returns, for each batch embedding, its ``k`` nearest memory
   rows (cosine) inside the partition of its nearest prototype: the extra positives that
   grow a batch from ``B`` to ``(k + 1) B``.

Paper/official-config defaults: memory ``memory_scale x batch = 40 x 256`` rows, ``P = 200``
partitions, ``k = 5``. Details taken from the official code (stypoumic/BECLR ``memory.py``):
k-means on L2-normalised rows, top-1 prototype by cosine for the neighbour search, a fallback
to the whole memory when the partition holds fewer than ``k`` rows, prototypes recomputed as
partition means after each write. The paper calls the prototype update EMA-style;
``prototype_momentum`` (default 0, the official code's plain recomputation) gives that.

Every piece of state is a registered buffer, so the memory is saved in the owner's
``state_dict`` and resumes exactly.

METHODS.md row #2 (BECLR: DyCE + OpTA), verdict FULL.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from contrastkit.functional.sinkhorn import sinkhorn_knopp
from contrastkit.negatives.clustering import spherical_kmeans
from contrastkit.utils.checks import check_embeddings


@torch.no_grad()
def balanced_assignment(
    scores: torch.Tensor, *, epsilon: float = 0.05, iterations: int = 10
) -> torch.Tensor:
    r"""Balanced soft assignment of ``B`` samples to ``P`` partitions (Sinkhorn-Knopp, SwAV-style).

    Starting from ``Q = exp(scores / epsilon)`` (normalised to total mass 1), alternately
    rescale so each partition (column) holds mass ``1/P`` and each sample (row) ``1/B``;
    the returned plan is ``B * Q``, whose rows sum to 1. With enough iterations every
    partition receives ``B / P`` samples' worth of mass (the equipartition constraint).
    Computed in the log domain, so small ``epsilon`` (the official config uses 1e-5) does not
    overflow.

    Args:
        scores: ``[B, P]`` similarities between samples and prototypes.
        epsilon: entropic regularisation (SwAV / the BECLR code's default: 0.05).
        iterations: Sinkhorn-Knopp iterations (BECLR code default: 10).

    Returns:
        ``[B, P]`` soft assignments, each row summing to 1.
    """
    if scores.dim() != 2 or scores.shape[0] < 1 or scores.shape[1] < 1:
        raise ValueError(f"balanced_assignment: expected scores [B, P], got {tuple(scores.shape)}")
    if not float(epsilon) > 0:
        raise ValueError(f"balanced_assignment: expected epsilon > 0, got {epsilon}")
    if int(iterations) < 1:
        raise ValueError(f"balanced_assignment: expected iterations >= 1, got {iterations}")
    return sinkhorn_knopp(scores.float(), epsilon=float(epsilon), iterations=int(iterations))


class DyCEMemory(nn.Module):
    """BECLR's DyCE: a FIFO memory of embeddings, partitioned into ``P`` clusters.

    Args:
        size: rows kept (paper: ``memory_scale x batch`` = 40 x 256).
        dim: feature size of a stored embedding.
        num_partitions: ``P`` (paper: 200; keep ``size / P`` well above ``k``).
        k: neighbours returned per embedding by :meth:`enhance` (paper: 5).
        epsilon: Sinkhorn-Knopp regularisation of the balanced assignment.
        sinkhorn_iterations: Sinkhorn-Knopp iterations per incoming batch.
        kmeans_iterations: Lloyd iterations of the initial clustering.
        prototype_momentum: ``gamma <- m gamma + (1 - m) mean``; 0 (default, official code)
            recomputes each prototype as its partition mean.

    Example:
        >>> memory = DyCEMemory(size=64, dim=8, num_partitions=4, k=2)
        >>> memory.update(torch.randn(64, 8))  # fills and clusters the memory
        >>> memory.enhance(torch.randn(3, 8)).shape
        torch.Size([3, 2, 8])
    """

    bank: torch.Tensor
    labels: torch.Tensor
    prototypes: torch.Tensor
    ptr: torch.Tensor
    filled: torch.Tensor
    clustered: torch.Tensor

    def __init__(
        self,
        size: int,
        dim: int,
        *,
        num_partitions: int = 200,
        k: int = 5,
        epsilon: float = 0.05,
        sinkhorn_iterations: int = 10,
        kmeans_iterations: int = 20,
        prototype_momentum: float = 0.0,
    ) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"DyCEMemory: expected positive size and dim, got size={size}, dim={dim}")
        if not 1 <= num_partitions <= size:
            raise ValueError(f"DyCEMemory: expected 1 <= num_partitions <= size={size}, got {num_partitions}")
        if not 1 <= k <= size:
            raise ValueError(f"DyCEMemory: expected 1 <= k <= size={size}, got {k}")
        if not 0.0 <= prototype_momentum < 1.0:
            raise ValueError(f"DyCEMemory: expected prototype_momentum in [0, 1), got {prototype_momentum}")
        self.size = int(size)
        self.dim = int(dim)
        self.num_partitions = int(num_partitions)
        self.k = int(k)
        self.epsilon = float(epsilon)
        self.sinkhorn_iterations = int(sinkhorn_iterations)
        self.kmeans_iterations = int(kmeans_iterations)
        self.prototype_momentum = float(prototype_momentum)
        self.register_buffer("bank", torch.zeros(self.size, self.dim))
        # -1: not yet clustered.
        self.register_buffer("labels", torch.full((self.size,), -1, dtype=torch.long))
        self.register_buffer("prototypes", torch.zeros(self.num_partitions, self.dim))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))
        self.register_buffer("clustered", torch.zeros((), dtype=torch.bool))

    def __len__(self) -> int:
        """Rows currently stored (``<= size``)."""
        return int(self.filled)

    @property
    def is_clustered(self) -> bool:
        """Whether the initial k-means has run (the memory has been full once)."""
        return bool(self.clustered)

    def stored(self) -> torch.Tensor:
        """The stored rows ``[filled, dim]`` in storage order (a view of the buffer)."""
        return self.bank[: int(self.filled)]

    @torch.no_grad()
    def assign(self, z: torch.Tensor) -> torch.Tensor:
        """Balanced partition labels ``[B]`` of a batch: argmax of :func:`balanced_assignment`.

        Raises:
            ValueError: before the memory has been clustered, or on a malformed batch.
        """
        check_embeddings("DyCEMemory.assign z", z, dim=self.dim)
        if not self.is_clustered:
            raise ValueError("DyCEMemory.assign: expected a clustered memory (fill it once first), got none yet")
        scores = F.normalize(z.float(), dim=1) @ F.normalize(self.prototypes, dim=1).T
        plan = balanced_assignment(scores, epsilon=self.epsilon, iterations=self.sinkhorn_iterations)
        return plan.argmax(dim=1)

    @torch.no_grad()
    def nearest_partition(self, z: torch.Tensor) -> torch.Tensor:
        """The partition of each row's most cosine-similar prototype, ``[B]``."""
        check_embeddings("DyCEMemory.nearest_partition z", z, dim=self.dim)
        if not self.is_clustered:
            raise ValueError("DyCEMemory.nearest_partition: expected a clustered memory, got none yet")
        return (F.normalize(z.float(), dim=1) @ F.normalize(self.prototypes, dim=1).T).argmax(dim=1)

    def _write(self, z: torch.Tensor, labels: torch.Tensor) -> None:
        batch = z.shape[0]
        start = int(self.ptr)
        positions = (torch.arange(batch, device=self.bank.device) + start) % self.size
        self.bank[positions] = z
        self.labels[positions] = labels
        self.ptr.fill_((start + batch) % self.size)
        self.filled.fill_(min(int(self.filled) + batch, self.size))

    def _recompute_prototypes(self, momentum: float | None = None) -> None:
        momentum = self.prototype_momentum if momentum is None else momentum
        stored = F.normalize(self.bank, dim=1)
        sums = torch.zeros_like(self.prototypes).index_add_(0, self.labels, stored)
        sizes = torch.bincount(self.labels, minlength=self.num_partitions).unsqueeze(1)
        means = sums / sizes.clamp_min(1)
        updated = momentum * self.prototypes + (1.0 - momentum) * means
        self.prototypes.copy_(torch.where(sizes > 0, updated, self.prototypes))

    @torch.no_grad()
    def update(self, z: torch.Tensor, *, generator: torch.Generator | None = None) -> None:
        """Write ``z [B, dim]`` over the oldest rows (FIFO), clustering / assigning as DyCE does.

        Before the first clustering rows are written unlabelled; when the memory becomes full
        it is clustered by k-means. Afterwards the batch is labelled by :meth:`assign` first,
        then written, then the prototypes are recomputed.

        Args:
            z: a finite float batch with ``1 <= B <= size`` (detached and cast to the buffer).
            generator: optional random generator for the k-means seeding.
        """
        check_embeddings("DyCEMemory.update z", z, dim=self.dim)
        if z.shape[0] > self.size:
            raise ValueError(f"DyCEMemory.update: expected at most size={self.size} rows per call, got {z.shape[0]}")
        z = z.detach().to(dtype=self.bank.dtype, device=self.bank.device)
        if self.is_clustered:
            self._write(z, self.assign(z))
            self._recompute_prototypes()
            return
        self._write(z, torch.full((z.shape[0],), -1, dtype=torch.long, device=self.bank.device))
        if int(self.filled) == self.size:
            labels, _ = spherical_kmeans(
                self.bank, self.num_partitions, iterations=self.kmeans_iterations, generator=generator
            )
            self.labels.copy_(labels)
            self._recompute_prototypes(momentum=0.0)  # the first prototypes are the partition means
            self.clustered.fill_(True)

    @torch.no_grad()
    def neighbour_indices(self, z: torch.Tensor) -> torch.Tensor:
        """Row indices ``[B, k]`` into the memory of each row's ``k`` nearest stored rows.

        Cosine similarity; once clustered, only rows of the partition of the row's nearest
        prototype compete (rows whose partition holds fewer than ``k`` members fall back to
        the whole memory, as the official code). Sorted, most similar first.

        Raises:
            ValueError: when fewer than ``k`` rows are stored.
        """
        check_embeddings("DyCEMemory.neighbour_indices z", z, dim=self.dim)
        stored = int(self.filled)
        if stored < self.k:
            raise ValueError(f"DyCEMemory: expected at least k={self.k} stored rows to find neighbours, got {stored}")
        queries = F.normalize(z.detach().float(), dim=1).to(self.bank.device)
        similarity = queries @ F.normalize(self.bank[:stored], dim=1).T  # [B, stored]
        if self.is_clustered:
            partition = self.nearest_partition(queries)
            same = self.labels[:stored].unsqueeze(0) == partition.unsqueeze(1)  # [B, stored]
            enough = same.sum(dim=1, keepdim=True) >= self.k
            similarity = similarity.masked_fill(~same & enough, float("-inf"))
        return similarity.topk(self.k, dim=1).indices

    @torch.no_grad()
    def enhance(self, z: torch.Tensor) -> torch.Tensor:
        """Each row's ``k`` nearest memory rows in its partition, ``[B, k, dim]`` (no gradient).

        These are DyCE's extra positives: row ``i`` of the batch is paired with
        ``enhance(z)[i, j]`` for ``j < k``, growing the batch to ``(k + 1) B``.
        """
        return self.bank[self.neighbour_indices(z)]

    def extra_repr(self) -> str:
        return (
            f"size={self.size}, dim={self.dim}, num_partitions={self.num_partitions}, k={self.k}, "
            f"filled={int(self.filled)}, clustered={self.is_clustered}"
        )

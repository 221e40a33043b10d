"""SBCL: subclass-balancing contrastive learning (Hou, Yu, Tsang and Chen, ICCV 2023).

"Subclass-balancing Contrastive Learning for Long-tailed Recognition". SupCon on a
long-tailed training set is instance-balanced, so head classes dominate the
representation. SBCL splits every head class into tail-sized subclasses by balanced
k-means in the current embedding space
(:func:`contrastkit.negatives.subclasses.subclass_labels`) and trains with a
bi-granularity loss (:func:`contrastkit.functional.sbcl.sbcl_loss`): subclass-level
positives plus a weaker class-level term. METHODS.md #54, verdict FULL.

Schedule (the official script warms up with SupCon and re-clusters every ``step=10``
epochs on freshly computed features of the whole training set): here the method keeps a
feature bank with one row per dataset row (``batch.index``), written with the detached
projections of view a as batches pass, and re-clusters the rows seen so far at the end
of every ``recluster_every``-th step. Before the first clustering the loss is SupCon on
class labels (the warm-up); rows not seen at the last clustering get a singleton
subclass (their own id) until the next one. The bank's features are up to one epoch
stale, which is the price of not re-embedding the dataset.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional import supcon
from contrastkit.functional.sbcl import sbcl_class_temperatures, sbcl_loss
from contrastkit.methods.base import Output
from contrastkit.methods.simclr import SimCLR
from contrastkit.negatives import gather
from contrastkit.negatives.subclasses import subclass_counts, subclass_labels


class SBCL(SimCLR):
    """SBCL: SimCLR's two views and projector, trained with SBCL's subclass-balancing loss.

    Needs ``batch.labels`` (integer classes ``>= 0``) and ``batch.index`` (dataset rows).

    Args:
        encoder: backbone with an ``output_dim`` attribute.
        views: a pair ``(view_a, view_b)`` of augmentation modules.
        projection_hidden_dim: hidden width of the projection MLP.
        projection_dim: output width of the projection MLP.
        temperature: ``tau`` of the subclass term and of the warm-up SupCon (paper 0.1).
        base_temperature: ``tau_b`` scaling the subclass term by ``tau / tau_b`` (official 0.07).
        gamma: weight of the class-level term (paper 0.25).
        recluster_every: steps between re-clusterings; the first one ends the SupCon warm-up.
        subclass_size: target subclass size; ``None``: the smallest class count in the bank
            (``M_c = ceil(n_c / n_tail)``).
        rank_temperature: per-class temperatures of the class term from the class spread
            (official "ranking temperature", :func:`~contrastkit.functional.sbcl.sbcl_class_temperatures`);
            ``False``: ``tau`` for every class.
        kmeans_iterations: balanced k-means rounds per class.
        num_samples: dataset size to pre-allocate the bank (``None``: grow on demand).
    """

    needs_labels = True
    bank: torch.Tensor
    bank_labels: torch.Tensor
    subclass: torch.Tensor
    class_tau: torch.Tensor
    clusterings: torch.Tensor

    def __init__(
        self,
        encoder: nn.Module,
        views: tuple[nn.Module, nn.Module],
        *,
        projection_hidden_dim: int = 512,
        projection_dim: int = 128,
        temperature: float = 0.1,
        base_temperature: float = 0.07,
        gamma: float = 0.25,
        recluster_every: int = 200,
        subclass_size: int | None = None,
        rank_temperature: bool = True,
        kmeans_iterations: int = 20,
        num_samples: int | None = None,
    ) -> None:
        super().__init__(
            encoder, views, projection_hidden_dim=projection_hidden_dim, projection_dim=projection_dim,
            temperature=temperature,
        )
        if isinstance(recluster_every, bool) or not isinstance(recluster_every, int) or recluster_every < 1:
            raise ValueError(f"SBCL: expected recluster_every to be an int >= 1, got {recluster_every!r}")
        if gamma < 0:
            raise ValueError(f"SBCL: expected gamma >= 0, got {gamma}")
        self.base_temperature = base_temperature
        self.gamma = gamma
        self.recluster_every = recluster_every
        self.subclass_size = subclass_size
        self.rank_temperature = rank_temperature
        self.kmeans_iterations = kmeans_iterations
        size = int(num_samples or 0)
        self.register_buffer("bank", torch.zeros(size, projection_dim))
        self.register_buffer("bank_labels", torch.full((size,), -1, dtype=torch.long))  # -1: row not seen
        self.register_buffer("subclass", torch.full((size,), -1, dtype=torch.long))  # -1: not clustered
        self.register_buffer("class_tau", torch.zeros(0))
        self.register_buffer("clusterings", torch.zeros((), dtype=torch.long))

    def prepare_to_load(self, state_dict: dict[str, Any], prefix: str = "") -> None:
        """The bank grows with the dataset rows seen: take a checkpoint's sizes before its values."""
        for name in ("bank", "bank_labels", "subclass", "class_tau"):
            value = state_dict.get(prefix + name)
            if value is not None and value.shape != getattr(self, name).shape:
                setattr(self, name, torch.empty_like(value, device=getattr(self, name).device))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        self.prepare_to_load(state_dict, prefix)  # also for a plain load_state_dict
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def _grow(self, rows: int) -> None:
        """Make the bank hold at least ``rows`` rows (doubling, so growth is amortised)."""
        size = self.bank.shape[0]
        if rows <= size:
            return
        new = max(rows, 2 * size)
        extra = new - size
        self.bank = torch.cat([self.bank, self.bank.new_zeros(extra, self.bank.shape[1])])
        self.bank_labels = torch.cat([self.bank_labels, self.bank_labels.new_full((extra,), -1)])
        self.subclass = torch.cat([self.subclass, self.subclass.new_full((extra,), -1)])

    @torch.no_grad()
    def _remember(self, index: torch.Tensor, z: torch.Tensor, labels: torch.Tensor) -> None:
        self._grow(int(index.max()) + 1)
        self.bank[index] = F.normalize(z.float(), dim=1).to(self.bank.dtype)
        self.bank_labels[index] = labels

    def objective(self, z_a: torch.Tensor, z_b: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Warm-up SupCon, then SBCL's loss with the bank's subclass labels of ``batch.index``."""
        assert batch.labels is not None  # check_batch guarantees it
        features = gather(torch.stack([z_a, z_b], dim=1), "with_grad")
        labels = gather(batch.labels, "no_grad")
        if (labels < 0).any():
            raise ValueError(f"SBCL: expected class labels >= 0, got min {int(labels.min())}")
        if batch.index is None:
            if int(self.clusterings) == 0:  # warm-up needs no rows; recluster() refuses an empty bank
                return supcon(features, labels, temperature=self.temperature)
            raise ValueError("SBCL: expected batch.index (dataset rows, to look up subclass labels), got None")
        index = gather(batch.index, "no_grad").to(labels.device).long()
        if self.training:
            self._remember(index, features[:, 0].detach(), labels)
        if int(self.clusterings) == 0:
            return supcon(features, labels, temperature=self.temperature)
        self._grow(int(index.max()) + 1)
        sub = self.subclass[index]
        # Rows without a subclass yet: a singleton subclass of their own (negative ids never clash).
        sub = torch.where(sub >= 0, sub, -1 - index)
        class_tau = None
        if self.rank_temperature and self.class_tau.numel() > int(labels.max()):
            class_tau = self.class_tau
        return sbcl_loss(
            features, labels, sub, temperature=self.temperature, class_temperature=class_tau, gamma=self.gamma,
            base_temperature=self.base_temperature,
        )

    def loss_from_embeddings(self, embeddings: tuple[torch.Tensor, ...], batch: Batch) -> Output:
        output = super().loss_from_embeddings(embeddings, batch)
        output.logs["subclasses"] = float(int(self.subclass.max()) + 1 if int(self.clusterings) else 0)
        return output

    @torch.no_grad()
    def recluster(self) -> None:
        """Re-cluster every seen bank row into subclasses (and refresh the class temperatures)."""
        seen = torch.nonzero(self.bank_labels >= 0).flatten()
        if seen.numel() == 0:
            raise ValueError(
                "SBCL: no bank rows to cluster; training batches need batch.index (dataset rows), got none so far"
            )
        features, labels = self.bank[seen], self.bank_labels[seen]
        self.subclass.fill_(-1)
        self.subclass[seen] = subclass_labels(
            features, labels, subclass_size=self.subclass_size, iterations=self.kmeans_iterations
        )
        if self.rank_temperature:
            num_classes = int(labels.max()) + 1
            sizes = torch.bincount(labels, minlength=num_classes)
            single = torch.ones(num_classes, dtype=torch.bool, device=labels.device)
            present = sizes > 0
            single[present] = subclass_counts(sizes[present].cpu(), self.subclass_size).to(labels.device) == 1
            self.class_tau = sbcl_class_temperatures(
                features, labels, num_classes, temperature=self.temperature, single_subclass=single
            ).to(self.bank.dtype)
        self.clusterings += 1

    def on_step_end(self, step: int, total_steps: int) -> None:
        """Re-cluster after every ``recluster_every``-th step."""
        if (step + 1) % self.recluster_every == 0:
            self.recluster()

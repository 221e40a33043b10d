"""Graph collaborative filtering: LightGCN + BPR, SimGCL and LightGCL.

Each method trains a :class:`~contrastkit.nn.lightgcn.LightGCN` encoder (user and item ID
embeddings propagated over the normalised interaction graph) on batches of BPR
triplets ``LongTensor [B, 3]`` = ``(user, positive item, negative item)`` from
:class:`~contrastkit.data.interactions.InteractionDataset`. Evaluation ranks all items
for each user with :meth:`RecommendationMethod.user_item_embeddings`.

- :class:`LightGCNBPR` — LightGCN (He et al., SIGIR 2020): BPR on the propagated
  embeddings plus L2 on the batch's ID embeddings (the authors' ``bpr_loss``).
- :class:`SimGCL` — SimGCL (Yu et al., SIGIR 2022): BPR on the clean propagation plus
  InfoNCE between two propagations with uniform noise added at every layer.
- :class:`LightGCL` — LightGCL (Cai et al., ICLR 2023; METHODS.md #36): BPR plus a
  contrast between the graph view and a view propagated through a rank-``q`` SVD of
  the normalised adjacency, plus L2 on all parameters.

All take ``(encoder, views, **options)`` like every registered method; ``views`` is
unused (the augmentations of these methods live in the embedding space or the graph).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from contrastkit.data.batch import Batch
from contrastkit.functional.contrastive import info_nce
from contrastkit.functional.recommendation import (
    bpr_loss,
    lightgcl_loss,
    simgcl_perturb,
)
from contrastkit.methods.base import Method, Output


class RecommendationMethod(Method):
    """Shared parts of the graph recommendation methods.

    Args:
        encoder: a :class:`~contrastkit.nn.lightgcn.LightGCN` (anything with ``layers``,
            ``propagate``, ``combine``, ``num_users``, ``num_items`` and ``output_dim``).
        views: unused; accepted so that ``build_method(name, encoder, views, **options)`` works.
    """

    modalities = frozenset({"interactions"})
    #: the layer combination used for the ranking embeddings (``None``: the encoder's setting).
    layer_combination: str | None = None
    include_input: bool | None = None

    def __init__(self, encoder: nn.Module, views: Any = ()) -> None:
        super().__init__()
        del views
        missing = [name for name in ("layers", "propagate", "combine", "num_users", "num_items", "output_dim")
                   if not hasattr(encoder, name)]  # fmt: skip
        if missing:
            raise ValueError(
                f"{type(self).__name__}: expected a LightGCN encoder (contrastkit.nn.lightgcn), "
                f"got {type(encoder).__name__} without {', '.join(missing)}"
            )
        self.encoder = encoder

    def triplets(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Check the batch and split its ``[B, 3]`` inputs into ``(users, positives, negatives)``."""
        x = batch.inputs
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"{type(self).__name__}: expected batch.inputs as (user, positive, negative) ids [B, 3], got {shape}"
            )
        if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise ValueError(f"{type(self).__name__}: expected integer ids in batch.inputs, got dtype {x.dtype}")
        if x.shape[0] < 1:
            raise ValueError(f"{type(self).__name__}: expected at least one triplet, got an empty batch")
        x = x.long()
        return x[:, 0], x[:, 1], x[:, 2]

    @torch.no_grad()
    def user_item_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The ranking embeddings ``(users [U, D], items [I, D])``: clean propagation, no gradient."""
        return self.encoder.propagate(layer_combination=self.layer_combination, include_input=self.include_input)

    @torch.no_grad()
    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """User embeddings ``[B, D]`` for user ids ``[B]`` (or ``[B, k]`` rows whose first column is the user)."""
        users = inputs if inputs.dim() == 1 else inputs[:, 0]
        return self.user_item_embeddings()[0][users.long()]


class LightGCNBPR(RecommendationMethod):
    """LightGCN trained with BPR (He et al., 2020).

    .. math::

        L = \\mathrm{mean}_b\\, \\mathrm{softplus}(e_u^\\top e_n - e_u^\\top e_p)
          + \\lambda \\frac{1}{2B} \\left(\\lVert E^{(0)}_{u} \\rVert^2 + \\lVert E^{(0)}_{p} \\rVert^2
          + \\lVert E^{(0)}_{n} \\rVert^2\\right)

    with ``e`` the propagated embeddings (the encoder's layer combination: LightGCN's mean
    over layers 0..L) and ``E^(0)`` the batch rows of the ID embeddings, as in the
    authors' ``bpr_loss`` (``decay`` 1e-4).

    Args:
        encoder: a LightGCN encoder.
        views: unused.
        weight_decay: ``lambda`` of the L2 term (default 1e-4, LightGCN's ``--decay``).
        edge_dropout: sparse edge dropout while training (default 0, LightGCN's default).
    """

    def __init__(self, encoder: nn.Module, views: Any = (), *, weight_decay: float = 1e-4,
                 edge_dropout: float = 0.0) -> None:  # fmt: skip
        super().__init__(encoder, views)
        _check_non_negative(weight_decay=weight_decay)
        self.weight_decay, self.edge_dropout = weight_decay, edge_dropout

    def forward(self, batch: Batch) -> Output:
        users, positives, negatives = self.triplets(batch)
        all_users, all_items = self.encoder.propagate(self.edge_dropout if self.training else 0.0)
        bpr = bpr_loss(all_users[users], all_items[positives], all_items[negatives])
        ego = (self.encoder.user_embedding[users], self.encoder.item_embedding[positives],
               self.encoder.item_embedding[negatives])  # fmt: skip
        reg = self.weight_decay * 0.5 * sum(rows.square().sum() for rows in ego) / users.shape[0]
        loss = bpr + reg
        return Output(loss, {"loss": loss.item(), "bpr": bpr.item(), "reg": reg.item()})


class SimGCL(RecommendationMethod):
    """SimGCL: contrast two noise-perturbed propagations (Yu et al., SIGIR 2022).

    Three propagations per step (as the authors' SELFRec ``SimGCL.py``): a clean one for
    BPR and two with :func:`~contrastkit.functional.recommendation.simgcl_perturb` noise of
    magnitude ``eps`` at every layer. Layers are combined by the mean over layers 1..L
    (the input layer excluded, as in the code):

    .. math::

        L = L_{BPR} + \\lambda_{reg} \\frac{1}{2B}\\sum_{b=1}^{B}\\left(\\lVert e_{u_b} \\rVert^2
            + \\lVert e_{p_b} \\rVert^2 + \\lVert e_{n_b} \\rVert^2\\right)
          + \\lambda \\left(\\mathrm{InfoNCE}(U'_B, U''_B) + \\mathrm{InfoNCE}(I'_B, I''_B)\\right)

    with ``U_B`` the batch's unique users, ``I_B`` its unique positive items, InfoNCE on
    cosine similarities at temperature 0.2 (one direction), and the L2 term on the batch's
    propagated embeddings. ``L_BPR`` is a batch mean, so the L2 term is one too (divided by
    ``B``): the original TensorFlow code (QRec) sums both BPR and ``tf.nn.l2_loss`` over the
    batch, and SELFRec's ``l2_reg_loss`` divides by the batch size; the same ratio of the two
    terms here. (SELFRec takes the unsquared Frobenius norm of the user and positive rows;
    at ``lambda_reg = 1e-4`` either form is a small fraction of BPR.) Summing the L2 over the
    ``3B`` rows without dividing by ``B`` (this class before issue 15) made it ``B`` times
    heavier relative to BPR and kept BPR at ``ln 2``. A side with fewer than two unique rows
    has no negatives and adds no InfoNCE term.

    Args:
        encoder: a LightGCN encoder.
        views: unused.
        eps: noise magnitude (default 0.1, the paper's and SELFRec's).
        lambd: weight ``lambda`` of the contrastive term (default 0.5, SELFRec's ``SimGCL.yaml``).
        temperature: InfoNCE temperature (default 0.2).
        weight_decay: ``lambda_reg`` (default 1e-4, SELFRec's ``reg.lambda``).
        include_input_layer: combine layers 0..L instead of 1..L (default ``False``, the code's).
    """

    layer_combination = "mean"

    def __init__(
        self,
        encoder: nn.Module,
        views: Any = (),
        *,
        eps: float = 0.1,
        lambd: float = 0.5,
        temperature: float = 0.2,
        weight_decay: float = 1e-4,
        include_input_layer: bool = False,
    ) -> None:
        super().__init__(encoder, views)
        _check_non_negative(eps=eps, lambd=lambd, weight_decay=weight_decay)
        if not temperature > 0:
            raise ValueError(f"temperature: expected a value > 0, got {temperature}")
        if not include_input_layer and getattr(encoder, "num_layers", 1) < 1:
            raise ValueError("SimGCL: without the input layer the encoder needs num_layers >= 1")
        self.eps, self.lambd, self.temperature, self.weight_decay = eps, lambd, temperature, weight_decay
        self.include_input = include_input_layer

    def _propagate(self, noisy: bool) -> tuple[torch.Tensor, torch.Tensor]:
        perturb = (lambda e: simgcl_perturb(e, self.eps)) if noisy else None
        return self.encoder.propagate(perturb=perturb, layer_combination="mean", include_input=self.include_input)

    def contrastive_loss(self, users: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
        """InfoNCE between two noisy propagations on the batch's unique users and positive items."""
        (users_a, items_a), (users_b, items_b) = self._propagate(True), self._propagate(True)
        loss = users_a.new_zeros(())
        for ids, view_a, view_b in ((users.unique(), users_a, users_b), (positives.unique(), items_a, items_b)):
            if ids.shape[0] >= 2:
                loss = loss + info_nce(view_a[ids], view_b[ids], temperature=self.temperature)
        return loss

    def forward(self, batch: Batch) -> Output:
        users, positives, negatives = self.triplets(batch)
        all_users, all_items = self._propagate(False)
        user_rows, positive_rows, negative_rows = all_users[users], all_items[positives], all_items[negatives]
        bpr = bpr_loss(user_rows, positive_rows, negative_rows)
        # A batch mean, as BPR: the squared L2 of the B (user, positive, negative) rows / B.
        reg = self.weight_decay * 0.5 * sum(rows.square().sum() for rows in (user_rows, positive_rows, negative_rows))
        reg = reg / users.shape[0]
        cl = self.contrastive_loss(users, positives) if self.lambd > 0 else bpr.new_zeros(())
        loss = bpr + reg + self.lambd * cl
        return Output(loss, {"loss": loss.item(), "bpr": bpr.item(), "cl": cl.item(), "reg": reg.item()})


class LightGCL(RecommendationMethod):
    """LightGCL: contrast the graph view with a rank-``q`` SVD view (Cai et al., ICLR 2023).

    As the authors' ``model.py`` (commit 49b0cb8) and ``main.py``: the SVD of the
    *normalised* adjacency, ``Ã ≈ U_q S_q V_q^T``, is taken once (randomized, ``q = 5``);
    per layer ``l = 1..L`` the graph view propagates ``E^(l) = Ã E^(l-1)`` (with optional
    sparse edge dropout) and the SVD view ``G_u^(l) = U_q S_q (V_q^T E_i^(l-1))``,
    ``G_i^(l) = V_q S_q (U_q^T E_u^(l-1))`` — from the *graph view's* previous layer, so no
    dense ``U x I`` matrix is formed. Both views sum their layers 0..L (``G^(0) = E^(0)``).

    .. math::

        L = L_{BPR}(E) + \\lambda_1 L_s(G, E) + \\lambda_2 \\sum_{\\theta} \\lVert \\theta \\rVert_2^2

    with :func:`~contrastkit.functional.recommendation.lightgcl_loss` as ``L_s`` on the
    batch's users and ``cat(positives, negatives)`` items, and the L2 term over every
    parameter (the full ID tables), as the code does with the optimiser's weight decay 0.
    Ranking uses ``E`` (the sum over layers 0..L, whatever the encoder's own setting).

    Args:
        encoder: a LightGCN encoder (LightGCL: ``init="xavier"``, 2 layers, ``D = 64``).
        views: unused.
        q: the SVD rank (default 5).
        lambda_1: weight of the contrastive loss (default 0.2).
        lambda_2: weight of the L2 term (default 1e-7).
        temperature: ``tau`` (default 0.2).
        edge_dropout: sparse edge dropout of the graph view while training (default 0).
        svd_iterations: subspace iterations of the randomized SVD (default 2, the
            ``torch.svd_lowrank`` default LightGCL calls).
        svd_seed: seeds the randomized SVD, so a run and its resume use the same factors.
    """

    layer_combination = "sum"
    include_input = True

    def __init__(
        self,
        encoder: nn.Module,
        views: Any = (),
        *,
        q: int = 5,
        lambda_1: float = 0.2,
        lambda_2: float = 1e-7,
        temperature: float = 0.2,
        edge_dropout: float = 0.0,
        svd_iterations: int = 2,
        svd_seed: int = 0,
    ) -> None:
        super().__init__(encoder, views)
        _check_non_negative(lambda_1=lambda_1, lambda_2=lambda_2)
        if not temperature > 0:
            raise ValueError(f"temperature: expected a value > 0, got {temperature}")
        if q < 1 or q > min(encoder.num_users, encoder.num_items):
            raise ValueError(f"q: expected a rank in [1, {min(encoder.num_users, encoder.num_items)}], got {q}")
        self.q, self.lambda_1, self.lambda_2 = q, lambda_1, lambda_2
        self.temperature, self.edge_dropout = temperature, edge_dropout
        adjacency = encoder.normalized_adjacency()
        from contrastkit.functional.low_rank import low_rank_factors
        factors = low_rank_factors(adjacency.indices(), adjacency.values(), tuple(adjacency.shape), rank=q,
                                   niter=svd_iterations, seed=svd_seed)  # fmt: skip
        # Non-persistent: recomputed identically (seeded) from the graph on construction.
        self.register_buffer("svd_u", factors.u.detach().float().contiguous(), persistent=False)
        self.register_buffer("svd_s", factors.s.detach().float().contiguous(), persistent=False)
        self.register_buffer("svd_v", factors.v.detach().float().contiguous(), persistent=False)

    def graph_and_svd_views(
        self, edge_dropout: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(E_u, E_i, G_u, G_i)``: the graph view and the SVD view, each summed over layers 0..L."""
        user_layers, item_layers = self.encoder.layers(edge_dropout)
        # The rank-q products are cheap; they run in full precision like the sparse ones.
        with torch.autocast(self.svd_u.device.type, enabled=False):
            u_s, v_s = self.svd_u * self.svd_s, self.svd_v * self.svd_s
            svd_users = [user_layers[0]] + [u_s @ (self.svd_v.T @ items) for items in item_layers[:-1]]
            svd_items = [item_layers[0]] + [v_s @ (self.svd_u.T @ users) for users in user_layers[:-1]]
            total = lambda layers: torch.stack(layers).sum(0)  # noqa: E731
            return total(user_layers), total(item_layers), total(svd_users), total(svd_items)

    def forward(self, batch: Batch) -> Output:
        users, positives, negatives = self.triplets(batch)
        e_u, e_i, g_u, g_i = self.graph_and_svd_views(self.edge_dropout if self.training else 0.0)
        bpr = bpr_loss(e_u[users], e_i[positives], e_i[negatives])
        cl = lightgcl_loss(g_u, e_u, g_i, e_i, users, torch.cat([positives, negatives]), self.temperature)
        reg = self.lambda_2 * sum(parameter.square().sum() for parameter in self.parameters())
        loss = bpr + self.lambda_1 * cl + reg
        return Output(loss, {"loss": loss.item(), "bpr": bpr.item(), "cl": cl.item(), "reg": reg.item()})


def _check_non_negative(**values: float) -> None:
    for name, value in values.items():
        if not value >= 0:
            raise ValueError(f"{name}: expected a value >= 0, got {value}")

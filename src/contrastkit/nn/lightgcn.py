"""LightGCN: ID embeddings propagated over the normalised user–item graph (He et al., SIGIR 2020).

"LightGCN: Simplifying and Powering Graph Convolution Network for Recommendation"
keeps only neighbourhood aggregation: no feature transform, no non-linearity. With
``Ã = D_u^{-1/2} R D_i^{-1/2}`` the normalised ``[U, I]`` interaction matrix (value
``1 / sqrt(deg(u) deg(i))`` per training pair), layer ``l`` is

.. math::

    E_u^{(l)} = \\tilde A\\, E_i^{(l-1)}, \\qquad E_i^{(l)} = \\tilde A^\\top E_u^{(l-1)}

and the output combines the layers. The papers that build on it combine differently,
so the combination is a setting:

- LightGCN: the mean over layers ``0..L`` (``layer_combination="mean"``, the default);
- LightGCL (Cai et al., ICLR 2023, ``model.py``): the sum over ``0..L`` (``"sum"``);
- SimGCL (Yu et al., SIGIR 2022, SELFRec ``SimGCL.py``): the mean over ``1..L``
  (``include_input=False``; a method may override it per call).

:meth:`LightGCN.propagate` takes an ``edge_dropout`` rate (LightGCL's and SGL's
sparse dropout: each stored entry of ``Ã`` and of ``Ãᵀ`` dropped independently, the
rest scaled by ``1 / (1 - p)``) and a ``perturb`` hook applied to every propagated
layer, which is how SimGCL adds its noise; the perturbed layer is what the next layer
propagates, as in SimGCL's encoder. The adjacency lives in non-persistent sparse COO
buffers (rebuilt from the training pairs, so checkpoints hold only the embeddings) and
the sparse products run on CPU and CUDA.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from contrastkit.utils.graph_index import normalized_bipartite_adjacency

LAYER_COMBINATIONS = ("mean", "sum")
INITIALISATIONS = ("normal", "xavier")

Perturb = Callable[[torch.Tensor], torch.Tensor]


class LightGCN(nn.Module):
    """User and item ID embeddings propagated over the normalised bipartite graph.

    Args:
        num_users: the number of users ``U``.
        num_items: the number of items ``I``.
        train_pairs: ``LongTensor [2, T]`` distinct training ``(user, item)`` pairs (the graph).
        embedding_dim: the embedding width ``D`` (default 64, as all three papers).
        num_layers: propagation layers ``L`` (default 2; LightGCN reports 3, LightGCL and SimGCL use 2).
        layer_combination: ``"mean"`` (LightGCN) or ``"sum"`` (LightGCL) over the layers.
        include_input: whether layer 0 (the ID embeddings) enters the combination
            (LightGCN, LightGCL: yes; SimGCL: no).
        init: ``"normal"`` (LightGCN: ``N(0, 0.1^2)``) or ``"xavier"`` (LightGCL and
            SimGCL: Xavier-uniform per table).

    Attributes:
        output_dim: ``D``, the width of :meth:`propagate`'s outputs.

    Raises:
        ValueError: for sizes below 1, negative layers, an unknown combination or
            initialisation, or malformed pairs.

    Example:
        >>> pairs = torch.tensor([[0, 0, 1, 2], [0, 1, 1, 2]])
        >>> model = LightGCN(3, 3, pairs, embedding_dim=8, num_layers=2)
        >>> users, items = model.propagate()
        >>> users.shape, items.shape
        (torch.Size([3, 8]), torch.Size([3, 8]))
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        train_pairs: torch.Tensor,
        embedding_dim: int = 64,
        num_layers: int = 2,
        *,
        layer_combination: str = "mean",
        include_input: bool = True,
        init: str = "normal",
    ) -> None:
        super().__init__()
        if num_users < 1 or num_items < 1 or embedding_dim < 1:
            raise ValueError(
                f"LightGCN: expected num_users, num_items and embedding_dim >= 1, "
                f"got {num_users}, {num_items}, {embedding_dim}"
            )
        if num_layers < 0:
            raise ValueError(f"LightGCN: expected num_layers >= 0, got {num_layers}")
        if layer_combination not in LAYER_COMBINATIONS:
            raise ValueError(
                f"layer_combination: expected one of {list(LAYER_COMBINATIONS)}, got {layer_combination!r}"
            )
        if init not in INITIALISATIONS:
            raise ValueError(f"init: expected one of {list(INITIALISATIONS)}, got {init!r}")
        if not include_input and num_layers == 0:
            raise ValueError("LightGCN: include_input=False needs num_layers >= 1 (no layer would be left)")
        if not isinstance(train_pairs, torch.Tensor) or train_pairs.dim() != 2 or train_pairs.shape[0] != 2:
            shape = tuple(train_pairs.shape) if isinstance(train_pairs, torch.Tensor) else type(train_pairs).__name__
            raise ValueError(f"LightGCN: expected train_pairs of shape [2, T], got {shape}")
        train_pairs = train_pairs.long().cpu()
        if train_pairs.numel() and (
            int(train_pairs.min()) < 0
            or int(train_pairs[0].max()) >= num_users
            or int(train_pairs[1].max()) >= num_items
        ):
            raise ValueError(
                f"LightGCN: expected user ids < {num_users} and item ids < {num_items} in train_pairs, "
                f"got maxima {int(train_pairs[0].max())} and {int(train_pairs[1].max())}"
            )
        self.num_users, self.num_items = num_users, num_items
        self.embedding_dim = self.output_dim = embedding_dim
        self.num_layers = num_layers
        self.layer_combination = layer_combination
        self.include_input = include_input
        self.init = init
        self.user_embedding = nn.Parameter(torch.empty(num_users, embedding_dim))
        self.item_embedding = nn.Parameter(torch.empty(num_items, embedding_dim))
        self.reset_parameters()

        indices, values, shape = normalized_bipartite_adjacency(train_pairs, num_users, num_items)
        adjacency = torch.sparse_coo_tensor(indices, values.float(), tuple(shape), check_invariants=True).coalesce()
        # Non-persistent: derived from the training pairs the constructor gets anyway, and
        # sparse tensors then never enter a (weights_only) checkpoint.
        self.register_buffer("adjacency", adjacency, persistent=False)
        self.register_buffer("adjacency_t", adjacency.t().coalesce(), persistent=False)

    def reset_parameters(self) -> None:
        """Re-draw the ID embeddings (LightGCN: ``N(0, 0.1^2)``; LightGCL/SimGCL: Xavier-uniform)."""
        for table in (self.user_embedding, self.item_embedding):
            if self.init == "normal":
                nn.init.normal_(table, std=0.1)
            else:
                nn.init.xavier_uniform_(table)

    def normalized_adjacency(self) -> torch.Tensor:
        """The normalised ``[U, I]`` adjacency ``Ã`` (sparse COO, coalesced, on the module's device)."""
        return self.adjacency

    @staticmethod
    def _drop(adjacency: torch.Tensor, rate: float) -> torch.Tensor:
        if rate == 0.0:
            return adjacency
        values = F.dropout(adjacency.values(), p=rate, training=True)  # zeroes entries, scales the rest by 1/(1-p)
        return torch.sparse_coo_tensor(
            adjacency.indices(), values, adjacency.shape, is_coalesced=True, check_invariants=False
        )

    def layers(
        self, edge_dropout: float = 0.0, perturb: Perturb | None = None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Every layer's embeddings: ``([E_u^(0), ..., E_u^(L)], [E_i^(0), ..., E_i^(L)])``.

        Args:
            edge_dropout: the rate of LightGCL/SGL sparse edge dropout, drawn anew for each
                layer and direction (default 0: none).
            perturb: applied to each propagated layer ``l >= 1`` (users and items
                separately, row-wise noise such as SimGCL's); the perturbed layer is what
                layer ``l + 1`` propagates. Layer 0 is never perturbed.

        Returns:
            Two lists of ``L + 1`` tensors, ``[U, D]`` and ``[I, D]``.
        """
        if not 0.0 <= edge_dropout < 1.0:
            raise ValueError(f"edge_dropout: expected a rate in [0, 1), got {edge_dropout}")
        users, items = [self.user_embedding], [self.item_embedding]
        # Sparse products stay in the embeddings' precision: autocast would run them in
        # bf16/fp16 against a float32 sparse matrix, which their backward rejects.
        with torch.autocast(self.user_embedding.device.type, enabled=False):
            for _ in range(self.num_layers):
                next_users = torch.sparse.mm(self._drop(self.adjacency, edge_dropout), items[-1])
                next_items = torch.sparse.mm(self._drop(self.adjacency_t, edge_dropout), users[-1])
                if perturb is not None:
                    next_users, next_items = perturb(next_users), perturb(next_items)
                users.append(next_users)
                items.append(next_items)
        return users, items

    def combine(
        self, layers: list[torch.Tensor], *, layer_combination: str | None = None, include_input: bool | None = None
    ) -> torch.Tensor:
        """Combine one side's layers (``None`` settings: the module's own)."""
        combination = self.layer_combination if layer_combination is None else layer_combination
        if combination not in LAYER_COMBINATIONS:
            raise ValueError(f"layer_combination: expected one of {list(LAYER_COMBINATIONS)}, got {combination!r}")
        keep = self.include_input if include_input is None else include_input
        chosen = layers if keep else layers[1:]
        if not chosen:
            raise ValueError("LightGCN: include_input=False needs num_layers >= 1 (no layer would be left)")
        total = torch.stack(chosen).sum(0)
        return total / len(chosen) if combination == "mean" else total

    def propagate(
        self,
        edge_dropout: float = 0.0,
        perturb: Perturb | None = None,
        *,
        layer_combination: str | None = None,
        include_input: bool | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer-combined embeddings ``(users [U, D], items [I, D])``.

        Args:
            edge_dropout: sparse edge-dropout rate (see :meth:`layers`).
            perturb: per-layer hook (see :meth:`layers`).
            layer_combination: ``"mean"`` or ``"sum"``; ``None``: the module's setting.
            include_input: whether layer 0 counts; ``None``: the module's setting.
        """
        user_layers, item_layers = self.layers(edge_dropout, perturb)
        options = {"layer_combination": layer_combination, "include_input": include_input}
        return self.combine(user_layers, **options), self.combine(item_layers, **options)

    def forward(self, users: torch.Tensor) -> torch.Tensor:
        """The propagated embeddings ``[B, D]`` of ``users [B]`` (no dropout, no noise)."""
        return self.propagate()[0][users]

    def extra_repr(self) -> str:
        return (
            f"num_users={self.num_users}, num_items={self.num_items}, embedding_dim={self.embedding_dim}, "
            f"num_layers={self.num_layers}, layer_combination={self.layer_combination!r}, "
            f"include_input={self.include_input}, init={self.init!r}, edges={self.adjacency._nnz()}"
        )

"""Graph neural network encoders: GCN, GAT and GIN stacks from torch_geometric.

Every graph method here encodes a :class:`torch_geometric.data.Data` (``x [N, F]``,
``edge_index [2, E]``, optional ``edge_weight [E]``) to node embeddings ``[N, D]``;
graph-level methods pool those with :func:`graph_readout`. The stacks follow the
encoders of the papers they serve:

- ``gcn``: GRACE (Zhu et al., 2020) and POT (Yu et al., 2023): ``num_layers`` GCNConv
  layers, hidden width ``2 * output_dim``, an activation after every layer. POT's bound
  propagation reads the layers' weights through :meth:`GNNEncoder.gcn_layers`, which
  needs ReLU.
- ``gat``: GATConv layers with ``heads`` attention heads (concatenated, so the width
  stays ``hidden_dim``).
- ``gin``: GIN (Xu et al., 2019) with a two-layer MLP per layer, the encoder of GraphCL
  and D-SLA.

``batch_norm=True`` adds BGRL's batch norm after each convolution (before the activation).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

CONVS = ("gcn", "gat", "gin")
ACTIVATIONS = ("relu", "prelu", "elu")


def _activation(name: str, width: int) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "prelu":
        return nn.PReLU(width)
    if name == "elu":
        return nn.ELU()
    raise ValueError(f"activation: expected one of {list(ACTIVATIONS)}, got {name!r}")


def graph_inputs(data: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(x, edge_index, edge_weight)`` of a PyG ``Data`` (or an ``(x, edge_index[, edge_weight])`` tuple)."""
    if isinstance(data, (tuple, list)):
        if len(data) not in (2, 3):
            raise ValueError(f"graph input: expected (x, edge_index[, edge_weight]), got a tuple of {len(data)}")
        x, edge_index = data[0], data[1]
        edge_weight = data[2] if len(data) == 3 else None
    else:
        x = getattr(data, "x", None)
        edge_index = getattr(data, "edge_index", None)
        edge_weight = getattr(data, "edge_weight", None)
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        raise ValueError(f"graph input: expected node features x of shape [N, F], got {getattr(x, 'shape', x)!r}")
    if not isinstance(edge_index, torch.Tensor) or edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(
            f"graph input: expected edge_index of shape [2, E], got {getattr(edge_index, 'shape', edge_index)!r}"
        )
    return x, edge_index, edge_weight


class GNNEncoder(nn.Module):
    """A stack of graph convolutions mapping node features to node embeddings.

    Args:
        in_channels: node feature width ``F``.
        output_dim: embedding width ``D`` (GRACE: 128).
        hidden_dim: width of the inner layers; default ``2 * output_dim`` (GRACE).
        num_layers: convolutions (GRACE and BGRL: 2; GIN for graphs: 3-5).
        conv: ``gcn``, ``gat`` or ``gin``.
        activation: ``relu`` (GRACE, POT), ``prelu`` (BGRL) or ``elu`` (GAT).
        heads: attention heads of ``gat`` layers (concatenated).
        batch_norm: batch norm after each convolution (BGRL).
        dropout: dropout on the input of every convolution after the first.

    Example:
        >>> encoder = GNNEncoder(16, output_dim=32)
        >>> x, edge_index = torch.randn(5, 16), torch.tensor([[0, 1, 2], [1, 2, 3]])
        >>> encoder((x, edge_index)).shape
        torch.Size([5, 32])
    """

    def __init__(
        self,
        in_channels: int,
        *,
        output_dim: int = 128,
        hidden_dim: int | None = None,
        num_layers: int = 2,
        conv: str = "gcn",
        activation: str = "relu",
        heads: int = 4,
        batch_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        from torch_geometric.nn import GATConv, GCNConv, GINConv

        if conv not in CONVS:
            raise ValueError(f"GNNEncoder: expected conv in {list(CONVS)}, got {conv!r}")
        if num_layers < 1:
            raise ValueError(f"GNNEncoder: expected num_layers >= 1, got {num_layers}")
        if in_channels < 1 or output_dim < 1:
            raise ValueError(
                f"GNNEncoder: expected positive in_channels and output_dim, got {in_channels}, {output_dim}"
            )
        hidden_dim = 2 * output_dim if hidden_dim is None else hidden_dim
        if conv == "gat" and hidden_dim % heads:
            raise ValueError(f"GNNEncoder: gat needs hidden_dim divisible by heads, got {hidden_dim} and {heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"GNNEncoder: expected dropout in [0, 1), got {dropout}")
        _activation(activation, 1)  # validate the name before building layers
        self.conv, self.activation_name = conv, activation
        self.in_channels, self.output_dim, self.num_layers = in_channels, output_dim, num_layers
        widths = [in_channels] + [hidden_dim] * (num_layers - 1) + [output_dim]
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        self.activations = nn.ModuleList()
        for width_in, width_out in zip(widths[:-1], widths[1:]):
            if conv == "gcn":
                layer: nn.Module = GCNConv(width_in, width_out)
            elif conv == "gat":
                # The last layer averages its heads so the output width is exactly output_dim.
                last = width_out == output_dim and len(self.convs) == num_layers - 1
                layer = (GATConv(width_in, width_out, heads=heads, concat=False) if last
                         else GATConv(width_in, width_out // heads, heads=heads))  # fmt: skip
            else:
                mlp = nn.Sequential(nn.Linear(width_in, width_out), nn.ReLU(), nn.Linear(width_out, width_out))
                layer = GINConv(mlp, train_eps=False)
            self.convs.append(layer)
            self.norms.append(nn.BatchNorm1d(width_out) if batch_norm else nn.Identity())
            self.activations.append(_activation(activation, width_out))
        self.dropout = dropout

    def forward(self, data: Any) -> torch.Tensor:
        """Node embeddings ``[N, output_dim]`` of a ``Data`` or an ``(x, edge_index[, edge_weight])`` tuple."""
        x, edge_index, edge_weight = graph_inputs(data)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"GNNEncoder: expected {self.in_channels} node features, got {x.shape[1]}")
        h = x.float()
        for depth, (conv, norm, activation) in enumerate(zip(self.convs, self.norms, self.activations)):
            if depth and self.dropout:
                h = nn.functional.dropout(h, self.dropout, self.training)
            if self.conv == "gcn":
                h = conv(h, edge_index, edge_weight)
            else:  # GAT and GIN take no edge weights
                h = conv(h, edge_index)
            h = activation(norm(h))
        return h

    def gcn_layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``[(weight [out, in], bias [out]), ...]`` of a ReLU GCN without batch norm (POT's bound needs them)."""
        if self.conv != "gcn" or self.activation_name != "relu":
            raise ValueError(
                f"gcn_layers: POT's bound is derived for a ReLU GCN, got conv={self.conv!r}, "
                f"activation={self.activation_name!r}"
            )
        if any(not isinstance(norm, nn.Identity) for norm in self.norms):
            raise ValueError("gcn_layers: POT's bound does not cover batch norm; use batch_norm=False")
        return [(conv.lin.weight, conv.bias) for conv in self.convs]


def graph_readout(
    h: torch.Tensor,
    batch: torch.Tensor | None,
    *,
    num_graphs: int | None = None,
    node_mask: torch.Tensor | None = None,
    mode: str = "sum",
) -> torch.Tensor:
    """Pool node embeddings ``[N, D]`` to one row per graph ``[G, D]`` (GraphCL/GIN: sum).

    Args:
        h: node embeddings.
        batch: graph id of each node ``[N]`` (``None``: one graph).
        num_graphs: the number of graphs ``G`` (default ``batch.max() + 1``).
        node_mask: ``[N]`` bool, nodes to pool (views that drop nodes mark the dropped ones False).
        mode: ``sum`` or ``mean``.
    """
    if mode not in ("sum", "mean"):
        raise ValueError(f"graph_readout: expected mode 'sum' or 'mean', got {mode!r}")
    if batch is None:
        batch = torch.zeros(h.shape[0], dtype=torch.long, device=h.device)
    if num_graphs is None:
        num_graphs = int(batch.max()) + 1 if batch.numel() else 0
    weight = torch.ones(h.shape[0], 1, dtype=h.dtype, device=h.device)
    if node_mask is not None:
        weight = node_mask.to(h.dtype).unsqueeze(1)
    pooled = torch.zeros(num_graphs, h.shape[1], dtype=h.dtype, device=h.device).index_add_(0, batch, h * weight)
    if mode == "mean":
        counts = torch.zeros(num_graphs, 1, dtype=h.dtype, device=h.device).index_add_(0, batch, weight)
        pooled = pooled / counts.clamp_min(1.0)
    return pooled

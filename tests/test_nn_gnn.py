"""GNN encoders: shapes, the GCN layers POT reads, readout, and clear errors."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("torch_geometric")

from torch_geometric.data import Batch as PyGBatch  # noqa: E402
from torch_geometric.data import Data  # noqa: E402
from torch_geometric.nn import GCNConv  # noqa: E402

from contrastkit.nn.gnn import GNNEncoder, graph_readout  # noqa: E402
from contrastkit.nn.registry import build_encoder  # noqa: E402


def _graph(nodes: int = 6, features: int = 5) -> Data:
    generator = torch.Generator().manual_seed(0)
    edge_index = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])
    return Data(x=torch.randn(nodes, features, generator=generator), edge_index=edge_index)


@pytest.mark.parametrize("conv", ["gcn", "gat", "gin"])
def test_encoders_map_nodes_to_output_dim(conv: str) -> None:
    encoder = build_encoder(conv, in_channels=5, output_dim=8, hidden_dim=16)
    out = encoder(_graph())
    assert out.shape == (6, 8) and encoder.output_dim == 8
    out.sum().backward()
    assert all(p.grad is not None for p in encoder.parameters() if p.requires_grad)


def test_gcn_layers_reproduce_the_forward_pass() -> None:
    # POT propagates bounds through exactly these weights: relu(Â h W^T + b) per layer.
    torch.manual_seed(0)
    encoder = GNNEncoder(5, output_dim=4, hidden_dim=7, num_layers=2)
    data = _graph()
    h = data.x
    for weight, bias in encoder.gcn_layers():
        conv = GCNConv(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            conv.lin.weight.copy_(weight)
            conv.bias.copy_(bias)
        h = torch.relu(conv(h, data.edge_index))
    torch.testing.assert_close(h, encoder(data))


def test_gcn_layers_refuse_encoders_the_bound_does_not_cover() -> None:
    with pytest.raises(ValueError, match="ReLU GCN"):
        GNNEncoder(5, conv="gin").gcn_layers()
    with pytest.raises(ValueError, match="batch norm"):
        GNNEncoder(5, batch_norm=True).gcn_layers()


def test_graph_readout_sums_and_means_per_graph_with_masks() -> None:
    h = torch.arange(12.0).reshape(6, 2)
    batch = torch.tensor([0, 0, 0, 1, 1, 1])
    mask = torch.tensor([True, False, True, True, True, False])
    torch.testing.assert_close(graph_readout(h, batch), torch.stack([h[:3].sum(0), h[3:].sum(0)]))
    torch.testing.assert_close(graph_readout(h, batch, node_mask=mask, mode="mean"),
                               torch.stack([(h[0] + h[2]) / 2, (h[3] + h[4]) / 2]))


def test_gin_on_a_batch_of_graphs_is_per_graph() -> None:
    # Graph-level encoders see disjoint unions: one graph's output must not depend on another's.
    torch.manual_seed(0)
    encoder = GNNEncoder(5, conv="gin", output_dim=4, num_layers=3)
    first, second = _graph(), _graph()
    second.x = second.x * 3
    together = encoder(PyGBatch.from_data_list([first, second]))
    torch.testing.assert_close(together[:6], encoder(first))


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="conv"):
        GNNEncoder(5, conv="sage")
    with pytest.raises(ValueError, match="activation"):
        GNNEncoder(5, activation="tanh")
    encoder = GNNEncoder(5)
    with pytest.raises(ValueError, match="expected 5 node features"):
        encoder((torch.randn(3, 4), torch.zeros(2, 0, dtype=torch.long)))
    with pytest.raises(ValueError, match=r"edge_index of shape \[2, E\]"):
        encoder((torch.randn(3, 5), torch.zeros(3, 2, dtype=torch.long)))

"""Graphs: one large graph (node level) and sets of small graphs (graph level), with graph views.

Both need the optional ``graph`` extra (torch-geometric) for their views and encoders;
``contrastkit list`` says so when it is missing.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from contrastkit.data.registry import DatasetSplits
from contrastkit.eval.protocols.graph import GraphSetProtocol, NodeGraphProtocol
from contrastkit.modalities.base import Modality


class _GraphViews(Modality):
    """What node- and graph-level data share: the graph views and the node-feature width."""

    def encoder_arguments(self, splits: DatasetSplits) -> dict[str, Any]:
        return {"in_channels": splits.input_shape[0]}

    def build_views(self, options: dict[str, Any], splits: DatasetSplits, encoder: nn.Module) -> tuple[nn.Module, ...]:
        from contrastkit.views.graph import build_graph_views  # needs torch-geometric

        options = dict(options)
        return build_graph_views(options.pop("preset", "none"), **options)

    def view_presets(self) -> list[str]:
        try:
            from contrastkit.views.graph import graph_view_preset_names
        except ImportError:
            return ["(pip install 'contrastkit[graph]')"]
        return graph_view_preset_names()


class NodeGraphModality(_GraphViews):
    """One large graph at node level: neighbour-sampled batches, a node-classification probe and link prediction."""

    name = "graph"
    description = "one large graph, node level: neighbour-sampled batches, node probe + link prediction"
    protocol = NodeGraphProtocol


class GraphSetModality(_GraphViews):
    """A set of small graphs at graph level: graph views, pooled graph embeddings, kNN + linear probe."""

    name = "graphs"
    description = "a set of small graphs, graph level: pooled embeddings, kNN + linear probe"
    protocol = GraphSetProtocol

"""PyG objects you already have, as contrastkit graph splits: one ``Data`` graph, or a graph set.

- :func:`node_splits_from_pyg`: one ``torch_geometric.data.Data`` graph (``x``, ``edge_index``,
  optional node labels ``y``) for the node-level methods (GRACE, BGRL, D-SLA): it becomes a
  :class:`~contrastkit.data.graph_source.GraphSource` and goes through the same
  :func:`~contrastkit.data.graph.node_graph_splits` as ``graph:PATH`` folders and the Debian
  graph (undirected, held-out links, GRACE's seeded node split, neighbour-sampled batches).
- :func:`graph_set_splits_from_pyg`: a set of small graphs (an ``InMemoryDataset`` such as
  ``TUDataset``, or any sequence of ``Data``) with one integer ``y`` per graph, for the
  graph-level methods (GraphCL): :class:`~contrastkit.data.graph_bank.GraphSetDataset` train
  and test splits (a seeded, class-stratified split, or your own test set).

Register the result with :func:`~contrastkit.data.registry.register_splits` to train on it
by name. Nothing here downloads: build the objects however you like (PyG's dataset classes
download only when you construct them with a root that lacks the files).

Example:
    >>> from torch_geometric.datasets import KarateClub
    >>> splits = node_splits_from_pyg(KarateClub()[0], train_fraction=0.5)
    >>> splits.modality, splits.num_classes
    ('graph', 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from contrastkit.data.graph import DEFAULT_NUM_NEIGHBORS, node_graph_splits
from contrastkit.data.graph_source import GraphSource
from contrastkit.data.registry import DatasetSplits
from contrastkit.data.splits import split_indices, test_size_from_fraction

__all__ = ["graph_set_splits_from_pyg", "node_splits_from_pyg"]


def _data_class() -> type:
    try:
        from torch_geometric.data import Data
    except ImportError as error:  # pragma: no cover - the graph extra is installed by make
        raise ImportError("PyG graphs need torch-geometric: pip install 'contrastkit[graph]'") from error
    return Data


def node_splits_from_pyg(
    data: Any,
    *,
    class_names: Sequence[str] | None = None,
    name: str = "",
    num_neighbors: Sequence[int] = DEFAULT_NUM_NEIGHBORS,
    train_fraction: float = 0.1,
    val_fraction: float = 0.1,
    link_val_fraction: float = 0.05,
    link_test_fraction: float = 0.1,
    seed: int = 0,
) -> DatasetSplits:
    """One PyG ``Data`` graph as node-level splits (``modality="graph"``).

    Self loops and repeated edges are dropped (the graph is made undirected anyway); ``y``
    may be ``[N]`` or ``[N, 1]`` integer class ids, ``-1`` marking an unlabelled node.

    Args:
        data: a ``torch_geometric.data.Data`` with float ``x [N, F]`` and ``edge_index [2, E]``.
        class_names: names of the class ids; default ``class-0``, ``class-1``, ...
        name: the graph's name in error messages and reports (default: the name it is registered under).
        num_neighbors: neighbours sampled per hop for a training batch (``-1``: all).
        train_fraction, val_fraction: labelled nodes in the probe's train and validation split.
        link_val_fraction, link_test_fraction: edges held out for link prediction.
        seed: the seed of the node and edge splits.

    Raises:
        ValueError: for something that is not a ``Data``, a graph without ``x`` or ``edge_index``,
            multi-label or float ``y``, or a malformed graph (the field named).
    """
    graph_class = _data_class()
    if not isinstance(data, graph_class):
        raise ValueError(f"node_splits_from_pyg: expected a torch_geometric Data graph, got {type(data).__name__} "
                         "(for a dataset object, pass dataset[0] for its graph)")
    if getattr(data, "x", None) is None:
        raise ValueError("node_splits_from_pyg: the graph has no node features x; node-level methods need x [N, F] "
                         "(one-hot node ids, torch.eye(num_nodes), where there are none)")
    if getattr(data, "edge_index", None) is None:
        raise ValueError("node_splits_from_pyg: the graph has no edge_index [2, E]")
    num_nodes = int(data.num_nodes)
    edges = data.edge_index.long()
    edges = edges[:, edges[0] != edges[1]]
    keys = torch.unique(edges[0] * num_nodes + edges[1])
    y = getattr(data, "y", None)
    if y is not None:
        if y.dim() == 2 and y.shape[1] == 1:
            y = y.reshape(-1)
        if y.dim() != 1 or y.is_floating_point():
            raise ValueError(f"node_splits_from_pyg: expected y as integer class ids [N] (-1 = unlabelled), got "
                             f"{y.dtype} of shape {tuple(y.shape)} (multi-label or regression targets are not class ids)")
        y = y.long()
    names = list(class_names) if class_names is not None else (
        None if y is None or not (y >= 0).any() else [f"class-{label}" for label in range(int(y.max()) + 1)])
    source = GraphSource(
        num_nodes=num_nodes, edge_index=torch.stack([keys // num_nodes, keys % num_nodes]),
        x=data.x.float(), y=y, class_names=names, name=name,
        description="a PyG Data graph (registered in Python)",
    ).validate()
    return node_graph_splits(source, num_neighbors=num_neighbors, train_fraction=train_fraction,
                             val_fraction=val_fraction, link_val_fraction=link_val_fraction,
                             link_test_fraction=link_test_fraction, seed=seed)


def _graph_list(graphs: Any, role: str) -> list[Any]:
    graph_class = _data_class()
    try:
        items = [graphs[index] for index in range(len(graphs))]
    except TypeError:
        raise ValueError(f"graph_set_splits_from_pyg: expected {role} as an InMemoryDataset or a sequence of Data, "
                         f"got {type(graphs).__name__}") from None
    if not items:
        raise ValueError(f"graph_set_splits_from_pyg: {role} holds no graphs")
    for position, graph in enumerate(items):
        if not isinstance(graph, graph_class):
            raise ValueError(f"graph_set_splits_from_pyg: {role} graph {position} is a {type(graph).__name__}, "
                             "expected a torch_geometric Data")
        if getattr(graph, "x", None) is None:
            raise ValueError(f"graph_set_splits_from_pyg: {role} graph {position} has no node features x; graph-level "
                             "encoders need x [n, F] (e.g. torch_geometric.transforms.Constant() or OneHotDegree)")
    widths = {int(graph.x.shape[1]) for graph in items}
    if len(widths) != 1:
        raise ValueError(f"graph_set_splits_from_pyg: {role} graphs have node features of different widths "
                         f"{sorted(widths)}; expected one F for every graph")
    return items


def graph_set_splits_from_pyg(
    graphs: Any,
    test: Any = None,
    *,
    class_names: Sequence[str] | None = None,
    test_fraction: float = 0.3,
    seed: int = 0,
) -> DatasetSplits:
    """A set of PyG graphs (``InMemoryDataset`` or a sequence of ``Data``) as graph-level splits.

    Args:
        graphs: the training graphs (each with ``x``; one integer ``y`` each for labels).
        test: the test graphs; ``None`` holds out ``test_fraction`` of ``graphs`` (seeded, class-stratified).
        class_names: names of the graph classes; default ``class-0``, ``class-1``, ...
        test_fraction: the fraction held out when ``test`` is not given.
        seed: the seed of that split.

    Returns:
        :class:`~contrastkit.data.graph_bank.GraphSetDataset` splits, ``modality="graphs"``.

    Raises:
        ValueError: for something that is not a set of ``Data``, a graph without ``x``, node
            features of different widths, or a ``y`` that is not one integer per graph.
    """
    from contrastkit.data.graph_bank import GraphSetDataset

    items = _graph_list(graphs, "graphs")
    if test is None:
        train_set = GraphSetDataset(items)
        labels = None if train_set.labels is None else train_set.labels.numpy()
        size = test_size_from_fraction(len(items), test_fraction, what="graph_set_splits_from_pyg")
        train_rows, test_rows = split_indices(len(items), labels, test_size=size, seed=seed)
        train_set, test_set = train_set.subset(train_rows.tolist()), train_set.subset(test_rows.tolist())
    else:
        train_set, test_set = GraphSetDataset(items), GraphSetDataset(_graph_list(test, "test"))
        if train_set.num_features != test_set.num_features:
            raise ValueError(f"graph_set_splits_from_pyg: train graphs have {train_set.num_features} node features "
                             f"and test graphs {test_set.num_features}; expected the same F")
    if (train_set.labels is None) != (test_set.labels is None):
        raise ValueError("graph_set_splits_from_pyg: train and test graphs must both carry y (or neither)")
    num_classes = 0 if train_set.labels is None else max(train_set.num_classes, test_set.num_classes)
    names = list(class_names) if class_names is not None else (
        [f"class-{label}" for label in range(num_classes)] if num_classes else None)
    return DatasetSplits(train=train_set, test=test_set, num_classes=num_classes,  # type: ignore[arg-type]
                         input_shape=(train_set.num_features,), modality="graphs", class_names=names,
                         description="a set of PyG graphs (registered in Python)")

"""Graph datasets for training and evaluation: node-level graphs, graph sets and interaction logs.

Three shapes of graph data, three modalities (``DatasetSplits.modality``):

- ``graph``: one large graph, node-level methods (GRACE, BGRL, D-SLA). ``train`` is a
  :class:`NodeDataset`: its rows are nodes, and a batch of rows is the neighbour-sampled
  subgraph around them (the seeds are its first ``batch_size`` nodes), so a 63k-node graph
  trains in mini-batches on a laptop. ``test`` is a :class:`GraphTask`: the message-passing
  graph, a fixed seeded node split for the classification probe and held-out edges for link
  prediction. The held-out edges are removed from the graph that training and evaluation
  see (transductive node split, inductive edges).
- ``graphs``: a set of small graphs, graph-level methods (GraphCL); see
  :mod:`contrastkit.data.graph_bank`.
- ``interactions``: a user-item log (LightGCN, SimGCL, LightGCL); see
  :mod:`contrastkit.data.interactions`.

Registered here: ``debian-packages`` (the Debian package dependency graph, section labels),
``debian-tags`` (packages x debtags for recommendation), ``karate-club``, ``synthetic-graphs``,
and the prefixes ``graph:PATH`` (a folder with an edge list, see
:func:`contrastkit.data.graph_files.load_graph_folder`) and ``interactions:PATH`` (a CSV/TSV
log of user,item pairs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from contrastkit.data.batch import Batch
from contrastkit.data.graph_source import GraphSource
from contrastkit.data.registry import (
    DatasetSplits,
    register_dataset,
    register_dataset_prefix,
)

#: Neighbours sampled per hop for node-level training (GraphSAGE's 2-hop default scaled down).
DEFAULT_NUM_NEIGHBORS = (10, 10)


def _graph_modules() -> None:
    try:
        import torch_geometric  # noqa: F401
    except ImportError as error:  # pragma: no cover - the graph extra is installed by make
        raise ImportError(
            "graph datasets need torch-geometric: pip install 'contrastkit[graph]'"
        ) from error


class NodeDataset:
    """Nodes of one graph as training rows; a batch is their neighbour-sampled subgraph.

    ``__getitems__(indices)`` samples ``num_neighbors[h]`` incoming neighbours per node at
    hop ``h`` (``-1``: all) around the seed nodes ``nodes[indices]`` and returns
    ``Batch(inputs=Data, labels=y[seeds] or None, index=seeds)``; the ``Data`` has the
    seeds as its first ``batch_size`` nodes, ``n_id`` (global ids) and local ``edge_index``.
    Sampling draws from torch's global RNG, which the trainer seeds and checkpoints.

    Args:
        graph: the graph (``x``, ``edge_index``, optional ``y``).
        num_neighbors: neighbours per hop; one entry per message-passing layer.
        nodes: the node ids that are rows (default: every node).
    """

    def __init__(self, graph: Any, num_neighbors: Sequence[int] = DEFAULT_NUM_NEIGHBORS,
                 nodes: torch.Tensor | None = None) -> None:
        from contrastkit.data.neighbor_sampler import NeighborSampler

        if not num_neighbors or any(int(k) == 0 or int(k) < -1 for k in num_neighbors):
            raise ValueError(f"num_neighbors: expected positive counts or -1 (all) per hop, got {list(num_neighbors)}")
        self.graph = graph
        self.num_neighbors = [int(k) for k in num_neighbors]
        self.nodes = torch.arange(graph.num_nodes) if nodes is None else nodes.long()
        self.sampler = NeighborSampler(graph.edge_index, graph.num_nodes, self.num_neighbors, x=graph.x)
        self.labels = getattr(graph, "y", None)

    def __len__(self) -> int:
        return int(self.nodes.numel())

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        seeds = self.nodes[torch.as_tensor(list(indices), dtype=torch.long)]
        subgraph = self.sampler.sample(seeds)
        labels = None if self.labels is None else self.labels[seeds]
        return Batch(inputs=subgraph, labels=labels, index=seeds)


@dataclass
class GraphTask:
    """What node-level evaluation needs: the graph, a node split and held-out edges.

    Attributes:
        graph: the message-passing graph (held-out edges removed), with ``x`` and ``y``.
        train_idx, val_idx, test_idx: the fixed seeded node split of the classification probe
            (labelled nodes only).
        links: held-out edges and sampled non-edges for link prediction
            (:class:`contrastkit.data.graph_splits.EdgeSplit`), or ``None``.
        num_classes: label classes (0 when unlabelled).
    """

    graph: Any
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    test_idx: torch.Tensor
    links: Any
    num_classes: int

    @property
    def labels(self) -> torch.Tensor | None:
        return getattr(self.graph, "y", None)

    def __len__(self) -> int:
        return int(self.test_idx.numel())


def node_graph_splits(
    source: GraphSource,
    *,
    num_neighbors: Sequence[int] = DEFAULT_NUM_NEIGHBORS,
    train_fraction: float = 0.1,
    val_fraction: float = 0.1,
    link_val_fraction: float = 0.05,
    link_test_fraction: float = 0.1,
    seed: int = 0,
) -> DatasetSplits:
    """Turn a :class:`GraphSource` into node-level :class:`DatasetSplits` (modality ``graph``).

    The graph is made undirected (both directions of every edge, no self loops): a
    package's dependencies and its dependants both describe it. ``link_test_fraction`` of the
    undirected edges (and ``link_val_fraction`` for validation) are held out with as many
    sampled non-edges; the node split holds ``train_fraction`` / ``val_fraction`` of the
    labelled nodes for the probe (GRACE's 10%/10%/80% protocol), seeded by ``seed``.
    """
    _graph_modules()
    from torch_geometric.data import Data
    from torch_geometric.utils import remove_self_loops, to_undirected

    from contrastkit.data.graph_splits import node_split, split_edges

    source.validate()
    if source.x is None:
        raise ValueError(f"graph {source.name!r}: node-level methods need node features x; got none")
    edge_index, _ = remove_self_loops(source.edge_index.long())
    edge_index = to_undirected(edge_index, num_nodes=source.num_nodes)
    links = None
    if link_test_fraction > 0:
        links = split_edges(edge_index, source.num_nodes, val_fraction=link_val_fraction,
                            test_fraction=link_test_fraction, seed=seed, undirected=True)
        edge_index = links.train_edge_index
    y = source.y
    graph = Data(x=source.x.float(), edge_index=edge_index, y=y, num_nodes=source.num_nodes)
    num_classes = len(source.class_names) if source.class_names else (int(y.max()) + 1 if y is not None else 0)
    if y is not None:
        train_idx, val_idx, test_idx = node_split(source.num_nodes, y, train_fraction=train_fraction,
                                                  val_fraction=val_fraction, seed=seed)
    else:
        train_idx = val_idx = test_idx = torch.zeros(0, dtype=torch.long)
    task = GraphTask(graph, train_idx, val_idx, test_idx, links, num_classes)
    return DatasetSplits(
        train=NodeDataset(graph, num_neighbors), test=task, num_classes=num_classes,  # type: ignore[arg-type]
        input_shape=(int(source.x.shape[1]),), name=source.name, description=source.description,
        modality="graph", class_names=source.class_names,
    )


@register_dataset("debian-packages")
def debian_packages(
    data_dir: str | Path | None = None,
    *,
    feature_dim: int = 128,
    min_section_size: int = 100,
    num_neighbors: Sequence[int] = DEFAULT_NUM_NEIGHBORS,
    link_test_fraction: float = 0.1,
    seed: int = 0,
) -> DatasetSplits:
    """Debian bookworm's 63k binary packages, dependency edges, Section labels (snapshot shipped)."""
    from contrastkit.data.debian_packages import load_debian_packages

    source = load_debian_packages(data_dir, feature_dim=feature_dim, min_section_size=min_section_size, seed=0)
    return node_graph_splits(source, num_neighbors=num_neighbors, link_test_fraction=link_test_fraction, seed=seed)


@register_dataset("karate-club")
def karate_club(
    data_dir: str | Path | None = None,
    *,
    num_neighbors: Sequence[int] = (-1, -1),
    train_fraction: float = 0.5,
    val_fraction: float = 0.2,
    link_test_fraction: float = 0.1,
    seed: int = 0,
) -> DatasetSplits:
    """Zachary's karate club (PyG's embedded copy): 34 nodes, 4 communities."""
    del data_dir
    from contrastkit.data.graph_files import load_karate_club

    return node_graph_splits(load_karate_club(), num_neighbors=num_neighbors, train_fraction=train_fraction,
                             val_fraction=val_fraction, link_test_fraction=link_test_fraction, seed=seed)


def _graph_folder(
    path: str,
    data_dir: str | Path | None = None,
    *,
    undirected: bool = False,
    num_neighbors: Sequence[int] = DEFAULT_NUM_NEIGHBORS,
    train_fraction: float = 0.1,
    val_fraction: float = 0.1,
    link_test_fraction: float = 0.1,
    seed: int = 0,
) -> DatasetSplits:
    """Your own graph: a folder with edges.csv (+ features.npy, labels.txt, nodes.txt)."""
    del data_dir
    from contrastkit.data.graph_files import load_graph_folder

    source = load_graph_folder(path, undirected=undirected)
    return node_graph_splits(source, num_neighbors=num_neighbors, train_fraction=train_fraction,
                             val_fraction=val_fraction, link_test_fraction=link_test_fraction, seed=seed)


register_dataset_prefix("graph", _graph_folder)


@register_dataset("debian-tags")
def debian_tags(
    data_dir: str | Path | None = None, *, test_fraction: float = 0.2, seed: int = 0
) -> DatasetSplits:
    """Debian packages x debtags (30k tagged packages, 598 tags) for tag recommendation."""
    from contrastkit.data.debian_packages import load_debian_packages
    from contrastkit.data.interactions import interaction_splits

    source = load_debian_packages(data_dir, compute_features=False)
    if source.item_pairs is None or source.item_names is None:
        raise ValueError("debian-tags: the snapshot has no package-tag pairs; rebuild it")
    # Users are the packages that carry at least one tag, renumbered densely.
    packages, users = torch.unique(source.item_pairs[0], return_inverse=True)
    pairs = torch.stack([users, source.item_pairs[1]])
    names = [source.node_names[i] for i in packages.tolist()] if source.node_names else None
    return interaction_splits(
        pairs, int(packages.numel()), len(source.item_names), test_fraction=test_fraction, seed=seed,
        name="debian-tags", description="Debian packages x debtags", user_names=names, item_names=source.item_names,
    )


def _interaction_file(
    path: str, data_dir: str | Path | None = None, *, test_fraction: float = 0.2, seed: int = 0
) -> DatasetSplits:
    """Your own interaction log: a CSV/TSV of user,item pairs."""
    del data_dir
    from contrastkit.data.interactions import interaction_splits, load_interaction_file

    log = load_interaction_file(path)
    return interaction_splits(log.pairs, log.num_users, log.num_items, test_fraction=test_fraction, seed=seed,
                              name=f"interactions:{path}", description="user-item interactions",
                              user_names=log.user_names, item_names=log.item_names)


register_dataset_prefix("interactions", _interaction_file)


@register_dataset("synthetic-graphs")
def synthetic_graphs(
    data_dir: str | Path | None = None, *, num_graphs: int = 600, test_fraction: float = 0.3, seed: int = 0
) -> DatasetSplits:
    """A bank of small synthetic graphs (ER/BA/WS/SBM families) for graph-level methods."""
    del data_dir
    from contrastkit.data.graph_bank import GraphSetDataset, synthetic_graph_bank
    from contrastkit.data.splits import split_indices, test_size_from_fraction

    graphs = synthetic_graph_bank(num_graphs, seed=seed)
    labels = torch.tensor([int(graph.y) for graph in graphs])
    test_size = test_size_from_fraction(len(graphs), test_fraction, what="synthetic-graphs")
    train_rows, test_rows = split_indices(len(graphs), labels.numpy(), test_size=test_size, seed=seed)
    families = ["er", "ba", "ws", "sbm"]
    return DatasetSplits(
        train=GraphSetDataset([graphs[int(i)] for i in train_rows]),  # type: ignore[arg-type]
        test=GraphSetDataset([graphs[int(i)] for i in test_rows]),  # type: ignore[arg-type]
        num_classes=len(families), input_shape=(int(graphs[0].x.shape[1]),), modality="graphs",
        class_names=families,
    )

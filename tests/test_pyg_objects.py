"""PyG objects in Python: a ``Data`` graph (node level) and an ``InMemoryDataset`` (graph level).

The node-level path is checked against the built-in ``karate-club`` dataset, which reads the
same PyG graph through the edge-list source (same splits, same graph), and by training GRACE
on a registered ``Data``; the graph-level path on PyG's ``FakeDataset`` (an ``InMemoryDataset``
built in memory, nothing downloaded): every graph and label lands in one split, and GraphCL
trains on it by name.
"""

from __future__ import annotations

import pytest
import torch

from contrastkit.data import load_dataset, register_splits

pyg = pytest.importorskip("torch_geometric", reason="PyG objects need torch-geometric (the graph extra)")
from torch_geometric.data import Data  # noqa: E402
from torch_geometric.datasets import FakeDataset, KarateClub  # noqa: E402

from contrastkit.data.pyg import graph_set_splits_from_pyg, node_splits_from_pyg  # noqa: E402

REGISTERED = ("pyg-karate", "pyg-fake-graphs")


def teardown_module() -> None:
    """Take back the datasets this file registers, so that no other test sees them."""
    from contrastkit.data.registry import _REGISTRY as DATASETS

    for name in REGISTERED:
        if name in DATASETS:
            DATASETS.unregister(name)


def _run(recipe: str, tmp_path, *overrides: str) -> dict:
    from contrastkit.train.config import load_config
    from contrastkit.train.run import run

    config = load_config(recipe, [*overrides, "train.progress=false", "eval.baselines=false", "eval.plots=false"])
    return run(config, tmp_path / "run", verbose=False)[1]


def test_a_data_graph_gives_the_splits_the_builtin_karate_club_gives():
    options = {"train_fraction": 0.5, "val_fraction": 0.2, "link_test_fraction": 0.1, "seed": 3}
    data = KarateClub()[0]
    mine = node_splits_from_pyg(data, class_names=[f"community-{c}" for c in range(4)], num_neighbors=(-1, -1),
                                **options)
    builtin = load_dataset("karate-club", **options)
    assert (mine.modality, mine.num_classes, mine.input_shape) == ("graph", 4, (34,))
    assert mine.class_names == builtin.class_names
    for key in ("train_idx", "val_idx", "test_idx"):
        assert torch.equal(getattr(mine.test, key), getattr(builtin.test, key)), key
    assert torch.equal(mine.test.graph.edge_index, builtin.test.graph.edge_index)
    assert torch.equal(mine.test.links.test_pos, builtin.test.links.test_pos)
    assert torch.equal(mine.test.links.test_neg, builtin.test.links.test_neg)


def test_self_loops_duplicates_and_column_labels_are_accepted():
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3, 3], [1, 0, 0, 2, 3, 2, 0]])  # a duplicate and a self loop
    data = Data(x=torch.eye(4), edge_index=edge_index, y=torch.tensor([[0], [1], [-1], [1]]))
    splits = node_splits_from_pyg(data, link_test_fraction=0.0, train_fraction=0.34, val_fraction=0.33)
    graph = splits.test.graph
    assert graph.edge_index.shape[1] == 6 and not (graph.edge_index[0] == graph.edge_index[1]).any()
    assert splits.num_classes == 2 and splits.class_names == ["class-0", "class-1"]
    labelled = torch.cat([splits.test.train_idx, splits.test.val_idx, splits.test.test_idx]).sort().values
    assert labelled.tolist() == [0, 1, 3]  # node 2 is unlabelled (-1)


def test_grace_trains_on_a_registered_data_graph(tmp_path):
    register_splits("pyg-karate", node_splits_from_pyg(KarateClub()[0], train_fraction=0.5, val_fraction=0.2),
                    replace=True)
    metrics = _run("grace-debian", tmp_path, "data=pyg-karate", "train.steps=2", "train.batch_size=16",
                   "encoder.hidden_dim=16", "encoder.output_dim=8")
    assert metrics["dataset"] == "pyg-karate" and metrics["train"]["steps"] == 2
    assert 0.0 <= metrics["node_accuracy"] <= 1.0 and 0.0 <= metrics["link_auc"] <= 1.0
    assert metrics["eval_rows"]["test"] == 34 - 17 - 7  # GRACE's probe split of the 34 labelled nodes


def test_an_in_memory_dataset_splits_every_graph_once_and_trains_graphcl(tmp_path):
    dataset = FakeDataset(num_graphs=40, avg_num_nodes=12, num_channels=5, num_classes=3, task="graph")
    splits = graph_set_splits_from_pyg(dataset, test_fraction=0.25, seed=0)
    assert (splits.modality, splits.num_classes, splits.input_shape) == ("graphs", 3, (5,))
    assert len(splits.train) == 30 and len(splits.test) == 10
    signatures = {}
    for position in range(len(dataset)):
        graph = dataset[position]
        signatures[(graph.num_nodes, round(float(graph.x.sum()), 3))] = int(graph.y)
    seen = [(graph.num_nodes, round(float(graph.x.sum()), 3)) for graph in splits.train.graphs + splits.test.graphs]
    assert sorted(seen) == sorted(signatures)  # every graph once
    labels = torch.cat([splits.train.labels, splits.test.labels]).tolist()
    assert labels == [signatures[key] for key in seen]
    register_splits("pyg-fake-graphs", splits, replace=True)
    metrics = _run("graphcl-synthetic", tmp_path, "data=pyg-fake-graphs", "train.steps=2", "train.batch_size=8",
                   "eval.knn_k=3", "encoder.hidden_dim=16", "encoder.output_dim=16")
    assert metrics["eval_rows"] == {"train": 30, "test": 10} and 0.0 <= metrics["knn_top1"] <= 1.0


def _error(function, *args, **options) -> str:
    with pytest.raises(ValueError) as caught:
        function(*args, **options)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_bad_pyg_inputs_are_one_clear_line():
    assert "pass dataset[0]" in _error(node_splits_from_pyg, KarateClub())
    assert "no node features x" in _error(node_splits_from_pyg, Data(edge_index=torch.tensor([[0], [1]]), num_nodes=2))
    multi = Data(x=torch.eye(3), edge_index=torch.tensor([[0, 1], [1, 2]]), y=torch.rand(3, 2))
    assert "expected y as integer class ids" in _error(node_splits_from_pyg, multi)
    dangling = Data(x=torch.eye(3), edge_index=torch.tensor([[0, 1], [1, 7]]), num_nodes=3)
    assert "dangling endpoint" in _error(node_splits_from_pyg, dangling)
    graphs = [Data(x=torch.ones(3, 2), edge_index=torch.tensor([[0], [1]]), y=torch.tensor([0])),
              Data(x=torch.ones(3, 4), edge_index=torch.tensor([[0], [1]]), y=torch.tensor([1]))]
    assert "different widths [2, 4]" in _error(graph_set_splits_from_pyg, graphs)
    assert "graph 1 is a str" in _error(graph_set_splits_from_pyg, [graphs[0], "graph"])
    assert "no node features x" in _error(graph_set_splits_from_pyg, [Data(edge_index=torch.tensor([[0], [1]]))])

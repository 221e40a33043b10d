"""Graph datasets as the trainer sees them: node batches, the evaluation task, registered names."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("torch_geometric")

from contrastkit.data import load_dataset  # noqa: E402
from contrastkit.data.graph import GraphTask, NodeDataset, node_graph_splits  # noqa: E402
from contrastkit.data.graph_source import GraphSource  # noqa: E402
from contrastkit.train.loader import EpochBatches  # noqa: E402


def _ring(nodes: int = 40, features: int = 6) -> GraphSource:
    generator = torch.Generator().manual_seed(0)
    source = torch.arange(nodes)
    edge_index = torch.stack([source, (source + 1) % nodes])  # directed ring
    return GraphSource(num_nodes=nodes, edge_index=edge_index, x=torch.randn(nodes, features, generator=generator),
                       y=source % 3, class_names=["a", "b", "c"], name="ring")


def test_node_splits_hold_out_edges_from_the_training_graph_in_both_directions() -> None:
    splits = node_graph_splits(_ring(), link_test_fraction=0.2, link_val_fraction=0.1)
    assert splits.modality == "graph" and splits.num_classes == 3 and splits.input_shape == (6,)
    task = splits.test
    assert isinstance(task, GraphTask)
    train_pairs = {tuple(edge) for edge in task.graph.edge_index.T.tolist()}
    # The ring was given one direction per edge; the training graph stores both.
    assert all((b, a) in train_pairs for a, b in train_pairs)
    for held_out in (task.links.test_pos, task.links.val_pos):
        for a, b in held_out.T.tolist():
            assert (a, b) not in train_pairs and (b, a) not in train_pairs
    # Every original edge is either kept or held out.
    held = {frozenset(edge) for edge in torch.cat([task.links.test_pos, task.links.val_pos], 1).T.tolist()}
    kept = {frozenset(edge) for edge in train_pairs}
    assert len(held | kept) == 40 and not held & kept
    # The probe's node split is disjoint and covers the labelled nodes.
    rows = torch.cat([task.train_idx, task.val_idx, task.test_idx])
    assert rows.unique().numel() == rows.numel() == 40


def test_node_batches_put_the_seeds_first_and_come_from_the_training_graph() -> None:
    splits = node_graph_splits(_ring(), num_neighbors=[2, 2], link_test_fraction=0.2)
    dataset = splits.train
    assert isinstance(dataset, NodeDataset) and len(dataset) == 40
    torch.manual_seed(0)
    batch = EpochBatches(dataset, 8, seed=0).batch(0)
    data = batch.inputs
    assert data.batch_size == 8
    torch.testing.assert_close(data.n_id[:8], batch.index)
    torch.testing.assert_close(batch.labels, splits.test.graph.y[batch.index])
    torch.testing.assert_close(data.x, splits.test.graph.x[data.n_id])
    train_pairs = {tuple(edge) for edge in splits.test.graph.edge_index.T.tolist()}
    for local_source, local_target in data.edge_index.T.tolist():
        assert (int(data.n_id[local_source]), int(data.n_id[local_target])) in train_pairs


def test_batches_are_reproducible_from_the_global_seed() -> None:
    dataset = node_graph_splits(_ring(), num_neighbors=[1, 1]).train
    torch.manual_seed(3)
    first = dataset.__getitems__([0, 5, 9])
    torch.manual_seed(3)
    second = dataset.__getitems__([0, 5, 9])
    torch.testing.assert_close(first.inputs.edge_index, second.inputs.edge_index)
    torch.testing.assert_close(first.inputs.n_id, second.inputs.n_id)


def test_bad_neighbour_counts_and_featureless_graphs_are_refused() -> None:
    with pytest.raises(ValueError, match="num_neighbors"):
        node_graph_splits(_ring(), num_neighbors=[0, 3])
    source = _ring()
    source.x = None
    with pytest.raises(ValueError, match="node features"):
        node_graph_splits(source)


def test_registered_graph_datasets_load(tmp_path) -> None:
    karate = load_dataset("karate-club")
    assert karate.modality == "graph" and karate.test.graph.num_nodes == 34 and karate.num_classes == 4
    folder = tmp_path / "g"
    folder.mkdir()
    (folder / "edges.csv").write_text("".join(f"{i},{(i + 1) % 12}\n" for i in range(12)))
    np.save(folder / "features.npy", np.eye(12, dtype=np.float32))
    (folder / "labels.txt").write_text("".join(f"{'xy'[i % 2]}\n" for i in range(12)))
    own = load_dataset(f"graph:{folder}", link_test_fraction=0.2)
    assert own.class_names == ["x", "y"] and own.test.graph.num_nodes == 12
    (folder / "edges.csv").write_text("0,1\n1,99\n")
    with pytest.raises(ValueError, match="edges.csv"):
        load_dataset(f"graph:{folder}")
    graphs = load_dataset("synthetic-graphs", num_graphs=40)
    assert graphs.modality == "graphs" and len(graphs.train) + len(graphs.test) == 40

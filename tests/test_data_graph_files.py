"""GraphSource.validate, load_graph_folder (ids, names, header, features, labels, errors) and the karate club."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contrastkit.data.graph_files import load_graph_folder, load_karate_club
from contrastkit.data.graph_source import GraphSource


def _folder(tmp_path, **files):
    folder = tmp_path / "g"
    folder.mkdir()
    for name, content in files.items():
        name = name.replace("_", ".", 1) if name.count("_") == 1 else name
        if isinstance(content, np.ndarray):
            np.save(folder / name, content)
        else:
            (folder / name).write_text(content)
    return folder


def _edges(source: GraphSource) -> list[tuple[int, int]]:
    return [tuple(edge) for edge in source.edge_index.t().tolist()]


# ------------------------------------------------------------------------------------------ GraphSource


def _valid(**changes) -> GraphSource:
    fields = dict(num_nodes=4, edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]), x=torch.zeros(4, 2),
                  y=torch.tensor([0, 1, -1, 1]), class_names=["a", "b"], node_names=list("wxyz"),
                  item_pairs=torch.tensor([[0, 3], [1, 0]]), item_names=["i", "j"], edge_type=torch.tensor([0, 1, 0]))
    fields.update(changes)
    return GraphSource(**fields)


def test_validate_accepts_a_good_source():
    source = _valid()
    assert source.validate() is source
    assert (source.num_edges, source.num_classes) == (3, 2)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"edge_index": torch.tensor([[0, 1], [1, 4]])}, "dangling"),
        ({"edge_index": torch.tensor([[0, -1], [1, 2]])}, "dangling"),
        ({"edge_index": torch.tensor([[0, 1], [1, 1]]), "edge_type": None}, "self loops"),
        ({"edge_index": torch.tensor([[0, 0], [1, 1]]), "edge_type": None}, "duplicate"),
        ({"edge_index": torch.tensor([[0, 1, 2], [1, 2, 3]], dtype=torch.int32)}, "torch.long"),
        ({"edge_index": torch.tensor([0, 1, 2])}, r"shape \[2, E\]"),
        ({"x": torch.zeros(3, 2)}, "4 rows"),
        ({"x": torch.zeros(4, 2, dtype=torch.long)}, "float"),
        ({"y": torch.tensor([0, 1, 1])}, r"shape \[4\]"),
        ({"y": torch.tensor([0, 2, 1, 1])}, "class ids"),
        ({"y": torch.tensor([0, -2, 1, 1])}, "class ids"),
        ({"node_names": ["w"]}, "4 names"),
        ({"item_pairs": torch.tensor([[0, 4], [1, 0]])}, "node ids"),
        ({"item_pairs": torch.tensor([[0, 3], [1, 2]])}, "item ids"),
        ({"edge_type": torch.tensor([0, 1])}, "one per edge"),
        ({"num_nodes": -1}, "non-negative"),
    ],
)
def test_validate_rejects(changes, message):
    with pytest.raises(ValueError, match=message):
        _valid(**changes).validate()


# ------------------------------------------------------------------------------------------ graph folders


def test_integer_ids_with_header_comments_features_labels(tmp_path):
    folder = _folder(
        tmp_path,
        edges_csv="# a comment\nsource,target\n0,1\n1,2\n\n2,0\n1,2\n3,3\n",
        features_npy=np.arange(8, dtype=np.float64).reshape(4, 2),
        labels_txt="b\na\n\nb\n",
    )
    source = load_graph_folder(folder)
    assert source.num_nodes == 4  # from the features' rows: node 3 only has a self loop
    assert _edges(source) == [(0, 1), (1, 2), (2, 0)]
    assert source.x.dtype == torch.float32 and torch.equal(source.x, torch.arange(8.0).reshape(4, 2))
    assert source.class_names == ["a", "b"] and source.y.tolist() == [1, 0, -1, 1]
    assert source.node_names is None
    manifest = source.manifest
    assert manifest["header_line"] and manifest["self_loops_dropped"] == 1 and manifest["duplicate_edges_dropped"] == 1


def test_undirected_stores_both_directions(tmp_path):
    folder = _folder(tmp_path, edges_txt="0 1\n1 0\n1   2\n")
    source = load_graph_folder(folder, undirected=True)
    assert _edges(source) == [(0, 1), (1, 0), (1, 2), (2, 1)]
    assert _edges(load_graph_folder(folder)) == [(0, 1), (1, 0), (1, 2)]


def test_names_follow_nodes_txt_order(tmp_path):
    folder = _folder(
        tmp_path,
        edges_tsv="from\tto\nzeta\talpha\nalpha\tmid\n",
        nodes_txt="zeta\nalpha\nmid\nlonely\n",
        features_csv="f1,f2\n1,2\n3,4\n5,6\n7,8\n",
        labels_csv='10\n2\n"2"\n\n',
    )
    source = load_graph_folder(folder)
    assert source.node_names == ["zeta", "alpha", "mid", "lonely"] and source.num_nodes == 4
    assert _edges(source) == [(0, 1), (1, 2)]
    assert source.x[3].tolist() == [7.0, 8.0]
    assert source.class_names == ["2", "10"] and source.y.tolist() == [1, 0, 0, -1]  # integer order


def test_free_names_without_nodes_txt_are_sorted(tmp_path):
    source = load_graph_folder(_folder(tmp_path, edges_csv="src,dst\nbob,alice\ncarol,bob\n"))
    assert source.node_names == ["alice", "bob", "carol"]
    assert _edges(source) == [(1, 0), (2, 1)] and source.x is None and source.y is None


def test_integer_rows_into_nodes_txt(tmp_path):
    source = load_graph_folder(_folder(tmp_path, edges_csv="0,2\n2,1\n", nodes_txt="a\nb\nc\n"))
    assert _edges(source) == [(0, 2), (2, 1)] and source.node_names == ["a", "b", "c"]


def _error(tmp_path, **files):
    return load_graph_folder(_folder(tmp_path, **files))


@pytest.mark.parametrize(
    ("files", "error", "message"),
    [
        ({"edges_csv": "0,1\n1,5\n", "labels_txt": "a\nb\nc\n"}, ValueError, r"edges.csv line 2: dangling.*\b5\b.*0\.\.2"),
        ({"edges_csv": "a,b\nb,c\n", "nodes_txt": "a\nb\n"}, ValueError, r"edges.csv line 2: dangling.*'c'.*nodes.txt"),
        ({"edges_csv": "0,1\n", "features_npy": np.zeros((3, 2)), "labels_txt": "a\nb\n"}, ValueError,
         "3 rows.*2 rows"),
        ({"edges_csv": "a,b\n", "nodes_txt": "a\nb\n", "features_csv": "1\n2\n3\n"}, ValueError,
         r"features.csv: expected 2 rows.*got 3"),
        ({"edges_csv": "a,b\n", "nodes_txt": "a\nb\n", "labels_txt": "x\n"}, ValueError, r"labels.txt: expected 2 rows"),
        ({"edges_csv": "a,b\n", "nodes_txt": "a\nb\n", "features_csv": "1,2\n3,x\n"}, ValueError,
         r"features.csv line 2: expected numeric.*'x'"),
        ({"edges_csv": "a,b\n", "nodes_txt": "a\nb\n", "features_csv": "1,2\n3\n"}, ValueError,
         r"features.csv line 2: expected 2 values"),
        ({"edges_csv": "a,b\n", "nodes_txt": "a\nb\n", "features_csv": "1,2\n3,nan\n"}, ValueError,
         r"features.csv line 2: expected finite"),
        ({"edges_csv": "a,b\n", "nodes_txt": "a\nb\n", "features_npy": np.array([["a"], ["b"]])}, ValueError,
         "numeric features"),
        ({"edges_csv": "# only a comment\n\n"}, ValueError, "edges.csv: expected at least one edge"),
        ({"edges_csv": ""}, ValueError, "edges.csv: expected at least one edge"),
        ({"edges_csv": "0,1,2\n"}, ValueError, r"edges.csv line 1: expected 2 non-empty columns"),
        ({"edges_csv": "0,1\n", "edges_txt": "0 1\n"}, ValueError, "at most one of"),
        ({"edges_csv": "a,b\n", "features_npy": np.zeros((2, 1))}, ValueError, "no nodes.txt"),
        ({"edges_csv": "a,b\n", "nodes_txt": "a\na\n"}, ValueError, r"nodes.txt line 2: node 'a' repeats line 1"),
        ({"edges_csv": "x,1\n0,1\n1,2\n"}, ValueError, r"edges.csv line 1: expected an integer node id"),
        ({"nodes_txt": "a\n"}, FileNotFoundError, "expected an edge list"),
    ],
)
def test_errors_name_the_file_and_line(tmp_path, files, error, message):
    with pytest.raises(error, match=message):
        _error(tmp_path, **files)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="graph folder not found"):
        load_graph_folder(tmp_path / "nope")


# ------------------------------------------------------------------------------------------ karate club


def test_karate_club():
    source = load_karate_club()
    assert (source.num_nodes, source.num_edges, source.num_classes) == (34, 156, 4)
    assert torch.equal(source.x, torch.eye(34))
    assert torch.bincount(source.y).tolist() == [13, 12, 4, 5]
    edges = set(_edges(source))
    assert all((t, s) in edges for s, t in edges)  # both directions
    assert (0, 1) in edges and (33, 32) in edges

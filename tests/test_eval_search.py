"""DenseIndex: exact search equals torch top-k, approximate kinds find the neighbours, save/load, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from contrastkit.eval.search import DenseIndex


def _data(rows: int = 500, queries: int = 50, dim: int = 16, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(rows, dim, generator=generator), torch.randn(queries, dim, generator=generator)


def _ids(count: int) -> list[str]:
    return [f"doc-{i}" for i in range(count)]


@pytest.mark.parametrize("metric", ["ip", "l2"])
@pytest.mark.parametrize("normalize", [True, False])
def test_flat_equals_exact_torch_topk(metric, normalize):
    docs, queries = _data()
    index = DenseIndex.build(docs, _ids(len(docs)), kind="flat", metric=metric, normalize=normalize)
    scores, ids = index.search(queries, k=10)
    d, q = (F.normalize(docs, dim=1), F.normalize(queries, dim=1)) if normalize else (docs, queries)
    exact = q @ d.T if metric == "ip" else -torch.cdist(q, d).pow(2)
    top = exact.topk(10, dim=1)
    assert scores.shape == (50, 10) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, top.values.numpy(), rtol=1e-4, atol=1e-4)
    assert ids == [[f"doc-{j}" for j in row] for row in top.indices.tolist()]


def test_hnsw_recall_against_flat():
    docs, queries = _data(rows=2000, queries=100, dim=32)
    flat = DenseIndex.build(docs, _ids(2000), kind="flat")
    hnsw = DenseIndex.build(docs, _ids(2000), kind="hnsw", hnsw_m=16)
    _, exact_ids = flat.search(queries, 10)
    _, approx_ids = hnsw.search(queries, 10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx_ids, exact_ids)])
    assert recall >= 0.9


def test_ivf_finds_neighbours_and_respects_nprobe():
    docs, queries = _data(rows=1000, queries=50, dim=16)
    flat = DenseIndex.build(docs, _ids(1000), kind="flat")
    _, exact_ids = flat.search(queries, 10)
    full = DenseIndex.build(docs, _ids(1000), kind="ivf", ivf_lists=8, ivf_nprobe=8, seed=0)
    _, full_ids = full.search(queries, 10)
    assert full_ids == exact_ids  # visiting every list is exact
    default = DenseIndex.build(docs, _ids(1000), kind="ivf", seed=0)
    assert default.settings["ivf_lists"] == 32 and default.settings["ivf_nprobe"] == 6
    _, approx_ids = default.search(queries, 10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx_ids, exact_ids)])
    assert 0.3 <= recall <= 1.0


def test_k_capped_and_to_run():
    docs, queries = _data(rows=5, queries=3, dim=4)
    index = DenseIndex.build(docs.numpy(), _ids(5))  # numpy input works too
    scores, ids = index.search(queries, k=50)
    assert scores.shape == (3, 5) and all(len(row) == 5 for row in ids)
    assert np.all(np.diff(scores, axis=1) <= 1e-7)  # best first
    run = index.to_run(["a", "b", "c"], queries, k=2)
    assert list(run) == ["a", "b", "c"]
    assert list(run["b"]) == ids[1][:2]
    assert list(run["b"].values()) == pytest.approx(scores[1, :2].tolist())


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_save_load_round_trip(tmp_path, kind):
    docs, queries = _data(rows=300, queries=20, dim=8)
    index = DenseIndex.build(docs, _ids(300), kind=kind, metric="l2", ivf_lists=10)
    scores, ids = index.search(queries, 7)
    target = tmp_path / "nested" / "index"
    index.save(target)
    assert sorted(path.name for path in target.iterdir()) == ["ids.json", "index.faiss", "manifest.json"]
    assert [path.name for path in target.parent.iterdir()] == ["index"]  # no staging leftovers
    manifest = json.loads((target / "manifest.json").read_text())
    assert (manifest["kind"], manifest["metric"], manifest["format"]) == (kind, "l2", "contrastkit-dense-index")
    assert (manifest["dim"], manifest["count"], manifest["normalize"]) == (8, 300, True)
    loaded = DenseIndex.load(target)
    loaded_scores, loaded_ids = loaded.search(queries, 7)
    np.testing.assert_array_equal(loaded_scores, scores)
    assert loaded_ids == ids and loaded.kind == kind and loaded.settings == index.settings
    # saving again over an existing index replaces it whole
    smaller = DenseIndex.build(docs[:10], _ids(10), kind="flat")
    smaller.save(target)
    assert len(DenseIndex.load(target)) == 10
    assert [path.name for path in target.parent.iterdir()] == ["index"]


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no directory"):
        DenseIndex.load(tmp_path / "missing")
    docs, _ = _data(rows=20, dim=4)
    target = DenseIndex.build(docs, _ids(20)).save(tmp_path / "index")
    (target / "index.faiss").write_bytes(b"not a faiss index")
    with pytest.raises(ValueError, match="corrupt index.faiss"):
        DenseIndex.load(target)
    DenseIndex.build(docs, _ids(20)).save(target)
    (target / "ids.json").write_text(json.dumps(_ids(19)))
    with pytest.raises(ValueError, match="inconsistent"):
        DenseIndex.load(target)
    (target / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt manifest.json"):
        DenseIndex.load(target)
    (target / "ids.json").unlink()
    with pytest.raises(FileNotFoundError, match="ids.json"):
        DenseIndex.load(target)


def test_build_and_search_errors(tmp_path):
    docs, queries = _data(rows=10, dim=4)
    with pytest.raises(ValueError, match="at least one row"):
        DenseIndex.build(torch.zeros(0, 4), [])
    with pytest.raises(ValueError, match="unique ids"):
        DenseIndex.build(docs, ["same"] * 10)
    with pytest.raises(ValueError, match="expected 10 ids"):
        DenseIndex.build(docs, _ids(9))
    with pytest.raises(ValueError, match="kind"):
        DenseIndex.build(docs, _ids(10), kind="lsh")
    with pytest.raises(ValueError, match="metric"):
        DenseIndex.build(docs, _ids(10), metric="cosine")
    with pytest.raises(ValueError, match="finite"):
        DenseIndex.build(docs.masked_fill(docs > 1, float("nan")), _ids(10))
    index = DenseIndex.build(docs, _ids(10))
    with pytest.raises(ValueError, match="dimension D=4"):
        index.search(torch.randn(2, 5), 3)
    with pytest.raises(ValueError, match="positive integer"):
        index.search(queries[:, :4], 0)
    with pytest.raises(ValueError, match="query_ids"):
        index.to_run(["a"], queries[:2, :4], 3)
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        index.save(tmp_path / "precious")
    assert (tmp_path / "precious" / "notes.txt").read_text() == "keep me"

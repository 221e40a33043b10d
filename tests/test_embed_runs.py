"""``contrastkit embed RUN_DIR`` and ``contrastkit search`` for every kind of run.

Tiny runs are trained through the command line; each export is checked against the run's
own model applied to the same rows (so a wrong row order, a model left in training mode or
a stale checkpoint fails), against the split's sizes, ids and labels, and for the folder's
atomicity, ``--overwrite``, the TensorBoard files and ``search --id``. Text and image-text
runs fine-tune MiniLM on 2 CPU cores (half a minute each): their end-to-end checks are
``slow``; fast checks run their protocols' ``embed`` on stand-in models instead.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from contrastkit.cli import app
from contrastkit.data.paired import ImageCaptionDataset
from contrastkit.data.registry import DatasetSplits
from contrastkit.data.text import RetrievalTask, TextPairDataset
from contrastkit.eval.protocols import ImageTextProtocol, ImageTextSettings, RetrievalProtocol, RetrievalSettings
from tests.conftest import cli_error_line, trained_run

runner = CliRunner()

QUIET = ["--set", "eval.baselines=false", "--set", "eval.plots=false", "--set", "train.progress=false"]


def _train(run_dir: Path, *arguments: str) -> Path:
    result = runner.invoke(app, ["train", *arguments, "--run-dir", str(run_dir), *QUIET])
    assert result.exit_code == 0, (result.output, result.exception)
    return run_dir


def _embed(run_dir: Path, out: Path, *arguments: str) -> dict:
    result = runner.invoke(app, ["embed", str(run_dir), "--out", str(out), *arguments])
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout.strip().splitlines()[-1] == str(out)
    return json.loads((out / "manifest.json").read_text())






def _stored(folder: Path) -> tuple[np.ndarray, list, np.ndarray | None]:
    labels = folder / "labels.npy"
    return (np.load(folder / "embeddings.npy"), json.loads((folder / "ids.json").read_text()),
            np.load(labels) if labels.exists() else None)


def _hits(output: str) -> list[list[str]]:
    """The hit lines of ``search``'s output, split into words (rank, score, id, ...)."""
    return [line.split() for line in output.splitlines() if line.startswith("  ")]


# --- images (and the folder's behaviour, on the quickest run) -------------------------------------


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("digits") / "run", "--set", "data.name=digits", "--set", "train.steps=2",
                  "--set", "train.batch_size=64", "--set", "eval.linear=false")


def test_image_run_exports_each_split_as_its_model_embeds_it(digits_run, tmp_path):
    splits, method = trained_run(digits_run)
    manifest = _embed(digits_run, tmp_path / "test")
    features, ids, labels = _stored(tmp_path / "test")
    assert features.dtype == np.float32 and features.shape[0] == len(splits.test) == manifest["count"]
    assert ids == list(range(len(splits.test))) and np.array_equal(labels, splits.test.labels.numpy())
    with torch.no_grad():
        expected = method.embed(splits.test.inputs[:64]).numpy()
    np.testing.assert_allclose(features[:64], expected, rtol=1e-4, atol=1e-5)
    assert manifest["dim"] == features.shape[1] and manifest["checkpoint_step"] == 2
    assert manifest["split"] == "test" and manifest["modality"] == "image" and manifest["run_dir"] == str(
        digits_run.resolve())
    for key in ("encoder", "created", "contrastkit_version", "checkpoint"):
        assert manifest[key]

    assert _embed(digits_run, tmp_path / "train", "--split", "train")["count"] == len(splits.train)
    _embed(digits_run, tmp_path / "all", "--split", "all")
    everything, all_ids, all_labels = _stored(tmp_path / "all")
    assert len(all_ids) == len(splits.train) + len(splits.test)
    assert all_ids[0] == "train/0" and all_ids[len(splits.train)] == "test/0"
    np.testing.assert_allclose(everything[len(splits.train):], features, rtol=1e-5, atol=1e-6)
    assert np.array_equal(all_labels[len(splits.train):], labels)


def test_existing_folders_are_replaced_only_with_overwrite(digits_run, tmp_path):
    out = tmp_path / "out"
    _embed(digits_run, out)
    line = cli_error_line(runner.invoke(app, ["embed", str(digits_run), "--out", str(out), "--split", "train"]))
    assert "--overwrite" in line and json.loads((out / "manifest.json").read_text())["split"] == "test"
    assert _embed(digits_run, out, "--split", "train", "--overwrite")["split"] == "train"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]  # no staging or retired folder left
    # --overwrite never deletes a folder that is not an embedding folder.
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    line = cli_error_line(runner.invoke(app, ["embed", str(digits_run), "--out", str(tmp_path / "notes"), "--overwrite"]))
    assert "not an embedding folder" in line and (tmp_path / "notes" / "keep.txt").read_text() == "mine"


def test_a_failed_export_leaves_nothing_behind(digits_run, tmp_path, monkeypatch):
    def full_disk(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("contrastkit.eval.embedding_folder.write_projector", full_disk)
    line = cli_error_line(runner.invoke(app, ["embed", str(digits_run), "--out", str(tmp_path / "new"),
                                           "--format", "tensorboard"]))
    assert "No space left on device" in line
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its temporary sibling
    monkeypatch.undo()
    before = _embed(digits_run, tmp_path / "old")
    monkeypatch.setattr("contrastkit.eval.embedding_folder.write_projector", full_disk)
    cli_error_line(runner.invoke(app, ["embed", str(digits_run), "--out", str(tmp_path / "old"), "--split", "train",
                                    "--format", "tensorboard", "--overwrite"]))
    assert json.loads((tmp_path / "old" / "manifest.json").read_text()) == before  # the old folder, intact
    assert [path.name for path in tmp_path.iterdir()] == ["old"]


def test_tensorboard_projector_files_parse(digits_run, tmp_path):
    out = tmp_path / "tb"
    _embed(digits_run, out, "--format", "tensorboard")
    features, ids, labels = _stored(out)
    rows = [line.split("\t") for line in (out / "tensors.tsv").read_text().splitlines()]
    assert len(rows) == features.shape[0] and {len(row) for row in rows} == {features.shape[1]}
    np.testing.assert_allclose(np.array(rows, dtype=np.float64), features, rtol=1e-6)
    metadata = (out / "metadata.tsv").read_text().splitlines()
    assert metadata[0] == "id\tlabel" and len(metadata) == len(ids) + 1  # a header: more than one column
    assert metadata[5].split("\t") == [str(ids[4]), str(labels[4])]
    text_format = pytest.importorskip("google.protobuf.text_format")
    projector = pytest.importorskip("tensorboard.plugins.projector.projector_config_pb2")
    config = text_format.Parse((out / "projector_config.pbtxt").read_text(), projector.ProjectorConfig())
    (embedding,) = config.embeddings
    assert (embedding.tensor_name, embedding.tensor_path, embedding.metadata_path) == (
        "samples", "tensors.tsv", "metadata.tsv")
    from tensorboard.plugins.projector.projector_plugin import _read_tensor_tsv_file

    assert _read_tensor_tsv_file(str(out / "tensors.tsv")).shape == features.shape  # as TensorBoard reads it


def test_search_by_id_finds_the_row_itself_first(digits_run, tmp_path):
    out = tmp_path / "out"
    _embed(digits_run, out)
    features, ids, labels = _stored(out)
    result = runner.invoke(app, ["search", str(out), "--id", "7", "-k", "5"])
    assert result.exit_code == 0, result.output
    hits = _hits(result.output)
    assert len(hits) == 5 and hits[0][2] == "7" and float(hits[0][1]) == pytest.approx(1.0, abs=1e-4)
    assert hits[0][3] == f"[{labels[7]}]"
    scores = [float(hit[1]) for hit in hits]
    assert scores == sorted(scores, reverse=True)
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    cosine = unit @ unit[7]
    assert int(hits[1][2]) == int(np.argsort(-cosine)[1]) and scores[1] == pytest.approx(cosine[int(hits[1][2])],
                                                                                          abs=1e-4)
    line = cli_error_line(runner.invoke(app, ["search", str(out), "a text query"]))
    assert "cannot be searched with text" in line and "--id" in line
    assert "no row with id 'nope'" in cli_error_line(runner.invoke(app, ["search", str(out), "--id", "nope"]))
    assert "one of them" in cli_error_line(runner.invoke(app, ["search", str(out)]))


def test_bad_embed_input_is_one_error_line(digits_run, tmp_path):
    line = cli_error_line(runner.invoke(app, ["embed", str(digits_run), "--out", str(tmp_path / "o"), "--split", "val"]))
    assert "expected one of train, test, all, got 'val'" in line
    line = cli_error_line(runner.invoke(app, ["embed", str(digits_run), "--out", str(tmp_path / "o"), "--format", "png"]))
    assert "--format" in line and not (tmp_path / "o").exists()
    untrained = tmp_path / "untrained"
    untrained.mkdir()
    shutil.copy(digits_run / "config.yaml", untrained / "config.yaml")
    line = cli_error_line(runner.invoke(app, ["embed", str(untrained), "--out", str(tmp_path / "o")]))
    assert "has no checkpoint" in line
    line = cli_error_line(runner.invoke(app, ["embed", str(digits_run), "--out", str(tmp_path / "o"), "--model", "x"]))
    assert "run directory" in line
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("one document\n")
    line = cli_error_line(runner.invoke(app, ["embed", str(corpus), "--out", str(tmp_path / "o"), "--split", "all"]))
    assert "apply to a run directory" in line


# --- series, graph nodes, graph sets, recommendation ----------------------------------------------


def test_series_run_exports_its_test_series(tmp_path):
    run_dir = _train(tmp_path / "run", "ts2vec", "--set", "data=ucr:GunPoint", "--set", "train.steps=1",
                     "--set", "train.batch_size=8", "--set", "eval.linear=false")
    splits, method = trained_run(run_dir)
    manifest = _embed(run_dir, tmp_path / "out")
    features, ids, labels = _stored(tmp_path / "out")
    assert manifest["modality"] == "series" and features.shape[0] == len(splits.test) and ids[-1] == len(ids) - 1
    with torch.no_grad():
        expected = method.embed(splits.test.inputs[:16]).numpy()
    np.testing.assert_allclose(features[:16], expected, rtol=1e-4, atol=1e-5)
    assert np.array_equal(labels, splits.test.labels.numpy())


def test_node_graph_run_exports_the_probe_split_of_its_nodes(tmp_path):
    pytest.importorskip("torch_geometric")
    run_dir = _train(tmp_path / "run", "grace-debian", "--set", "data=karate-club", "--set", "train.steps=2",
                     "--set", "train.batch_size=16")
    splits, method = trained_run(run_dir)
    task = splits.test
    with torch.no_grad():
        every_node = method.embed(task.graph).numpy()
    _embed(run_dir, tmp_path / "test")
    features, ids, labels = _stored(tmp_path / "test")
    assert ids == task.test_idx.tolist() and np.array_equal(labels, task.labels[task.test_idx].numpy())
    np.testing.assert_allclose(features, every_node[task.test_idx.numpy()], rtol=1e-4, atol=1e-5)
    manifest = _embed(run_dir, tmp_path / "all", "--split", "all")
    features, ids, _ = _stored(tmp_path / "all")
    assert manifest["count"] == task.graph.num_nodes and ids == list(range(task.graph.num_nodes))
    np.testing.assert_allclose(features, every_node, rtol=1e-4, atol=1e-5)
    assert _embed(run_dir, tmp_path / "train", "--split", "train")["count"] == task.train_idx.numel()
    result = runner.invoke(app, ["search", str(tmp_path / "all"), "--id", "0", "-k", "3"])
    assert result.exit_code == 0 and _hits(result.output)[0][2] == "0", result.output


def test_graph_set_run_exports_pooled_graph_embeddings(tmp_path):
    pytest.importorskip("torch_geometric")
    run_dir = _train(tmp_path / "run", "graphcl-synthetic", "--set", "data.num_graphs=48", "--set", "train.steps=2",
                     "--set", "train.batch_size=8", "--set", "eval.knn_k=5")
    splits, method = trained_run(run_dir)
    _embed(run_dir, tmp_path / "out", "--split", "train")
    features, ids, labels = _stored(tmp_path / "out")
    batch = splits.train.__getitems__(list(range(len(splits.train))))
    with torch.no_grad():
        expected = method.embed(batch.inputs).numpy()
    assert ids == list(range(len(splits.train))) and np.array_equal(labels, batch.labels.numpy())
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)


def test_recommendation_run_exports_users_and_items(tmp_path):
    pytest.importorskip("torch_geometric")
    log = tmp_path / "log.csv"
    log.write_text("user,item\n" + "".join(f"u{user},i{(user % 2) * 20 + (user + k) % 20}\n"
                                           for user in range(60) for k in range(8)))
    run_dir = _train(tmp_path / "run", "lightgcl-tags", "--set", f"data=interactions:{log}", "--set",
                     "method.name=lightgcn", "--set", "train.steps=4", "--set", "train.batch_size=64")
    splits, method = trained_run(run_dir)
    with torch.no_grad():
        users, items = (tensor.numpy() for tensor in method.user_item_embeddings())
    out = tmp_path / "out"
    manifest = _embed(run_dir, out, "--format", "tensorboard")
    assert [(table["name"], table["path"], table["metric"]) for table in manifest["tables"]] == [
        ("users", "users", "dot"), ("items", "items", "dot")]
    data = splits.test
    user_features, user_ids, user_labels = _stored(out / "users")
    item_features, item_ids, _ = _stored(out / "items")
    test_users = data.test_users
    assert user_ids == [data.user_names[row] for row in test_users.tolist()] and user_labels is None
    assert item_ids == data.item_names and manifest["tables"][1]["count"] == data.num_items
    np.testing.assert_allclose(user_features, users[test_users.numpy()], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(item_features, items, rtol=1e-5, atol=1e-6)
    assert json.loads((out / "users" / "manifest.json").read_text())["table"] == "users"  # a folder by itself
    assert (out / "users" / "tensors.tsv").exists() and "users/tensors.tsv" in (
        out / "projector_config.pbtxt").read_text()

    # A user's nearest items score by the dot product, as the ranking does.
    user = user_ids[3]
    result = runner.invoke(app, ["search", str(out), "--table", "items", "--from", "users", "--id", user, "-k", "3"])
    assert result.exit_code == 0, result.output
    hits = _hits(result.output)
    scores = item_features @ user_features[3]
    assert hits[0][2] == item_ids[int(np.argmax(scores))]
    assert float(hits[0][1]) == pytest.approx(float(scores.max()), abs=1e-4)
    assert _embed(run_dir, tmp_path / "every", "--split", "all")["tables"][0]["count"] == data.num_users
    line = cli_error_line(runner.invoke(app, ["search", str(out), "--table", "nope", "--id", user]))
    assert "no table 'nope'; its tables: users, items" in line


# --- text and image-text: their protocols' exports on stand-in models (fast) ----------------------


class _TextModel(torch.nn.Module):
    """Encodes a text as (length, character sum mod 97, whether it was encoded as a query)."""

    def encode_texts(self, texts, *, query=False, batch_size=64, progress=False) -> torch.Tensor:
        return torch.tensor([[len(text), sum(map(ord, text)) % 97, float(query)] for text in texts])


def test_retrieval_protocol_exports_corpus_and_queries():
    test = RetrievalTask(queries={"q1": "find a", "q2": "find b", "q3": "unjudged"},
                         corpus={"d1": "doc about a", "d2": "doc about b", "d3": "noise"}, qrels={"q1": {"d1": 1}})
    train = TextPairDataset(["train query", "other query"], ["train doc", "other doc"], labels=torch.tensor([4, 5]))
    splits = DatasetSplits(train=train, test=test, num_classes=0, input_shape=(), name="tiny", modality="text")
    protocol = RetrievalProtocol(splits, RetrievalSettings(), None, 0)
    model = _TextModel()
    corpus, queries = protocol.embed(model, "test")
    assert (corpus.name, corpus.ids, corpus.texts) == ("corpus", ["d1", "d2", "d3"], list(test.corpus.values()))
    assert np.array_equal(corpus.features, model.encode_texts(list(test.corpus.values())).numpy())
    assert queries.ids == ["q1", "q2", "q3"] and (queries.features[:, 2] == 1).all() and corpus.text_queries
    corpus, queries = protocol.embed(model, "train")
    assert corpus.texts == ["train doc", "other doc"] and queries.texts == ["train query", "other query"]
    assert corpus.ids == queries.ids == [0, 1] and corpus.labels.tolist() == [4, 5]
    corpus, _ = protocol.embed(model, "all")
    assert corpus.ids == ["train/0", "train/1", "test/d1", "test/d2", "test/d3"] and corpus.labels is None
    assert protocol.encode_queries(model, ["x"])[0, 2] == 1.0  # text queries are encoded as queries


class _PairModel(torch.nn.Module):
    """A linear image tower and a character-count text tower."""

    def __init__(self) -> None:
        super().__init__()
        self.image = torch.nn.Linear(3 * 4 * 4, 2)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        return self.image(images.flatten(1))

    def encode_texts(self, texts) -> torch.Tensor:
        return torch.tensor([[len(text), text.count("a")] for text in texts], dtype=torch.float32)


def test_image_text_protocol_exports_images_and_every_caption():
    generator = torch.Generator().manual_seed(0)
    train = ImageCaptionDataset(torch.rand(2, 3, 4, 4, generator=generator), [["a cat", "kitty"], ["a dog"]])
    test = ImageCaptionDataset(torch.rand(3, 3, 4, 4, generator=generator), [["fox", "vixen"], ["owl"], ["a bat"]])
    splits = DatasetSplits(train=train, test=test, num_classes=3, input_shape=(3, 4, 4), name="pairs",
                           modality="image-text", class_names=test.class_names)
    protocol = ImageTextProtocol(splits, ImageTextSettings(templates=["{}"], bootstrap=0), None, 0)
    model = _PairModel()
    images, captions = protocol.embed(model, "test")
    with torch.no_grad():
        np.testing.assert_allclose(images.features, model.encode_images(test.images).numpy(), rtol=1e-6)
    assert images.ids == [0, 1, 2] and captions.ids == ["0/0", "0/1", "1/0", "2/0"]
    assert captions.texts == ["fox", "vixen", "owl", "a bat"] and captions.labels.tolist() == [0, 0, 1, 2]
    assert np.array_equal(captions.features, model.encode_texts(captions.texts).numpy())
    # Both splits together: the test labels move past the training class names, so each still names its item.
    images, captions = protocol.embed(model, "all")
    assert captions.ids[:3] == ["train/0/0", "train/0/1", "train/1/0"] and len(images) == 5
    assert [captions.class_names[label] for label in captions.labels] == ["a cat", "a cat", "a dog", "fox", "fox",
                                                                          "owl", "a bat"]
    assert protocol.encode_queries(model, ["a cat"]).tolist() == [[5.0, 2.0]]


# --- text and image-text end to end (slow: MiniLM on 2 CPU cores) ---------------------------------


@pytest.mark.slow
def test_text_run_exports_corpus_and_queries_and_answers_text(tmp_path):
    from contrastkit.data.stdlib_code import build_stdlib_code_records, split_of

    records = build_stdlib_code_records()
    for name, part, count in (("train", "train", 32), ("test", "test", 24)):
        rows = [record for record in records if split_of(record.package) == part][:count]
        (tmp_path / f"{name}.jsonl").write_text("".join(
            json.dumps({"query": record.query, "positive": record.document}) + "\n" for record in rows))
    run_dir = _train(tmp_path / "run", "code-search", "--set", "data=text-pairs", "--set",
                     f"data.train={tmp_path / 'train.jsonl'}", "--set", f"data.test={tmp_path / 'test.jsonl'}",
                     "--set", "encoder.max_length=32", "--set", "train.steps=1", "--set", "train.batch_size=8")
    splits, method = trained_run(run_dir)
    out = tmp_path / "out"
    manifest = _embed(run_dir, out)
    assert [table["name"] for table in manifest["tables"]] == ["corpus", "queries"]
    features, ids, _ = _stored(out / "corpus")
    assert ids == list(splits.test.corpus)
    expected = method.encode_texts([splits.test.corpus[doc_id] for doc_id in ids[:8]]).numpy()
    np.testing.assert_allclose(features[:8], expected, rtol=1e-4, atol=1e-5)
    document = " ".join(splits.test.corpus[ids[5]].split())  # one line: the output echoes the query
    result = runner.invoke(app, ["search", str(out), document, "-k", "3"])  # a document finds itself
    assert result.exit_code == 0 and _hits(result.output)[0][2] == ids[5], result.output
    result = runner.invoke(app, ["search", str(out), "--table", "corpus", "--from", "queries", "--id",
                                 json.loads((out / "queries" / "ids.json").read_text())[0]])
    assert result.exit_code == 0 and len(_hits(result.output)) == 10, result.output


@pytest.mark.slow
def test_image_text_run_exports_images_and_captions(tmp_path):
    run_dir = _train(tmp_path / "run", "clip-emoji", "--set", "train.steps=1", "--set", "train.batch_size=16",
                     "--set", "data.image_size=16", "--set", "eval.bootstrap=0", "--set", "eval.templates=['{}']")
    splits, method = trained_run(run_dir)
    out = tmp_path / "out"
    manifest = _embed(run_dir, out)
    assert [table["name"] for table in manifest["tables"]] == ["images", "captions"]
    features, ids, labels = _stored(out / "images")
    assert features.shape[0] == len(splits.test) and np.array_equal(labels, splits.test.labels.numpy())
    with torch.no_grad():
        expected = method.encode_images(splits.test.images[:8]).numpy()
    np.testing.assert_allclose(features[:8], expected, rtol=1e-4, atol=1e-5)
    result = runner.invoke(app, ["search", str(out), splits.test.captions[0][0], "-k", "3"])
    assert result.exit_code == 0 and len(_hits(result.output)) == 3, result.output

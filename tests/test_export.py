"""``contrastkit export RUN_DIR`` and ``contrastkit.load_encoder``.

Tiny runs (image, series, text) are trained through the command line. A sentence-transformers
export is loaded with the real ``SentenceTransformer`` and must embed like the run's own
method (1e-5); a safetensors export is rebuilt by ``load_encoder`` and must give the run's
encoder's outputs exactly (text: to float tolerance, the transformer being rebuilt from its
config). The folder is checked for atomicity, ``--force``, damaged files and bad inputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import contrastkit
from contrastkit.cli import app
from contrastkit.nn.encoder_folder import WEIGHTS_FILE, write_encoder_folder
from contrastkit.nn.registry import build_encoder
from contrastkit.nn.series import SeriesInstanceEncoder
from tests.conftest import cli_error_line, trained_run

runner = CliRunner()
QUIET = ["--set", "eval.baselines=false", "--set", "eval.plots=false", "--set", "train.progress=false"]


def _train(run_dir: Path, *arguments: str) -> Path:
    result = runner.invoke(app, ["train", *arguments, "--run-dir", str(run_dir), *QUIET])
    assert result.exit_code == 0, (result.output, result.exception)
    return run_dir


def _export(run_dir: Path, out: Path, output_format: str, *arguments: str) -> Path:
    result = runner.invoke(app, ["export", str(run_dir), "--format", output_format, "--out", str(out), *arguments])
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout.strip().splitlines()[-1] == str(out)
    return out






@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("digits") / "run", "--set", "data.name=digits", "--set", "train.steps=2",
                  "--set", "train.batch_size=64", "--set", "eval.linear=false")


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> Path:
    """MNRL on 16 stdlib docstring/code pairs, one step (MiniLM, max_length 32)."""
    pytest.importorskip("transformers")
    from contrastkit.data.stdlib_code import build_stdlib_code_records, split_of

    folder = tmp_path_factory.mktemp("text")
    records = build_stdlib_code_records()
    for name, part, count in (("train", "train", 16), ("test", "test", 8)):
        rows = [record for record in records if split_of(record.package) == part][:count]
        (folder / f"{name}.jsonl").write_text("".join(
            json.dumps({"query": record.query, "positive": record.document}) + "\n" for record in rows))
    return _train(folder / "run", "code-search", "--set", "data=text-pairs", "--set",
                  f"data.train={folder / 'train.jsonl'}", "--set", f"data.test={folder / 'test.jsonl'}",
                  "--set", "encoder.max_length=32", "--set", "train.steps=1", "--set", "train.batch_size=8")


# --- sentence-transformers ------------------------------------------------------------------------


def test_sentence_transformers_folder_embeds_like_the_run(text_run, tmp_path):
    st = pytest.importorskip("sentence_transformers", reason="sentence-transformers (the bench extra) is not installed")
    out = _export(text_run, tmp_path / "st", "sentence-transformers")
    modules = json.loads((out / "modules.json").read_text())
    assert [module["type"].rsplit(".", 1)[-1] for module in modules] == ["Transformer", "Pooling"]  # no Normalize
    assert json.loads((out / "1_Pooling" / "config.json").read_text())["pooling_mode_mean_tokens"] is True
    assert json.loads((out / "sentence_bert_config.json").read_text())["max_seq_length"] == 32
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
    splits, method = trained_run(text_run)
    texts = list(splits.test.corpus.values()) + ["short", "def f(x):\n    return x * 2"]  # long ones truncate at 32
    expected = method.encode_texts(texts).numpy()
    model = st.SentenceTransformer(str(out), device="cpu")
    embeddings = model.encode(texts, convert_to_numpy=True)
    assert embeddings.shape == expected.shape
    assert abs(embeddings - expected).max() <= 1e-5
    # A trained run, not the packaged MiniLM: the export carries the fine-tuned weights.
    from contrastkit.nn.text import default_model_path

    untrained = st.SentenceTransformer(str(default_model_path()), device="cpu")
    untrained.max_seq_length = 32
    assert abs(untrained.encode(texts[:4], convert_to_numpy=True) - expected[:4]).max() > 1e-4
    manifest = json.loads((out / "contrastkit_export.json").read_text())
    assert manifest["checkpoint_step"] == 1 and manifest["verified_with_sentence_transformers"] == st.__version__
    assert "queries to 64 tokens" in manifest["note"]  # code-search's query_max_length differs from max_length


def test_cls_pooling_and_normalisation_become_sentence_transformers_modules(tmp_path):
    st = pytest.importorskip("sentence_transformers", reason="sentence-transformers (the bench extra) is not installed")
    from contrastkit.nn.sentence_transformer_folder import write_sentence_transformer_folder
    from contrastkit.nn.text import TextEncoder

    encoder = TextEncoder(pooling="cls", normalize=True, max_length=16).eval()
    (tmp_path / "st").mkdir()
    write_sentence_transformer_folder(tmp_path / "st", encoder)
    modules = json.loads((tmp_path / "st" / "modules.json").read_text())
    assert [module["path"] for module in modules] == ["", "1_Pooling", "2_Normalize"]
    texts = ["a tiny sentence", "another, rather longer sentence that runs past sixteen tokens for certain, surely"]
    embeddings = torch.as_tensor(st.SentenceTransformer(str(tmp_path / "st"), device="cpu").encode(texts))
    expected = encoder.encode(texts)
    assert torch.allclose(embeddings, expected, atol=1e-5, rtol=0)
    assert torch.allclose(embeddings.norm(dim=1), torch.ones(2), atol=1e-5)


def test_a_text_method_that_transforms_its_embedding_is_refused(text_run, tmp_path, monkeypatch):
    from contrastkit.train import export as export_module

    real_load_run = export_module.load_run

    def with_a_head(*args, **kwargs):
        loaded = real_load_run(*args, **kwargs)
        plain = loaded.method.encode_texts
        loaded.method.encode_texts = lambda texts, **options: plain(texts, **options) * 2.0  # a "head" on top
        return loaded

    monkeypatch.setattr(export_module, "load_run", with_a_head)
    line = cli_error_line(runner.invoke(app, ["export", str(text_run), "--format", "sentence-transformers",
                                           "--out", str(tmp_path / "st")]))
    assert "embeds texts with more than its encoder" in line and "'mnrl'" in line and "--format safetensors" in line
    assert list(tmp_path.iterdir()) == []


# --- safetensors: every modality ------------------------------------------------------------------


def test_image_encoder_round_trips_exactly(digits_run, tmp_path):
    out = _export(digits_run, tmp_path / "enc", "safetensors")
    config = json.loads((out / "encoder.json").read_text())
    assert config["encoder"] == "small-resnet" and config["arguments"]["in_channels"] == 1
    encoder = contrastkit.load_encoder(out)
    assert not encoder.training and isinstance(encoder, torch.nn.Module)
    splits, method = trained_run(digits_run)
    inputs = splits.test.inputs[:32]
    with torch.no_grad():
        assert torch.equal(encoder(inputs), method.embed(inputs))
        fresh = build_encoder("small-resnet", in_channels=1, image_size=inputs.shape[-1]).eval()
        assert not torch.allclose(fresh(inputs), method.embed(inputs))  # the weights, not the architecture, matter


def test_series_encoder_round_trips_exactly(tmp_path):
    run_dir = _train(tmp_path / "run", "ts2vec", "--set", "data=ucr:GunPoint", "--set", "train.steps=1",
                     "--set", "train.batch_size=8", "--set", "eval.linear=false", "--set", "encoder.depth=2")
    out = _export(run_dir, tmp_path / "enc", "safetensors")
    encoder = contrastkit.load_encoder(out)
    assert type(encoder).__name__ == "DilatedConvEncoder"  # the registered ts-dilated-conv, not TS2Vec's wrapper
    splits, method = trained_run(run_dir)
    series = splits.test.inputs[:16]
    with torch.no_grad():
        # TS2Vec embeds with the averaged weights, max-pooled over time: the export is that network.
        assert torch.equal(SeriesInstanceEncoder(encoder)(series), method.embed(series))
    assert "TS2Vec.embed" in json.loads((out / "contrastkit_export.json").read_text())["note"]


def test_text_encoder_round_trips_without_the_model_package(text_run, tmp_path, monkeypatch):
    out = _export(text_run, tmp_path / "enc", "safetensors")
    assert not list((out / "transformer").glob("*.safetensors"))  # the weights are stored once
    splits, method = trained_run(text_run)  # the run itself reads the packaged MiniLM
    from contrastkit.nn import text as text_module

    def no_package():
        raise FileNotFoundError("the packaged model is not used by an exported encoder")

    monkeypatch.setattr(text_module, "default_model_path", no_package)
    encoder = contrastkit.load_encoder(out)
    texts = list(splits.test.corpus.values())
    assert torch.allclose(encoder.encode(texts), method.encode_texts(texts), atol=1e-6, rtol=0)
    assert (encoder.pooling, encoder.max_length, encoder.query_max_length) == ("mean", 32, 64)


def test_tensor_arguments_round_trip(tmp_path):
    pytest.importorskip("torch_geometric")
    pairs = torch.tensor([[0, 0, 1, 2, 3, 4], [0, 3, 1, 2, 4, 0]])
    encoder = build_encoder("lightgcn", num_users=5, num_items=5, train_pairs=pairs, embedding_dim=8)
    torch.nn.init.normal_(next(encoder.parameters()))
    write_encoder_folder(tmp_path, encoder, "lightgcn", {"num_users": 5, "num_items": 5, "train_pairs": pairs,
                                                         "embedding_dim": 8})
    assert json.loads((tmp_path / "encoder.json").read_text())["tensor_arguments"] == ["train_pairs"]
    rebuilt = contrastkit.load_encoder(tmp_path)
    users = torch.arange(5)
    with torch.no_grad():
        assert torch.equal(rebuilt(users), encoder.eval()(users))


# --- damaged folders ------------------------------------------------------------------------------


def test_a_damaged_folder_fails_with_one_line_naming_the_file(digits_run, tmp_path):
    out = _export(digits_run, tmp_path / "enc", "safetensors")

    def error_of(folder: Path) -> BaseException:
        with pytest.raises((ValueError, FileNotFoundError)) as caught:
            contrastkit.load_encoder(folder)
        assert "\n" not in str(caught.value)
        return caught.value

    weights = out / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF  # one flipped bit pattern in the tensor data: safetensors alone would not notice
    weights.write_bytes(bytes(data))
    error = error_of(out)
    assert isinstance(error, ValueError) and "corrupt" in str(error) and str(weights) in str(error)
    weights.unlink()
    error = error_of(out)
    assert isinstance(error, FileNotFoundError) and str(weights) in str(error)
    (out / "encoder.json").write_text('{"format": "contrastkit-encoder", ')
    assert "is corrupt (expected JSON" in str(error_of(out))
    (out / "encoder.json").unlink()
    assert "encoder.json is missing" in str(error_of(out))
    assert "is not a folder" in str(error_of(tmp_path / "nowhere"))


# --- the command: refusals and atomic writes ------------------------------------------------------


def test_bad_inputs_are_refused_with_one_line(digits_run, tmp_path):
    out = str(tmp_path / "out")
    line = cli_error_line(runner.invoke(app, ["export", str(tmp_path), "--format", "safetensors", "--out", out]))
    assert "is not a run directory" in line and "config.yaml" in line
    line = cli_error_line(runner.invoke(app, ["export", str(digits_run), "--format", "onnx", "--out", out]))
    assert "expected one of sentence-transformers, safetensors, got 'onnx'" in line
    line = cli_error_line(runner.invoke(app, ["export", str(digits_run), "--format", "sentence-transformers",
                                           "--out", out]))
    assert "cannot be exported as a sentence-transformers model" in line and "SmallResNet" in line
    line = cli_error_line(runner.invoke(app, ["export", str(digits_run), "--format", "safetensors", "--force",
                                           "--out", str(digits_run)]))
    assert "outside the run directory" in line and (digits_run / "config.yaml").is_file()
    assert sorted(path.name for path in tmp_path.iterdir()) == []  # nothing half-written


def test_an_occupied_out_is_replaced_only_with_force(digits_run, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    line = cli_error_line(runner.invoke(app, ["export", str(digits_run), "--format", "safetensors", "--out", str(out)]))
    assert "--force" in line and (out / "keep.txt").read_text() == "mine"
    _export(digits_run, out, "safetensors", "--force")
    assert not (out / "keep.txt").exists() and (out / "encoder.json").is_file()
    assert [path.name for path in tmp_path.iterdir()] == ["out"]  # no staging or retired folder left
    empty = tmp_path / "empty"
    empty.mkdir()
    _export(digits_run, empty, "safetensors")  # an empty folder needs no --force


def test_a_failed_export_leaves_nothing_behind(digits_run, tmp_path, monkeypatch):
    def full_disk(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("contrastkit.nn.encoder_folder.save_file", full_disk)
    line = cli_error_line(runner.invoke(app, ["export", str(digits_run), "--format", "safetensors",
                                           "--out", str(tmp_path / "new")]))
    assert "No space left on device" in line and list(tmp_path.iterdir()) == []


def test_graph_encoder_round_trips_exactly(tmp_path):
    pytest.importorskip("torch_geometric")
    run_dir = _train(tmp_path / "run", "graphcl-synthetic", "--set", "data.num_graphs=48", "--set", "train.steps=2",
                     "--set", "train.batch_size=8", "--set", "eval.knn_k=5")
    out = _export(run_dir, tmp_path / "enc", "safetensors")
    encoder = contrastkit.load_encoder(out)
    splits, method = trained_run(run_dir)
    graphs = splits.train.__getitems__(list(range(8))).inputs
    with torch.no_grad():
        assert torch.equal(encoder(graphs), method.encoder(graphs))

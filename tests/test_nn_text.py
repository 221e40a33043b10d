"""TextEncoder: offline model resolution, pooling against a manual computation, encode order, errors."""

from __future__ import annotations

import pytest
import torch

from contrastkit.nn.registry import build_encoder
from contrastkit.nn.text import TextEncoder, default_model_path, resolve_model_path


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder(max_length=32)


def test_default_model_is_the_packaged_minilm():
    path = default_model_path()
    assert (path / "config.json").exists() and (path / "model.safetensors").exists()
    assert resolve_model_path(None) == str(path) == resolve_model_path("all-MiniLM-L6-v2")


def test_hub_names_are_not_downloaded_unless_asked(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not download"):
        resolve_model_path("bert-base-uncased")
    assert resolve_model_path("bert-base-uncased", allow_download=True) == "bert-base-uncased"
    with pytest.raises(FileNotFoundError, match="config.json"):
        resolve_model_path(tmp_path)  # a directory without a model
    with pytest.raises(FileNotFoundError, match="does not download"):
        TextEncoder(str(tmp_path / "missing-model"))


def test_mean_pooling_matches_a_manual_masked_mean(encoder):
    texts = ["a short one", "a considerably longer sentence with many more tokens in it"]
    tokens = encoder.tokenize(texts)
    with torch.no_grad():
        pooled = encoder(tokens)
        states = encoder.transformer(**tokens).last_hidden_state
    for row in range(2):
        real = int(tokens["attention_mask"][row].sum())
        torch.testing.assert_close(pooled[row], states[row, :real].mean(0))
    assert pooled.shape == (2, encoder.output_dim) == (2, 384)


def test_cls_pooling_takes_the_first_token():
    cls_encoder = build_encoder("transformer", pooling="cls", max_length=16)
    tokens = cls_encoder.tokenize(["hello there", "general kenobi"])
    with torch.no_grad():
        torch.testing.assert_close(cls_encoder(tokens), cls_encoder.transformer(**tokens).last_hidden_state[:, 0])


def test_encode_keeps_input_order_and_equals_per_text_embeddings(encoder):
    texts = ["def f(x): return x", "a much longer text about reading files from disk", "sort"]
    batched = encoder.encode(texts, batch_size=2)
    single = torch.cat([encoder.encode([text]) for text in texts])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(batched[0], batched[1])
    normalized = encoder.encode(texts, normalize=True)
    torch.testing.assert_close(normalized.norm(dim=1), torch.ones(3))


def test_truncation_respects_max_length(encoder):
    tokens = encoder.tokenize(["word " * 200])
    assert tokens["input_ids"].shape[1] == 32
    assert encoder.tokenize(["word " * 200], query=True)["input_ids"].shape[1] == 32
    assert encoder.tokenize(["word " * 200], max_length=8)["input_ids"].shape[1] == 8


def test_bad_input_is_named(encoder):
    with pytest.raises(ValueError, match="non-empty"):
        encoder.tokenize(["fine", "   "])
    with pytest.raises(ValueError, match="list of strings"):
        encoder.tokenize("one string")
    with pytest.raises(ValueError, match="at least one"):
        encoder.encode([])
    with pytest.raises(ValueError, match="expected a string"):
        encoder.tokenize(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="token dict"):
        encoder(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="pooling"):
        TextEncoder(pooling="max")

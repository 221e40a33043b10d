"""A :class:`~contrastkit.nn.text.TextEncoder` as a sentence-transformers model folder.

``contrastkit export RUN_DIR --format sentence-transformers`` writes this folder, which
``sentence_transformers.SentenceTransformer(DIR)`` loads and whose ``encode`` gives the
encoder's embeddings. It is the classic layout (the one of the packaged
all-MiniLM-L6-v2), which every sentence-transformers release from 2.x on reads::

    modules.json                      Transformer -> Pooling (-> Normalize)
    config.json, model.safetensors    the fine-tuned transformer (Hugging Face format)
    tokenizer files                   the tokenizer's (tokenizer.json, vocab, special tokens)
    sentence_bert_config.json         max_seq_length: the encoder's max_length
    1_Pooling/config.json             mean over real tokens, or the first ([CLS]) token
    2_Normalize/                      only when the encoder L2-normalises its output
    config_sentence_transformers.json versions, cosine similarity

Writing needs ``transformers`` only; :func:`check_sentence_transformer_folder` loads the
folder with sentence-transformers, where it is installed, and compares the embeddings.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from contrastkit.nn.text import TextEncoder

#: sentence-transformers' pooling mode for each contrastkit pooling.
POOLING_MODES = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token"}
_ALL_MODES = ("pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens",
              "pooling_mode_mean_sqrt_len_tokens")

__all__ = ["check_sentence_transformer_folder", "sentence_transformer_refusal", "write_sentence_transformer_folder"]


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"pytorch": torch.__version__}
    for package in ("transformers", "contrastkit"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "unknown"
    return found


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No per-weight report or progress bar from ``transformers`` while saving or loading (noise for a user)."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def sentence_transformer_refusal(encoder: nn.Module) -> str | None:
    """Why ``encoder`` cannot be written as a sentence-transformers folder, or ``None`` when it can."""
    if not isinstance(encoder, TextEncoder):
        return (f"its encoder is a {type(encoder).__name__}, not a transformer text encoder (a recipe's "
                "encoder.name=transformer); a sentence-transformers folder holds a text transformer and pooling only")
    if encoder.pooling not in POOLING_MODES:
        return f"its pooling {encoder.pooling!r} has no sentence-transformers equivalent ({sorted(POOLING_MODES)})"
    if not hasattr(encoder.transformer, "save_pretrained"):
        return f"its transformer {type(encoder.transformer).__name__} cannot be saved in Hugging Face format"
    return None


def _write_json(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def write_sentence_transformer_folder(directory: str | os.PathLike[str], encoder: TextEncoder) -> Path:
    """Write ``encoder`` as a sentence-transformers model folder into the empty folder ``directory``.

    The caller makes the folder appear atomically (``contrastkit export`` writes into a
    staging folder and renames it).

    Args:
        directory: an existing, empty folder.
        encoder: the text encoder; its pooling, ``max_length`` and ``normalize`` become the
            Pooling module, ``max_seq_length`` and the Normalize module.

    Returns:
        ``directory``.

    Raises:
        ValueError: the encoder cannot be expressed this way (see :func:`sentence_transformer_refusal`).
    """
    directory = Path(directory)
    refusal = sentence_transformer_refusal(encoder)
    if refusal is not None:
        raise ValueError(f"sentence-transformers export: {refusal}")
    with _quiet_transformers():
        encoder.transformer.save_pretrained(directory)
    if not (directory / "model.safetensors").is_file():
        raise ValueError(f"sentence-transformers export: expected the transformer's weights in "
                         f"{directory / 'model.safetensors'}, got {sorted(p.name for p in directory.iterdir())}")
    encoder.tokenizer.save_pretrained(directory)
    _write_json(directory / "sentence_bert_config.json", {"max_seq_length": encoder.max_length, "do_lower_case": False})
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    pooling = {"word_embedding_dimension": encoder.output_dim,
               **{mode: mode == POOLING_MODES[encoder.pooling] for mode in _ALL_MODES}}
    _write_json(directory / "1_Pooling" / "config.json", pooling)
    if encoder.normalize:
        (directory / "2_Normalize").mkdir()
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    _write_json(directory / "modules.json", modules)
    _write_json(directory / "config_sentence_transformers.json",
                {"__version__": _versions(), "prompts": {}, "default_prompt_name": None,
                 "similarity_fn_name": "cosine"})
    return directory


def check_sentence_transformer_folder(directory: str | os.PathLike[str], encoder: TextEncoder, texts: Sequence[str],
                                      *, atol: float = 1e-5) -> str | None:
    """Load ``directory`` with sentence-transformers and compare its ``encode`` with ``encoder.encode``.

    Returns:
        The sentence-transformers version that reproduced the embeddings, or ``None`` when the
        package is not installed (nothing was checked).

    Raises:
        ValueError: it loads but its embeddings differ from the encoder's by more than ``atol``.
    """
    try:
        import sentence_transformers
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return None
    with _quiet_transformers():
        model = SentenceTransformer(str(directory), device="cpu")
        theirs = torch.as_tensor(model.encode(list(texts), convert_to_numpy=True, batch_size=len(texts),
                                              show_progress_bar=False))
    ours = encoder.encode(list(texts), batch_size=len(texts)).float().cpu()
    gap = (theirs - ours).abs().max().item() if theirs.shape == ours.shape else float("inf")
    if gap > atol:
        raise ValueError(f"sentence-transformers export: SentenceTransformer({directory}) embeds differently from "
                         f"the run's encoder (largest difference {gap:.2e}, expected at most {atol:g}; shapes "
                         f"{tuple(theirs.shape)} and {tuple(ours.shape)})")
    return str(sentence_transformers.__version__)

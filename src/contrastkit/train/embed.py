"""``contrastkit embed`` and ``contrastkit search``: encode a corpus to disk, then answer queries.

An embedding folder holds ``embeddings.npy`` (float32, ``[N, D]``), ``ids.json``,
``texts.jsonl`` (for showing hits) and ``manifest.json`` (which encoder made it, so
``search`` encodes queries with the same one). It is written into a temporary folder
and renamed into place, so an interrupted ``embed`` never leaves a half-written one.
A faiss index built by ``search`` is cached in ``index-KIND/`` beside the embeddings.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contrastkit.utils.atomic import atomic_write_json, replace_directory

MANIFEST_FILE = "manifest.json"


def load_text_encoder(
    *, run_dir: str | Path | None = None, model: str | None = None, options: dict[str, Any] | None = None
) -> tuple[Any, dict[str, Any]]:
    """The encoder of a trained run (its latest checkpoint) or of a model directory.

    Returns ``(encoder, source)`` where ``source`` records how to rebuild it.
    """
    if run_dir is not None and model is not None:
        raise ValueError("pass either a run directory or a model, not both")
    if run_dir is not None:
        from contrastkit.train.checkpoint import latest_checkpoint, load_checkpoint
        from contrastkit.train.config import load_run_config, resolved
        from contrastkit.train.run import build_method_from_config, load_data

        run_dir = Path(run_dir)
        config = resolved(load_run_config(run_dir))
        checkpoint = latest_checkpoint(run_dir / "checkpoints")
        if checkpoint is None:
            raise FileNotFoundError(f"{run_dir} has no checkpoint (expected {run_dir}/checkpoints/latest.json)")
        method = build_method_from_config(config, load_data(config))
        if not callable(getattr(method, "encode_texts", None)):
            raise ValueError(f"{run_dir} trained {config['method']['name']!r}, which does not encode texts; "
                             "embed/search need a text run")
        load_checkpoint(checkpoint, method, restore_rng=False)
        return method.encoder.eval(), {"run_dir": str(run_dir.resolve()), "checkpoint": str(checkpoint)}
    from contrastkit.nn.text import TextEncoder

    options = dict(options or {})
    encoder = TextEncoder(model, **options)
    return encoder.eval(), {"model": encoder.model_path, "options": options}


def embed_corpus(
    corpus: dict[str, str],
    out_dir: str | Path,
    encoder: Any,
    source: dict[str, Any],
    *,
    batch_size: int = 64,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Encode ``corpus`` and write an embedding folder at ``out_dir`` (atomically)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise ValueError(f"{out_dir} exists and is not empty; pass --overwrite to replace it")
    ids = list(corpus)
    texts = [corpus[doc_id] for doc_id in ids]
    embeddings = encoder.encode(texts, batch_size=batch_size, progress=progress).numpy().astype(np.float32)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        np.save(staging / "embeddings.npy", embeddings)
        (staging / "ids.json").write_text(json.dumps(ids), encoding="utf-8")
        with (staging / "texts.jsonl").open("w", encoding="utf-8") as handle:
            for doc_id, text in zip(ids, texts):
                handle.write(json.dumps({"_id": doc_id, "text": text}) + "\n")
        manifest = {
            "source": source, "count": len(ids), "dim": int(embeddings.shape[1]),
            "pooling": getattr(encoder, "pooling", None), "max_length": getattr(encoder, "max_length", None),
            "created": _dt.datetime.now().isoformat(timespec="seconds"),
        }  # fmt: skip
        atomic_write_json(staging / MANIFEST_FILE, manifest)
        replace_directory(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def read_embeddings(directory: str | Path) -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """``(embeddings, ids, manifest)`` of a folder written by :func:`embed_corpus`."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.exists():
        raise FileNotFoundError(f"{directory} is not an embedding folder: expected {manifest_path} "
                                "(written by `contrastkit embed`)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    embeddings = np.load(directory / "embeddings.npy", allow_pickle=False)
    ids = json.loads((directory / "ids.json").read_text(encoding="utf-8"))
    if embeddings.shape[0] != len(ids) or len(ids) != manifest.get("count"):
        raise ValueError(f"{directory}: embeddings ({embeddings.shape[0]} rows), ids ({len(ids)}) and manifest "
                         f"count ({manifest.get('count')}) disagree; re-run `contrastkit embed`")
    return embeddings, ids, manifest


def _texts(directory: Path) -> dict[str, str]:
    path = directory / "texts.jsonl"
    if not path.exists():
        return {}
    with path.open(encoding="utf-8") as handle:
        return {row["_id"]: row["text"] for row in map(json.loads, handle)}


def search(
    directory: str | Path, queries: list[str], *, k: int = 10, kind: str = "flat"
) -> list[list[tuple[str, float, str]]]:
    """Top-``k`` ``(id, score, text)`` per query, encoding queries with the folder's encoder.

    The faiss index (``kind``: ``flat`` exact, ``hnsw`` or ``ivf`` approximate) is built on
    first use and cached in ``DIRECTORY/index-KIND``.
    """
    from contrastkit.eval.search import DenseIndex

    directory = Path(directory)
    if not queries:
        raise ValueError("search: expected at least one query")
    embeddings, ids, manifest = read_embeddings(directory)
    index_dir = directory / f"index-{kind}"
    if index_dir.exists():
        index = DenseIndex.load(index_dir)
    else:
        index = DenseIndex.build(embeddings, ids, kind=kind)
        index.save(index_dir)
    source = manifest["source"]
    encoder, _ = load_text_encoder(
        run_dir=source.get("run_dir"), model=source.get("model"), options=source.get("options")
    )  # fmt: skip
    with torch.no_grad():
        query_embeddings = encoder.encode(queries, query=True).numpy()
    scores, hits = index.search(query_embeddings, k)
    texts = _texts(directory)
    return [
        [(doc_id, float(score), texts.get(doc_id, "")) for doc_id, score in zip(row_ids, row_scores)]
        for row_ids, row_scores in zip(hits, scores)
    ]

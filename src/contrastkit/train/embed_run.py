"""``contrastkit embed RUN_DIR`` and ``contrastkit search``: a run's embeddings to disk, then neighbours.

The run's model is rebuilt as ``contrastkit eval RUN_DIR`` rebuilds it (its saved config, its
data, the newest intact checkpoint); what to embed and how is the data's evaluation
protocol's business (:meth:`~contrastkit.eval.protocols.base.EvaluationProtocol.embed`), so
nothing here names a modality. The folder format lives in :mod:`contrastkit.eval.embedding_folder`.

``search`` answers either text queries (the protocol encodes them, with the checkpoint the
folder was made from) or ``--id``: the neighbours of a stored row, in its own table or in
another one (a user's nearest items). The corpus form's folders (``contrastkit embed CORPUS``)
keep their own text search (:func:`contrastkit.train.embed.search`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contrastkit.data import DatasetSplits
from contrastkit.eval.embedding_folder import check_output_folder, read_table, write_embedding_folder
from contrastkit.eval.protocols import EvaluationProtocol
from contrastkit.eval.protocols.base import check_split
from contrastkit.methods import Method
from contrastkit.train.checkpoint import load_checkpoint, resolve_checkpoint
from contrastkit.train.config import load_run_config, resolved
from contrastkit.train.run import build_method_from_config, build_protocol, load_data
from contrastkit.train.trainer import resolve_device

#: One search hit: ``(id, score, label or None, text or "")``.
Hit = tuple[Any, float, str | None, str]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("contrastkit")
    except PackageNotFoundError:
        return "unknown"


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` is a run directory (holds the ``config.yaml`` a run writes)."""
    return (Path(path) / "config.yaml").is_file()


@dataclasses.dataclass
class LoadedRun:
    """A run's model with its weights, its data and the data's evaluation protocol."""

    run_dir: Path
    config: dict[str, Any]
    splits: DatasetSplits
    method: Method
    protocol: EvaluationProtocol
    checkpoint: Path
    step: int


def load_run(run_dir: str | Path, overrides: list[str] | None = None, *, checkpoint: str | Path | None = None,
             command: str = "embed RUN_DIR") -> LoadedRun:
    """Rebuild a run's method and protocol and load a checkpoint (default: the newest intact one).

    ``overrides`` change ``eval.*`` keys only (e.g. ``eval.batch_size``), as ``eval RUN_DIR --set``.

    Raises:
        FileNotFoundError: not a run directory, or it has no checkpoint (or not the one named).
    """
    run_dir = Path(run_dir)
    config = resolved(load_run_config(run_dir, overrides, allowed=("eval", "train.device"), command=command))
    if checkpoint is None:
        checkpoint = resolve_checkpoint(run_dir / "checkpoints")
        if checkpoint is None:
            raise FileNotFoundError(f"{run_dir} has no checkpoint (expected {run_dir}/checkpoints/latest.json); "
                                    "train it first")
    checkpoint = Path(checkpoint)
    if not checkpoint.is_dir():
        raise FileNotFoundError(f"checkpoint {checkpoint} is gone; re-run `contrastkit embed {run_dir}`")
    splits = load_data(config)
    method = build_method_from_config(config, splits)
    device = resolve_device(config["train"]["device"])
    protocol = build_protocol(config, splits, device, int(config["seed"]))
    state = load_checkpoint(checkpoint, method, restore_rng=False)
    method.to(device)
    return LoadedRun(run_dir, config, splits, method, protocol, checkpoint, int(state.step))


def embed_run(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    split: str = "test",
    output_format: str = "numpy",
    overwrite: bool = False,
    overrides: list[str] | None = None,
) -> Path:
    """Export the embeddings of a run's ``split`` to an embedding folder at ``out_dir`` (atomically).

    Args:
        run_dir: a run directory written by ``contrastkit train``.
        out_dir: the folder to write.
        split: ``"test"``, ``"train"`` or ``"all"``.
        output_format: ``"numpy"``, or ``"tensorboard"`` for the projector files as well.
        overwrite: replace an existing embedding folder.
        overrides: ``eval.*`` overrides (e.g. ``eval.batch_size=256``).

    Returns:
        ``out_dir``.
    """
    # Cheap refusals first: nothing is loaded for a bad split or an occupied --out.
    split = check_split(split)
    check_output_folder(out_dir, overwrite=overwrite)
    loaded = load_run(run_dir, overrides)
    tables = loaded.protocol.embed(loaded.method, split)
    manifest = {
        "run_dir": str(loaded.run_dir.resolve()),
        "checkpoint": str(loaded.checkpoint.resolve()),
        "checkpoint_step": loaded.step,
        "split": split,
        "dataset": loaded.splits.name,
        "modality": loaded.splits.modality,
        "method": loaded.config["method"]["name"],
        "encoder": loaded.config["encoder"]["name"],
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
        "contrastkit_version": _version(),
    }
    return write_embedding_folder(out_dir, tables, manifest, overwrite=overwrite, output_format=output_format)


def search_folder(
    directory: str | Path,
    queries: list[str] | None = None,
    *,
    row_id: str | None = None,
    table: str | None = None,
    from_table: str | None = None,
    k: int = 10,
    kind: str = "flat",
) -> list[tuple[str, list[Hit]]]:
    """Nearest rows of an embedding folder: ``[(what was asked, hits best first)]``.

    Args:
        directory: an embedding folder (or one table's sub-folder).
        queries: query texts, encoded by the run's protocol (folders whose table says
            ``text_queries``), or by the corpus form's encoder for its folders.
        row_id: instead of texts, the id of a stored row whose neighbours to find.
        table: the table searched (default: the folder's first).
        from_table: with ``row_id``, the table holding that row (default: ``table``), e.g.
            ``table="items", from_table="users"`` for a user's nearest items.
        k: hits per query.
        kind: the faiss index (``flat`` exact; ``hnsw``, ``ivf`` approximate).
    """
    directory = Path(directory)
    queries = list(queries or [])
    if bool(queries) == (row_id is not None):
        raise ValueError("search: give query texts or --id ID (one of them)")
    if from_table is not None and row_id is None:
        raise ValueError("search: --from picks the table of an --id row; it does not apply to text queries")
    target = read_table(directory, table)
    if row_id is not None:
        source = read_table(directory, from_table) if from_table is not None else target
        vectors = source.features[[source.row_of(row_id)]]
        if vectors.shape[1] != target.features.shape[1]:
            raise ValueError(f"search: table {source.name!r} has dimension {vectors.shape[1]} and {target.name!r} "
                             f"{target.features.shape[1]}; their rows cannot be compared")
        asked = [f"id {row_id}" + (f" (from {source.name})" if source is not target else "")]
    elif "source" in target.manifest and "run_dir" not in target.manifest:
        from contrastkit.train.embed import search as corpus_search  # the corpus form, as before

        results = corpus_search(directory, queries, k=k, kind=kind)
        return [(query, [(doc_id, score, None, text) for doc_id, score, text in hits])
                for query, hits in zip(queries, results)]
    else:
        vectors = _encode_queries(target.manifest, target.name, directory, queries)
        asked = queries
    hits = target.nearest(vectors, k, kind=kind)
    return [(question, [(target.ids[row], score, target.label_name(row), target.texts.get(str(target.ids[row]), ""))
                        for row, score in row_hits])
            for question, row_hits in zip(asked, hits)]


def _encode_queries(manifest: dict[str, Any], name: str, directory: Path, queries: list[str]) -> np.ndarray:
    """Text queries encoded by the protocol of the run (and checkpoint) the folder came from."""
    if not manifest.get("text_queries"):
        raise ValueError(f"{directory}: the {name} embeddings of this {manifest.get('method', '?')} run on "
                         f"{manifest.get('dataset', '?')} cannot be searched with text (its encoder does not "
                         "encode text); search by row with --id ID")
    loaded = load_run(manifest["run_dir"], checkpoint=manifest.get("checkpoint"), command="search")
    with torch.no_grad():
        return loaded.protocol.encode_queries(loaded.method, queries).float().cpu().numpy()

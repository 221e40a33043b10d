"""Embedding folders on disk: write exported tables atomically, read them back, find neighbours.

The folder ``contrastkit embed RUN_DIR --out DIR`` writes::

    DIR/embeddings.npy   float32 [N, D]
    DIR/ids.json         N ids (ints or strings)
    DIR/labels.npy       int64 [N], when the rows have labels
    DIR/texts.jsonl      {"_id", "text"} per row, when the rows are texts (documents, captions)
    DIR/manifest.json    the run, checkpoint step, split, modality, encoder, dim, count, ...

When a run exports several tables (users and items; a corpus and its queries; images and
captions) each gets a sub-folder ``DIR/NAME/`` with the same files, and ``DIR/manifest.json``
lists them under ``tables``; every sub-folder is a complete folder by itself. With
``tensorboard=True`` the TensorBoard projector files come too (:mod:`contrastkit.eval.projector`).

The folder is built in a temporary sibling and renamed into place, so a reader sees the old
folder or the new one, and a failed export leaves nothing behind. The folders of the older
corpus form of ``contrastkit embed`` (a manifest with ``source``, no ``tables``) read as a single
table named ``corpus``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from contrastkit.eval.projector import write_projector
from contrastkit.eval.protocols.base import EmbeddingTable
from contrastkit.utils.atomic import atomic_write_json, replace_directory

FORMAT = "contrastkit-embeddings"
FORMAT_VERSION = 1
EMBEDDINGS_FILE, IDS_FILE, LABELS_FILE = "embeddings.npy", "ids.json", "labels.npy"
TEXTS_FILE, MANIFEST_FILE = "texts.jsonl", "manifest.json"

#: What ``contrastkit embed --format`` accepts: the numpy files, or those plus TensorBoard's projector files.
OUTPUT_FORMATS = ("numpy", "tensorboard")


def check_output_folder(out_dir: str | Path, *, overwrite: bool) -> Path:
    """``out_dir`` when an export may write there; else a ``ValueError`` saying why not.

    A missing or empty folder is fine; a non-empty one only with ``overwrite``, and only
    when it is an embedding folder itself (has ``manifest.json``), so that ``--overwrite``
    never deletes a folder of something else (a run, a home directory) by a typo.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} exists and is a file; expected a folder to write embeddings into")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise ValueError(f"{out_dir} exists and is not empty; pass --overwrite to replace it")
        if not (out_dir / MANIFEST_FILE).is_file():
            raise ValueError(f"{out_dir} is not empty and not an embedding folder (no {MANIFEST_FILE}); "
                             "refusing to replace it, even with --overwrite")
    return out_dir


def _table_manifest(table: EmbeddingTable) -> dict[str, Any]:
    entry: dict[str, Any] = {"table": table.name, "count": len(table), "dim": table.dim, "metric": table.metric,
                             "labels": table.labels is not None, "text_queries": table.text_queries}
    if table.class_names is not None:
        entry["class_names"] = list(table.class_names)
    return entry


def _write_table(folder: Path, table: EmbeddingTable, manifest: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / EMBEDDINGS_FILE, table.features)
    (folder / IDS_FILE).write_text(json.dumps(table.ids, ensure_ascii=False), encoding="utf-8")
    if table.labels is not None:
        np.save(folder / LABELS_FILE, table.labels)
    if table.texts is not None:
        with (folder / TEXTS_FILE).open("w", encoding="utf-8") as handle:
            for row_id, text in zip(table.ids, table.texts):
                handle.write(json.dumps({"_id": row_id, "text": text}, ensure_ascii=False) + "\n")
    atomic_write_json(folder / MANIFEST_FILE, {**manifest, **_table_manifest(table)})


def write_embedding_folder(
    out_dir: str | Path,
    tables: Sequence[EmbeddingTable],
    manifest: dict[str, Any],
    *,
    overwrite: bool = False,
    output_format: str = "numpy",
) -> Path:
    """Write ``tables`` as an embedding folder at ``out_dir``, atomically.

    Args:
        out_dir: the folder to write (replaced whole with ``overwrite``).
        tables: one table, written at the top, or several, one sub-folder each.
        manifest: what made them (run, checkpoint, split, ...), copied into every manifest.
        overwrite: replace an existing embedding folder.
        output_format: ``"numpy"``, or ``"tensorboard"`` for the projector files as well.

    Returns:
        ``out_dir``.
    """
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"--format: expected one of {', '.join(OUTPUT_FORMATS)}, got {output_format!r}")
    if not tables:
        raise ValueError("write_embedding_folder: expected at least one table, got none")
    names = [table.name for table in tables]
    if len(set(names)) != len(names):
        raise ValueError(f"write_embedding_folder: table names must be unique, got {names}")
    out_dir = check_output_folder(out_dir, overwrite=overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    manifest = {"format": FORMAT, "version": FORMAT_VERSION, **manifest, "output_format": output_format}
    # A ".tmp-" name: remove_stale_temporaries recognises what a killed export left.
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{out_dir.name}.", dir=out_dir.parent))
    try:
        single = len(tables) == 1
        placed = [(".", tables[0])] if single else [(table.name, table) for table in tables]
        for relative, table in placed:
            _write_table(staging / relative, table, manifest)
        listing = [{"name": table.name, "path": relative, "count": len(table), "dim": table.dim,
                    "metric": table.metric} for relative, table in placed]
        if output_format == "tensorboard":
            write_projector(staging, placed)
        top = {**manifest, **(_table_manifest(tables[0]) if single else {}), "tables": listing}
        atomic_write_json(staging / MANIFEST_FILE, top)  # last: a folder with its manifest is complete
        replace_directory(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not an embedding folder: expected {path} "
                                "(written by `contrastkit embed`)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is corrupt ({error}); re-run `contrastkit embed`") from error
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(manifest).__name__}")
    return manifest


@dataclasses.dataclass
class StoredTable:
    """One table of an embedding folder, read back.

    Attributes:
        directory: the folder holding its files.
        name: the table's name.
        features: ``[N, D]`` float32.
        ids: the ``N`` row ids.
        labels: ``[N]`` int64, or ``None``.
        texts: ``{id as text: text}`` (empty when the rows are not texts).
        manifest: the table's manifest (run, checkpoint, metric, ``text_queries``, ...).
    """

    directory: Path
    name: str
    features: np.ndarray
    ids: list[Any]
    labels: np.ndarray | None
    texts: dict[str, str]
    manifest: dict[str, Any]

    @property
    def metric(self) -> str:
        """``"cosine"`` or ``"dot"`` (older corpus folders: cosine, as their search was)."""
        return str(self.manifest.get("metric", "cosine"))

    def row_of(self, row_id: str) -> int:
        """The row whose id reads ``row_id``; a ``ValueError`` with example ids when there is none."""
        for row, candidate in enumerate(self.ids):
            if str(candidate) == row_id:
                return row
        examples = ", ".join(repr(str(candidate)) for candidate in self.ids[:3])
        raise ValueError(f"{self.directory}: table {self.name!r} has no row with id {row_id!r} "
                         f"({len(self.ids)} rows; ids such as {examples})")

    def label_name(self, row: int) -> str | None:
        """Row ``row``'s label as its class name where the manifest has names; ``None`` when unlabelled."""
        if self.labels is None:
            return None
        label = int(self.labels[row])
        names = self.manifest.get("class_names")
        return str(names[label]) if isinstance(names, list) and 0 <= label < len(names) else str(label)

    def nearest(self, queries: np.ndarray, k: int, *, kind: str = "flat") -> list[list[tuple[int, float]]]:
        """The ``k`` best ``(row, score)`` per query vector, by the table's metric (best first).

        The faiss index is built on first use and cached in ``DIRECTORY/index-KIND`` (as the
        corpus form's search does); a read-only folder is searched without the cache.
        """
        from contrastkit.eval.search import DenseIndex

        normalize = self.metric == "cosine"
        index_dir = self.directory / f"index-{kind}"
        index = None
        if index_dir.is_dir():
            index = DenseIndex.load(index_dir)
            if index.normalize != normalize or len(index) != len(self.ids):
                index = None  # not this table's index (a copied folder): build afresh
        if index is None:
            index = DenseIndex.build(self.features, [str(i) for i in self.ids], kind=kind, normalize=normalize)
            try:
                index.save(index_dir)
            except OSError:
                pass  # a read-only folder: search without caching
        position = {str(row_id): row for row, row_id in enumerate(self.ids)}
        scores, hits = index.search(np.asarray(queries, dtype=np.float32), k)
        return [[(position[row_id], float(score)) for row_id, score in zip(row_ids, row_scores)]
                for row_ids, row_scores in zip(hits, scores)]


def read_table(directory: str | Path, name: str | None = None) -> StoredTable:
    """Table ``name`` (default: the first) of an embedding folder or of one table's sub-folder.

    Raises:
        FileNotFoundError: ``directory`` is not an embedding folder.
        ValueError: no table of that name, or the files disagree (rows, ids, labels).
    """
    directory = Path(directory)
    manifest = _manifest(directory)
    entries = manifest.get("tables")
    if not isinstance(entries, list):  # one table's folder, or the corpus form's
        entries = [{"name": manifest.get("table", "corpus"), "path": "."}]
    if name is None:
        entry = entries[0]
    else:
        matches = [entry for entry in entries if entry.get("name") == name]
        if not matches:
            raise ValueError(f"{directory} has no table {name!r}; its tables: "
                             f"{', '.join(str(entry.get('name')) for entry in entries)}")
        entry = matches[0]
    folder = directory / str(entry.get("path", "."))
    table_manifest = manifest if folder == directory else _manifest(folder)
    features = np.load(folder / EMBEDDINGS_FILE, allow_pickle=False)
    ids = json.loads((folder / IDS_FILE).read_text(encoding="utf-8"))
    labels = np.load(folder / LABELS_FILE, allow_pickle=False) if (folder / LABELS_FILE).exists() else None
    count = table_manifest.get("count")
    if features.ndim != 2 or features.shape[0] != len(ids) or len(ids) != count or (
        labels is not None and labels.shape != (len(ids),)
    ):
        raise ValueError(f"{folder}: embeddings {features.shape}, ids ({len(ids)}), labels "
                         f"({None if labels is None else labels.shape}) and manifest count ({count}) disagree; "
                         "re-run `contrastkit embed`")
    texts: dict[str, str] = {}
    if (folder / TEXTS_FILE).exists():
        with (folder / TEXTS_FILE).open(encoding="utf-8") as handle:
            texts = {str(row["_id"]): row["text"] for row in map(json.loads, handle)}
    return StoredTable(folder, str(entry.get("name")), features, ids, labels, texts, table_manifest)

"""TensorBoard projector files for embedding tables, written directly (no TensorFlow needed).

The Embedding Projector of TensorBoard reads ``projector_config.pbtxt`` in a log directory
(``tensorboard --logdir DIR``): one ``embeddings { ... }`` block per tensor, whose
``tensor_path`` is a TSV of vectors (one row per line, values tab-separated, no header) and
whose ``metadata_path`` is a TSV of per-row metadata (a single column has no header; several
columns start with a header row). Paths are relative to the config file and must stay
inside its folder, which is why each table's files sit beside it or in a sub-folder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from contrastkit.eval.protocols.base import EmbeddingTable

CONFIG_FILE = "projector_config.pbtxt"
TENSORS_FILE = "tensors.tsv"
METADATA_FILE = "metadata.tsv"

#: Characters of a row's text kept in the metadata (the projector shows it on hover).
TEXT_CHARACTERS = 200


def _cell(value: object) -> str:
    # A tab or a line break inside a value would shift columns or rows of the TSV.
    return " ".join(str(value).split())


def metadata_rows(table: EmbeddingTable) -> list[str]:
    """The metadata TSV lines of ``table``: ``id`` and, where present, ``label`` and ``text``."""
    columns: list[tuple[str, list[object]]] = [("id", list(table.ids))]
    if table.labels is not None:
        names = table.class_names
        labels = table.labels.tolist()
        columns.append(("label", [names[label] if names and 0 <= label < len(names) else label for label in labels]))
    if table.texts is not None:
        columns.append(("text", [text[:TEXT_CHARACTERS] for text in table.texts]))
    rows = ["\t".join(_cell(values[row]) or "-" for _, values in columns) for row in range(len(table))]
    if len(columns) == 1:
        return rows
    return ["\t".join(name for name, _ in columns)] + rows


def write_projector(folder: str | Path, tables: Sequence[tuple[str, EmbeddingTable]]) -> Path:
    """Write each table's ``tensors.tsv`` and ``metadata.tsv`` and one ``projector_config.pbtxt``.

    Args:
        folder: the folder that gets the config file (TensorBoard's ``--logdir``).
        tables: ``(sub-folder relative to folder, table)``; ``"."`` puts the files beside the config.

    Returns:
        The config file's path.
    """
    folder = Path(folder)
    blocks = []
    for relative, table in tables:
        target = folder / relative
        target.mkdir(parents=True, exist_ok=True)
        # Nine significant digits round-trip float32 exactly.
        np.savetxt(target / TENSORS_FILE, table.features, fmt="%.9g", delimiter="\t")
        (target / METADATA_FILE).write_text("\n".join(metadata_rows(table)) + "\n", encoding="utf-8")
        prefix = "" if relative in ("", ".") else f"{Path(relative).as_posix()}/"
        # JSON string quoting is valid protobuf text format for these plain names and paths.
        blocks.append("embeddings {\n"
                      f"  tensor_name: {json.dumps(table.name)}\n"
                      f"  tensor_path: {json.dumps(prefix + TENSORS_FILE)}\n"
                      f"  metadata_path: {json.dumps(prefix + METADATA_FILE)}\n"
                      "}\n")
    config = folder / CONFIG_FILE
    config.write_text("".join(blocks), encoding="utf-8")
    return config

"""TensorBoard projector files for embedding tables, written directly (no TensorFlow needed).

The Embedding Projector of TensorBoard reads ``projector_config.pbtxt`` in a log directory
(``tensorboard --logdir DIR``): one ``embeddings { ... }`` block per tensor, whose
``tensor_path`` is a TSV of vectors (one row per line, values tab-separated, no header) and
whose ``metadata_path`` is a TSV of per-row metadata (a single column has no header; several
columns start with a header row). Paths are relative to the config file and must stay
inside its folder, which is why each table's files sit beside it or in a sub-folder.

A table with thumbnails (images of its rows, e.g. the test images of an image run) also gets
a ``sprite.png``: the thumbnails tiled row by row, left to right, in a square grid of
``ceil(sqrt(N))`` cells a side, which the projector shows in place of each point
(``sprite { image_path, single_image_dim: W, single_image_dim: H }``). TensorBoard reads
sprites up to :data:`MAX_SPRITE_SIDE` pixels a side, so thumbnails shrink to fit many rows.
Every file is written atomically, the config last.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from contrastkit.eval.protocols.base import EmbeddingTable
from contrastkit.utils.atomic import atomic_write_bytes, atomic_write_text

CONFIG_FILE = "projector_config.pbtxt"
TENSORS_FILE = "tensors.tsv"
METADATA_FILE = "metadata.tsv"
SPRITE_FILE = "sprite.png"

#: The largest sprite side TensorBoard's projector loads (pixels).
MAX_SPRITE_SIDE = 8192

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


def _thumbnail_array(thumbnails: Any) -> np.ndarray:
    """``[N, H, W, C]`` float in ``[0, 1]``: values already there kept, others min-max scaled per image, NaN as 0."""
    if hasattr(thumbnails, "detach"):
        thumbnails = thumbnails.detach().float().cpu().numpy()
    images = np.nan_to_num(np.asarray(thumbnails, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    if images.ndim == 3:
        images = images[:, None]
    images = images.transpose(0, 2, 3, 1)
    if images.size and (images.min() < 0.0 or images.max() > 1.0):
        low = images.min(axis=(1, 2, 3), keepdims=True)
        span = images.max(axis=(1, 2, 3), keepdims=True) - low
        images = (images - low) / np.where(span > 0, span, 1.0)
    return images


def sprite_image(thumbnails: Any) -> tuple[np.ndarray, tuple[int, int]]:
    """The sprite of ``thumbnails`` (``[N, C, H, W]`` or ``[N, H, W]``) and one cell's ``(width, height)``.

    Cells are filled row by row, left to right (row ``i`` of the table is cell ``i``), in a
    ``ceil(sqrt(N))``-cell square; empty cells stay black. Thumbnails are shrunk (bilinear)
    where the sprite would exceed :data:`MAX_SPRITE_SIDE` pixels a side.

    Returns:
        ``(uint8 [rows * H, cols * W] or [.., .., 3], (W, H))``.
    """
    from PIL import Image

    images = _thumbnail_array(thumbnails)
    count, height, width, channels = images.shape
    side = max(1, math.ceil(math.sqrt(count)))
    scale = min(1.0, MAX_SPRITE_SIDE / (side * max(height, width)))
    cell_w, cell_h = max(1, int(width * scale)), max(1, int(height * scale))
    pixels = np.rint(images * 255.0).astype(np.uint8)
    if (cell_w, cell_h) != (width, height):
        mode = "L" if channels == 1 else "RGB"
        pixels = np.stack([np.asarray(Image.fromarray(picture.squeeze(-1) if channels == 1 else picture, mode)
                                      .resize((cell_w, cell_h), Image.Resampling.BILINEAR)).reshape(cell_h, cell_w, -1)
                           for picture in pixels])
    sprite = np.zeros((side * cell_h, side * cell_w, channels), dtype=np.uint8)
    for row, picture in enumerate(pixels):
        top, left = (row // side) * cell_h, (row % side) * cell_w
        sprite[top:top + cell_h, left:left + cell_w] = picture
    return (sprite[..., 0] if channels == 1 else sprite), (cell_w, cell_h)


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def write_projector(folder: str | Path, tables: Sequence[tuple[str, EmbeddingTable]]) -> Path:
    """Write each table's ``tensors.tsv``, ``metadata.tsv`` (and ``sprite.png``) and one ``projector_config.pbtxt``.

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
        buffer = io.StringIO()
        np.savetxt(buffer, table.features, fmt="%.9g", delimiter="\t")
        atomic_write_text(target / TENSORS_FILE, buffer.getvalue())
        atomic_write_text(target / METADATA_FILE, "\n".join(metadata_rows(table)) + "\n")
        prefix = "" if relative in ("", ".") else f"{Path(relative).as_posix()}/"
        sprite = ""
        if table.thumbnails is not None:
            picture, (cell_w, cell_h) = sprite_image(table.thumbnails)
            atomic_write_bytes(target / SPRITE_FILE, _png(picture))
            sprite = ("  sprite {\n"
                      f"    image_path: {json.dumps(prefix + SPRITE_FILE)}\n"
                      f"    single_image_dim: {cell_w}\n"
                      f"    single_image_dim: {cell_h}\n"
                      "  }\n")
        # JSON string quoting is valid protobuf text format for these plain names and paths.
        blocks.append("embeddings {\n"
                      f"  tensor_name: {json.dumps(table.name)}\n"
                      f"  tensor_path: {json.dumps(prefix + TENSORS_FILE)}\n"
                      f"  metadata_path: {json.dumps(prefix + METADATA_FILE)}\n"
                      f"{sprite}"
                      "}\n")
    config = folder / CONFIG_FILE
    atomic_write_text(config, "".join(blocks))
    return config

"""The ``image-captions`` data set: a user's folder of images and a JSONL file of their captions.

``data_dir/captions.jsonl`` (or ``data.captions``) holds one JSON object per line:
``{"image": "cat.png", "caption": "a cat"}`` or ``{"image": "cat.png", "captions": ["a cat",
"my cat Tom"]}``; paths are relative to ``data_dir``. Lines naming the same image add
captions to it. Images are read with Pillow as RGB, resized to ``image_size`` squared; a
seeded share of the *images* (with all their captions) is held out for testing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from contrastkit.data.files import _read_image
from contrastkit.data.paired import ImageCaptionDataset
from contrastkit.data.registry import DatasetSplits, register_dataset

__all__ = ["load_image_captions", "read_caption_lines"]


def read_caption_lines(path: Path) -> dict[str, list[str]]:
    """``{image path as written: captions}`` from a JSONL file, in first-seen order; bad lines are one clear error."""
    if not path.is_file():
        raise FileNotFoundError(f"image-captions: no captions file {path} (expected JSON lines "
                                '{"image": "file.png", "caption": "..."}; set data.captions)')
    captions: dict[str, list[str]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from None
        texts = row.get("captions", [row["caption"]] if "caption" in row else None) if isinstance(row, dict) else None
        if not isinstance(row, dict) or not isinstance(row.get("image"), str) or not isinstance(texts, list) \
                or not texts or not all(isinstance(text, str) and text.strip() for text in texts):
            raise ValueError(f'{path}:{number}: expected {{"image": "file", "caption": "text"}} or "captions": '
                             f"[non-empty texts], got {line.strip()[:80]}")
        captions.setdefault(row["image"], []).extend(texts)
    if len(captions) < 2:
        raise ValueError(f"{path}: expected captions of at least 2 images, got {len(captions)}")
    return captions


@register_dataset("image-captions", description="your own pairs: data_dir with images and captions.jsonl "
                  '({"image": "file.png", "caption" or "captions": ...} per line)')
def load_image_captions(*, data_dir: str | Path | None = None, captions: str | Path | None = None,
                        image_size: int = 64, test_fraction: float = 0.2, seed: int = 0) -> DatasetSplits:
    """A folder of images with a JSONL of captions, split by image."""
    if data_dir is None:
        raise ValueError("image-captions: set data.data_dir to the folder of images (and captions.jsonl)")
    folder = Path(data_dir)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"data.test_fraction: expected a number in (0, 1), got {test_fraction}")
    table = read_caption_lines(Path(captions) if captions is not None else folder / "captions.jsonl")
    images = []
    for name in table:
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"image-captions: {path} is named in the captions file but does not exist")
        images.append(_read_image(path, (int(image_size), int(image_size)), 3))
    pixels = torch.from_numpy(np.stack(images)).float() / 255.0
    names = list(table)
    order = torch.randperm(len(names), generator=torch.Generator().manual_seed(int(seed))).tolist()
    held = max(1, round(test_fraction * len(names)))
    if held >= len(names):
        raise ValueError(f"image-captions: {len(names)} images leave none for training at test_fraction {test_fraction}")
    test_rows, train_rows = sorted(order[:held]), sorted(order[held:])

    def part(rows: list[int]) -> ImageCaptionDataset:
        return ImageCaptionDataset(pixels[rows], [table[names[row]] for row in rows],
                                   class_names=[table[names[row]][0] for row in rows])

    train, test = part(train_rows), part(test_rows)
    return DatasetSplits(train=train, test=test, num_classes=test.num_classes, input_shape=train.input_shape,
                         name="image-captions", description=f"{len(train)} train / {len(test)} test images from "
                         f"{folder}", modality="image-text", class_names=test.class_names)

"""Hugging Face ``datasets`` folders as data sources: dataset ``hf-disk`` (and ``hf-disk:PATH``).

A folder written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk`` is read with
``datasets.load_from_disk`` only: local Arrow files, never the Hub, so a run stays offline.
``data.columns`` maps contrastkit's roles to the folder's column names:

- **images**: ``{image: COLUMN, label: COLUMN}`` (``label`` optional). The image column holds
  images (an ``Image`` feature, decoded to PIL by ``datasets``) or numeric arrays ``[H, W]`` /
  ``[C, H, W]`` (``Array2D``/``Array3D`` or nested lists). Images are converted to grey or RGB,
  resized (bilinear) when ``image_size`` asks for it, and scaled to ``[0, 1]``: the same
  ``[N, C, H, W]`` float32 tensors as ``image-folder``, for the image methods.
- **text pairs**: ``{anchor: COLUMN, positive: COLUMN}`` (optional ``negative`` and ``label``),
  the (query, document) rows of the text pair methods (MNRL, ...). The test rows become a
  retrieval task (each anchor must find its own positive among all positives), as
  ``text-pairs`` does with a JSONL file.
- **single texts**: ``{text: COLUMN}`` for the unsupervised text methods (SimCSE, Contriever),
  which train on one text per row (it fills both fields of the training rows). Text runs are
  scored by retrieval, so the test rows must name ``anchor`` and ``positive`` columns too.

Labels: a ``ClassLabel`` column keeps its names (``class_names``); integer columns are taken as
class ids (non-negative); string columns are mapped to ``0..K-1`` by their sorted union over
train and test.

Splits: a ``DatasetDict`` trains on ``split`` (default ``train``) and tests on ``test_split``
(default ``test`` where the folder has one); otherwise — and for a plain ``Dataset`` — a seeded
``test_fraction`` of the training rows is held out (class-stratified when labelled).

Example:
    >>> splits = load_dataset("hf-disk", path="cifar_small", columns={"image": "img", "label": "label"})
    >>> splits.train.inputs.shape, splits.class_names[:2]
    (torch.Size([800, 3, 32, 32]), ['airplane', 'automobile'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contrastkit.data.arrays import ArrayDataset
from contrastkit.data.registry import DatasetSplits, register_dataset, register_dataset_prefix
from contrastkit.data.splits import split_indices, test_size_from_fraction

__all__ = ["COLUMN_ROLES", "load_hf_disk"]

#: The roles ``data.columns`` may map, and what each holds.
COLUMN_ROLES = {
    "image": "images (an Image feature) or numeric arrays [H, W] / [C, H, W]",
    "label": "class labels (ClassLabel, integers or strings)",
    "text": "one text per row (unsupervised text methods)",
    "anchor": "the query text of a pair",
    "positive": "the document text of a pair",
    "negative": "a hard-negative text per pair",
}

#: Rows decoded per chunk while reading a column (keeps the Arrow-to-Python copies small).
_CHUNK = 512

_WHAT = "hf-disk"


def _datasets_module() -> Any:
    try:
        import datasets
    except ImportError as error:
        raise ImportError(f"{_WHAT}: reading a Hugging Face datasets folder needs the 'datasets' package: "
                          "pip install 'contrastkit[hf]'") from error
    return datasets


def _read_folder(folder: Path) -> Any:
    """``load_from_disk(folder)`` (a ``Dataset`` or ``DatasetDict``) with one-line errors."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{_WHAT}: folder not found: {folder} (expected a folder written by "
                                "Dataset.save_to_disk or DatasetDict.save_to_disk)")
    datasets = _datasets_module()
    try:
        return datasets.load_from_disk(str(folder))
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{_WHAT}: {folder} is not a saved Hugging Face dataset (expected "
                                "dataset_info.json/state.json or dataset_dict.json from save_to_disk): "
                                f"{str(error).splitlines()[0]}") from None


def _check_columns(columns: Any) -> dict[str, str]:
    if not isinstance(columns, Mapping):
        raise ValueError(f"{_WHAT}: expected columns as a mapping {{role: column}}, got {type(columns).__name__}")
    unknown = sorted(str(role) for role in columns if role not in COLUMN_ROLES)
    if unknown:
        raise ValueError(f"{_WHAT}: unknown column role(s) {', '.join(unknown)}; expected some of: "
                         f"{', '.join(COLUMN_ROLES)}")
    for role, column in columns.items():
        if not isinstance(column, str) or not column:
            raise ValueError(f"{_WHAT}: expected columns.{role} to be a column name, got {column!r}")
    roles = dict(columns)
    if "image" in roles:
        extra = sorted(set(roles) - {"image", "label"})
        if extra:
            raise ValueError(f"{_WHAT}: an image dataset takes columns image and label only, got also {', '.join(extra)}")
    elif {"anchor", "positive"} & set(roles) and not {"anchor", "positive"} <= set(roles):
        raise ValueError(f"{_WHAT}: columns anchor and positive go together (a query/document pair); got only "
                         f"{'anchor' if 'anchor' in roles else 'positive'}")
    elif "text" not in roles and "anchor" not in roles:
        raise ValueError(f"{_WHAT}: columns must name image (with optional label), text, or anchor and positive; "
                         f"got {', '.join(roles) or 'none'}")
    if "negative" in roles and "anchor" not in roles:
        raise ValueError(f"{_WHAT}: columns.negative needs anchor and positive columns too")
    return roles


def _guess_columns(dataset: Any, where: str) -> dict[str, str]:
    """Roles read off the features when ``columns`` is not given: one Image column (+ one ClassLabel)."""
    datasets = _datasets_module()
    images = [name for name, feature in dataset.features.items() if isinstance(feature, datasets.Image)]
    labels = [name for name, feature in dataset.features.items() if isinstance(feature, datasets.ClassLabel)]
    if len(images) == 1 and len(labels) <= 1:
        return {"image": images[0], **({"label": labels[0]} if labels else {})}
    raise ValueError(f"{_WHAT}: set data.columns (e.g. {{image: img, label: label}}, {{text: sentence}} or "
                     f"{{anchor: query, positive: answer}}); {where} has columns {', '.join(dataset.column_names)}")


def _values(dataset: Any, column: str, role: str, where: str) -> list[Any]:
    """Every value of ``column`` (a missing column is one error naming the columns there are)."""
    if column not in dataset.column_names:
        raise ValueError(f"{_WHAT}: columns.{role}={column!r}: no such column in {where}; it has "
                         f"{', '.join(dataset.column_names)}")
    values: list[Any] = []
    for chunk in dataset.select_columns([column]).iter(batch_size=_CHUNK):
        values.extend(chunk[column])
    return values


def _texts(dataset: Any, column: str, role: str, where: str) -> list[str]:
    values = _values(dataset, column, role, where)
    for row, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            got = "an empty string" if isinstance(value, str) else f"{type(value).__name__} {str(value)[:40]!r}"
            raise ValueError(f"{_WHAT}: column {column!r} ({role}) of {where}, row {row}: expected a non-empty "
                             f"text string, got {got}")
    return values


def _raw_labels(dataset: Any, column: str, where: str) -> tuple[list[Any], list[str] | None]:
    """The label column's values and, for a ``ClassLabel`` feature, its class names."""
    datasets = _datasets_module()
    values = _values(dataset, column, "label", where)
    feature = dataset.features[column]
    names = list(feature.names) if isinstance(feature, datasets.ClassLabel) else None
    for row, value in enumerate(values):
        integer = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
        if not (integer or isinstance(value, str)):
            raise ValueError(f"{_WHAT}: column {column!r} (label) of {where}, row {row}: expected an integer class "
                             f"id or a string label, got {type(value).__name__} {value!r}")
        if integer and value < 0:
            raise ValueError(f"{_WHAT}: column {column!r} (label) of {where}, row {row}: expected a non-negative "
                             f"class id, got {value} (-1 marks an unlabelled row in Hugging Face datasets; drop "
                             "columns.label for unlabelled data)")
    return values, names


def _encode_labels(train: list[Any], test: list[Any] | None, names: list[str] | None,
                   column: str) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    every = train + (test or [])
    kinds = {isinstance(value, str) for value in every}
    if len(kinds) > 1:
        raise ValueError(f"{_WHAT}: column {column!r} (label) mixes integer and string labels; expected one kind")
    if kinds == {True}:  # strings: sorted union over both splits
        names = sorted(set(every))
        index = {name: position for position, name in enumerate(names)}

        def encode(values: list[Any]) -> np.ndarray:
            return np.array([index[value] for value in values], dtype=np.int64)
    else:
        def encode(values: list[Any]) -> np.ndarray:
            return np.array(values, dtype=np.int64).reshape(-1)
    return encode(train), None if test is None else encode(test), names


def _pil_to_array(image: Any, size: tuple[int, int] | None, channels: int) -> np.ndarray:
    from PIL import Image

    image = image.convert("L" if channels == 1 else "RGB")
    if size is not None and image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def _decode(value: Any) -> Any:
    """A PIL image from an ``Image(decode=False)`` cell (``{"bytes", "path"}``); other values unchanged."""
    if isinstance(value, Mapping) and ("bytes" in value or "path" in value):
        import io

        from PIL import Image

        if value.get("bytes") is not None:
            return Image.open(io.BytesIO(value["bytes"]))
        return Image.open(value["path"])
    return value


def _images(values: list[Any], column: str, where: str, image_size: Any, channels: int | None) -> torch.Tensor:
    """``[N, C, H, W]`` float32 in ``[0, 1]`` (uint8 and PIL images) or as stored (float arrays)."""
    from PIL import Image

    if not values:
        raise ValueError(f"{_WHAT}: {where} has no rows")
    size: tuple[int, int] | None = None
    if image_size is not None:
        size = ((int(image_size), int(image_size)) if isinstance(image_size, (int, np.integer))
                else tuple(int(side) for side in image_size))  # type: ignore[assignment]
        if len(size) != 2 or min(size) < 1:  # type: ignore[arg-type]
            raise ValueError(f"{_WHAT}: expected image_size as S or (H, W) with positive sizes, got {image_size}")
    requested = size  # the size asked for (PIL images are resized to it); None: every image must share one
    arrays = []
    for row, raw in enumerate(values):
        value = _decode(raw)
        if isinstance(value, Image.Image):
            if channels is None:
                channels = 1 if value.mode in ("1", "L", "LA", "I", "I;16", "F") else 3
            if channels not in (1, 3):
                raise ValueError(f"{_WHAT}: column {column!r} (image) of {where}, row {row}: an image converts to 1 "
                                 f"(grey) or 3 (RGB) channels, but the rows before it have {channels}")
            array = _pil_to_array(value, requested, channels)
        else:
            try:
                array = np.asarray(value)
            except (ValueError, TypeError):
                array = np.asarray([], dtype=object)
            if array.dtype.kind not in "uif" or array.ndim not in (2, 3):
                got = f"{type(value).__name__}" + (f" of shape {array.shape}" if array.dtype.kind in "uif" else "")
                raise ValueError(f"{_WHAT}: column {column!r} (image) of {where}, row {row}: expected an image "
                                 f"(an Image feature) or a numeric array [H, W] or [C, H, W], got {got}")
            array = array[None] if array.ndim == 2 else array
            if channels is None:
                channels = int(array.shape[0])
            if array.shape[0] != channels:
                raise ValueError(f"{_WHAT}: column {column!r} (image) of {where}, row {row}: expected {channels} "
                                 f"channels (first dimension of [C, H, W]), got shape {array.shape}")
            if requested is not None and tuple(array.shape[1:]) != requested:
                raise ValueError(f"{_WHAT}: column {column!r} (image) of {where}, row {row}: array images are not "
                                 f"resized; expected {requested[0]}x{requested[1]} (data.image_size), got "
                                 f"{array.shape[1]}x{array.shape[2]}")
        if size is None:
            size = (int(array.shape[1]), int(array.shape[2]))
        elif tuple(array.shape[1:]) != size:
            raise ValueError(f"{_WHAT}: column {column!r} (image) of {where}, row {row}: image is "
                             f"{array.shape[1]}x{array.shape[2]} but the first is {size[0]}x{size[1]}; set "
                             "data.image_size to resize every image")
        arrays.append(array)
    stacked = np.stack(arrays)
    if stacked.dtype == np.uint8:
        result = stacked.astype(np.float32) / 255.0
    else:
        result = stacked.astype(np.float32)
        if not np.isfinite(result).all():
            raise ValueError(f"{_WHAT}: column {column!r} (image) of {where} holds NaN or infinite values")
    return torch.from_numpy(np.ascontiguousarray(result))


def _choose_splits(loaded: Any, folder: Path, split: str | None,
                   test_split: str | None) -> tuple[Any, Any | None, str, str | None]:
    """``(train rows, test rows or None, train name, test name)`` of a Dataset or DatasetDict."""
    datasets = _datasets_module()
    if isinstance(loaded, datasets.DatasetDict):
        names = list(loaded)
        train_name = split or "train"
        if train_name not in loaded:
            raise ValueError(f"{_WHAT}: {folder} has no split {train_name!r}; it has {', '.join(names)} "
                             "(set data.split)")
        if test_split is None:
            test_split = "test" if "test" in loaded and train_name != "test" else None
        elif test_split not in loaded:
            raise ValueError(f"{_WHAT}: {folder} has no split {test_split!r}; it has {', '.join(names)} "
                             "(set data.test_split, or leave it out to hold out test_fraction of the training rows)")
        if test_split == train_name:
            raise ValueError(f"{_WHAT}: split and test_split are both {train_name!r}; expected two different splits")
        return loaded[train_name], None if test_split is None else loaded[test_split], train_name, test_split
    if split is not None or test_split is not None:
        raise ValueError(f"{_WHAT}: {folder} holds one Dataset (saved by Dataset.save_to_disk, no named splits); "
                         "drop data.split and data.test_split")
    return loaded, None, "dataset", None


def load_hf_disk(
    *,
    path: str | Path | None = None,
    data_dir: str | Path | None = None,
    columns: Mapping[str, str] | None = None,
    split: str | None = None,
    test_split: str | None = None,
    test_fraction: float = 0.2,
    image_size: int | Sequence[int] | None = None,
    channels: int | None = None,
    seed: int = 0,
) -> DatasetSplits:
    """A Hugging Face ``datasets`` folder (``save_to_disk``) as image or text splits.

    Args:
        path: the folder (required); relative paths resolve against ``data_dir``.
        data_dir: a folder that a relative ``path`` is resolved against.
        columns: ``{role: column}``, roles as in :data:`COLUMN_ROLES`; ``None`` finds the one
            ``Image`` column (and the one ``ClassLabel`` column, if any) by their features.
        split: the training split of a ``DatasetDict`` (default ``train``).
        test_split: the test split (default ``test`` where present; else ``test_fraction`` is held out).
        test_fraction: the fraction of training rows held out when there is no test split.
        image_size: resize images to ``S x S`` or ``(H, W)``; ``None`` keeps the size (all images must share it).
        channels: 1 (grey) or 3 (RGB); ``None`` follows the first image (grey PIL modes -> 1, array channels).
        seed: the seed of the held-out split.

    Returns:
        Image splits (``ArrayDataset`` ``[N, C, H, W]``, ``modality="image"``) or text splits
        (``TextPairDataset`` train, ``RetrievalTask`` test, ``modality="text"``).

    Raises:
        FileNotFoundError: when the folder does not exist or is not a saved dataset.
        ValueError: one line naming the column, split and row for a missing column, a value of the
            wrong type (a non-image in an image column, a non-string text, a negative label), images
            of unequal sizes without ``image_size``, a split the folder lacks, or columns that do not
            form one of the three kinds.
    """
    if channels is not None and channels not in (1, 3):
        raise ValueError(f"{_WHAT}: expected channels 1 (grey) or 3 (RGB), got {channels}")
    if path is None:
        raise ValueError(f"{_WHAT}: path is required (pass --set data.path=DIR, a folder written by save_to_disk)")
    folder = Path(path).expanduser()
    if not folder.is_absolute() and data_dir is not None:
        folder = Path(data_dir).expanduser() / folder
    loaded = _read_folder(folder)
    train_rows, test_rows, train_name, test_name = _choose_splits(loaded, folder, split, test_split)
    train_where = f"{folder} split {train_name!r}"
    test_where = f"{folder} split {test_name!r}"
    roles = _check_columns(columns) if columns is not None else _guess_columns(train_rows, train_where)

    held_out: tuple[np.ndarray, np.ndarray] | None = None
    if test_rows is None:
        count = len(train_rows)
        test_size = test_size_from_fraction(count, test_fraction, what=_WHAT)
        if test_size == 0:
            raise ValueError(f"{_WHAT}: {folder} has no test split and test_fraction is 0; expected a test split "
                             "or test_fraction > 0")
        stratify = None
        if "label" in roles:
            raw, names = _raw_labels(train_rows, roles["label"], train_where)
            stratify, _, _ = _encode_labels(raw, None, names, roles["label"])
        held_out = split_indices(count, stratify, test_size=test_size, seed=seed)
        test_rows, test_where = train_rows.select(held_out[1]), f"{train_where} (held-out rows)"
        train_rows = train_rows.select(held_out[0])

    labels_train = labels_test = None
    class_names: list[str] | None = None
    if "label" in roles:
        raw_train, names = _raw_labels(train_rows, roles["label"], train_where)
        raw_test, _ = _raw_labels(test_rows, roles["label"], test_where)
        labels_train, labels_test, class_names = _encode_labels(raw_train, raw_test, names, roles["label"])

    if "image" in roles:
        column = roles["image"]
        train_images = _images(_values(train_rows, column, "image", train_where), column, train_where,
                               image_size, channels)
        shape = tuple(train_images.shape[1:])
        test_images = _images(_values(test_rows, column, "image", test_where), column, test_where,
                              image_size, shape[0])
        if tuple(test_images.shape[1:]) != shape:
            raise ValueError(f"{_WHAT}: column {column!r} (image): the test images ({test_where}) are "
                             f"{test_images.shape[2]}x{test_images.shape[3]} but the training images {shape[1]}x{shape[2]}; "
                             "set data.image_size to resize every image")
        to_tensor = (lambda labels: None) if labels_train is None else (lambda labels: torch.from_numpy(labels))
        num_classes = 0
        if labels_train is not None:
            num_classes = len(class_names) if class_names is not None else int(max(labels_train.max(),
                                                                                    labels_test.max())) + 1
        return DatasetSplits(
            train=ArrayDataset(train_images, to_tensor(labels_train)),
            test=ArrayDataset(test_images, to_tensor(labels_test)),
            num_classes=num_classes, input_shape=shape, class_names=class_names, modality="image",
        )
    return _text_splits(roles, train_rows, test_rows, train_where, test_where, labels_train)


def _text_splits(roles: dict[str, str], train_rows: Any, test_rows: Any, train_where: str, test_where: str,
                 labels: np.ndarray | None) -> DatasetSplits:
    from contrastkit.data.text import TextPairDataset
    from contrastkit.data.text_files import retrieval_task_from_pairs

    if "anchor" not in roles:
        raise ValueError(f"{_WHAT}: text runs are scored by retrieval over (query, document) pairs, but columns "
                         f"name only text={roles['text']!r}; add columns.anchor and columns.positive for the test rows "
                         f"({test_where})")
    if "text" in roles:
        texts = _texts(train_rows, roles["text"], "text", train_where)
        train = TextPairDataset(texts, texts, labels=None if labels is None else torch.from_numpy(labels))
    else:
        negatives = _texts(train_rows, roles["negative"], "negative", train_where) if "negative" in roles else None
        train = TextPairDataset(_texts(train_rows, roles["anchor"], "anchor", train_where),
                                _texts(train_rows, roles["positive"], "positive", train_where), negatives,
                                labels=None if labels is None else torch.from_numpy(labels))
    test_pairs = TextPairDataset(_texts(test_rows, roles["anchor"], "anchor", test_where),
                                 _texts(test_rows, roles["positive"], "positive", test_where))
    return DatasetSplits(train=train, test=retrieval_task_from_pairs(test_pairs, name="hf-disk/test"),
                         num_classes=0, input_shape=(), modality="text")


register_dataset(
    "hf-disk",
    description="a Hugging Face datasets folder (save_to_disk): path=DIR, columns={image[, label]} | {text} | "
                "{anchor, positive[, negative]}, optional split=, test_split=",
)(load_hf_disk)
register_dataset_prefix("hf-disk", load_hf_disk,
                        description="a Hugging Face datasets folder (save_to_disk) at PATH; see hf-disk")

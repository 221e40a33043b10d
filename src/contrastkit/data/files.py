"""Loaders for a user's own data: ``image-folder`` and ``npy``.

Both return a seeded, class-stratified train/test split (``test_fraction``) of the
whole data, as :class:`~contrastkit.data.registry.DatasetSplits`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from contrastkit.data.arrays import ArrayDataset
from contrastkit.data.registry import DatasetSplits, register_dataset
from contrastkit.data.splits import split_indices, test_size_from_fraction

#: File name endings read as images by ``image-folder``.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def _split(
    inputs: torch.Tensor,
    labels: torch.Tensor | None,
    *,
    test_fraction: float,
    seed: int,
    what: str,
) -> tuple[ArrayDataset, ArrayDataset]:
    num_rows = int(inputs.shape[0])
    test_size = test_size_from_fraction(num_rows, test_fraction, what=what)
    label_array = None if labels is None else labels.numpy()
    train_rows, test_rows = split_indices(num_rows, label_array, test_size=test_size, seed=seed)
    train_rows_t, test_rows_t = torch.from_numpy(train_rows), torch.from_numpy(test_rows)
    pick = (lambda rows: None) if labels is None else (lambda rows: labels[rows])
    return (
        ArrayDataset(inputs[train_rows_t], pick(train_rows_t)),
        ArrayDataset(inputs[test_rows_t], pick(test_rows_t)),
    )


def _image_files(folder: Path, extensions: Sequence[str]) -> list[Path]:
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in extensions
    )


def _read_image(path: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise ValueError(f"image-folder: cannot read image {path}: {error}") from error
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


@register_dataset(
    "image-folder",
    description="your own images: data_dir with one sub-folder per class (or images directly in it, unlabelled)",
)
def load_image_folder(
    *,
    data_dir: str | Path | None = None,
    image_size: int | Sequence[int] = 32,
    channels: int = 3,
    test_fraction: float = 0.2,
    seed: int = 0,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
) -> DatasetSplits:
    """Images from a folder: one sub-folder per class, or all images directly in it (unlabelled).

    Images are read with Pillow, converted to grey (``channels=1``) or RGB (``channels=3``),
    resized to ``image_size`` (bilinear, aspect ratio not kept) and scaled to ``[0, 1]``.
    Class labels follow the sorted sub-folder names. Hidden files and files with other
    endings are skipped.

    Args:
        data_dir: the folder (required).
        image_size: the output size: ``S`` for ``S x S`` or ``(H, W)``.
        channels: 1 (grey) or 3 (RGB).
        test_fraction: the fraction of images held out for testing (seeded, class-stratified).
        seed: the split's seed.
        extensions: the file endings read as images.

    Raises:
        ValueError: when ``data_dir`` is not given, the folder or a class folder holds no
            images, a file cannot be read as an image (named), or options are out of range.
        FileNotFoundError: when the folder does not exist.
    """
    if data_dir is None:
        raise ValueError("image-folder: data_dir is required (pass --set data.data_dir=PATH)")
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"image-folder: folder not found: {folder}")
    if channels not in (1, 3):
        raise ValueError(f"image-folder: expected channels 1 or 3, got {channels}")
    size = (int(image_size), int(image_size)) if isinstance(image_size, (int, np.integer)) else tuple(int(s) for s in image_size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"image-folder: expected image_size as S or (H, W) with positive sizes, got {image_size}")
    extensions = tuple(ext.lower() if ext.startswith(".") else f".{ext.lower()}" for ext in extensions)

    class_dirs = sorted(path for path in folder.iterdir() if path.is_dir() and not path.name.startswith("."))
    loose = _image_files(folder, extensions)
    if class_dirs and loose:
        raise ValueError(
            f"image-folder: {folder} mixes class sub-folders ({', '.join(d.name for d in class_dirs[:5])}) "
            f"with images directly in it ({loose[0].name}, ...); expected one or the other"
        )
    files: list[Path] = []
    label_list: list[int] = []
    class_names: list[str] | None = None
    if class_dirs:
        class_names = [path.name for path in class_dirs]
        for label, class_dir in enumerate(class_dirs):
            class_files = _image_files(class_dir, extensions)
            if not class_files:
                raise ValueError(
                    f"image-folder: class folder {class_dir} holds no images (endings {', '.join(extensions)})"
                )
            files.extend(class_files)
            label_list.extend([label] * len(class_files))
    else:
        files = loose
    if not files:
        raise ValueError(f"image-folder: {folder} holds no images (endings {', '.join(extensions)}) and no class sub-folders")

    inputs = torch.from_numpy(np.stack([_read_image(path, size, channels) for path in files]).astype(np.float32) / 255.0)
    labels = torch.tensor(label_list, dtype=torch.long) if class_names is not None else None
    train, test = _split(inputs, labels, test_fraction=test_fraction, seed=seed, what="image-folder")
    return DatasetSplits(
        train=train,
        test=test,
        num_classes=len(class_names) if class_names is not None else 0,
        input_shape=(channels, *size),
        class_names=class_names,
    )


@register_dataset("npy", description="your own arrays: path=images.npy [N,C,H,W] or [N,H,W], optional labels_path=labels.npy [N]")
def load_npy(
    *,
    data_dir: str | Path | None = None,
    path: str | Path | None = None,
    labels_path: str | Path | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> DatasetSplits:
    """Images from ``.npy`` files: ``[N, C, H, W]`` (or ``[N, H, W]``, given one channel), optional labels ``[N]``.

    ``uint8`` values are scaled to ``[0, 1]`` (divided by 255); other numeric types are
    converted to float32 unchanged. Files are loaded without pickle.

    Args:
        data_dir: a folder that relative ``path`` and ``labels_path`` are resolved against.
        path: the images ``.npy`` (required).
        labels_path: optional non-negative integer labels ``.npy`` of shape ``[N]``.
        test_fraction: the fraction held out for testing (seeded, class-stratified when labelled).
        seed: the split's seed.

    Raises:
        ValueError: for a missing ``path``, a wrong rank or dtype, NaN/inf values, labels of
            another length, or negative / non-integer labels.
        FileNotFoundError: when a file does not exist.
    """
    if path is None:
        raise ValueError("npy: path is required (pass --set data.path=images.npy)")

    def resolve(value: str | Path) -> Path:
        candidate = Path(value).expanduser()
        if not candidate.is_absolute() and data_dir is not None:
            candidate = Path(data_dir).expanduser() / candidate
        if not candidate.is_file():
            raise FileNotFoundError(f"npy: file not found: {candidate}")
        return candidate

    def read(file: Path) -> np.ndarray:
        try:
            return np.load(file, allow_pickle=False)
        except ValueError as error:
            raise ValueError(f"npy: cannot read {file} as a .npy array without pickle: {error}") from error
        except (OSError, EOFError) as error:
            raise ValueError(f"npy: cannot read {file} (corrupt or not a .npy file): {error}") from error

    images_file = resolve(path)
    images = read(images_file)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise ValueError(f"npy: {images_file}: expected images of shape [N, C, H, W] or [N, H, W], got {images.shape}")
    if images.shape[0] == 0:
        raise ValueError(f"npy: {images_file}: expected at least one image, got shape {images.shape}")
    if images.dtype == np.uint8:
        array = images.astype(np.float32) / 255.0
    elif images.dtype.kind in "iuf":
        array = images.astype(np.float32)
    else:
        raise ValueError(f"npy: {images_file}: expected a numeric (uint8 or float) array, got dtype {images.dtype}")
    if not np.isfinite(array).all():
        raise ValueError(f"npy: {images_file}: expected finite values, got {int((~np.isfinite(array)).sum())} NaN/inf entries")
    inputs = torch.from_numpy(np.ascontiguousarray(array))

    labels = None
    num_classes = 0
    if labels_path is not None:
        labels_file = resolve(labels_path)
        raw = read(labels_file)
        if raw.ndim != 1:
            raise ValueError(f"npy: {labels_file}: expected labels of shape [N], got {raw.shape}")
        if raw.shape[0] != images.shape[0]:
            raise ValueError(
                f"npy: expected as many labels as images, got {raw.shape[0]} labels in {labels_file} "
                f"and {images.shape[0]} images in {images_file}"
            )
        if raw.dtype.kind == "f":
            if not np.isfinite(raw).all() or not np.array_equal(raw, np.round(raw)):
                raise ValueError(f"npy: {labels_file}: expected integer class labels, got non-integer floats")
        elif raw.dtype.kind not in "iu":
            raise ValueError(f"npy: {labels_file}: expected integer class labels, got dtype {raw.dtype}")
        if raw.size and raw.min() < 0:
            raise ValueError(f"npy: {labels_file}: expected non-negative labels, got minimum {raw.min()}")
        labels = torch.from_numpy(raw.astype(np.int64))
        num_classes = int(labels.max()) + 1
    train, test = _split(inputs, labels, test_fraction=test_fraction, seed=seed, what="npy")
    return DatasetSplits(train=train, test=test, num_classes=num_classes, input_shape=tuple(inputs.shape[1:]))

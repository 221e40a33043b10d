"""Datasets that ship inside installed packages: ``digits`` and ``fashion-mnist``.

Nothing is downloaded at run time. ``digits`` comes with scikit-learn;
``fashion-mnist`` is read from the IDX files that Debian's ``dataset-fashion-mnist``
package installs (or from any folder holding the four files).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from contrastkit.data.arrays import ArrayDataset
from contrastkit.data.idx import read_idx
from contrastkit.data.registry import DatasetSplits, register_dataset
from contrastkit.data.splits import split_indices, subset_indices

#: Where Debian/Ubuntu's ``dataset-fashion-mnist`` package puts the IDX files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

#: The four IDX files, by role.
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip

FASHION_MNIST_HELP = (
    "Get them with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu; installs them "
    f"into {FASHION_MNIST_DIR}), or download the 4 IDX files ("
    + ", ".join(f"{base}.gz" for base in FASHION_MNIST_FILES.values())
    + ") from https://github.com/zalandoresearch/fashion-mnist into a folder and pass "
    "`--set data.data_dir=PATH` (or `data_dir=PATH` to load_dataset)."
)


def _images_to_tensor(images: np.ndarray, rows: np.ndarray) -> torch.Tensor:
    """uint8 ``[N, H, W]`` rows -> float32 ``[n, 1, H, W]`` in ``[0, 1]``."""
    selected = images[rows].astype(np.float32)
    selected /= 255.0
    return torch.from_numpy(selected).unsqueeze(1)


@register_dataset("digits", description="scikit-learn's 8x8 handwritten digits (1797 images, 10 classes; 1437 train / 360 test)")
def load_digits_dataset(*, data_dir: str | Path | None = None, test_size: int = 360, seed: int = 0) -> DatasetSplits:
    """scikit-learn's 8x8 handwritten digits: ``[N, 1, 8, 8]`` floats in ``[0, 1]``, 10 classes.

    Args:
        data_dir: ignored (the data ships with scikit-learn).
        test_size: the number of test images (a seeded, class-stratified split).
        seed: the split's seed.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images.astype(np.float32) / 16.0)[:, None]
    labels = digits.target.astype(np.int64)
    train_rows, test_rows = split_indices(len(labels), labels, test_size=int(test_size), seed=seed)
    inputs, targets = torch.from_numpy(images), torch.from_numpy(labels)
    return DatasetSplits(
        train=ArrayDataset(inputs[train_rows], targets[train_rows]),
        test=ArrayDataset(inputs[test_rows], targets[test_rows]),
        num_classes=10,
        input_shape=(1, 8, 8),
        class_names=[str(digit) for digit in range(10)],
    )


def find_fashion_mnist_files(data_dir: str | Path | None = None) -> dict[str, Path]:
    """Locate the four Fashion-MNIST IDX files (``name`` or ``name.gz``) in ``data_dir``.

    Args:
        data_dir: the folder; ``None`` means :data:`FASHION_MNIST_DIR`.

    Returns:
        ``{role: path}`` for the roles in :data:`FASHION_MNIST_FILES`.

    Raises:
        FileNotFoundError: naming the missing files and saying how to get them.
    """
    folder = Path(data_dir).expanduser() if data_dir is not None else FASHION_MNIST_DIR
    found: dict[str, Path] = {}
    missing: list[str] = []
    for role, base in FASHION_MNIST_FILES.items():
        candidates = [folder / base, folder / f"{base}.gz", folder / base.replace("-idx", ".idx"),
                      folder / f"{base.replace('-idx', '.idx')}.gz"]  # fmt: skip
        path = next((candidate for candidate in candidates if candidate.is_file()), None)
        if path is None:
            missing.append(f"{base}(.gz)")
        else:
            found[role] = path
    if missing:
        where = "does not exist" if not folder.is_dir() else f"lacks {', '.join(missing)}"
        raise FileNotFoundError(f"Fashion-MNIST IDX files not found: {folder} {where}. {FASHION_MNIST_HELP}")
    return found


@functools.lru_cache(maxsize=4)
def _read_fashion_mnist_cached(
    paths: tuple[tuple[str, str], ...], _stamps: tuple[tuple[int, int], ...]
) -> dict[str, np.ndarray]:
    """Decode the IDX files once per process (the stamps invalidate the cache when a file changes)."""
    arrays = {}
    for role, path in paths:
        ndim = 3 if role.endswith("images") else 1
        arrays[role] = read_idx(path, expected_ndim=ndim, expected_dtype=0x08)
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{dict(paths)[f'{split}_images']}: expected as many images as labels in "
                f"{dict(paths)[f'{split}_labels']}, got {images.shape[0]} images and {labels.shape[0]} labels"
            )
        if labels.size and labels.max() > 9:
            raise ValueError(
                f"{dict(paths)[f'{split}_labels']}: expected Fashion-MNIST labels in 0..9, got maximum {labels.max()}"
            )
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise ValueError(
            f"Fashion-MNIST: train and test images differ in size: {arrays['train_images'].shape[1:]} "
            f"vs {arrays['test_images'].shape[1:]}"
        )
    return arrays


def read_fashion_mnist(data_dir: str | Path | None = None) -> dict[str, np.ndarray]:
    """The decoded Fashion-MNIST arrays (uint8 images ``[N, 28, 28]``, uint8 labels ``[N]``), cached per process.

    Args:
        data_dir: the folder holding the IDX files; ``None`` means :data:`FASHION_MNIST_DIR`.

    Returns:
        ``{"train_images", "train_labels", "test_images", "test_labels"}`` read-only arrays.
    """
    files = find_fashion_mnist_files(data_dir)
    paths = tuple((role, str(path.resolve())) for role, path in sorted(files.items()))
    stamps = tuple((path.stat().st_mtime_ns, path.stat().st_size) for _, path in sorted(files.items()))
    return _read_fashion_mnist_cached(paths, stamps)


@register_dataset(
    "fashion-mnist",
    description="Zalando's Fashion-MNIST, 28x28 grey clothing images, 10 classes, 60000 train / 10000 test "
    "(from `apt-get install dataset-fashion-mnist` or data.data_dir)",
)
def load_fashion_mnist(
    *,
    data_dir: str | Path | None = None,
    train_subset: int | None = None,
    test_subset: int | None = None,
    seed: int = 0,
) -> DatasetSplits:
    """Fashion-MNIST: float32 images ``[N, 1, 28, 28]`` in ``[0, 1]``, 10 classes.

    Args:
        data_dir: the folder holding the 4 IDX files (gzip'd or not); default
            ``/usr/share/datasets/fashion-mnist``.
        train_subset: keep only this many training images (seeded, class-stratified); ``None`` keeps all.
        test_subset: keep only this many test images (seeded, class-stratified); ``None`` keeps all.
        seed: the subsets' seed.

    Raises:
        FileNotFoundError: when the files are missing (the message says how to get them).
        ValueError: when a file is corrupt or truncated (the message names it).
    """
    arrays = read_fashion_mnist(data_dir)
    splits = {}
    for split, size in (("train", train_subset), ("test", test_subset)):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        rows = subset_indices(len(labels), size, labels, seed=seed)
        splits[split] = ArrayDataset(_images_to_tensor(images, rows), torch.from_numpy(labels[rows].astype(np.int64)))
    return DatasetSplits(
        train=splits["train"],
        test=splits["test"],
        num_classes=10,
        input_shape=splits["train"].input_shape,
        class_names=list(FASHION_MNIST_CLASSES),
    )

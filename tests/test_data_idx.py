import gzip
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from contrastkit.data import load_dataset, read_idx, write_idx
from contrastkit.data.builtin import FASHION_MNIST_DIR, FASHION_MNIST_FILES


def hand_written_idx(array: np.ndarray) -> bytes:
    """IDX bytes written by hand, independently of write_idx (uint8 only)."""
    assert array.dtype == np.uint8
    header = bytes([0, 0, 0x08, array.ndim])
    for size in array.shape:
        header += int(size).to_bytes(4, "big")
    return header + array.tobytes()


@pytest.mark.parametrize("compressed", [False, True])
def test_read_idx_round_trips_hand_written_files(tmp_path, compressed):
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    payload = hand_written_idx(images)
    path = tmp_path / ("images.idx.gz" if compressed else "images.idx")
    path.write_bytes(gzip.compress(payload) if compressed else payload)
    read = read_idx(path, expected_ndim=3)
    assert read.shape == (3, 4, 5) and read.dtype == np.uint8
    assert np.array_equal(read, images)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.float32, np.float64])
def test_read_idx_handles_big_endian_types(tmp_path, dtype):
    array = (np.arange(12).reshape(3, 4) - 5).astype(dtype)
    write_idx(tmp_path / "a.idx", array)
    raw = (tmp_path / "a.idx").read_bytes()
    assert raw[4:8] == (3).to_bytes(4, "big") and raw[8:12] == (4).to_bytes(4, "big")
    assert np.array_equal(read_idx(tmp_path / "a.idx"), array)


def test_read_idx_rejects_bad_magic_truncation_and_rank(tmp_path):
    good = hand_written_idx(np.zeros((2, 3, 3), dtype=np.uint8))
    (tmp_path / "magic").write_bytes(b"\x08\x03" + good[2:])
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "magic")
    (tmp_path / "short").write_bytes(good[:-1])
    with pytest.raises(ValueError, match=r"short.*truncated"):
        read_idx(tmp_path / "short")
    (tmp_path / "short.gz").write_bytes(gzip.compress(good[:-5]))
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "short.gz")
    (tmp_path / "brokengz").write_bytes(gzip.compress(good)[:-10])
    with pytest.raises(ValueError, match="brokengz"):
        read_idx(tmp_path / "brokengz")
    (tmp_path / "long").write_bytes(good + b"\x00")
    with pytest.raises(ValueError, match="trailing"):
        read_idx(tmp_path / "long")
    (tmp_path / "good").write_bytes(good)
    with pytest.raises(ValueError, match="1 dimension"):
        read_idx(tmp_path / "good", expected_ndim=1)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent")


def write_fake_fashion_mnist(folder: Path, compressed: bool, train: int = 12, test: int = 7) -> None:
    rng = np.random.default_rng(0)
    suffix = ".gz" if compressed else ""
    for prefix, count in (("train", train), ("t10k", test)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = (np.arange(count) % 10).astype(np.uint8)
        for name, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            payload = hand_written_idx(array)
            (folder / f"{name}{suffix}").write_bytes(gzip.compress(payload) if compressed else payload)


@pytest.mark.parametrize("compressed", [False, True])
def test_fashion_mnist_from_data_dir(tmp_path, compressed):
    write_fake_fashion_mnist(tmp_path, compressed)
    splits = load_dataset("fashion-mnist", data_dir=tmp_path)
    assert splits.train.inputs.shape == (12, 1, 28, 28) and splits.test.inputs.shape == (7, 1, 28, 28)
    assert splits.train.inputs.dtype == torch.float32
    assert 0.0 <= float(splits.train.inputs.min()) and float(splits.train.inputs.max()) <= 1.0
    raw = read_idx(tmp_path / f"train-images-idx3-ubyte{'.gz' if compressed else ''}")
    assert torch.allclose(splits.train.inputs[:, 0], torch.from_numpy(raw.astype(np.float32)) / 255)
    assert splits.test.labels.tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert splits.num_classes == 10 and splits.input_shape == (1, 28, 28) and splits.name == "fashion-mnist"
    subset = load_dataset("fashion-mnist", data_dir=tmp_path, train_subset=10, test_subset=5)
    assert len(subset.train) == 10 and len(subset.test) == 5


def test_fashion_mnist_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_dataset("fashion-mnist", data_dir=tmp_path / "nowhere")
    message = str(error.value)
    assert "apt-get install dataset-fashion-mnist" in message and "data.data_dir" in message
    write_fake_fashion_mnist(tmp_path, compressed=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_dataset("fashion-mnist", data_dir=tmp_path)


def test_fashion_mnist_corrupt_file_is_named(tmp_path):
    write_fake_fashion_mnist(tmp_path, compressed=False)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.*truncated"):
        load_dataset("fashion-mnist", data_dir=tmp_path)


def test_fashion_mnist_label_count_mismatch(tmp_path):
    write_fake_fashion_mnist(tmp_path, compressed=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(hand_written_idx(np.zeros(11, dtype=np.uint8)))
    with pytest.raises(ValueError, match="as many images as labels"):
        load_dataset("fashion-mnist", data_dir=tmp_path)


@pytest.mark.skipif(
    not all((FASHION_MNIST_DIR / f"{name}.gz").exists() or (FASHION_MNIST_DIR / name).exists()
            for name in FASHION_MNIST_FILES.values()),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)
def test_real_fashion_mnist_shapes_and_cache():
    splits = load_dataset("fashion-mnist")
    assert splits.train.inputs.shape == (60000, 1, 28, 28)
    assert splits.test.inputs.shape == (10000, 1, 28, 28)
    assert torch.equal(torch.bincount(splits.train.labels), torch.full((10,), 6000))
    assert torch.equal(torch.bincount(splits.test.labels), torch.full((10,), 1000))
    assert float(splits.train.inputs.max()) == 1.0 and float(splits.train.inputs.min()) == 0.0
    start = time.perf_counter()
    small = load_dataset("fashion-mnist", train_subset=2000, test_subset=500, seed=3)
    assert time.perf_counter() - start < 1.0  # decoded once per process
    assert torch.equal(torch.bincount(small.train.labels), torch.full((10,), 200))
    again = load_dataset("fashion-mnist", train_subset=2000, test_subset=500, seed=3)
    assert torch.equal(again.train.inputs, small.train.inputs)

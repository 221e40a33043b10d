import numpy as np
import pytest
import torch
from PIL import Image

from contrastkit.data import load_dataset


def write_png(path, value, size=(6, 5), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.full((size[1], size[0], 3), value, dtype=np.uint8)
    Image.fromarray(array).convert(mode).save(path)


def test_image_folder_labelled(tmp_path):
    for label, name in enumerate(["cat", "dog"]):
        for i in range(5):
            write_png(tmp_path / name / f"{i}.png", value=50 + 100 * label)
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    splits = load_dataset("image-folder", data_dir=tmp_path, image_size=4, channels=3, test_fraction=0.2)
    assert splits.num_classes == 2 and splits.class_names == ["cat", "dog"]
    assert splits.input_shape == (3, 4, 4)
    assert len(splits.train) == 8 and len(splits.test) == 2
    assert torch.bincount(splits.test.labels).tolist() == [1, 1]
    for dataset in (splits.train, splits.test):
        expected = (50 + 100 * dataset.labels.float()) / 255
        assert torch.allclose(dataset.inputs.mean(dim=(1, 2, 3)), expected, atol=1e-6)
    grey = load_dataset("image-folder", data_dir=tmp_path, image_size=(3, 7), channels=1)
    assert grey.train.inputs.shape[1:] == (1, 3, 7)


def test_image_folder_unlabelled(tmp_path):
    for i in range(4):
        write_png(tmp_path / f"img{i}.png", value=10 * i, mode="L")
    splits = load_dataset("image-folder", data_dir=tmp_path, image_size=8, test_fraction=0.25)
    assert splits.train.labels is None and splits.test.labels is None and splits.num_classes == 0
    assert len(splits.train) == 3 and len(splits.test) == 1
    assert splits.train.inputs.shape == (3, 3, 8, 8)


def test_image_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="data_dir is required"):
        load_dataset("image-folder")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        load_dataset("image-folder", data_dir=tmp_path / "empty")
    write_png(tmp_path / "bad" / "a" / "ok.png", value=3)
    (tmp_path / "bad" / "a" / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match="broken.png"):
        load_dataset("image-folder", data_dir=tmp_path / "bad")
    with pytest.raises(FileNotFoundError):
        load_dataset("image-folder", data_dir=tmp_path / "absent")


def test_npy_loader(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(20, 6, 6), dtype=np.uint8)
    labels = np.arange(20) % 4
    np.save(tmp_path / "x.npy", images)
    np.save(tmp_path / "y.npy", labels)
    splits = load_dataset("npy", data_dir=tmp_path, path="x.npy", labels_path="y.npy", test_fraction=0.2)
    assert splits.input_shape == (1, 6, 6) and splits.num_classes == 4
    assert len(splits.train) == 16 and len(splits.test) == 4
    assert torch.bincount(splits.test.labels).tolist() == [1, 1, 1, 1]
    rows = torch.cat([splits.train.inputs, splits.test.inputs])
    assert float(rows.max()) <= 1.0 and torch.allclose(rows.sum(), torch.tensor(images.sum() / 255.0, dtype=torch.float32))
    unlabelled = load_dataset("npy", path=tmp_path / "x.npy")
    assert unlabelled.train.labels is None and unlabelled.num_classes == 0


def test_npy_errors(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((5, 1, 4, 4), dtype=np.float32))
    np.save(tmp_path / "y.npy", np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match="as many labels as images"):
        load_dataset("npy", path=tmp_path / "x.npy", labels_path=tmp_path / "y.npy")
    np.save(tmp_path / "rank.npy", np.zeros((5, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        load_dataset("npy", path=tmp_path / "rank.npy")
    nan = np.zeros((5, 4, 4), dtype=np.float32)
    nan[2, 1, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(ValueError, match="NaN"):
        load_dataset("npy", path=tmp_path / "nan.npy")
    np.save(tmp_path / "neg.npy", -np.ones(5, dtype=np.int64))
    with pytest.raises(ValueError, match="non-negative"):
        load_dataset("npy", path=tmp_path / "x.npy", labels_path=tmp_path / "neg.npy")
    with pytest.raises(FileNotFoundError):
        load_dataset("npy", path=tmp_path / "absent.npy")
    with pytest.raises(ValueError, match="path is required"):
        load_dataset("npy")

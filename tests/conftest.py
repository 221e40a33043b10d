"""Shared fixtures: tiny, fast building blocks for end-to-end tests."""

from __future__ import annotations

import pytest
import torch

from contrastkit.data import ArrayDataset, load_dataset
from contrastkit.methods import build_method
from contrastkit.nn.registry import build_encoder
from contrastkit.train.seed import seed_everything
from contrastkit.views.image import build_views


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits (bundled, 8x8): the offline dataset every machine has."""
    return load_dataset("digits")


def make_method(name: str = "simclr", *, seed: int = 0, encoder: str = "mlp", **options):
    """A small method on 8x8 single-channel images, built deterministically from ``seed``."""
    seed_everything(seed)
    if encoder == "mlp":
        net = build_encoder("mlp", in_channels=1, image_size=8, hidden_dims=(64,), output_dim=32)
    else:
        net = build_encoder("small-resnet", in_channels=1, image_size=8, widths=(8, 16, 16))
    views = build_views("simclr", image_size=8, channels=1)
    return build_method(name, net, views, **options)


@pytest.fixture()
def tiny_images() -> ArrayDataset:
    generator = torch.Generator().manual_seed(0)
    return ArrayDataset(torch.rand(64, 1, 8, 8, generator=generator), torch.arange(64) % 4)

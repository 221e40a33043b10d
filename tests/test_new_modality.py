"""A new modality from outside the package: tabular rows, trained with SimCLR end to end.

Everything the toy needs is registered through the public API (a dataset, a view, an
encoder, a modality); nothing in ``train/`` or ``cli.py`` knows about it. This file is
``docs/adding-a-method.md``'s "A new modality" section as a test.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from torch import nn

from contrastkit.data import ArrayDataset, DatasetSplits, register_dataset
from contrastkit.eval.protocols import ClassificationProtocol
from contrastkit.modalities import MODALITIES, Modality, methods_for, register_modality
from contrastkit.nn.mlp import MLPEncoder
from contrastkit.nn.registry import ENCODERS
from contrastkit.train.config import load_config
from contrastkit.train.run import run

FEATURES, CLASSES = 12, 3


@register_dataset("toy-tabular")
def toy_tabular(data_dir: Any = None, rows: int = 300, seed: int = 0) -> DatasetSplits:
    """Toy tabular rows: three Gaussian classes in 12 features, half of them noise."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.zeros(CLASSES, FEATURES)
    centres[:, : FEATURES // 2] = 3.0 * torch.randn(CLASSES, FEATURES // 2, generator=generator)
    labels = torch.arange(rows) % CLASSES
    inputs = centres[labels] + torch.randn(rows, FEATURES, generator=generator)
    cut = rows * 2 // 3
    return DatasetSplits(
        train=ArrayDataset(inputs[:cut], labels[:cut]), test=ArrayDataset(inputs[cut:], labels[cut:]),
        num_classes=CLASSES, input_shape=(FEATURES,), modality="tabular",
    )  # fmt: skip


class NoiseAndFeatureMask(nn.Module):
    """A tabular view: Gaussian noise, then each feature zeroed with probability ``mask_p``."""

    def __init__(self, sigma: float = 0.3, mask_p: float = 0.2) -> None:
        super().__init__()
        self.sigma, self.mask_p = sigma, mask_p

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        noisy = rows + self.sigma * torch.randn_like(rows)
        return noisy * (torch.rand_like(rows) >= self.mask_p)


class TabularModality(Modality):
    name = "tabular"
    description = "tabular rows [F]: noise + feature-mask views, kNN + linear probe"
    protocol = ClassificationProtocol
    two_tensor_views = True  # the generic two-view methods (SimCLR, BYOL, ...) train on it

    def encoder_arguments(self, splits: DatasetSplits) -> dict[str, Any]:
        return {"input_dim": splits.input_shape[0]}

    def build_views(self, options: dict[str, Any], splits: DatasetSplits, encoder: nn.Module) -> tuple[nn.Module, ...]:
        options = dict(options)
        if options.pop("preset") != "noise-mask":
            raise ValueError("tabular views: expected preset 'noise-mask'")
        return NoiseAndFeatureMask(**options), NoiseAndFeatureMask(**options)

    def view_presets(self) -> list[str]:
        return ["noise-mask"]


if "tabular" not in MODALITIES:
    register_modality(TabularModality())
ENCODERS.register("tabular-mlp", lambda input_dim, **options: MLPEncoder(input_dim, **options))



def teardown_module() -> None:
    """Take back what this file registered, so that no other test sees the toy modality."""
    from contrastkit.data.registry import _REGISTRY as DATASETS

    ENCODERS.unregister("tabular-mlp")
    MODALITIES.unregister("tabular")
    DATASETS.unregister("toy-tabular")


RECIPE = [
    "data=toy-tabular", "encoder=tabular-mlp", "encoder.hidden_dims=[64]", "encoder.output_dim=32",
    "views=noise-mask", "views.sigma=0.3", "method.projection_hidden_dim=64", "method.projection_dim=32",
    "train.steps=40", "train.batch_size=64", "train.precision=fp32", "train.checkpoint_every=0",
    "train.progress=false", "eval.knn_k=10", "eval.plots=false",
]  # fmt: skip


def test_simclr_trains_on_a_modality_defined_outside_the_package(tmp_path) -> None:
    assert "simclr" in methods_for(MODALITIES["tabular"])
    config = load_config(None, RECIPE)  # the main recipe (SimCLR) with the tabular parts swapped in
    run_dir, metrics = run(config, tmp_path / "run", verbose=False)
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["dataset"] == "toy-tabular" and saved["method"] == "simclr"
    assert set(saved["baselines"]) == {"raw_input", "random_init"}
    for scores in (saved, *saved["baselines"].values()):
        assert 0.0 <= scores["knn_top1"] <= 1.0 and 0.0 <= scores["linear_top1"] <= 1.0
    assert saved["eval_rows"] == {"train": 200, "test": 100}
    assert saved["knn_top1"] > 1 / CLASSES + 0.3  # the classes are well separated: far above chance
    assert saved["train"]["steps"] == 40


def test_a_method_for_other_data_is_a_clear_error(tmp_path) -> None:
    config = load_config(None, [*RECIPE, "method=ts2vec"])
    with pytest.raises(ValueError, match="'tabular' data, but method 'ts2vec' trains on 'series' data; "
                                         "methods for 'tabular' data: .*simclr"):
        run(config, tmp_path / "run", verbose=False)

"""Modalities: each built-in one is registered, matches methods to data, and trains through `run`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from contrastkit.cli import app
from contrastkit.data import load_dataset
from contrastkit.methods.registry import METHODS
from contrastkit.modalities import MODALITIES, check_method, methods_for, modality_of

BUILT_IN = ["image", "series", "text", "graph", "graphs", "interactions"]
GENERIC_TWO_VIEW = ["simclr", "moco", "byol", "simsiam", "barlow-twins", "vicreg", "supcon"]


def test_every_built_in_modality_is_registered_with_a_protocol() -> None:
    assert set(BUILT_IN) <= set(MODALITIES)
    for name in BUILT_IN:
        modality = MODALITIES[name]
        assert modality.name == name and modality.description and modality.protocol.settings_type


def test_generic_two_view_methods_train_on_every_modality_with_two_tensor_views() -> None:
    for name in BUILT_IN:
        modality = MODALITIES[name]
        accepted = set(methods_for(modality))
        assert set(GENERIC_TWO_VIEW) <= accepted if modality.two_tensor_views else not set(GENERIC_TWO_VIEW) & accepted
    assert MODALITIES["image"].two_tensor_views and MODALITIES["series"].two_tensor_views
    assert "obow" in methods_for(MODALITIES["image"]) and "obow" not in methods_for(MODALITIES["series"])
    assert "ts2vec" in methods_for(MODALITIES["series"]) and "ts2vec" not in methods_for(MODALITIES["image"])
    for name, cls in METHODS.items():  # every method trains on some registered modality
        assert any(modality.accepts(cls) for modality in MODALITIES.values()), name


def test_a_mismatch_names_the_data_the_method_and_the_methods_that_fit() -> None:
    splits = load_dataset("ucr:GunPoint")
    assert modality_of(splits) is MODALITIES["series"]
    assert check_method("simclr", splits) is MODALITIES["series"]
    with pytest.raises(ValueError, match=r"'series' data, but method 'obow' trains on 'image' data; "
                                         r"methods for 'series' data: autotcl, .*simclr.*ts2vec"):
        check_method("obow", splits)
    splits.modality = "sound"
    with pytest.raises(ValueError, match="no modality of that name is registered"):
        modality_of(splits)


def test_simclr_trains_on_series_from_the_command_line(tmp_path) -> None:
    """`contrastkit train simclr-series --set data=ucr:GunPoint`: series views, TS2Vec's encoder pooled."""
    result = CliRunner().invoke(app, [
        "train", "simclr-series", "--set", "data=ucr:GunPoint", "--set", "encoder.hidden_dim=16",
        "--set", "encoder.depth=2", "--set", "encoder.output_dim=32", "--set", "train.steps=20",
        "--set", "train.progress=false", "--run-dir", str(tmp_path / "run"),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["method"] == "simclr" and metrics["dataset"] == "ucr:GunPoint"
    assert 0.5 < metrics["svm_accuracy"] <= 1.0 and "svm_accuracy" in metrics["baselines"]["random_init"]
    assert metrics["train"]["steps"] == 20


def test_list_shows_each_modality_with_its_methods_and_views() -> None:
    output = CliRunner().invoke(app, ["list"]).output
    methods = output.splitlines()[0]
    for name in BUILT_IN:
        assert f"{name}: " in methods
    assert "series: autotcl, barlow-twins" in methods and "ts-dilated-conv-pooled" in output
    assert "view presets: image: byol" in output

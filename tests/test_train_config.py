"""Recipes and ``--set key=value`` overrides: parsing, nesting, validation, shipped recipes."""

from __future__ import annotations

from dataclasses import fields

import pytest
import yaml

from contrastkit.data import dataset_names
from contrastkit.methods import method_names, method_options
from contrastkit.nn.registry import encoder_names
from contrastkit.recipes import DEFAULT_RECIPE, recipe_names, recipe_path
from contrastkit.train.config import (
    SECTIONS,
    EvalConfig,
    apply_overrides,
    eval_config,
    load_config,
    load_run_config,
    parse_override,
    protocol_settings,
    resolved,
    train_config,
    validate_config,
)
from contrastkit.train.trainer import TrainConfig
from contrastkit.views.graph import graph_view_preset_names
from contrastkit.views.image import view_preset_names
from contrastkit.views.series import series_view_preset_names
from contrastkit.views.text import text_view_preset_names


@pytest.mark.parametrize(
    ("text", "keys", "value"),
    [
        ("train.steps=20", ["train", "steps"], 20),
        ("train.lr=1e-3", ["train", "lr"], 1e-3),
        ("train.lr=0.01", ["train", "lr"], 0.01),
        ("train.steps=null", ["train", "steps"], None),
        ("train.steps=", ["train", "steps"], None),
        ("eval.plots=false", ["eval", "plots"], False),
        ("eval.linear=true", ["eval", "linear"], True),
        ("encoder.widths=[8, 16, 32]", ["encoder", "widths"], [8, 16, 32]),
        ("data.name=digits", ["data", "name"], "digits"),
        ("method.name = simclr", ["method", "name"], "simclr"),
        ("data.data_dir=/a/b=c", ["data", "data_dir"], "/a/b=c"),  # only the first '=' splits
        ("method={name: byol, base_momentum: 0.996}", ["method"], {"name": "byol", "base_momentum": 0.996}),
    ],
)
def test_parse_override_reads_values_as_yaml(text, keys, value):
    parsed_keys, parsed_value = parse_override(text)
    assert parsed_keys == keys
    assert parsed_value == value
    assert type(parsed_value) is type(value)


def test_yaml_1e_minus_3_is_a_float_not_a_string():
    # PyYAML's YAML 1.1 resolver reads "1e-3" (no dot) as a string; overrides must still give a float.
    _, value = parse_override("train.lr=1e-3")
    assert isinstance(value, float) and value == pytest.approx(0.001)


@pytest.mark.parametrize("text", ["train.lr", "", "=3", "...=3"])
def test_malformed_override_raises(text):
    with pytest.raises(ValueError, match="key=value"):
        parse_override(text)


def test_unparseable_override_value_raises():
    with pytest.raises(ValueError, match="cannot parse value"):
        parse_override("train.lr=[1, 2")


def test_apply_overrides_sets_nested_keys_and_leaves_the_input_alone():
    config = {"name": "x", "train": {"lr": 0.1}, "method": {"name": "simclr"}}
    out = apply_overrides(config, ["train.lr=0.5", "method.temperature=0.2", "eval.knn_k=20", "seed=3"])
    assert out["train"]["lr"] == 0.5
    assert out["method"] == {"name": "simclr", "temperature": 0.2}
    assert out["eval"] == {"knn_k": 20}  # a missing section is created
    assert out["seed"] == 3
    assert config == {"name": "x", "train": {"lr": 0.1}, "method": {"name": "simclr"}}


def test_apply_overrides_later_wins():
    out = apply_overrides({"train": {}}, ["train.steps=3", "train.steps=7"])
    assert out["train"]["steps"] == 7


def test_apply_overrides_can_replace_a_whole_section():
    out = apply_overrides({"method": {"name": "simclr", "temperature": 0.5}}, ["method={name: byol}"])
    assert out["method"] == {"name": "byol"}


def test_unknown_section_raises_naming_the_sections():
    with pytest.raises(ValueError, match=r"unknown section 'trian'.*'train'"):
        apply_overrides({}, ["trian.lr=1"])


def test_override_below_a_value_raises():
    with pytest.raises(ValueError, match="is a value, not a section"):
        apply_overrides({"train": {"lr": 0.1}}, ["train.lr.x=1"])


def test_load_config_default_is_the_main_recipe():
    config = load_config()
    assert config["name"] == DEFAULT_RECIPE
    assert config["data"]["name"] == "fashion-mnist"
    assert config["method"]["name"] == "simclr"


def test_load_config_applies_overrides_with_types():
    config = load_config(None, ["train.lr=1e-3", "train.steps=6", "eval.plots=false", "data.name=digits"])
    assert config["train"]["lr"] == pytest.approx(1e-3) and isinstance(config["train"]["lr"], float)
    assert config["train"]["steps"] == 6
    assert config["eval"]["plots"] is False
    assert config["data"]["name"] == "digits"


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("train.learning_rate=0.1", r"train.learning_rate: unknown key; expected some of: .*lr"),
        ("eval.k=5", r"eval.k: unknown key; expected some of: .*knn_k"),
        ("method.name=", r"method: expected a mapping with a 'name'"),
        ("data=null", r"data: expected a mapping with a 'name'"),
        ("views.preset=null", r"views: expected a mapping with a 'preset'"),
        ("seed=1.5", r"seed: expected an integer, got 1.5"),
    ],
)
def test_invalid_config_raises(override, match):
    with pytest.raises(ValueError, match=match):
        load_config(None, [override])


def test_unknown_top_level_key_in_a_recipe_file_raises(tmp_path):
    recipe = yaml.safe_load(recipe_path(DEFAULT_RECIPE).read_text())
    recipe["optimiser"] = {"lr": 1}
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(ValueError, match=r"recipe: unknown key 'optimiser'; expected some of: data, encoder"):
        load_config(str(path))


def test_recipe_file_path_is_accepted(tmp_path):
    recipe = yaml.safe_load(recipe_path(DEFAULT_RECIPE).read_text())
    del recipe["name"]
    path = tmp_path / "my-recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    config = load_config(str(path), ["data.name=digits"])
    assert config["name"] == "my-recipe"  # defaults to the file's stem
    assert config["data"]["name"] == "digits"


def test_missing_recipe_file_and_unknown_recipe_name_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(str(tmp_path / "absent.yaml"))
    with pytest.raises(ValueError, match=rf"unknown recipe 'nope'; expected one of: .*{DEFAULT_RECIPE}"):
        load_config("nope")


@pytest.mark.parametrize("text", ["a: [1, 2", "- just\n- a list\n"])
def test_recipe_that_is_not_a_yaml_mapping_raises(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match="not valid YAML|expected a mapping"):
        load_config(str(path))


def test_resolved_fills_every_default():
    config = resolved(load_config(None, ["train.steps=6"]))
    assert set(config["train"]) == {f.name for f in fields(TrainConfig)}
    # run-level eval keys get their defaults; the protocol's keys stay as the recipe gives them
    # (the run fills the protocol's defaults once it knows the data: tests/test_train_run.py)
    assert set(config["eval"]) == {f.name for f in fields(EvalConfig)} | {"knn_k", "knn_temperature"}
    assert config["train"]["steps"] == 6
    assert config["train"]["keep_last"] == TrainConfig().keep_last
    assert config["eval"]["knn_k"] == 200 and config["eval"]["knn_temperature"] == 0.1
    # resolving again changes nothing, so a saved config.yaml round-trips
    assert resolved(config) == config
    validate_config(config)


def test_train_and_eval_config_dataclasses():
    config = load_config(None, ["train.batch_size=32", "eval.linear=false"])
    assert train_config(config).batch_size == 32
    assert eval_config(config) == EvalConfig() and protocol_settings(config)["linear"] is False
    assert eval_config({}) == EvalConfig()


def test_load_run_config_needs_config_yaml(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a run directory"):
        load_run_config(tmp_path)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(resolved(load_config())))
    assert load_run_config(tmp_path)["name"] == DEFAULT_RECIPE


def test_sections_are_the_documented_ones():
    assert set(SECTIONS) == {"name", "seed", "data", "encoder", "views", "method", "train", "eval"}


@pytest.mark.parametrize("name", recipe_names())
def test_every_shipped_recipe_loads_and_names_registered_parts(name):
    config = load_config(name)
    validate_config(config)
    resolved_config = resolved(config)
    train_config(resolved_config)
    eval_config(resolved_config)
    assert isinstance(config["seed"], int)
    assert config["data"]["name"] in dataset_names()
    assert config["encoder"]["name"] in encoder_names()
    presets = view_preset_names() + series_view_preset_names() + text_view_preset_names() + graph_view_preset_names()
    from contrastkit.modalities import MODALITIES

    presets += [preset for modality in MODALITIES.values() for preset in modality.view_presets()]
    assert config["views"]["preset"] in presets
    assert config["method"]["name"] in method_names()
    options = {key for key in config["method"] if key != "name"}
    assert options <= set(method_options(config["method"]["name"]))


def test_at_least_the_main_recipe_ships():
    assert DEFAULT_RECIPE in recipe_names()

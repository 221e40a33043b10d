"""The typed config schema: every key checked against its declaration, one line naming it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from contrastkit.utils.schema import (
    ConfigError,
    bounded,
    callable_parameters,
    check_section,
    check_value,
    dataclass_parameters,
)


@dataclass
class Knobs:
    steps: int | None = bounded(None, minimum=1)
    lr: float = bounded(1e-3, minimum=0, exclusive_minimum=True)
    optimizer: str = bounded("adamw", choices=("adamw", "sgd"))
    progress: bool = True
    sizes: tuple[int, ...] = (1, 2)


PARAMETERS = dataclass_parameters(Knobs)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"steps": "abc"}, "train.steps: expected an integer or null, got 'abc'"),
        ({"steps": 2.5}, "train.steps: expected an integer or null, got 2.5"),
        ({"steps": 0}, "train.steps: expected a value ≥ 1, got 0"),
        ({"steps": True}, "train.steps: expected an integer or null, got True"),
        ({"lr": "abc"}, "train.lr: expected a finite number, got 'abc'"),
        ({"lr": 0}, "train.lr: expected a value > 0, got 0"),
        ({"lr": float("nan")}, "train.lr: expected a finite number, got nan"),
        ({"optimizer": "adamx"}, "train.optimizer: expected one of ['adamw', 'sgd'], got 'adamx'; did you mean 'adamw'?"),
        ({"progress": "yes"}, "train.progress: expected true or false, got 'yes'"),
        ({"sizes": [1, "a"]}, "train.sizes: expected a list of integers, got [1, 'a']"),
        ({"stesp": 3}, "train.stesp: unknown key; did you mean 'steps'?"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_key(values, message):
    with pytest.raises(ConfigError) as caught:
        check_section("train", values, PARAMETERS)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_values_that_fit_are_coerced_without_loss():
    checked = check_section("train", {"steps": 1e3, "lr": 1, "sizes": [3, 4.0], "progress": False}, PARAMETERS)
    assert checked == {"steps": 1000, "lr": 1.0, "sizes": (3, 4), "progress": False}
    assert type(checked["steps"]) is int and type(checked["lr"]) is float


def test_a_section_that_is_not_a_mapping_is_refused():
    with pytest.raises(ConfigError, match=r"^train: expected a mapping of keys, got 5$"):
        check_section("train", 5, PARAMETERS)


class _Base:
    def __init__(self, encoder, views, *, temperature: float = 0.5) -> None:
        pass


class _Child(_Base):
    def __init__(self, encoder, views, *, queue: int = 16, **options) -> None:
        super().__init__(encoder, views, **options)


def test_class_parameters_follow_the_forwarded_options_up_the_hierarchy():
    parameters, takes_any = callable_parameters(_Child, skip=("encoder", "views"))
    assert set(parameters) == {"queue", "temperature"} and not takes_any
    with pytest.raises(ConfigError, match="method.temperature: expected a finite number, got 'hot'"):
        check_section("method", {"temperature": "hot"}, parameters)


def test_an_undeclared_parameter_is_checked_by_its_default_type():
    def factory(width=64, name=None):
        return width, name

    parameters, _ = callable_parameters(factory)
    assert check_section("encoder", {"name": 3}, parameters) == {"name": 3}  # a None default says nothing
    with pytest.raises(ConfigError, match="encoder.width: expected an integer or a finite number, got .wide."):
        check_section("encoder", {"width": "wide"}, parameters)


def test_check_value_accepts_a_bare_type_hint():
    assert check_value("x", 3, int | None) == 3
    with pytest.raises(ConfigError):
        check_value("x", "3", int | None)

"""Typed checks of configuration values against the annotations that declare them.

A recipe's keys are declared where they are used: ``TrainConfig`` and the evaluation
protocols' settings are dataclasses, methods, encoders and datasets take keyword
arguments. This module reads those declarations (type hints, defaults and, for
dataclass fields, a range or a list of choices in the field's metadata, see
:func:`bounded`) and checks a config section against them *before* anything is
built, so that a bad value fails in one line that names its key::

    train.steps: expected an integer, got 'abc'
    train.stesp: unknown key; did you mean 'steps'?

Values are returned coerced where that loses nothing (``1e3`` for an integer becomes
``1000``; ``2.5`` for an integer is refused, never truncated).

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Knobs:
    ...     steps: int = bounded(10, minimum=1)
    ...     lr: float = 0.1
    >>> check_section("train", {"steps": 1e3}, dataclass_parameters(Knobs))
    {'steps': 1000}
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ConfigError", "Parameter", "bounded", "callable_parameters", "check_section", "check_value", "closest",
    "dataclass_parameters", "did_you_mean",
]


class ConfigError(ValueError):
    """A config value or key that does not fit its declaration (the message names the key)."""


@dataclass(frozen=True)
class Parameter:
    """One declared key: its type hint (``Any`` when undeclared), default and range metadata."""

    annotation: Any = Any
    default: Any = inspect.Parameter.empty
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    choices: tuple[Any, ...] | None = None


def bounded(default: Any, *, minimum: float | None = None, maximum: float | None = None,
            exclusive_minimum: bool = False, exclusive_maximum: bool = False,
            choices: Sequence[Any] | None = None) -> Any:
    """A dataclass field with ``default`` whose metadata declares a range or choices for :func:`check_value`."""
    metadata = {"minimum": minimum, "maximum": maximum, "exclusive_minimum": exclusive_minimum,
                "exclusive_maximum": exclusive_maximum, "choices": tuple(choices) if choices is not None else None}
    return dataclasses.field(default=default, metadata={"schema": metadata})


def closest(name: str, candidates: Sequence[str] | Mapping[str, Any]) -> str | None:
    """The candidate closest to ``name`` (a likely typo of it), or ``None``."""
    matches = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(name: str, candidates: Sequence[str] | Mapping[str, Any]) -> str:
    """``"; did you mean 'x'?"`` for a close match of ``name`` among ``candidates``, else ``""``."""
    match = closest(name, candidates)
    return f"; did you mean {match!r}?" if match else ""


def _hints(obj: Any) -> dict[str, Any]:
    """Resolved type hints of ``obj``; an annotation that cannot be resolved counts as ``Any``."""
    try:
        return typing.get_type_hints(obj)
    except Exception:  # noqa: BLE001 - a forward reference we cannot resolve: check no types
        return {}


def dataclass_parameters(cls: type) -> dict[str, Parameter]:
    """The fields of dataclass ``cls`` as :class:`Parameter` (hints, defaults, :func:`bounded` metadata)."""
    hints = _hints(cls)
    parameters = {}
    for field in dataclasses.fields(cls):
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = inspect.Parameter.empty
        schema = dict(field.metadata.get("schema", {}))
        parameters[field.name] = Parameter(annotation=hints.get(field.name, Any), default=default, **schema)
    return parameters


def callable_parameters(target: Callable[..., Any], *, skip: Sequence[str] = ()) -> tuple[dict[str, Parameter], bool]:
    """The named parameters of a function or class (its ``__init__`` along the class hierarchy,
    as far as each ``__init__`` forwards ``**options``), and whether it accepts any other key.

    ``skip`` names parameters that the caller supplies (e.g. ``encoder``, ``views``).
    """
    functions = []
    if inspect.isclass(target):
        for klass in target.__mro__:
            if klass is object or "__init__" not in vars(klass):
                continue
            functions.append(vars(klass)["__init__"])
            if not any(p.kind is inspect.Parameter.VAR_KEYWORD
                       for p in inspect.signature(vars(klass)["__init__"]).parameters.values()):
                break
    else:
        functions = [target]
    parameters: dict[str, Parameter] = {}
    takes_any = False
    for position, function in enumerate(functions):
        hints = _hints(function)
        signature = inspect.signature(function)
        forwards = False
        for name, parameter in signature.parameters.items():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                forwards = True
                continue
            if parameter.kind is inspect.Parameter.VAR_POSITIONAL or name in ("self", *skip) or name in parameters:
                continue
            parameters[name] = Parameter(annotation=hints.get(name, Any), default=parameter.default)
        # the last function's **options go nowhere we can read: any key is accepted.
        takes_any = forwards and position == len(functions) - 1
    return parameters, takes_any


def check_section(section: str, values: Mapping[str, Any] | None, parameters: Mapping[str, Parameter], *,
                  takes_any: bool = False) -> dict[str, Any]:
    """Check every key of ``values`` against ``parameters``; return the coerced values.

    Raises:
        ConfigError: for a key not declared (with a "did you mean") or a value that does not fit.
    """
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"{section}: expected a mapping of keys, got {values!r}")
    checked = {}
    for key, value in values.items():
        if key not in parameters:
            if takes_any:
                checked[key] = value
                continue
            known = ", ".join(sorted(parameters)) or "(none)"
            raise ConfigError(f"{section}.{key}: unknown key{did_you_mean(key, list(parameters))}; expected some of: {known}")
        checked[key] = check_value(f"{section}.{key}", value, parameters[key])
    return checked


def check_value(key: str, value: Any, parameter: Parameter | Any) -> Any:
    """``value`` checked against ``parameter`` (a :class:`Parameter` or a bare type hint), coerced.

    Raises:
        ConfigError: naming ``key``, what was expected and what came.
    """
    if not isinstance(parameter, Parameter):
        parameter = Parameter(annotation=parameter)
    annotation = parameter.annotation
    if annotation is Any and parameter.default not in (inspect.Parameter.empty, None):
        # an undeclared parameter: its default's type (an int default may well take a float)
        annotation = type(parameter.default)
        if annotation is int:
            annotation = int | float
    ok, coerced = _coerce(value, annotation)
    if not ok:
        raise ConfigError(f"{key}: expected {_describe(annotation)}, got {value!r}")
    if parameter.choices is not None and coerced not in parameter.choices:
        raise ConfigError(f"{key}: expected one of {list(parameter.choices)}, got {value!r}"
                          f"{did_you_mean(str(value), [str(c) for c in parameter.choices])}")
    if isinstance(coerced, (int, float)) and not isinstance(coerced, bool):
        low, high = parameter.minimum, parameter.maximum
        if low is not None and (coerced <= low if parameter.exclusive_minimum else coerced < low):
            raise ConfigError(f"{key}: expected a value {'>' if parameter.exclusive_minimum else '≥'} {low}, got {value!r}")
        if high is not None and (coerced >= high if parameter.exclusive_maximum else coerced > high):
            raise ConfigError(f"{key}: expected a value {'<' if parameter.exclusive_maximum else '≤'} {high}, got {value!r}")
    return coerced


def _coerce(value: Any, annotation: Any) -> tuple[bool, Any]:
    """``(fits, coerced value)`` for ``value`` against a type hint; unknown hints accept anything."""
    if annotation is Any or annotation is inspect.Parameter.empty:
        return True, value
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        for arm in arguments:  # None first would hide nothing: exact types come before coercions
            ok, coerced = _coerce(value, arm)
            if ok:
                return True, coerced
        return False, value
    if origin is typing.Literal:
        return value in arguments, value
    if annotation is type(None) or annotation is None:
        return value is None, value
    if annotation is bool:
        return isinstance(value, bool), value
    if annotation is int:
        if isinstance(value, bool):
            return False, value
        if isinstance(value, int):
            return True, value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return True, int(value)
        return False, value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False, value
        return math.isfinite(value), float(value)
    if annotation is str:
        return isinstance(value, str), value
    if annotation is Path or (inspect.isclass(annotation) and issubclass(annotation, Path)):
        return isinstance(value, (str, Path)), value
    if origin in (list, tuple, Sequence, typing.Sequence) or annotation in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False, value
        if origin is tuple and arguments and arguments[-1] is not Ellipsis:
            if len(arguments) != len(value):
                return False, value
            items = [_coerce(item, arm) for item, arm in zip(value, arguments)]
        else:
            item_type = arguments[0] if arguments else Any
            items = [_coerce(item, item_type) for item in value]
        if not all(ok for ok, _ in items):
            return False, value
        coerced = [item for _, item in items]
        return True, tuple(coerced) if (origin is tuple or annotation is tuple) else coerced
    if origin in (dict, Mapping, typing.Mapping) or annotation in (dict, Mapping):
        return isinstance(value, Mapping), value
    return True, value  # a type a config cannot spell (a module, a callable): not ours to check


def _describe(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return " or ".join(_describe(arm) for arm in arguments)
    if origin is typing.Literal:
        return f"one of {list(arguments)}"
    if annotation is type(None) or annotation is None:
        return "null"
    names = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string", Path: "a path"}
    if annotation in names:
        return names[annotation]
    if origin in (list, tuple, Sequence, typing.Sequence) or annotation in (list, tuple):
        plural = {bool: "booleans", int: "integers", float: "finite numbers", str: "strings", Path: "paths"}
        if not arguments:
            return "a list"
        fixed = origin is tuple and arguments[-1] is not Ellipsis
        kinds = set(arguments[:-1] if arguments[-1] is Ellipsis else arguments)
        what = plural.get(next(iter(kinds)), "items") if len(kinds) == 1 else "items"
        return f"a list of {len(arguments)} {what}" if fixed else f"a list of {what}"
    if origin in (dict, Mapping, typing.Mapping) or annotation in (dict, Mapping):
        return "a mapping"
    return getattr(annotation, "__name__", str(annotation))

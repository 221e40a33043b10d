"""The one registry helper: lookup, descriptions, clear errors, options along the class hierarchy."""

from __future__ import annotations

import pytest

from contrastkit.methods import method_options
from contrastkit.methods.autotcl import AutoTCL
from contrastkit.methods.base import Method
from contrastkit.methods.mochi import MoCHi
from contrastkit.methods.moco import MoCo
from contrastkit.methods.ts2vec import TS2Vec
from contrastkit.utils.registry import Registry, UnknownNameError, keyword_options


def test_register_lookup_and_describe() -> None:
    shapes: Registry[object] = Registry("shape")

    @shapes.register("square")
    def square(side: float) -> float:
        """Four equal sides.

        More text that is not the description.
        """
        return side * side

    shapes.register("circle", 3.14, description="round")
    assert shapes["square"] is square and shapes["square"](2.0) == 4.0
    assert shapes.names() == ["circle", "square"] and len(shapes) == 2 and "circle" in shapes
    assert shapes.descriptions() == {"circle": "round", "square": "Four equal sides."}
    assert shapes.get("triangle") is None  # a Mapping: get/in behave as on a dict
    shapes.register("square", square)  # the same object again: a no-op
    with pytest.raises(ValueError, match="'square' is already registered"):
        shapes.register("square", lambda side: side)


def test_unknown_name_lists_the_known_ones() -> None:
    shapes = Registry("shape", {"square": 1, "circle": 2})
    with pytest.raises(UnknownNameError, match=r"unknown shape 'triangle'; expected one of: circle, square") as info:
        shapes["triangle"]
    assert isinstance(info.value, ValueError) and isinstance(info.value, KeyError)
    assert str(info.value).startswith("unknown shape")  # not KeyError's quoted repr


def test_options_are_collected_along_the_class_hierarchy() -> None:
    # MoCHi declares only its mixing options and forwards the rest to MoCo.
    mochi = keyword_options(MoCHi, stop=Method)
    assert set(keyword_options(MoCo, stop=Method)) < set(mochi)
    assert {"num_hardest", "num_mixed", "queue_size", "temperature"} <= set(mochi)
    assert mochi["temperature"] == 0.2 and mochi["num_hardest"] == 256
    autotcl = method_options("autotcl")
    assert set(keyword_options(TS2Vec, stop=Method)) < set(autotcl) and "augmenter_width" in autotcl
    assert keyword_options(AutoTCL, stop=Method) == autotcl


def test_a_class_without_forwarding_ends_the_walk() -> None:
    class Base:
        def __init__(self, *, a: int = 1) -> None: ...

    class Closed(Base):
        def __init__(self, *, b: int = 2) -> None: ...

    class Open(Base):
        def __init__(self, *, b: int = 2, **rest: int) -> None: ...

    assert keyword_options(Closed) == {"b": 2}
    assert keyword_options(Open) == {"b": 2, "a": 1}


def test_unregister_takes_back_a_name():
    registry = Registry("widget")
    registry.register("a", 1)
    assert registry.unregister("a") == 1
    assert "a" not in registry and registry.names() == []
    with pytest.raises(ValueError, match="unknown widget 'a'"):
        registry.unregister("a")
    registry.register("a", 2)  # the name is free again
    assert registry["a"] == 2

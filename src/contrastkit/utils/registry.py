"""The one registry helper: names -> objects, for methods, encoders, datasets, views and modalities.

Recipes and the command line refer to everything by name. A :class:`Registry` maps
those names to what they stand for (a class, a factory, a preset), with a one-line
description for ``contrastkit list``, and answers an unknown name with one error
that lists the known ones. It is a read-only ``Mapping``, so ``name in registry``,
``registry[name]`` and iteration read as they would on a dict.

:func:`keyword_options` collects a class's keyword-only ``__init__`` options along its
class hierarchy, so that a subclass declares only its own and forwards the rest with
``**options`` (MoCHi over MoCo, AutoTCL over TS2Vec).

Example:
    >>> shapes = Registry("shape")
    >>> @shapes.register("square", description="four equal sides")
    ... def square(side: float) -> float:
    ...     return side * side
    >>> shapes["square"](3.0), shapes.names()
    (9.0, ['square'])
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")

__all__ = ["Registry", "UnknownNameError", "keyword_options", "unknown_name_error"]


class UnknownNameError(ValueError, KeyError):
    """A name that is not registered. A ``ValueError`` for callers (bad input), and a
    ``KeyError`` so that ``Mapping`` methods (``in``, ``get``) behave as on a dict."""

    def __str__(self) -> str:  # KeyError would quote the message
        return ValueError.__str__(self)


def unknown_name_error(kind: str, name: str, known: Iterable[str]) -> UnknownNameError:
    """The error for ``name``, not among ``known`` names of ``kind``: what came, what was expected."""
    from contrastkit.utils.schema import closest

    known = sorted(known)
    hint = f" (did you mean {match!r}?)" if (match := closest(name, known)) else ""
    known_list = ", ".join(known) or "(none registered)"
    return UnknownNameError(f"unknown {kind} {name!r}{hint}; expected one of: {known_list}")


class Registry(Mapping[str, T], Generic[T]):
    """Objects of one kind, registered by name.

    Args:
        kind: what the names name (``"method"``, ``"encoder"``, ...), used in messages.
        entries: optional ``{name: object}`` to start with (descriptions from their docstrings).
    """

    def __init__(self, kind: str, entries: Mapping[str, T] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._descriptions: dict[str, str] = {}
        for name, value in (entries or {}).items():
            self.register(name, value)

    @overload
    def register(self, name: str, *, description: str | None = None) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, value: T, *, description: str | None = None) -> T: ...

    def register(self, name: str, value: Any = inspect.Parameter.empty, *, description: str | None = None) -> Any:
        """Register ``value`` under ``name`` (or, without ``value``, return a decorator that does).

        Re-registering the same object (a module imported twice) is a no-op; another object
        under a taken name raises ``ValueError``.
        """
        if value is inspect.Parameter.empty:
            return lambda decorated: self.register(name, decorated, description=description)
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} registry: expected a non-empty name, got {name!r}")
        existing = self._entries.get(name)
        if existing is not None and _identity(existing) != _identity(value):
            raise ValueError(f"{self.kind} {name!r} is already registered (by {_identity(existing)})")
        self._entries[name] = value
        self._descriptions[name] = description if description is not None else _first_doc_line(value)
        return value

    def unregister(self, name: str) -> T:
        """Remove ``name`` and return what it held (a plug-in or a test taking back what it added).

        Raises the registry's unknown-name error when ``name`` is not registered.
        """
        value = self[name]
        del self._entries[name], self._descriptions[name]
        return value

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise unknown_name_error(self.kind, name, self._entries) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def description(self, name: str) -> str:
        """The one-line description of ``name``."""
        self[name]  # the unknown-name error
        return self._descriptions[name]

    def descriptions(self) -> dict[str, str]:
        """``{name: one-line description}``, sorted by name."""
        return {name: self._descriptions[name] for name in self.names()}


def keyword_options(cls: type, *, stop: type = object) -> dict[str, Any]:
    """The keyword-only ``__init__`` options of ``cls`` and its ancestors below ``stop``, with defaults.

    A class's own default wins over an ancestor's of the same name. A class whose
    ``__init__`` takes no ``**options`` ends the walk: it does not forward to its parent.
    """
    options: dict[str, Any] = {}
    for klass in cls.__mro__:
        if klass is stop or not issubclass(klass, stop) or "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(vars(klass)["__init__"]).parameters.values()
        for parameter in parameters:
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
                options.setdefault(parameter.name, parameter.default)
        if not any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
            break
    return options


def _identity(value: object) -> str:
    return getattr(value, "__qualname__", None) or repr(value)


def _first_doc_line(value: object) -> str:
    # Only a value's own docstring: an instance (a preset tuple, a config) would give its type's.
    doc = inspect.getdoc(value) if callable(value) and getattr(value, "__doc__", None) else None
    return doc.strip().splitlines()[0] if doc else ""

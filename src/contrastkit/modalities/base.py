"""The modality interface and registry: everything the top floor needs to know about a kind of data.

A :class:`Modality` says, for one kind of data (``DatasetSplits.modality`` names it):

* how to build the pair of views a recipe's ``views:`` section asks for (:meth:`Modality.build_views`);
* the encoder arguments that come from the data (:meth:`Modality.encoder_arguments`:
  channels, image size, vocabulary, user and item counts);
* its evaluation protocol (:attr:`Modality.protocol`, with :attr:`Modality.protocol_defaults`)
  and the one line describing it (the protocol's ``describe``);
* what ``contrastkit list`` shows for it (:meth:`Modality.view_presets` and the methods
  that train on it, :func:`methods_for`).

``train/`` and ``cli.py`` call these and never name a modality. A new kind of data is a
:class:`Modality` subclass registered with :func:`register_modality`, plus its dataset
(``contrastkit.data.register_dataset``), views and encoder
(``contrastkit.nn.registry.ENCODERS``): see ``docs/adding-a-method.md``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from torch import nn

from contrastkit.data.registry import DatasetSplits
from contrastkit.eval.protocols.base import EvaluationProtocol, settings_from
from contrastkit.methods.base import Method
from contrastkit.methods.registry import METHODS
from contrastkit.utils.registry import Registry

__all__ = ["MODALITIES", "Modality", "check_method", "methods_for", "modality_of", "register_modality"]


class Modality(ABC):
    """One kind of data: its views, the encoder arguments it supplies, its evaluation.

    Class attributes:
        name: the name datasets give in ``DatasetSplits.modality``.
        description: one line for ``contrastkit list``.
        protocol: the :class:`~contrastkit.eval.protocols.base.EvaluationProtocol` of its runs.
        protocol_defaults: settings of that protocol this modality changes (e.g. the SVM probe on series).
        two_tensor_views: whether its views turn a tensor batch into two tensor batches of one
            shape, so that the generic two-view methods (``Method.two_tensor_views``) train on it.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    protocol: ClassVar[type[EvaluationProtocol]]
    protocol_defaults: ClassVar[Mapping[str, Any]] = {}
    two_tensor_views: ClassVar[bool] = False

    @abstractmethod
    def encoder_arguments(self, splits: DatasetSplits) -> dict[str, Any]:
        """Keyword arguments of the encoder that come from the data (e.g. ``in_channels``)."""

    @abstractmethod
    def build_views(self, options: dict[str, Any], splits: DatasetSplits, encoder: nn.Module) -> tuple[nn.Module, ...]:
        """The views of a recipe's ``views:`` section (``options`` holds ``preset`` and its options)."""

    @abstractmethod
    def view_presets(self) -> list[str]:
        """The view preset names ``contrastkit list`` shows (empty when the data has no views)."""

    def build_protocol(self, splits: DatasetSplits, settings: Mapping[str, Any], device: Any,
                       seed: int) -> EvaluationProtocol:
        """The modality's protocol, from the ``eval:`` keys it reads (``settings``) over its defaults."""
        values = settings_from(self.protocol, settings, defaults=self.protocol_defaults)
        return self.protocol(splits, values, device, seed)

    def accepts(self, method: type[Method]) -> bool:
        """Whether ``method`` trains on this modality (it names it, or it is a generic two-view method)."""
        return self.name in method.modalities or (method.two_tensor_views and self.two_tensor_views)


MODALITIES: Registry[Modality] = Registry("modality")


def register_modality(modality: Modality) -> Modality:
    """Register ``modality`` under its ``name`` (a second object under a taken name raises ``ValueError``)."""
    return MODALITIES.register(modality.name, modality, description=modality.description)


def modality_of(splits: DatasetSplits) -> Modality:
    """The registered modality of a dataset's splits; an unregistered one raises ``ValueError``."""
    if splits.modality not in MODALITIES:
        raise ValueError(
            f"dataset {splits.name!r} is {splits.modality!r} data, but no modality of that name is registered; "
            f"registered: {', '.join(MODALITIES.names())} (contrastkit.modalities.register_modality adds one)"
        )
    return MODALITIES[splits.modality]


def methods_for(modality: Modality) -> list[str]:
    """The registered method names that train on ``modality``, sorted."""
    return [name for name in METHODS.names() if modality.accepts(METHODS[name])]


def check_method(name: str, splits: DatasetSplits) -> Modality:
    """The splits' modality, once it is checked that method ``name`` trains on it; else a clear ``ValueError``."""
    modality = modality_of(splits)
    method = METHODS[name]
    if not modality.accepts(method):
        trains_on = " or ".join(repr(other) for other in sorted(method.modalities))
        if method.two_tensor_views:
            trains_on += " data, or any data whose views are two tensors,"
        else:
            trains_on += " data"
        raise ValueError(
            f"dataset {splits.name!r} is {modality.name!r} data, but method {name!r} trains on {trains_on}; "
            f"methods for {modality.name!r} data: {', '.join(methods_for(modality)) or '(none yet)'}"
        )
    return modality

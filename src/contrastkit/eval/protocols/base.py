"""The interface every evaluation protocol implements: what a run measures for a kind of data.

A protocol is built from a dataset's splits and its own settings, and scores a model
(anything with ``embed``, ``train``/``eval`` and ``training``: a method) three ways:
``periodic`` during training (cheap), ``final`` at the end, and ``baselines``
(references such as raw inputs, BM25 or the untrained encoder, measured in the same
run). It also says which result columns a table shows, what it evaluated on, and one
line describing how. The trainer and ``train/run.py`` talk to protocols through this
interface only; a modality (:mod:`contrastkit.modalities`) names its protocol.

Settings: each protocol declares a dataclass of the ``eval:`` keys it reads
(:attr:`EvaluationProtocol.settings_type`); :func:`settings_from` builds it from a
recipe's ``eval`` section and rejects a key the protocol does not read.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, Protocol

import torch

from contrastkit.data.registry import DatasetSplits

__all__ = ["EvaluationProtocol", "Model", "ProtocolSettings", "evaluation_mode", "settings_from"]


class Model(Protocol):
    """What a protocol needs of a model: its train/eval mode and an ``embed``."""

    training: bool

    def train(self, mode: bool = True) -> Any: ...

    def eval(self) -> Any: ...

    def embed(self, inputs: Any) -> torch.Tensor: ...


@contextmanager
def evaluation_mode(model: Model) -> Iterator[None]:
    """``model.eval()`` inside the block, the model's previous mode restored after it."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@dataclasses.dataclass
class ProtocolSettings:
    """Base of the protocols' settings dataclasses (the ``eval:`` keys each one reads)."""


class EvaluationProtocol(ABC):
    """Scores a model on a dataset's evaluation split, with baselines from the same run.

    Args:
        splits: the dataset's splits.
        settings: the protocol's own settings (:attr:`settings_type`).
        device: where features are computed.
        seed: seeds any sub-sampling and probe.
    """

    #: the dataclass of the ``eval:`` keys this protocol reads.
    settings_type: ClassVar[type[ProtocolSettings]] = ProtocolSettings

    def __init__(self, splits: DatasetSplits, settings: Any, device: torch.device | None, seed: int) -> None:
        self.splits, self.settings, self.device, self.seed = splits, settings, device, seed

    @abstractmethod
    def periodic(self, model: Model) -> dict[str, float]:
        """Cheap scores logged during training."""

    @abstractmethod
    def final(self, model: Model) -> tuple[dict[str, float], torch.Tensor | None]:
        """The end-of-run scores, and the test features to plot (``None`` when there are none)."""

    @abstractmethod
    def baselines(self, model: Model) -> dict[str, dict[str, float]]:
        """``{baseline name: scores}``, scored like :meth:`final` (``model`` is the untrained one)."""

    @abstractmethod
    def columns(self) -> list[str]:
        """The score keys a result table shows, in order."""

    @abstractmethod
    def describe(self) -> str:
        """One line: how the table was measured (e.g. ``kNN k=200, τ=0.1; test rows 10000``)."""

    @abstractmethod
    def evaluated_rows(self) -> dict[str, int | None]:
        """``{"train": ..., "test": ...}``: how many rows (queries, nodes, users) were scored."""

    def plot_labels(self) -> torch.Tensor | None:
        """Labels of the rows :meth:`final` returns features for (to colour a 2-D plot); default none."""
        return None

    def __call__(self, model: Model) -> dict[str, float]:
        """The trainer's periodic evaluation hook: :meth:`periodic`."""
        return self.periodic(model)


def settings_from(protocol: type[EvaluationProtocol], values: Mapping[str, Any], *,
                  defaults: Mapping[str, Any] | None = None, owner: str = "eval") -> Any:
    """``protocol.settings_type`` from ``values`` (a recipe's protocol keys) over ``defaults``.

    Raises:
        ValueError: for a key the protocol does not read, naming the protocol and its keys.
    """
    known = {field.name for field in dataclasses.fields(protocol.settings_type)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"{owner}: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not read by the "
            f"{protocol.__name__} evaluation of this data; its settings: {', '.join(sorted(known)) or '(none)'}"
        )
    from contrastkit.utils.schema import check_section, dataclass_parameters

    checked = check_section(owner, values, dataclass_parameters(protocol.settings_type))
    return protocol.settings_type(**{**(defaults or {}), **checked})

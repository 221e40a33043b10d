"""The interface every evaluation protocol implements: what a run measures for a kind of data.

A protocol is built from a dataset's splits and its own settings, and scores a model
(anything with ``embed``, ``train``/``eval`` and ``training``: a method) three ways:
``periodic`` during training (cheap), ``final`` at the end, and ``baselines``
(references such as raw inputs, BM25 or the untrained encoder, measured in the same
run). It also says which result columns a table shows, what it evaluated on, and one
line describing how. The trainer and ``train/run.py`` talk to protocols through this
interface only; a modality (:mod:`contrastkit.modalities`) names its protocol.

A protocol also exports what it embeds (:meth:`EvaluationProtocol.embed`, behind
``contrastkit embed RUN_DIR``): one :class:`EmbeddingTable` per kind of row (samples,
nodes, graphs, users and items, a corpus and its queries, images and captions), computed
by the same code its scores use, so an exported row equals the row it evaluated. A
protocol whose encoder maps text into the table's space also encodes text queries
(:meth:`EvaluationProtocol.encode_queries`, behind ``contrastkit search``).

Settings: each protocol declares a dataclass of the ``eval:`` keys it reads
(:attr:`EvaluationProtocol.settings_type`); :func:`settings_from` builds it from a
recipe's ``eval`` section and rejects a key the protocol does not read.
"""

from __future__ import annotations

import dataclasses
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, Protocol

import numpy as np
import torch

from contrastkit.data.registry import DatasetSplits

__all__ = [
    "EMBED_SPLITS", "EmbeddingTable", "EvaluationProtocol", "Model", "ProtocolSettings", "check_split",
    "evaluation_mode", "merge_splits", "settings_from", "split_parts",
]

#: What ``embed`` can export: the training rows, the test rows, or both.
EMBED_SPLITS = ("train", "test", "all")

#: How rows of a table compare: cosine similarity, or the raw dot product (recommendation scores).
TABLE_METRICS = ("cosine", "dot")

# A table's name becomes a folder name and a TensorBoard tensor name: keep it plain.
_TABLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


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


def check_split(split: str) -> str:
    """``split`` when it is one of :data:`EMBED_SPLITS`; else a ``ValueError`` naming them."""
    if split not in EMBED_SPLITS:
        raise ValueError(f"split: expected one of {', '.join(EMBED_SPLITS)}, got {split!r}")
    return split


def split_parts(split: str) -> list[str]:
    """The splits ``split`` covers: ``["train", "test"]`` for ``"all"``, else ``[split]``."""
    return ["train", "test"] if check_split(split) == "all" else [split]


@dataclasses.dataclass
class EmbeddingTable:
    """One exported table of embeddings: a row per sample, node, graph, user, item, document ...

    Args:
        name: what the rows are (``"samples"``, ``"nodes"``, ``"users"``, ``"corpus"``); a plain
            name (letters, digits, ``-``, ``_``), used as a folder name.
        features: ``[N, D]`` embeddings (a tensor or an array; stored as float32 numpy).
        ids: ``N`` unique row ids (ints, e.g. row numbers, or strings, e.g. document ids).
        labels: optional integer labels ``[N]``.
        texts: optional text of each row (documents, captions), shown by ``search``.
        class_names: optional name of each label value.
        metric: how rows compare: ``"cosine"`` or ``"dot"`` (the protocol's own score).
        text_queries: whether :meth:`EvaluationProtocol.encode_queries` maps text into this
            table's space (so ``search`` can answer text queries).
        thumbnails: optional images of the rows, ``[N, C, H, W]`` (``C`` 1 or 3) or ``[N, H, W]``
            (a tensor or an array, values in ``[0, 1]`` or any range), shown as the rows' pictures by
            TensorBoard's projector (its sprite); not stored in the embedding folder's numpy files.

    Raises:
        ValueError: for a bad name or metric, features that are not a finite ``[N, D]`` matrix
            with ``N >= 1``, or ids, labels or texts that do not match the rows.
    """

    name: str
    features: Any
    ids: list[Any]
    labels: Any = None
    texts: list[str] | None = None
    class_names: list[str] | None = None
    metric: str = "cosine"
    text_queries: bool = False
    thumbnails: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _TABLE_NAME.match(self.name):
            raise ValueError(f"EmbeddingTable: expected a plain name (letters, digits, - and _), got {self.name!r}")
        if self.metric not in TABLE_METRICS:
            raise ValueError(f"EmbeddingTable {self.name}: metric must be one of {TABLE_METRICS}, got {self.metric!r}")
        features = self.features
        if isinstance(features, torch.Tensor):
            features = features.detach().float().cpu().numpy()
        features = np.ascontiguousarray(np.asarray(features, dtype=np.float32))
        if features.ndim != 2 or features.shape[0] == 0:
            raise ValueError(f"EmbeddingTable {self.name}: expected features [N, D] with N >= 1, "
                             f"got shape {features.shape}")
        if not np.isfinite(features).all():
            row = int(np.flatnonzero(~np.isfinite(features).all(axis=1))[0])
            raise ValueError(f"EmbeddingTable {self.name}: non-finite features (NaN/inf), first at row {row}")
        count = features.shape[0]
        ids = [int(i) if isinstance(i, (int, np.integer)) and not isinstance(i, bool) else i for i in self.ids]
        if len(ids) != count or not all(isinstance(i, (int, str)) and not isinstance(i, bool) for i in ids):
            raise ValueError(f"EmbeddingTable {self.name}: expected {count} ids (ints or strings), got {len(ids)}")
        if len(set(map(str, ids))) != count:
            raise ValueError(f"EmbeddingTable {self.name}: ids must be unique (as text), got duplicates")
        labels = self.labels
        if labels is not None:
            if isinstance(labels, torch.Tensor):
                labels = labels.detach().cpu().numpy()
            labels = np.asarray(labels)
            if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer):
                raise ValueError(f"EmbeddingTable {self.name}: expected integer labels [{count}], "
                                 f"got {labels.dtype} {labels.shape}")
            labels = labels.astype(np.int64)
        if self.texts is not None and len(self.texts) != count:
            raise ValueError(f"EmbeddingTable {self.name}: expected {count} texts, got {len(self.texts)}")
        if self.thumbnails is not None:
            shape = tuple(self.thumbnails.shape)
            if not (len(shape) == 3 or (len(shape) == 4 and shape[1] in (1, 3))) or shape[0] != count:
                raise ValueError(f"EmbeddingTable {self.name}: expected thumbnails [{count}, C, H, W] (C 1 or 3) "
                                 f"or [{count}, H, W], got shape {shape}")
        self.features, self.ids, self.labels = features, ids, labels

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def dim(self) -> int:
        """The embedding dimension ``D``."""
        return int(self.features.shape[1])


def merge_splits(per_split: Mapping[str, Sequence[EmbeddingTable]]) -> list[EmbeddingTable]:
    """The tables of several splits as one list: same-named tables are stacked in split order.

    Row ids of different splits may collide (row 0 of train, row 0 of test), so with more
    than one split each id becomes ``"SPLIT/ID"``. Where the splits name their classes
    differently (image-text data: unseen test names), the later split's labels are offset
    and its class names appended, so that every label still names its class.
    """
    if len(per_split) == 1:
        return list(next(iter(per_split.values())))
    merged: dict[str, list[tuple[str, EmbeddingTable]]] = {}
    for split, tables in per_split.items():
        for table in tables:
            merged.setdefault(table.name, []).append((split, table))
    out = []
    for name, parts in merged.items():
        first = parts[0][1]
        labelled = all(table.labels is not None for _, table in parts)
        named = all(table.class_names is not None for _, table in parts)
        same_names = named and all(table.class_names == first.class_names for _, table in parts)
        labels, class_names, offset = [], [] if named else None, 0
        for _, table in parts:
            if labelled:
                labels.append(table.labels + (0 if same_names or not named else offset))
            if named and not same_names:
                assert class_names is not None and table.class_names is not None
                class_names += table.class_names
                offset += len(table.class_names)
        texts = None
        if all(table.texts is not None for _, table in parts):
            texts = [text for _, table in parts for text in table.texts or []]
        thumbnails = None
        pictures = [table.thumbnails for _, table in parts]
        if all(picture is not None for picture in pictures) and len({tuple(p.shape[1:]) for p in pictures}) == 1:
            thumbnails = np.concatenate([np.asarray(p.detach().cpu() if isinstance(p, torch.Tensor) else p)
                                         for p in pictures])
        out.append(EmbeddingTable(
            name, np.concatenate([table.features for _, table in parts]),
            [f"{split}/{row_id}" for split, table in parts for row_id in table.ids],
            labels=np.concatenate(labels) if labelled else None, texts=texts,
            class_names=first.class_names if same_names else class_names,
            metric=first.metric, text_queries=first.text_queries, thumbnails=thumbnails,
        ))  # fmt: skip
    return out


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

    def embed(self, model: Model, split: str) -> list[EmbeddingTable]:
        """The embeddings of ``split`` (``"train"``, ``"test"`` or ``"all"``), one table per kind of row.

        Computed with the same feature code as :meth:`final`, over the whole split (no
        evaluation sub-sample); long extractions show a bar on a terminal, as evaluation
        does. A protocol that does not implement it raises ``ValueError``.
        """
        raise ValueError(f"the {type(self).__name__} evaluation does not export embeddings")

    def encode_queries(self, model: Model, texts: list[str]) -> torch.Tensor:
        """Text queries embedded into the space of the tables :meth:`embed` marks ``text_queries``.

        Default: a ``ValueError`` (the data's encoder does not encode text).
        """
        raise ValueError(f"dataset {self.splits.name!r}: this run's model does not encode text queries")

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

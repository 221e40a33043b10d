r"""Tuple evaluation: Symile's zero-shot prediction of one field from the others.

The protocol of ``tuples`` runs. For the target field ``t`` (``eval.target``; Symile-M3
predicts the image from the text and the audio), every test row is a query made of its
other fields' embeddings and is scored against every *distinct* value of ``t`` in the test
split (for emoji-speech: one glyph per class), as the official ``zeroshot_retrieval_logits``
scores:

* a model whose ``zero_shot_scoring`` is ``"product"`` (Symile):
  ``s(c) = MIP(q_1, ..., q_k, r_c) = (q_1 ⊙ ... ⊙ q_k) · r_c``
  (:func:`~contrastkit.functional.symile.symile_zero_shot_scores`);
* ``"sum"`` (pairwise CLIP): ``s(c) = sum_m q_m · r_c`` (the official score also adds the
  query's own pairwise terms, which do not depend on ``c`` and so do not change the ranking).

A prediction is correct when the best candidate is the row's own value (the same table
index: the same image, clip or text). Ranks come from
:func:`~contrastkit.eval.cross_modal.query_ranks` (ties counted against the query), so
``zero_shot_top1`` / ``zero_shot_top5`` are R@1 / R@5 over the candidates, with a 95 %
bootstrap interval over queries for top-1. ``{field}_top1`` is the same with each field as the
target. ``eval.missing_fraction > 0`` also scores the target with each query field missing
independently with that probability (seeded): the placeholder value and the missingness
indicator go to the encoder, which a model trained with ``encoder.missing_embedding=true``
has learned to use (``zero_shot_top1_missing``).

Baselines from the same run: random embeddings (chance: ``1 / candidates``) and the untrained
towers, scored as the method scores.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from contrastkit.data.registry import DatasetSplits
from contrastkit.eval.cross_modal import bootstrap_interval, query_ranks
from contrastkit.eval.protocols.base import (
    EvaluationProtocol,
    Model,
    ProtocolSettings,
    evaluation_mode,
)
from contrastkit.utils.schema import bounded

__all__ = ["TupleProtocol", "TupleSettings", "zero_shot_ranks"]

SCORINGS = ("product", "sum")


@dataclasses.dataclass
class TupleSettings(ProtocolSettings):
    """The ``eval:`` keys of the tuple protocol.

    Attributes:
        target: the field predicted from the others (``image`` as Symile-M3).
        batch_size: values per forward pass.
        missing_fraction: also score with each query field missing with this probability (0: not).
        bootstrap: bootstrap resamples of the top-1 interval (0: none).
    """

    target: str = "image"
    batch_size: int = bounded(256, minimum=1)
    missing_fraction: float = bounded(0.0, minimum=0.0, maximum=1.0)
    bootstrap: int = bounded(1000, minimum=0)


def zero_shot_ranks(queries: list[torch.Tensor], candidates: torch.Tensor, owner: torch.Tensor,
                    scoring: str = "product") -> torch.Tensor:
    """1-based ranks ``[Q]`` of each query's own candidate (ties counted against the query).

    Args:
        queries: ``k >= 1`` paired ``[Q, D]`` embeddings, the known fields of each query.
        candidates: ``[C, D]`` embeddings of the target's distinct values.
        owner: ``[Q]`` the index of each query's own candidate; every candidate owns a query.
        scoring: ``"product"`` (MIP, Symile) or ``"sum"`` (pairwise CLIP).
    """
    if scoring not in SCORINGS:
        raise ValueError(f"zero-shot scoring: expected one of {', '.join(SCORINGS)}, got {scoring!r}")
    combined = queries[0]
    for part in queries[1:]:
        combined = combined * part if scoring == "product" else combined + part
    # query_ranks' "text -> image" ranks are exactly: each query against every candidate.
    return query_ranks(candidates.float(), combined.float(), owner)[1]


class TupleProtocol(EvaluationProtocol):
    """Zero-shot prediction of one field of a tuple from the others, on the test split."""

    settings_type = TupleSettings
    settings: TupleSettings

    def __init__(self, splits: DatasetSplits, settings: TupleSettings, device: torch.device | None,
                 seed: int) -> None:
        super().__init__(splits, settings, device, seed)
        test = splits.test
        if not hasattr(test, "fields") or not hasattr(test, "rows"):
            raise ValueError(f"dataset {splits.name!r}: the tuple evaluation needs a tuple test split (TupleDataset)")
        if settings.target not in test.fields:
            raise ValueError(f"eval.target: expected one of the data's fields {', '.join(test.fields)}, "
                             f"got {settings.target!r}")
        self.test = test
        generator = torch.Generator().manual_seed(int(seed) + 7)
        self.missing = {field: torch.rand(len(test), generator=generator) < settings.missing_fraction
                        for field in test.fields}

    def _field_embeddings(self, model: Model, field: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(values [V, D], value of each test row [N], the placeholder shown as missing [D])``."""
        values, row_value = torch.unique(self.test.rows[field], return_inverse=True)
        device = self.device or torch.device("cpu")
        step = self.settings.batch_size
        parts = []
        with torch.no_grad():
            for start in range(0, values.numel(), step):
                batch = self.test.values(field, values[start:start + step])
                batch = batch.to(device) if isinstance(batch, torch.Tensor) else batch
                parts.append(model.encode_field(field, batch).float().cpu())
            placeholder = self.test.values(field, torch.tensor([self.test.placeholder_index[field]]))
            placeholder = placeholder.to(device) if isinstance(placeholder, torch.Tensor) else placeholder
            missing = model.encode_field(field, placeholder, torch.ones(1, dtype=torch.bool, device=device))
        return torch.cat(parts), row_value, missing.float().cpu()[0]

    def _embed(self, model: Model) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        with evaluation_mode(model):
            return {field: self._field_embeddings(model, field) for field in self.test.fields}

    def score_embeddings(self, embedded: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
                         scoring: str) -> dict[str, float]:
        """The protocol's scores from per-field ``(values, row value, missing)`` embeddings."""
        scores: dict[str, float] = {}
        target = self.settings.target
        for field in self.test.fields:
            candidates, owner, _ = embedded[field]
            queries = [embedded[other][0][embedded[other][1]] for other in self.test.fields if other != field]
            ranks = zero_shot_ranks(queries, candidates, owner, scoring)
            scores[f"{field}_top1"] = float((ranks <= 1).float().mean())
            if field == target:
                correct = (ranks <= 1).float()
                scores["zero_shot_top1"] = float(correct.mean())
                scores["zero_shot_top5"] = float((ranks <= 5).float().mean())
                scores["candidates"] = float(candidates.shape[0])
                if self.settings.bootstrap and correct.numel() >= 2:
                    low, high = bootstrap_interval(correct, resamples=self.settings.bootstrap, seed=self.seed)
                    scores["zero_shot_top1_ci_low"], scores["zero_shot_top1_ci_high"] = low, high
        if self.settings.missing_fraction > 0:
            candidates, owner, _ = embedded[target]
            queries = []
            for other in self.test.fields:
                if other != target:
                    values, row_value, missing = embedded[other]
                    queries.append(torch.where(self.missing[other][:, None], missing, values[row_value]))
            ranks = zero_shot_ranks(queries, candidates, owner, scoring)
            scores["zero_shot_top1_missing"] = float((ranks <= 1).float().mean())
        return scores

    def final(self, model: Model) -> tuple[dict[str, float], None]:  # type: ignore[override]
        return self.score_embeddings(self._embed(model), getattr(model, "zero_shot_scoring", "product")), None

    def periodic(self, model: Model) -> dict[str, float]:  # type: ignore[override]
        scores = self.final(model)[0]
        return {key: scores[key] for key in ("zero_shot_top1", "zero_shot_top5")}

    def baselines(self, model: Model) -> dict[str, dict[str, float]]:  # type: ignore[override]
        untrained = self.final(model)[0]
        generator = torch.Generator().manual_seed(self.seed)
        dim = 64
        random: dict[str, Any] = {}
        for field in self.test.fields:
            values, row_value = torch.unique(self.test.rows[field], return_inverse=True)
            random[field] = (torch.nn.functional.normalize(torch.randn(values.numel(), dim, generator=generator), dim=-1),
                             row_value, torch.nn.functional.normalize(torch.randn(dim, generator=generator), dim=-1))
        return {"random": self.score_embeddings(random, "product"), "untrained": untrained}

    def columns(self) -> list[str]:
        columns = ["zero_shot_top1", "zero_shot_top5", *[f"{field}_top1" for field in self.test.fields]]
        return columns + (["zero_shot_top1_missing"] if self.settings.missing_fraction > 0 else [])

    def describe(self) -> str:
        target = self.settings.target
        count = int(torch.unique(self.test.rows[target]).numel())
        others = ", ".join(field for field in self.test.fields if field != target)
        missing = (f"; also with each query field missing with probability {self.settings.missing_fraction:g}"
                   if self.settings.missing_fraction > 0 else "")
        return (f"zero-shot: predict {target} from {others} on {len(self.test)} test tuples among {count} distinct "
                f"candidates (Symile: MIP scores; pairwise CLIP: summed dot products){missing}")

    def evaluated_rows(self) -> dict[str, int | None]:
        return {"train": None, "test": len(self.test)}

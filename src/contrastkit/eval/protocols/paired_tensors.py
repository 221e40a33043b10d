"""Paired-tensor evaluation (audio <-> sheet music): snippet retrieval both ways and piece identification.

The protocol of ``audio-sheet`` runs (the ``music-sheets`` data set). On the test split, whose
tunes are never seen in training, it embeds every audio snippet and every sheet snippet and
reports, with open_clip's conventions (:mod:`contrastkit.eval.cross_modal`: 1-based ranks, ties
counted against the query):

* **snippet retrieval** audio -> sheet (``a2s_*``) and sheet -> audio (``s2a_*``): the one
  matching snippet among all test snippets of the other modality: R@1/5/10, MRR (mean of
  ``1/rank``), mean and median rank -- the paper's (Carvalho et al.) snippet-retrieval table;
* **piece identification** (``a2s_piece_*``, ``s2a_piece_*``): a query counts as found at the
  rank of the best-ranked snippet of *its tune* (any-match over that tune's other snippets,
  the query's own pair excluded, so only a tune with several snippets is a query) -- which tune
  a snippet comes from, without the exact pair.

Baselines in the same run: random embeddings (chance) and the untrained towers (the model as
built, before any step).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from contrastkit.data.registry import DatasetSplits
from contrastkit.eval.cross_modal import (
    bootstrap_interval,
    query_ranks,
    retrieval_scores,
)
from contrastkit.eval.protocols.base import (
    EmbeddingTable,
    EvaluationProtocol,
    Model,
    ProtocolSettings,
    evaluation_mode,
    merge_splits,
    split_parts,
)
from contrastkit.utils.schema import bounded

__all__ = ["PairedTensorsProtocol", "PairedTensorsSettings", "any_match_ranks"]


@dataclasses.dataclass
class PairedTensorsSettings(ProtocolSettings):
    """The ``eval:`` keys of the paired-tensor protocol.

    Attributes:
        batch_size: snippets per forward pass.
        bootstrap: bootstrap resamples of the R@1 intervals (0: none).
    """

    batch_size: int = bounded(256, minimum=1)
    bootstrap: int = bounded(1000, minimum=0)


def any_match_ranks(scores: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """1-based rank of each query's best positive: ``1 + #{negatives scoring >= it}`` (ties count against).

    Args:
        scores: ``[Q, C]`` query x candidate scores.
        positive: ``[Q, C]`` boolean, at least one ``True`` per row.
    """
    if scores.shape != positive.shape or not bool(positive.any(1).all()):
        raise ValueError(f"any_match_ranks: expected scores and a positive mask of one shape with a positive per row, "
                         f"got {tuple(scores.shape)} and {tuple(positive.shape)}")
    best = scores.masked_fill(~positive, float("-inf")).max(1).values
    return (scores.masked_fill(positive, float("-inf")) >= best[:, None]).sum(1) + 1


def _rank_scores(prefix: str, ranks: torch.Tensor, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    ranks = ranks.float()
    out = {f"{prefix}_r@{k}": float((ranks <= k).float().mean()) for k in ks}
    out.update({f"{prefix}_mrr": float((1.0 / ranks).mean()), f"{prefix}_mean_rank": float(ranks.mean()),
                f"{prefix}_median_rank": float(ranks.median())})
    return out


class PairedTensorsProtocol(EvaluationProtocol):
    """Snippet retrieval and piece identification between the two tensors of a paired test split."""

    settings_type = PairedTensorsSettings
    settings: PairedTensorsSettings

    #: the two tensors and the model methods that embed them (query side first: audio -> sheet).
    pair = (("audio", "encode_audio"), ("sheet", "encode_sheet"))
    #: the short names of the two directions' score keys.
    directions = ("a2s", "s2a")

    def __init__(self, splits: DatasetSplits, settings: PairedTensorsSettings, device: torch.device | None,
                 seed: int) -> None:
        super().__init__(splits, settings, device, seed)
        test = splits.test
        names = getattr(test, "names", ())
        if not callable(getattr(test, "decode", None)) or any(name not in names for name, _ in self.pair):
            raise ValueError(f"dataset {splits.name!r}: the paired-tensor evaluation needs a test split of "
                             f"{' and '.join(name for name, _ in self.pair)} pairs")
        if len(test) < 2:
            raise ValueError(f"dataset {splits.name!r}: the test split needs at least 2 pairs, got {len(test)}")
        self.test = test

    @torch.no_grad()
    def _encode(self, model: Model, dataset, name: str, method: str) -> torch.Tensor:
        device = self.device or torch.device("cpu")
        size = self.settings.batch_size
        encode = getattr(model, method)
        return torch.cat([encode(dataset.decode(name, slice(start, start + size)).to(device)).float().cpu()
                          for start in range(0, len(dataset), size)])

    def _embed(self, model: Model, dataset=None) -> tuple[torch.Tensor, torch.Tensor]:
        dataset = self.test if dataset is None else dataset
        with evaluation_mode(model):
            first, second = (self._encode(model, dataset, name, method) for name, method in self.pair)
        return first, second

    def score_embeddings(self, queries: torch.Tensor, candidates: torch.Tensor) -> dict[str, float]:
        """The protocol's scores from ``[N, D]`` embeddings of the two tensors (normalised here)."""
        queries, candidates = F.normalize(queries.float(), dim=-1), F.normalize(candidates.float(), dim=-1)
        rows = torch.arange(queries.shape[0])
        forward, backward = query_ranks(queries, candidates, rows)
        first, second = self.directions
        scores = {key.replace("i2t", first).replace("t2i", second): value
                  for key, value in retrieval_scores(forward, backward).items()}
        scores.update(_rank_scores(first, forward))
        scores.update(_rank_scores(second, backward))
        # Piece identification: same tune, own pair excluded; queries whose tune has another snippet.
        labels = self.test.labels
        same = labels[:, None] == labels[None, :]
        same.fill_diagonal_(False)
        several = same.any(1)
        if bool(several.any()):
            similarity = queries @ candidates.T
            own = torch.eye(len(labels), dtype=torch.bool)
            for name, matrix in ((first, similarity), (second, similarity.T)):
                # The exact pair is neither a positive nor a negative here.
                masked = matrix.masked_fill(own, float("-inf"))
                scores.update(_rank_scores(f"{name}_piece", any_match_ranks(masked[several], same[several])))
            scores["piece_queries"] = float(several.sum())
        if self.settings.bootstrap:
            for name, ranks in ((first, forward), (second, backward)):
                low, high = bootstrap_interval((ranks <= 1).float(), resamples=self.settings.bootstrap, seed=self.seed)
                scores[f"{name}_r@1_ci_low"], scores[f"{name}_r@1_ci_high"] = low, high
        return scores

    def final(self, model: Model) -> tuple[dict[str, float], None]:  # type: ignore[override]
        return self.score_embeddings(*self._embed(model)), None

    def periodic(self, model: Model) -> dict[str, float]:  # type: ignore[override]
        scores = self.score_embeddings(*self._embed(model))
        return {key: scores[key] for key in ("a2s_r@1", "s2a_r@1", "a2s_mrr")}

    def baselines(self, model: Model) -> dict[str, dict[str, float]]:  # type: ignore[override]
        untrained = self.final(model)[0]
        generator = torch.Generator().manual_seed(self.seed)
        count = len(self.test)
        random = self.score_embeddings(torch.randn(count, 32, generator=generator),
                                       torch.randn(count, 32, generator=generator))
        return {"random": random, "untrained": untrained}

    def embed(self, model: Model, split: str) -> list[EmbeddingTable]:  # type: ignore[override]
        """Tables ``audio`` and ``sheets`` (row numbers as ids, tune ids as labels) of the split."""
        datasets = {"train": self.splits.train, "test": self.test}
        tables = {}
        for part in split_parts(split):
            dataset = datasets[part]
            audio, sheets = self._embed(model, dataset)
            names = list(dataset.group_names)
            tables[part] = [EmbeddingTable("audio", audio, list(range(len(dataset))), labels=dataset.labels,
                                           class_names=names),
                            EmbeddingTable("sheets", sheets, list(range(len(dataset))), labels=dataset.labels,
                                           class_names=names)]
        return merge_splits(tables)

    def columns(self) -> list[str]:
        return ["a2s_r@1", "a2s_r@10", "a2s_mrr", "a2s_median_rank", "s2a_r@1", "s2a_r@10", "s2a_mrr",
                "s2a_median_rank"]

    def describe(self) -> str:
        return (f"test split: {len(self.test)} snippet pairs of {self.test.num_classes} unseen tunes; "
                "retrieval among all test snippets (ties against the query), piece identification any-match")

    def evaluated_rows(self) -> dict[str, int | None]:
        return {"train": None, "test": len(self.test)}

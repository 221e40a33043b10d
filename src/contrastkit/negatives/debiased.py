"""Inverse-propensity-weighted pair sampling for sentence embeddings (DebCSE, reconstructed).

Miao, Du and Zhang, CIKM 2023, "DebCSE: Rethinking Unsupervised Contrastive Sentence
Embedding Learning in the Debiasing Perspective": the positive and negative pairs
of SimCSE-style training carry biases — positives look alike (shared words,
similar length) and "negatives" include paraphrases — so the model learns surface
overlap instead of meaning. DebCSE selects training pairs by inverse-propensity-
weighted sampling that uses both a surface and a semantic similarity.

Status (METHODS #32, PARTIAL, low confidence): no public code was found and only
the abstract was available, so this is the reconstruction written in METHODS.md,
not the paper's algorithm. For an anchor ``s`` and a candidate ``c``:

* surface score ``u(s, c) = lambda * J(s, c) + (1 - lambda) * R(s, c)`` in
  ``[0, 1]``, with ``J`` the Jaccard index of the sets of lower-cased word tokens
  (``\\w+``) and ``R = min(n_s, n_c) / max(n_s, n_c)`` the ratio of token counts
  (``lambda = jaccard_weight``, default 0.5);
* semantic score ``v(s, c) = cos(f_0(s), f_0(c))`` from a frozen encoder ``f_0``
  (the ``embeddings`` given to the sampler);
* propensity ``p(u)`` from a histogram of ``u`` (``bins`` equal-width bins on
  ``[0, 1]``). METHODS.md says "estimated from the empirical distribution of u over
  selected pairs"; two readings are offered. ``"selection"`` (default), the
  causal-inference meaning of a propensity: the probability that a candidate
  pair in bin ``b`` is selected, ``#selected_b / #candidates_b``. Weighting by its
  inverse makes the surface-score distribution of the sampled pairs match that of
  all candidates, i.e. selection no longer depends on ``u``. ``"density"``: the
  share of selected pairs in bin ``b``, ``#selected_b / #selected``; its inverse
  flattens the ``u`` histogram of the sampled pairs instead.
* positives: candidates with ``v`` at or above the anchor's ``positive_quantile``
  of ``v``, drawn with weight ``max(v, 0) / p(u)``;
* hard negatives: candidates with ``v`` at or below the anchor's
  ``negative_quantile`` of ``v`` whose ``u`` is at or above the
  ``surface_quantile`` of ``u`` among those low-``v`` candidates (low ``v``, high
  ``u``: they look alike but do not mean alike), drawn with weight ``1 / p(u)``.

The triples (anchor, positive, hard negative) then train with InfoNCE (SimCSE's
``tau = 0.05``), e.g. :func:`contrastkit.functional.ranking.multiple_negatives_ranking`
with ``scale=20`` or :func:`contrastkit.functional.contrastive.info_nce`.

What the weighting does and does not do (measured on synthetic data in the tests):
it balances the surface score between sampled positives and the candidate
population (the standardized mean difference of ``u`` and of the length
difference shrinks against uniformly drawn high-``v`` pairs). It does *not*
lower the Pearson correlation between ``u`` and ``v`` *within* the sampled
positives: spreading ``u`` out raises that correlation, whatever the reading.
"""

from __future__ import annotations

import re
from typing import Literal

import torch
import torch.nn.functional as F

from contrastkit.utils.checks import check_embeddings

__all__ = [
    "DebiasedPairSampler",
    "inverse_propensity_weights",
    "propensity_scores",
    "surface_similarity",
    "tokenize",
]

Propensity = Literal["selection", "density"]
PROPENSITIES = ("selection", "density")

_WORD = re.compile(r"\w+")
# Pairs per block in the batched set intersection (bounds memory to a few tens of MiB).
_PAIRS_PER_BLOCK_ELEMENTS = 1 << 22


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens (``\\w+``) of ``text``: the units of the surface score."""
    return _WORD.findall(text.lower())


def _check_unit_interval(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")


def surface_similarity(text_a: str, text_b: str, *, jaccard_weight: float = 0.5) -> float:
    """Surface score ``u = lambda * Jaccard + (1 - lambda) * length ratio`` of two texts.

    The scalar reference of :meth:`DebiasedPairSampler.surface_scores` (which
    computes the same value for many pairs at once).

    Args:
        text_a: a text with at least one word token.
        text_b: another such text.
        jaccard_weight: ``lambda`` in ``[0, 1]`` (default 0.5).

    Returns:
        ``u`` in ``[0, 1]``.

    Example:
        >>> surface_similarity("the cat sat", "the cat sat down")  # J = 3/4, R = 3/4
        0.75
    """
    _check_unit_interval("jaccard_weight", jaccard_weight)
    tokens_a, tokens_b = tokenize(text_a), tokenize(text_b)
    if not tokens_a or not tokens_b:
        raise ValueError(
            f"surface_similarity: expected texts with at least one word token, got {text_a!r} and {text_b!r}"
        )
    set_a, set_b = set(tokens_a), set(tokens_b)
    jaccard = len(set_a & set_b) / len(set_a | set_b)
    ratio = min(len(tokens_a), len(tokens_b)) / max(len(tokens_a), len(tokens_b))
    return jaccard_weight * jaccard + (1.0 - jaccard_weight) * ratio


def _check_surface(surface: torch.Tensor) -> None:
    if not isinstance(surface, torch.Tensor) or not surface.is_floating_point():
        got = surface.dtype if isinstance(surface, torch.Tensor) else type(surface).__name__
        raise ValueError(f"surface: expected a float tensor of scores in [0, 1], got {got}")
    if surface.numel() and (not torch.isfinite(surface).all() or surface.min() < 0 or surface.max() > 1):
        raise ValueError("surface: expected finite scores in [0, 1], got values outside it")


def _check_bool_like(name: str, mask: torch.Tensor, shape: torch.Size) -> None:
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != shape:
        got = f"{tuple(mask.shape)} {mask.dtype}" if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"{name}: expected a bool tensor of shape {tuple(shape)} (same as surface), got {got}")


def propensity_scores(
    surface: torch.Tensor,
    selected: torch.Tensor,
    *,
    bins: int = 10,
    population: torch.Tensor | None = None,
    propensity: Propensity = "selection",
) -> torch.Tensor:
    """The propensity ``p(u)`` of every entry, from a histogram of the surface score.

    Entry ``e`` falls in bin ``b(e) = min(floor(u_e * bins), bins - 1)``. With
    ``propensity="selection"``, ``p = #(selected in b) / #(population in b)`` (the
    probability that a candidate of that bin is selected); with ``"density"``,
    ``p = #(selected in b) / #selected`` (the share of the selected pairs in that
    bin). Counts run over all entries of the tensors (e.g. the whole batch of
    candidate pools).

    Args:
        surface: surface scores ``u`` in ``[0, 1]``, any shape.
        selected: bool, same shape: the pairs eligible for selection.
        bins: number of equal-width bins on ``[0, 1]`` (default 10).
        population: bool, same shape: the candidate pairs (default: every entry);
            must contain ``selected``. Only used by ``"selection"``.
        propensity: ``"selection"`` (default) or ``"density"``.

    Returns:
        ``p`` per entry, same shape as ``surface`` (0 in bins without a selected pair).

    Example:
        >>> u = torch.tensor([0.05, 0.15, 0.95, 0.96])
        >>> propensity_scores(u, torch.tensor([True, False, True, True]), bins=2).tolist()
        [0.5, 0.5, 1.0, 1.0]
    """
    _check_surface(surface)
    _check_bool_like("selected", selected, surface.shape)
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins: expected an int >= 1, got {bins!r}")
    if propensity not in PROPENSITIES:
        raise ValueError(f"propensity: expected one of {', '.join(PROPENSITIES)}, got {propensity!r}")
    if population is None:
        population = torch.ones_like(selected)
    else:
        _check_bool_like("population", population, surface.shape)
        if (selected & ~population).any():
            raise ValueError("population: expected every selected entry to be in the population, got some outside")
    bin_index = (surface * bins).long().clamp(0, bins - 1)
    selected_counts = torch.bincount(bin_index[selected], minlength=bins).to(surface.dtype)
    if propensity == "selection":
        totals = torch.bincount(bin_index[population], minlength=bins).to(surface.dtype)
    else:
        totals = selected_counts.sum().expand(bins)
    per_bin = selected_counts / totals.clamp(min=1)
    return per_bin[bin_index]


def inverse_propensity_weights(
    surface: torch.Tensor,
    selected: torch.Tensor,
    *,
    semantic: torch.Tensor | None = None,
    bins: int = 10,
    population: torch.Tensor | None = None,
    propensity: Propensity = "selection",
) -> torch.Tensor:
    """Sampling weights ``max(v, 0) / p(u)`` (positives) or ``1 / p(u)`` (negatives).

    ``p`` is :func:`propensity_scores`; entries that are not ``selected`` get
    weight 0. The weights are unnormalised (use them with ``torch.multinomial``).

    Args:
        surface: surface scores ``u`` in ``[0, 1]``.
        selected: bool, same shape: the eligible pairs.
        semantic: optional semantic scores ``v`` (same shape); ``None`` gives the
            negative weights ``1 / p(u)``.
        bins: histogram bins on ``[0, 1]`` (default 10).
        population: bool, same shape: the candidate pairs (default every entry).
        propensity: ``"selection"`` (default) or ``"density"``; see :func:`propensity_scores`.

    Returns:
        Non-negative weights, same shape as ``surface``.

    Example:
        >>> u = torch.tensor([[0.05, 0.15, 0.95, 0.96]])
        >>> v = torch.tensor([[0.5, 0.25, 0.75, 0.5]])
        >>> inverse_propensity_weights(u, torch.tensor([[True, False, True, True]]), semantic=v, bins=2).tolist()
        [[1.0, 0.0, 0.75, 0.5]]
    """
    probability = propensity_scores(surface, selected, bins=bins, population=population, propensity=propensity)
    if semantic is None:
        numerator = torch.ones_like(surface)
    else:
        if not isinstance(semantic, torch.Tensor) or semantic.shape != surface.shape:
            got = tuple(semantic.shape) if isinstance(semantic, torch.Tensor) else type(semantic).__name__
            raise ValueError(f"semantic: expected a tensor of shape {tuple(surface.shape)} (same as surface), got {got}")
        numerator = semantic.to(surface.dtype).clamp(min=0)
    # A selected entry always has p > 0 (its own bin holds it); the where keeps 0/0 out elsewhere.
    return torch.where(selected, numerator / probability.clamp(min=torch.finfo(surface.dtype).tiny), 0.0)


class DebiasedPairSampler:
    """Draws a positive and a hard negative for each anchor by inverse propensity weighting.

    See the module docstring for the scores, the propensity readings and the
    selection rules (a reconstruction of DebCSE, METHODS #32). For each anchor
    a pool of ``candidates`` other texts is drawn uniformly (all other texts when
    ``None``); the anchor itself is never a candidate, so it is never returned.

    Args:
        texts: the ``N >= 2`` sentences; each needs at least one word token.
        embeddings: ``[N, D]`` frozen-encoder embeddings of ``texts`` (cosine is
            used; they are copied, normalised and detached).
        bins: histogram bins of the propensity (default 10).
        positive_quantile: per-anchor quantile of ``v`` above which candidates
            are positives (default 0.9: the top 10 %).
        negative_quantile: per-anchor quantile of ``v`` below which candidates
            may be hard negatives (default 0.5).
        surface_quantile: among those low-``v`` candidates, the quantile of ``u``
            above which they are hard negatives (default 0.5).
        candidates: pool size per anchor (default 256; ``None``: all ``N - 1``
            others). Drawing the pool costs ``O(B * N)`` memory.
        jaccard_weight: ``lambda`` of the surface score (default 0.5).
        propensity: ``"selection"`` (default) or ``"density"``.

    Example:
        >>> texts = ["a cat sat", "a cat sat down", "dogs bark", "the dog barks", "rain falls"]
        >>> sampler = DebiasedPairSampler(texts, torch.randn(5, 8), candidates=None)
        >>> positives, negatives = sampler.sample(torch.tensor([0, 2]), torch.Generator().manual_seed(0))
        >>> positives.shape, negatives.shape
        (torch.Size([2]), torch.Size([2]))
    """

    def __init__(
        self,
        texts: list[str],
        embeddings: torch.Tensor,
        *,
        bins: int = 10,
        positive_quantile: float = 0.9,
        negative_quantile: float = 0.5,
        surface_quantile: float = 0.5,
        candidates: int | None = 256,
        jaccard_weight: float = 0.5,
        propensity: Propensity = "selection",
    ) -> None:
        if not isinstance(texts, (list, tuple)) or not all(isinstance(text, str) for text in texts):
            raise ValueError(f"texts: expected a list of str, got {type(texts).__name__}")
        if len(texts) < 2:
            raise ValueError(f"texts: expected at least 2 texts (an anchor and a candidate), got {len(texts)}")
        check_embeddings("embeddings", embeddings, min_rows=len(texts))
        if embeddings.shape[0] != len(texts):
            raise ValueError(
                f"embeddings: expected one row per text ({len(texts)}), got shape {tuple(embeddings.shape)}"
            )
        for name, value in (
            ("positive_quantile", positive_quantile),
            ("negative_quantile", negative_quantile),
            ("surface_quantile", surface_quantile),
            ("jaccard_weight", jaccard_weight),
        ):
            _check_unit_interval(name, value)
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise ValueError(f"bins: expected an int >= 1, got {bins!r}")
        if candidates is not None and (isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1):
            raise ValueError(f"candidates: expected an int >= 1 or None, got {candidates!r}")
        if propensity not in PROPENSITIES:
            raise ValueError(f"propensity: expected one of {', '.join(PROPENSITIES)}, got {propensity!r}")

        tokenized = [tokenize(text) for text in texts]
        empty = [index for index, tokens in enumerate(tokenized) if not tokens]
        if empty:
            raise ValueError(
                f"texts: expected every text to have at least one word token, got {len(empty)} without "
                f"(indices {empty[:10]})"
            )
        vocabulary: dict[str, int] = {}
        distinct = [sorted({vocabulary.setdefault(token, len(vocabulary)) for token in tokens}) for tokens in tokenized]
        width = max(len(ids) for ids in distinct)
        # Sorted distinct token ids per text, padded with a sentinel larger than every id, so that
        # searchsorted can intersect two rows and padding never matches a real token.
        self._sentinel = len(vocabulary)
        token_ids = torch.full((len(texts), width), self._sentinel, dtype=torch.long)
        for row, ids in enumerate(distinct):
            token_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        self._token_ids = token_ids
        self._distinct_counts = torch.tensor([len(ids) for ids in distinct], dtype=torch.long)
        self._lengths = torch.tensor([len(tokens) for tokens in tokenized], dtype=torch.long)
        self._embeddings = F.normalize(embeddings.detach().float().cpu(), dim=1)

        self.size = len(texts)
        self.bins = bins
        self.positive_quantile = float(positive_quantile)
        self.negative_quantile = float(negative_quantile)
        self.surface_quantile = float(surface_quantile)
        self.candidates = None if candidates is None or candidates >= self.size - 1 else int(candidates)
        self.jaccard_weight = float(jaccard_weight)
        self.propensity: Propensity = propensity

    def __len__(self) -> int:
        """Number of texts."""
        return self.size

    def _check_anchor_indices(self, anchor_indices: torch.Tensor) -> torch.Tensor:
        if not isinstance(anchor_indices, torch.Tensor) or anchor_indices.dim() != 1:
            got = tuple(anchor_indices.shape) if isinstance(anchor_indices, torch.Tensor) else type(anchor_indices).__name__
            raise ValueError(f"anchor_indices: expected an integer tensor of shape [B], got {got}")
        if anchor_indices.is_floating_point() or anchor_indices.is_complex() or anchor_indices.dtype == torch.bool:
            raise ValueError(f"anchor_indices: expected integer indices, got dtype {anchor_indices.dtype}")
        if anchor_indices.numel() == 0:
            raise ValueError("anchor_indices: expected at least one anchor, got 0")
        if int(anchor_indices.min()) < 0 or int(anchor_indices.max()) >= self.size:
            raise ValueError(
                f"anchor_indices: expected indices in [0, {self.size}), got values in "
                f"[{int(anchor_indices.min())}, {int(anchor_indices.max())}]"
            )
        return anchor_indices.long().cpu()

    def _check_candidate_indices(self, candidate_indices: torch.Tensor, rows: int) -> torch.Tensor:
        if not isinstance(candidate_indices, torch.Tensor) or candidate_indices.dim() != 2 or candidate_indices.shape[0] != rows:
            got = tuple(candidate_indices.shape) if isinstance(candidate_indices, torch.Tensor) else type(candidate_indices).__name__
            raise ValueError(f"candidate_indices: expected an integer tensor of shape [{rows}, C], got {got}")
        if candidate_indices.is_floating_point() or candidate_indices.dtype == torch.bool:
            raise ValueError(f"candidate_indices: expected integer indices, got dtype {candidate_indices.dtype}")
        if candidate_indices.numel() and (int(candidate_indices.min()) < 0 or int(candidate_indices.max()) >= self.size):
            raise ValueError(f"candidate_indices: expected indices in [0, {self.size}), got values outside it")
        return candidate_indices.long().cpu()

    def candidate_pool(self, anchor_indices: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[B, C]`` candidate indices per anchor, drawn uniformly without replacement, never the anchor.

        ``C = candidates``, or all ``N - 1`` other texts when ``candidates`` is
        ``None`` or at least ``N - 1``.
        """
        anchors = self._check_anchor_indices(anchor_indices)
        rows, others = anchors.shape[0], self.size - 1
        if self.candidates is None:
            offsets = torch.arange(others).expand(rows, others)
        else:
            offsets = torch.rand(rows, others, generator=generator).topk(self.candidates, dim=1).indices
        # Offsets index the N - 1 texts other than the anchor: skip the anchor's own index.
        return offsets + (offsets >= anchors.unsqueeze(1)).long()

    def surface_scores(self, anchor_indices: torch.Tensor, candidate_indices: torch.Tensor) -> torch.Tensor:
        """``u`` for every (anchor ``b``, candidate ``candidate_indices[b, c]``) pair, ``[B, C]``.

        Batched: the distinct-token intersection of two texts is counted with
        ``searchsorted`` on their sorted token ids, in blocks of pairs.
        """
        anchors = self._check_anchor_indices(anchor_indices)
        candidates = self._check_candidate_indices(candidate_indices, anchors.shape[0])
        rows, columns = candidates.shape
        pair_anchor = anchors.unsqueeze(1).expand(rows, columns).reshape(-1)
        pair_candidate = candidates.reshape(-1)
        width = self._token_ids.shape[1]
        block = max(1, _PAIRS_PER_BLOCK_ELEMENTS // width)
        intersections = torch.empty(pair_anchor.shape[0], dtype=torch.long)
        for start in range(0, pair_anchor.shape[0], block):
            left = self._token_ids[pair_anchor[start : start + block]]
            right = self._token_ids[pair_candidate[start : start + block]]
            position = torch.searchsorted(right, left).clamp(max=width - 1)
            found = (right.gather(1, position) == left) & (left != self._sentinel)
            intersections[start : start + block] = found.sum(dim=1)
        union = self._distinct_counts[pair_anchor] + self._distinct_counts[pair_candidate] - intersections
        jaccard = intersections.double() / union.double()
        length_a, length_c = self._lengths[pair_anchor].double(), self._lengths[pair_candidate].double()
        ratio = torch.minimum(length_a, length_c) / torch.maximum(length_a, length_c)
        surface = self.jaccard_weight * jaccard + (1.0 - self.jaccard_weight) * ratio
        return surface.float().clamp(0.0, 1.0).view(rows, columns)

    def semantic_scores(self, anchor_indices: torch.Tensor, candidate_indices: torch.Tensor) -> torch.Tensor:
        """``v`` (cosine of the frozen embeddings) for every pair, ``[B, C]``."""
        anchors = self._check_anchor_indices(anchor_indices)
        candidates = self._check_candidate_indices(candidate_indices, anchors.shape[0])
        return torch.einsum("bd,bcd->bc", self._embeddings[anchors], self._embeddings[candidates])

    def eligibility(self, surface: torch.Tensor, semantic: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-anchor selection rules: bool ``[B, C]`` masks of eligible positives and hard negatives.

        Every row has at least one of each (a quantile of a non-empty row is
        attained by one of its entries).
        """
        positive_threshold = torch.quantile(semantic, self.positive_quantile, dim=1, keepdim=True)
        positives = semantic >= positive_threshold
        low = semantic <= torch.quantile(semantic, self.negative_quantile, dim=1, keepdim=True)
        surface_of_low = torch.where(low, surface, torch.full_like(surface, float("nan")))
        surface_threshold = torch.nanquantile(surface_of_low, self.surface_quantile, dim=1, keepdim=True)
        negatives = low & (surface >= surface_threshold)
        return positives, negatives

    def sample(
        self, anchor_indices: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One positive and one hard negative per anchor.

        Args:
            anchor_indices: ``[B]`` indices of the anchors in ``texts``.
            generator: optional ``torch.Generator`` (CPU) for the pool and the draws.

        Returns:
            ``(positive_indices [B], negative_indices [B])``, int64 indices into
            ``texts``, never the anchor itself.

        Raises:
            ValueError: on indices that are not ``[B]`` integers in ``[0, N)``.
        """
        anchors = self._check_anchor_indices(anchor_indices)
        pool = self.candidate_pool(anchors, generator)
        surface = self.surface_scores(anchors, pool)
        semantic = self.semantic_scores(anchors, pool)
        eligible_positive, eligible_negative = self.eligibility(surface, semantic)
        options = {"bins": self.bins, "propensity": self.propensity}
        positive_weights = inverse_propensity_weights(surface, eligible_positive, semantic=semantic, **options)
        negative_weights = inverse_propensity_weights(surface, eligible_negative, **options)
        # A row whose eligible positives all have v <= 0 has zero weights: draw uniformly among them.
        empty = positive_weights.sum(dim=1, keepdim=True) == 0
        positive_weights = torch.where(empty, eligible_positive.float(), positive_weights)
        positive_choice = torch.multinomial(positive_weights, 1, generator=generator)
        negative_choice = torch.multinomial(negative_weights, 1, generator=generator)
        return pool.gather(1, positive_choice).squeeze(1), pool.gather(1, negative_choice).squeeze(1)

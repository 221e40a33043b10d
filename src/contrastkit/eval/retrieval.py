"""Retrieval metrics with trec_eval conventions (BEIR protocol) and MAP@R for clone search.

Two paths compute the same numbers:

* :func:`evaluate_run` scores a run (query id -> {doc id: score}) against graded qrels with
  the maintained trec_eval port ``pytrec_eval`` and the BEIR conventions of Kamalloo et
  al., "Resources for Brewing BEIR" (SIGIR 2023):

  - ``ndcg@k`` is trec_eval's ``ndcg_cut.k``: linear gain ``g = grade`` (not ``2^grade - 1``),
    ``DCG@k = sum_{r<=k} g(rel_r) / log2(r + 1)``, the ideal DCG uses all judged documents
    of the query; unjudged and negatively graded documents gain 0.
  - ``recall@k``, ``precision@k`` (trec ``P.k``, divides by ``k``), ``map`` and ``map@k``
    (trec ``map_cut.k``, divides by the number of relevant documents): relevant means
    ``grade > 0``.
  - ``mrr@k``: each query's ranking is cut to its top ``k`` before trec's ``recip_rank``,
    as BEIR does.
  - Every query of the qrels counts (trec_eval ``-c``): a query absent from the run, with
    an empty ranking, or without any relevant document scores 0. Run queries absent from
    the qrels are ignored.
  - Ties: trec_eval orders a ranking by score descending, then by doc id descending
    (string order), whatever order the run lists documents in. Scores are compared as
    float64.
  - ``remove_self_hits=True`` drops retrieved documents whose id equals the query id
    (Pyserini's ``--remove-query``; matters for ArguAna and Quora).

* :func:`ranking_metrics` computes the same metrics from dense ``[Q, N]`` score and
  relevance matrices with torch (for monitoring during training). Columns play the role
  of doc ids: ties are broken towards the higher column index, which is trec_eval's
  "doc id descending" when the columns are ordered by doc id ascending.

:func:`dense_run` builds a run by exact chunked top-k search, and :func:`map_at_r` is the
MAP@R of Musgrave et al., "A Metric Learning Reality Check" (ECCV 2020), the metric of
POJ-104 code-clone retrieval (METHODS #15).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, overload

import torch
import torch.nn.functional as F

from contrastkit.utils.checks import check_embeddings

try:
    import pytrec_eval
except ImportError:  # torch paths stay usable; evaluate_run raises a clear error
    pytrec_eval = None

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]

SUPPORTED_METRICS = "ndcg@k, recall@k, mrr@k, precision@k, map, map@k (k a positive integer)"
DEFAULT_METRICS = ("ndcg@10", "recall@100", "mrr@10", "map")

_METRIC_PATTERN = re.compile(r"^(ndcg|recall|mrr|precision|map)(?:@(-?\d+))?$")
# trec_eval measure family for each metric family (mrr is computed on truncated rankings).
_TREC_FAMILY = {"ndcg": "ndcg_cut", "recall": "recall", "precision": "P", "map": "map_cut", "mrr": "recip_rank"}


@dataclass(frozen=True)
class _Metric:
    name: str  # as the caller wrote it (the key of the result)
    family: str  # ndcg | recall | mrr | precision | map
    cutoff: int | None  # None only for full-ranking "map"


def _parse_metric(name: str) -> _Metric:
    if not isinstance(name, str):
        raise ValueError(f"metric: expected a name like 'ndcg@10', got {type(name).__name__}")
    match = _METRIC_PATTERN.match(name.strip().lower())
    if match is None:
        raise ValueError(f"unknown retrieval metric {name!r}; supported forms: {SUPPORTED_METRICS}")
    family, cutoff_text = match.groups()
    if cutoff_text is None:
        if family != "map":
            raise ValueError(f"metric {name!r} needs a cutoff: expected '{family}@k' with k >= 1")
        return _Metric(name, family, None)
    cutoff = int(cutoff_text)
    if cutoff < 1:
        raise ValueError(f"metric {name!r}: expected a cutoff k >= 1, got {cutoff}")
    return _Metric(name, family, cutoff)


def _parse_metrics(metrics: Sequence[str]) -> list[_Metric]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    parsed = [_parse_metric(name) for name in metrics]
    if not parsed:
        raise ValueError(f"metrics: expected at least one name ({SUPPORTED_METRICS}), got none")
    return parsed


def _check_qrels(qrels: Qrels) -> dict[str, dict[str, int]]:
    if not isinstance(qrels, dict) or not qrels:
        raise ValueError("qrels: expected a non-empty dict {query id: {doc id: grade}}, got " + repr(qrels)[:80])
    clean: dict[str, dict[str, int]] = {}
    for query_id, judgments in qrels.items():
        if not isinstance(judgments, dict):
            raise ValueError(f"qrels[{query_id!r}]: expected a dict {{doc id: grade}}, got {type(judgments).__name__}")
        row: dict[str, int] = {}
        for doc_id, grade in judgments.items():
            try:
                value = float(grade)
            except (TypeError, ValueError):
                value = math.nan
            if not value.is_integer():
                raise ValueError(f"qrels[{query_id!r}][{doc_id!r}]: expected an integer grade, got {grade!r}")
            row[str(doc_id)] = int(value)
        clean[str(query_id)] = row
    return clean


def _check_run(run: Run, *, remove_self_hits: bool) -> dict[str, dict[str, float]]:
    if not isinstance(run, dict):
        raise ValueError(f"run: expected a dict {{query id: {{doc id: score}}}}, got {type(run).__name__}")
    clean: dict[str, dict[str, float]] = {}
    for query_id, hits in run.items():
        if not isinstance(hits, dict):
            raise ValueError(f"run[{query_id!r}]: expected a dict {{doc id: score}}, got {type(hits).__name__}")
        query_id = str(query_id)
        row: dict[str, float] = {}
        for doc_id, score in hits.items():
            doc_id = str(doc_id)
            if remove_self_hits and doc_id == query_id:
                continue
            value = float(score)
            if not math.isfinite(value):
                raise ValueError(f"run[{query_id!r}][{doc_id!r}]: expected a finite score, got {score!r}")
            row[doc_id] = value
        clean[query_id] = row
    return clean


def _trec_order(hits: dict[str, float]) -> list[tuple[str, float]]:
    """A ranking in trec_eval's order: score descending, then doc id descending."""
    return sorted(hits.items(), key=lambda item: (item[1], item[0]), reverse=True)


@overload
def evaluate_run(
    qrels: Qrels,
    run: Run,
    *,
    metrics: Sequence[str] = ...,
    remove_self_hits: bool = ...,
    per_query: Literal[False] = ...,
) -> dict[str, float]: ...


@overload
def evaluate_run(
    qrels: Qrels, run: Run, *, metrics: Sequence[str] = ..., remove_self_hits: bool = ..., per_query: Literal[True]
) -> dict[str, dict[str, float]]: ...


def evaluate_run(
    qrels: Qrels,
    run: Run,
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    remove_self_hits: bool = False,
    per_query: bool = False,
) -> dict[str, float] | dict[str, dict[str, float]]:
    """Score a run against graded qrels with ``pytrec_eval`` and the BEIR conventions.

    See the module docstring for the exact definitions (linear-gain nDCG, relevant means
    ``grade > 0``, every qrels query counts, ties by score then doc id descending).

    Args:
        qrels: ``{query id: {doc id: integer grade}}``; must not be empty. Grade 0 (or
            negative) documents are judged non-relevant.
        run: ``{query id: {doc id: score}}``, higher is better (usually the top 1000).
        metrics: names among ``ndcg@k``, ``recall@k``, ``mrr@k``, ``precision@k``,
            ``map`` and ``map@k``.
        remove_self_hits: drop retrieved documents whose id equals the query id.
        per_query: return ``{query id: {metric: value}}`` for every qrels query instead of
            the means.

    Returns:
        ``{metric name: mean over all qrels queries}`` with exactly the requested names as
        keys (plain floats), or the per-query table when ``per_query=True``.

    Raises:
        ValueError: empty qrels, a non-integer grade, a non-finite score or an unknown
            metric name.
        ImportError: ``pytrec_eval`` is missing (install ``contrastkit[text]``).

    Example:
        >>> qrels = {"q1": {"d1": 1}}
        >>> evaluate_run(qrels, {"q1": {"d1": 0.2, "d2": 0.9}}, metrics=["mrr@10"])
        {'mrr@10': 0.5}
    """
    parsed = _parse_metrics(metrics)
    clean_qrels = _check_qrels(qrels)
    clean_run = _check_run(run, remove_self_hits=remove_self_hits)
    if pytrec_eval is None:
        raise ImportError(
            "evaluate_run needs pytrec_eval (package 'pytrec-eval-terrier'); install the text extra: "
            "pip install 'contrastkit[text]'"
        )
    # trec_eval silently skips queries absent from the run, and run queries unknown to the
    # qrels are irrelevant: evaluate only the overlap and fill the rest with 0 afterwards.
    judged_run = {query_id: hits for query_id, hits in clean_run.items() if query_id in clean_qrels and hits}

    values: dict[str, dict[str, float]] = {query_id: {} for query_id in clean_qrels}
    cutoffs: dict[str, set[int]] = {}
    for metric in parsed:
        if metric.family != "mrr" and metric.cutoff is not None:
            cutoffs.setdefault(_TREC_FAMILY[metric.family], set()).add(metric.cutoff)
    measures = {f"{family}.{','.join(map(str, sorted(ks)))}" for family, ks in cutoffs.items()}
    if any(metric.family == "map" and metric.cutoff is None for metric in parsed):
        measures.add("map")
    trec_results: dict[str, dict[str, float]] = {}
    if measures and judged_run:
        trec_results = pytrec_eval.RelevanceEvaluator(clean_qrels, measures).evaluate(judged_run)
    reciprocal_ranks: dict[int, dict[str, dict[str, float]]] = {}
    for k in sorted({metric.cutoff for metric in parsed if metric.family == "mrr"}):  # type: ignore[type-var]
        truncated = {query_id: dict(_trec_order(hits)[:k]) for query_id, hits in judged_run.items()}
        evaluator = pytrec_eval.RelevanceEvaluator(clean_qrels, {"recip_rank"})
        reciprocal_ranks[k] = evaluator.evaluate(truncated) if truncated else {}

    for metric in parsed:
        for query_id in clean_qrels:
            if metric.family == "mrr":
                measured = reciprocal_ranks[metric.cutoff].get(query_id, {})  # type: ignore[index]
                key = "recip_rank"
            else:
                measured = trec_results.get(query_id, {})
                family = _TREC_FAMILY[metric.family]
                key = "map" if metric.cutoff is None else f"{family}_{metric.cutoff}"
            values[query_id][metric.name] = float(measured.get(key, 0.0))
    if per_query:
        return values
    count = len(clean_qrels)
    return {metric.name: sum(values[query_id][metric.name] for query_id in clean_qrels) / count for metric in parsed}


def _check_matrix(name: str, tensor: torch.Tensor) -> None:
    if not isinstance(tensor, torch.Tensor) or tensor.dim() != 2:
        shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise ValueError(f"{name}: expected a tensor of shape [Q, N], got {shape}")
    if tensor.shape[0] < 1 or tensor.shape[1] < 1:
        raise ValueError(f"{name}: expected at least one query and one document, got shape {tuple(tensor.shape)}")
    if tensor.is_complex() or (tensor.is_floating_point() and not torch.isfinite(tensor).all()):
        raise ValueError(f"{name}: expected finite real values, got NaN/inf or complex entries")


def _ranked_columns(scores: torch.Tensor, depth: int) -> torch.Tensor:
    """The ``depth`` best columns of each row, in trec order: score descending, then column descending.

    ``torch.topk`` alone picks arbitrarily among tied scores at the cut, so the cut is made
    exactly: every column above the ``depth``-th largest score is kept, and among columns tied
    with it the ones with the highest index fill the remaining places.
    """
    rows = scores.shape[0]
    threshold = scores.topk(depth, dim=1).values[:, -1:]
    above = scores > threshold
    tied = scores == threshold
    places_left = depth - above.sum(dim=1, keepdim=True)
    tied_from_right = tied.flip(1).cumsum(dim=1).flip(1)  # tied columns at this index or higher
    keep = above | (tied & (tied_from_right <= places_left))
    columns = keep.nonzero()[:, 1].view(rows, depth).flip(1)  # column index descending
    # A stable descending sort keeps tied scores in that (descending column) order.
    order = scores.gather(1, columns).argsort(dim=1, descending=True, stable=True)
    return columns.gather(1, order)


def _expand_metrics(metrics: Sequence[str], ks: Sequence[int]) -> list[_Metric]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"ks: expected positive integers, got {list(ks)}")
    names: list[str] = []
    for name in metrics:
        bare = name.strip().lower() if isinstance(name, str) else name
        if bare in ("ndcg", "recall", "mrr", "precision"):
            names.extend(f"{bare}@{k}" for k in ks)
        else:
            names.append(name)
    return _parse_metrics(names)


def _per_query_metrics(
    scores: torch.Tensor, relevance: torch.Tensor, metrics: list[_Metric]
) -> dict[str, torch.Tensor]:
    """Per-query values ``[Q]`` (float64) of every metric for one block of rows."""
    num_docs = scores.shape[1]
    needs_full = any(metric.family == "map" and metric.cutoff is None for metric in metrics)
    depth = num_docs if needs_full else min(num_docs, max(metric.cutoff for metric in metrics))  # type: ignore[type-var]
    columns = _ranked_columns(scores, depth)
    ranked_grade = relevance.gather(1, columns).double()
    ranked_gain = ranked_grade.clamp(min=0)  # trec_eval: negative grades gain nothing
    ranked_relevant = (ranked_grade > 0).double()
    num_relevant = (relevance > 0).sum(dim=1).double()
    safe_num_relevant = num_relevant.clamp(min=1)  # queries without relevant docs score 0
    positions = torch.arange(1, depth + 1, dtype=torch.float64, device=scores.device)
    discounts = 1.0 / torch.log2(positions + 1)
    hits_so_far = ranked_relevant.cumsum(dim=1)
    precision_terms = hits_so_far / positions * ranked_relevant  # P@i at each relevant rank i

    ideal_gain: torch.Tensor | None = None
    out: dict[str, torch.Tensor] = {}
    for metric in metrics:
        k = min(metric.cutoff, depth) if metric.cutoff is not None else depth
        if metric.family == "ndcg":
            if ideal_gain is None:
                ideal_gain = relevance.double().clamp(min=0).sort(dim=1, descending=True).values[:, :depth]
            dcg = (ranked_gain[:, :k] * discounts[:k]).sum(dim=1)
            ideal = (ideal_gain[:, :k] * discounts[:k]).sum(dim=1)
            out[metric.name] = torch.where(ideal > 0, dcg / ideal.clamp(min=1e-300), torch.zeros_like(dcg))
        elif metric.family == "recall":
            out[metric.name] = ranked_relevant[:, :k].sum(dim=1) / safe_num_relevant
        elif metric.family == "precision":
            out[metric.name] = ranked_relevant[:, :k].sum(dim=1) / metric.cutoff  # trec P.k divides by k
        elif metric.family == "mrr":
            first = torch.where(ranked_relevant[:, :k] > 0, positions[:k], math.inf).min(dim=1).values
            out[metric.name] = 1.0 / first  # 1 / inf = 0 when no relevant doc is in the top k
        else:  # map and map@k: trec divides by all relevant docs, not by min(k, R)
            out[metric.name] = precision_terms[:, :k].sum(dim=1) / safe_num_relevant
    return out


def ranking_metrics(
    scores: torch.Tensor,
    relevance: torch.Tensor,
    *,
    ks: Sequence[int] = (10, 100),
    metrics: Sequence[str] = DEFAULT_METRICS,
    chunk_size: int = 1024,
) -> dict[str, float]:
    """Retrieval metrics from dense score and relevance matrices, in torch (training monitor).

    Each row is a query, each column a candidate document; ``relevance`` holds the graded
    judgments of every candidate (0 for non-relevant). The definitions are those of
    :func:`evaluate_run` (linear-gain nDCG with the ideal ordering of the row's grades,
    relevant means ``grade > 0``, trec ``P.k`` and ``map_cut.k``), so the two agree when the
    run lists every column with its score and the qrels list every graded column.

    Ties are broken towards the higher column index (trec_eval's "doc id descending" when
    columns are sorted by doc id ascending), exactly at the top-k cut as well.

    Args:
        scores: ``[Q, N]`` similarity scores, higher is better; finite.
        relevance: ``[Q, N]`` graded relevance (int or float).
        ks: the cutoffs used for metric names given without ``@k`` (``"ndcg"``,
            ``"recall"``, ``"mrr"``, ``"precision"`` expand to one metric per ``k``).
        metrics: names as in :func:`evaluate_run`, or bare family names (see ``ks``).
        chunk_size: query rows per block (memory is a few ``chunk_size x N`` tensors).

    Returns:
        ``{metric name: mean over the Q queries}`` as plain floats.

    Example:
        >>> scores = torch.tensor([[0.9, 0.1, 0.5]])
        >>> ranking_metrics(scores, torch.tensor([[0, 1, 0]]), metrics=["mrr@10"])
        {'mrr@10': 0.3333333333333333}
    """
    _check_matrix("scores", scores)
    _check_matrix("relevance", relevance)
    if scores.shape != relevance.shape:
        raise ValueError(f"relevance: expected the shape of scores {tuple(scores.shape)}, got {tuple(relevance.shape)}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size: expected a positive integer, got {chunk_size}")
    parsed = _expand_metrics(metrics, ks)
    scores = scores.detach()
    relevance = relevance.detach().to(scores.device)
    totals = {metric.name: 0.0 for metric in parsed}
    for start in range(0, scores.shape[0], chunk_size):
        block = _per_query_metrics(scores[start : start + chunk_size], relevance[start : start + chunk_size], parsed)
        for name, values in block.items():
            totals[name] += float(values.sum())
    return {name: total / scores.shape[0] for name, total in totals.items()}


def check_ids(name: str, ids: Sequence[str], rows: int) -> list[str]:
    """``ids`` as strings, one per embedding row and unique (``ValueError`` otherwise)."""
    if isinstance(ids, str):
        raise ValueError(f"{name}: expected a list of string ids, got a single string")
    ids = [str(identifier) for identifier in ids]
    if len(ids) != rows:
        raise ValueError(f"{name}: expected {rows} ids (one per embedding row), got {len(ids)}")
    seen: set[str] = set()
    for identifier in ids:
        if identifier in seen:
            raise ValueError(f"{name}: expected unique ids, got {identifier!r} more than once")
        seen.add(identifier)
    return ids


def dense_run(
    query_embeddings: torch.Tensor,
    doc_embeddings: torch.Tensor,
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    *,
    k: int = 1000,
    chunk_size: int = 1024,
    normalize: bool = True,
) -> Run:
    """Exact top-``k`` dense retrieval as a run, computed in blocks of query rows.

    The score is the cosine similarity (``normalize=True``) or the raw dot product. Memory
    is ``chunk_size x N`` scores at a time. Among documents tied at the cut, ``torch.topk``
    decides which ones are kept; :func:`evaluate_run` re-orders the kept ones in trec order.

    Args:
        query_embeddings: ``[Q, D]`` query embeddings.
        doc_embeddings: ``[N, D]`` document embeddings.
        query_ids: ``Q`` unique query ids.
        doc_ids: ``N`` unique document ids.
        k: documents per query (BEIR: 1000); capped at ``N``.
        chunk_size: query rows per block.
        normalize: L2-normalise both sides first (cosine similarity).

    Returns:
        ``{query id: {doc id: score}}`` with ``min(k, N)`` documents per query.

    Example:
        >>> run = dense_run(torch.eye(2), torch.eye(2), ["q1", "q2"], ["d1", "d2"], k=1)
        >>> run["q2"]
        {'d2': 1.0}
    """
    check_embeddings("doc_embeddings", doc_embeddings)
    check_embeddings("query_embeddings", query_embeddings, dim=doc_embeddings.shape[1], min_rows=0)
    query_ids = check_ids("query_ids", query_ids, query_embeddings.shape[0])
    doc_ids = check_ids("doc_ids", doc_ids, doc_embeddings.shape[0])
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k: expected a positive integer, got {k!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size: expected a positive integer, got {chunk_size}")
    docs = doc_embeddings.detach().float()
    queries = query_embeddings.detach().float().to(docs.device)
    if normalize:
        docs = F.normalize(docs, dim=1)
        queries = F.normalize(queries, dim=1)
    depth = min(k, docs.shape[0])
    run: Run = {}
    for start in range(0, queries.shape[0], chunk_size):
        top = (queries[start : start + chunk_size] @ docs.T).topk(depth, dim=1)
        for offset, (row_scores, row_columns) in enumerate(zip(top.values.tolist(), top.indices.tolist())):
            run[query_ids[start + offset]] = {doc_ids[column]: score for column, score in zip(row_columns, row_scores)}
    return run


def map_at_r(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    *,
    normalize: bool = True,
    chunk_size: int = 1024,
) -> float:
    """MAP@R (Musgrave et al., "A Metric Learning Reality Check", ECCV 2020), as on POJ-104.

    Every item queries all the *other* items, ranked by cosine similarity (dot product when
    ``normalize=False``). With ``R`` the number of other items sharing its label,

        AP@R = (1 / R) * sum_{i=1..R} P@i * rel_i,

    where ``rel_i`` says whether the ``i``-th ranked item has the query's label and ``P@i`` is
    the precision of the first ``i``. MAP@R is the mean over items; items with ``R = 0`` (a
    label seen once) are skipped, as in pytorch-metric-learning. Ties are broken by
    ``torch.topk``.

    Args:
        embeddings: ``[N, D]`` item embeddings.
        labels: ``[N]`` integer class labels (one class = one program and its clones).
        normalize: L2-normalise first (cosine similarity).
        chunk_size: query rows per block (memory is ``chunk_size x N``).

    Returns:
        MAP@R in ``[0, 1]`` as a float.

    Raises:
        ValueError: bad shapes, or no label occurs at least twice.

    Example:
        >>> embeddings = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> map_at_r(embeddings, torch.tensor([0, 0, 1, 1]))
        1.0
    """
    check_embeddings("embeddings", embeddings)
    rows = embeddings.shape[0]
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.shape[0] != rows:
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels: expected integer labels of shape [{rows}], got {shape}")
    if labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"labels: expected integer labels, got dtype {labels.dtype}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size: expected a positive integer, got {chunk_size}")
    features = embeddings.detach().float()
    if normalize:
        features = F.normalize(features, dim=1)
    labels = labels.to(features.device)
    _, inverse, counts = labels.unique(return_inverse=True, return_counts=True)
    others_with_label = counts[inverse] - 1  # R per item
    if int(others_with_label.max()) == 0:
        raise ValueError("map_at_r: expected at least one label shared by two items, got all labels distinct")

    total = 0.0
    for start in range(0, rows, chunk_size):
        stop = min(start + chunk_size, rows)
        block_r = others_with_label[start:stop]
        depth = int(block_r.max())
        if depth == 0:
            continue
        similarity = features[start:stop] @ features.T
        own = torch.arange(start, stop, device=features.device)
        similarity[torch.arange(stop - start, device=features.device), own] = -math.inf  # never retrieve itself
        neighbours = similarity.topk(depth, dim=1).indices
        relevant = (labels[neighbours] == labels[start:stop, None]).double()
        positions = torch.arange(1, depth + 1, dtype=torch.float64, device=features.device)
        within_r = positions[None, :] <= block_r[:, None]
        precision_terms = relevant.cumsum(dim=1) / positions * relevant * within_r
        scored = block_r > 0
        total += float((precision_terms.sum(dim=1)[scored] / block_r[scored].double()).sum())
    return total / int((others_with_label > 0).sum())

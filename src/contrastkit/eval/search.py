"""Exact and approximate dense search over string ids with faiss, saved and loaded atomically.

:class:`DenseIndex` wraps three faiss index kinds:

* ``"flat"`` — exact search (``IndexFlatIP`` / ``IndexFlatL2``);
* ``"hnsw"`` — a graph index (``IndexHNSWFlat``, Malkov & Yashunin 2018), ``hnsw_m`` links
  per node; the search beam ``ef_search`` is raised to ``k`` when ``k`` is larger;
* ``"ivf"`` — inverted lists over a k-means coarse quantiser (``IndexIVFFlat``),
  ``ivf_lists`` lists (default ``~sqrt(N)``), ``ivf_nprobe`` lists visited per query.

Scores are always "higher is better": the inner product for ``metric="ip"`` (the cosine
similarity when ``normalize=True``) and the *negated* squared L2 distance for
``metric="l2"``. faiss threading is left as the user configured it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contrastkit.eval.retrieval import check_ids

try:
    import faiss
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "contrastkit.eval.search needs faiss (package 'faiss-cpu'); install the text extra: "
        "pip install 'contrastkit[text]'"
    ) from error

Run = dict[str, dict[str, float]]

KINDS = ("flat", "hnsw", "ivf")
METRICS = ("ip", "l2")
FORMAT = "contrastkit-dense-index"
FORMAT_VERSION = 1
INDEX_FILE, IDS_FILE, MANIFEST_FILE = "index.faiss", "ids.json", "manifest.json"



def _as_matrix(name: str, values: torch.Tensor | np.ndarray, *, dim: int | None = None) -> np.ndarray:
    """A C-contiguous float32 copy of ``values`` ``[N, D]``, checked (faiss needs this layout)."""
    if isinstance(values, torch.Tensor):
        array = values.detach().to("cpu", torch.float32).numpy()
    elif isinstance(values, np.ndarray):
        array = values
    else:
        raise ValueError(f"{name}: expected a torch.Tensor or numpy array of shape [N, D], got {type(values).__name__}")
    if array.ndim != 2:
        raise ValueError(f"{name}: expected shape [N, D], got {tuple(array.shape)}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{name}: expected real numbers, got dtype {array.dtype}")
    array = np.array(array, dtype=np.float32, order="C", copy=True)
    if dim is not None and array.shape[1] != dim:
        raise ValueError(f"{name}: expected dimension D={dim} (the index's), got shape {tuple(array.shape)}")
    if array.shape[1] < 1:
        raise ValueError(f"{name}: expected at least one feature column, got shape {tuple(array.shape)}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: expected finite values, got {int((~np.isfinite(array)).sum())} NaN/inf entries")
    return array


def _check_positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


class DenseIndex:
    """A faiss index whose rows carry string ids.

    Build one with :meth:`build`, query it with :meth:`search` or :meth:`to_run`, persist it
    with :meth:`save` / :meth:`load`.

    Example:
        >>> index = DenseIndex.build(torch.eye(3), ["a", "b", "c"])
        >>> scores, ids = index.search(torch.tensor([[0.0, 1.0, 0.1]]), k=2)
        >>> ids
        [['b', 'c']]
    """

    def __init__(
        self,
        index: Any,
        ids: Sequence[str],
        *,
        kind: str,
        metric: str,
        normalize: bool,
        settings: dict[str, Any] | None = None,
    ) -> None:
        """Wrap an already filled faiss ``index``; prefer :meth:`build` or :meth:`load`."""
        if kind not in KINDS:
            raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
        if metric not in METRICS:
            raise ValueError(f"metric: expected one of {', '.join(METRICS)}, got {metric!r}")
        self.index = index
        self._ids = check_ids("ids", ids, int(index.ntotal))
        if not self._ids:
            raise ValueError("index: expected at least one vector, got an empty index")
        self.kind = kind
        self.metric = metric
        self.normalize = bool(normalize)
        self.settings = dict(settings or {})

    @classmethod
    def build(
        cls,
        embeddings: torch.Tensor | np.ndarray,
        ids: Sequence[str],
        *,
        kind: str = "flat",
        metric: str = "ip",
        normalize: bool = True,
        hnsw_m: int = 32,
        hnsw_ef_construction: int = 40,
        hnsw_ef_search: int = 64,
        ivf_lists: int | None = None,
        ivf_nprobe: int | None = None,
        seed: int = 0,
    ) -> DenseIndex:
        """Index ``embeddings`` ``[N, D]`` under ``ids``.

        Args:
            embeddings: ``[N, D]`` vectors (torch or numpy), ``N >= 1``.
            ids: ``N`` unique string ids, row ``i`` is ``ids[i]``.
            kind: ``"flat"`` (exact), ``"hnsw"`` or ``"ivf"`` (approximate).
            metric: ``"ip"`` (inner product) or ``"l2"`` (Euclidean).
            normalize: L2-normalise the vectors (and later the queries): with ``"ip"`` the
                score is the cosine similarity.
            hnsw_m: HNSW links per node (faiss default 32).
            hnsw_ef_construction: HNSW build beam width (faiss default 40).
            hnsw_ef_search: HNSW search beam width (raised to ``k`` when smaller).
            ivf_lists: IVF inverted lists; default ``round(sqrt(N))``, capped at ``N``.
            ivf_nprobe: IVF lists visited per query; default ``ceil(sqrt(ivf_lists))``.
            seed: seed of the IVF k-means (the only random step).

        Raises:
            ValueError: an empty or non-finite matrix, ids that do not match the rows or
                repeat, an unknown kind or metric, a non-positive setting.
        """
        if kind not in KINDS:
            raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
        if metric not in METRICS:
            raise ValueError(f"metric: expected one of {', '.join(METRICS)}, got {metric!r}")
        vectors = _as_matrix("embeddings", embeddings)
        count, dim = vectors.shape
        if count == 0:
            raise ValueError(f"embeddings: expected at least one row to index, got shape {tuple(vectors.shape)}")
        ids = check_ids("ids", ids, count)
        if normalize:
            faiss.normalize_L2(vectors)
        faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2
        settings: dict[str, Any] = {}
        if kind == "flat":
            index = faiss.IndexFlatIP(dim) if metric == "ip" else faiss.IndexFlatL2(dim)
        elif kind == "hnsw":
            settings = {
                "hnsw_m": _check_positive("hnsw_m", hnsw_m),
                "hnsw_ef_construction": _check_positive("hnsw_ef_construction", hnsw_ef_construction),
                "hnsw_ef_search": _check_positive("hnsw_ef_search", hnsw_ef_search),
            }
            index = faiss.IndexHNSWFlat(dim, settings["hnsw_m"], faiss_metric)
            index.hnsw.efConstruction = settings["hnsw_ef_construction"]
            index.hnsw.efSearch = settings["hnsw_ef_search"]
        else:
            lists = round(math.sqrt(count)) if ivf_lists is None else _check_positive("ivf_lists", ivf_lists)
            lists = max(1, min(lists, count))
            nprobe = math.ceil(math.sqrt(lists)) if ivf_nprobe is None else _check_positive("ivf_nprobe", ivf_nprobe)
            settings = {"ivf_lists": lists, "ivf_nprobe": min(nprobe, lists)}
            quantizer = faiss.IndexFlatIP(dim) if metric == "ip" else faiss.IndexFlatL2(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, lists, faiss_metric)
            index.cp.seed = int(seed)
            index.train(vectors)
            index.nprobe = settings["ivf_nprobe"]
        index.add(vectors)
        return cls(index, ids, kind=kind, metric=metric, normalize=normalize, settings=settings)

    @property
    def dim(self) -> int:
        """The vector dimension ``D``."""
        return int(self.index.d)

    @property
    def ids(self) -> list[str]:
        """The row ids, in row order (a copy)."""
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def search(self, queries: torch.Tensor | np.ndarray, k: int) -> tuple[np.ndarray, list[list[str]]]:
        """The ``k`` best rows for each query.

        Args:
            queries: ``[Q, D]`` query vectors (normalised here when the index normalises).
            k: results per query; capped at the index size.

        Returns:
            ``(scores, ids)``: ``scores`` float32 ``[Q, min(k, N)]``, best first, higher is
            better (negated squared distance for ``"l2"``); ``ids[q]`` the matching row ids.
            Approximate kinds may find fewer than ``k`` rows: those ids are left out and
            their scores are ``-inf``.
        """
        k = _check_positive("k", k)
        vectors = _as_matrix("queries", queries, dim=self.dim)
        depth = min(k, len(self._ids))
        if vectors.shape[0] == 0:
            return np.zeros((0, depth), dtype=np.float32), []
        if self.normalize:
            faiss.normalize_L2(vectors)
        if self.kind == "hnsw":
            beam = max(int(self.settings.get("hnsw_ef_search", 16)), depth)
            values, rows = self.index.search(vectors, depth, params=faiss.SearchParametersHNSW(efSearch=beam))
        else:
            values, rows = self.index.search(vectors, depth)
        scores = values if self.metric == "ip" else -values
        scores = np.where(rows >= 0, scores, -np.inf).astype(np.float32)
        ids = [[self._ids[row] for row in row_list if row >= 0] for row_list in rows.tolist()]
        return scores, ids

    def to_run(self, query_ids: Sequence[str], queries: torch.Tensor | np.ndarray, k: int = 1000) -> Run:
        """Search and return a run ``{query id: {doc id: score}}`` for :func:`evaluate_run`.

        Args:
            query_ids: ``Q`` unique query ids, one per query row.
            queries: ``[Q, D]`` query vectors.
            k: results per query (BEIR: 1000); capped at the index size.
        """
        vectors = _as_matrix("queries", queries, dim=self.dim)
        query_ids = list(map(str, query_ids))
        if len(query_ids) != vectors.shape[0] or len(set(query_ids)) != len(query_ids):
            raise ValueError(
                f"query_ids: expected {vectors.shape[0]} unique ids (one per query row), got {len(query_ids)} "
                f"({len(set(query_ids))} distinct)"
            )
        scores, ids = self.search(vectors, k)
        return {
            query_id: {doc_id: float(score) for doc_id, score in zip(row_ids, row_scores)}
            for query_id, row_ids, row_scores in zip(query_ids, ids, scores.tolist())
        }

    def manifest(self) -> dict[str, Any]:
        """The small description written next to the index by :meth:`save`."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "kind": self.kind,
            "metric": self.metric,
            "dim": self.dim,
            "count": len(self._ids),
            "normalize": self.normalize,
            **self.settings,
        }

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``index.faiss``, ``ids.json`` and ``manifest.json`` into ``directory`` atomically.

        The files are written into a temporary sibling directory that then replaces
        ``directory`` with ``os.replace``; an existing index directory is replaced whole.
        A non-empty directory that is not a saved index is refused, never overwritten.

        Returns:
            The directory path.
        """
        target = Path(directory)
        if target.exists():
            if not target.is_dir():
                raise ValueError(f"save: expected a directory path, got an existing file {str(target)!r}")
            if any(target.iterdir()) and not (target / MANIFEST_FILE).is_file():
                raise ValueError(
                    f"save: expected an empty directory or a saved index at {str(target)!r}, "
                    "got a non-empty directory without manifest.json (refusing to overwrite it)"
                )
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            faiss.write_index(self.index, str(staging / INDEX_FILE))
            (staging / IDS_FILE).write_text(json.dumps(self._ids, ensure_ascii=False), encoding="utf-8")
            (staging / MANIFEST_FILE).write_text(json.dumps(self.manifest(), indent=2) + "\n", encoding="utf-8")
            if target.exists():
                # os.replace cannot replace a non-empty directory: move the old one aside first.
                retired = target.parent / f".{target.name}.old-{uuid.uuid4().hex}"
                os.replace(target, retired)
                os.replace(staging, target)
                shutil.rmtree(retired, ignore_errors=True)
            else:
                os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> DenseIndex:
        """Read an index written by :meth:`save`.

        Raises:
            FileNotFoundError: the directory or one of its three files is missing.
            ValueError: a file is corrupt or the files disagree (count, dimension).
        """
        source = Path(directory)
        if not source.is_dir():
            raise FileNotFoundError(
                f"DenseIndex.load: expected a saved index directory, got no directory at {str(source)!r}"
            )
        for name in (MANIFEST_FILE, IDS_FILE, INDEX_FILE):
            if not (source / name).is_file():
                raise FileNotFoundError(f"DenseIndex.load: expected {name} in {str(source)!r}, it is missing")
        try:
            manifest = json.loads((source / MANIFEST_FILE).read_text(encoding="utf-8"))
            ids = json.loads((source / IDS_FILE).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(
                f"DenseIndex.load: corrupt manifest.json or ids.json in {str(source)!r}: {error}"
            ) from error
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError(
                f"DenseIndex.load: expected a {FORMAT} manifest in {str(source)!r}, got {str(manifest)[:120]}"
            )
        if not isinstance(ids, list) or not all(isinstance(identifier, str) for identifier in ids):
            raise ValueError(f"DenseIndex.load: expected ids.json to hold a list of strings in {str(source)!r}")
        try:
            index = faiss.read_index(str(source / INDEX_FILE))
        except RuntimeError as error:
            raise ValueError(f"DenseIndex.load: corrupt {INDEX_FILE} in {str(source)!r}: {error}") from error
        if int(index.ntotal) != len(ids) or manifest.get("count") != len(ids) or manifest.get("dim") != int(index.d):
            raise ValueError(
                f"DenseIndex.load: inconsistent files in {str(source)!r}: index holds {index.ntotal} vectors of "
                f"dimension {index.d}, ids.json {len(ids)} ids, manifest says count={manifest.get('count')} "
                f"dim={manifest.get('dim')}"
            )
        settings = {key: value for key, value in manifest.items() if key.startswith(("hnsw_", "ivf_"))}
        if manifest.get("kind") == "ivf" and "ivf_nprobe" in settings:
            faiss.extract_index_ivf(index).nprobe = int(settings["ivf_nprobe"])
        return cls(
            index,
            ids,
            kind=str(manifest.get("kind")),
            metric=str(manifest.get("metric")),
            normalize=bool(manifest.get("normalize")),
            settings=settings,
        )

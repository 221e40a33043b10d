"""Plots saved as PNG files: training loss curves and 2-D maps of embeddings.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot, no
global backend state, no display needed) and written atomically: to a temporary file
in the same folder, then moved into place with ``os.replace``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def save_figure_atomically(figure: Any, out_png: str | Path) -> Path:
    """Write ``figure`` as a PNG to ``out_png`` via a temporary file and ``os.replace``.

    Args:
        figure: a matplotlib ``Figure``.
        out_png: the destination; its folder is created when missing.

    Returns:
        The destination path.
    """
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{out_png.name}.", suffix=".tmp", dir=out_png.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            figure.savefig(stream, format="png", bbox_inches="tight")
        os.replace(temporary, out_png)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return out_png


def _read_metrics(metrics: str | Path | Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if isinstance(metrics, (str, Path)):
        path = Path(metrics)
        if not path.is_file():
            raise FileNotFoundError(f"plot_loss_curve: metrics file not found: {path}")
        records = []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"plot_loss_curve: {path}:{number}: expected one JSON object per line ({error})") from error
            if isinstance(record, dict):
                records.append(record)
        return records
    return [record for record in metrics if isinstance(record, Mapping)]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))


def _series(records: Sequence[Mapping[str, Any]], keys: Sequence[str], x_key: str) -> dict[str, list[tuple[float, float]]]:
    """``{key: [(x, y), ...]}`` of the numeric values of each key (records without one are skipped)."""
    series = {}
    for key in keys:
        points = [(float(record[x_key]) if _is_number(record.get(x_key)) else float(position), float(record[key]))
                  for position, record in enumerate(records) if _is_number(record.get(key))]  # fmt: skip
        if points:
            series[key] = points
    return series


def plot_curve_panels(
    metrics: str | Path | Iterable[Mapping[str, Any]],
    out_png: str | Path,
    *,
    keys: Sequence[str] | None = None,
    x_key: str = "step",
    title: str | None = None,
) -> Path | None:
    """One panel per metric against the step (scales differ: loss, learning rate, eval scores).

    Args:
        metrics: a JSON-lines file or the records themselves.
        out_png: the PNG to write.
        keys: the metrics; default ``loss``, ``lr`` and every ``eval/*`` key.
        x_key: the x-axis key.
        title: the figure's title.

    Returns:
        The path written, or ``None`` when there is nothing to plot.
    """
    records = _read_metrics(metrics)
    if keys is None:
        keys = ["loss", "lr"] + sorted({key for record in records for key in record if key.startswith("eval/")})
    series = _series(records, keys, x_key)
    if not series:
        return None
    figure = _new_figure(4.0 * len(series), 3.2)
    for position, (key, points) in enumerate(series.items(), start=1):
        axes = figure.add_subplot(1, len(series), position)
        xs, ys = zip(*points)
        axes.plot(xs, ys, marker="o" if len(points) < 20 else None, markersize=3)
        axes.set_xlabel(x_key)
        axes.set_title(key)
    if title:
        figure.suptitle(title)
    return save_figure_atomically(figure, out_png)


def plot_loss_curve(
    metrics: str | Path | Iterable[Mapping[str, Any]],
    out_png: str | Path,
    *,
    keys: Sequence[str] | None = None,
    x_key: str = "step",
    title: str | None = None,
) -> Path:
    """Plot training curves from a ``metrics.jsonl`` file or a list of records.

    Args:
        metrics: a JSON-lines file (one object per line) or the records themselves.
        out_png: the PNG to write.
        keys: the metrics to plot; default every numeric key whose name contains ``"loss"``.
            Records lacking a key are skipped for that key.
        x_key: the x-axis key; records without it use their position.
        title: the figure's title.

    Returns:
        The path written.

    Raises:
        ValueError: when there is nothing to plot.
    """
    records = _read_metrics(metrics)
    if keys is None:
        keys = sorted({key for record in records for key, value in record.items()
                       if "loss" in key and _is_number(value)})  # fmt: skip
    series = _series(records, keys, x_key)
    if not series:
        raise ValueError(f"plot_loss_curve: no numeric values for {list(keys) or 'any *loss* key'} in {len(records)} records")
    figure = _new_figure(7, 4)
    axes = figure.add_subplot(1, 1, 1)
    for key, points in series.items():
        xs, ys = zip(*points)
        axes.plot(xs, ys, label=key, linewidth=1.2)
    axes.set_xlabel(x_key)
    axes.set_ylabel("value")
    if all(y > 0 for points in series.values() for _, y in points):
        span = max(y for points in series.values() for _, y in points) / min(y for points in series.values() for _, y in points)
        if span > 100:
            axes.set_yscale("log")
    axes.grid(True, alpha=0.3)
    axes.legend()
    if title:
        axes.set_title(title)
    return save_figure_atomically(figure, out_png)


def _as_numpy(values: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().float().cpu().numpy() if values.is_floating_point() else values.detach().cpu().numpy()
    return np.asarray(values)


def project_2d(features: np.ndarray, *, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Project ``[N, D]`` features to ``[N, 2]`` with PCA (fast) or t-SNE (slower, scikit-learn).

    Args:
        features: ``[N, D]`` array.
        method: ``"pca"`` or ``"tsne"``.
        seed: t-SNE's seed.
    """
    features = np.asarray(features, dtype=np.float64)
    if method == "pca":
        centred = features - features.mean(axis=0, keepdims=True)
        _, _, components = np.linalg.svd(centred, full_matrices=False)
        projected = centred @ components[:2].T
        if projected.shape[1] < 2:
            projected = np.pad(projected, ((0, 0), (0, 2 - projected.shape[1])))
        return projected
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (features.shape[0] - 1) / 3)))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)
    raise ValueError(f"plot_embedding_2d: unknown method {method!r}; expected one of: pca, tsne")


#: Classes named in an embedding plot's legend (the most frequent ones when there are more).
LEGEND_CLASSES = 12


def robust_limits(points: np.ndarray, *, quantile: float = 0.01, margin: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    """Axis limits that hold the central ``1 - 2·quantile`` of the points per axis, widened by
    ``margin``: a few outliers no longer squash the cloud into a corner (they fall off the plot)."""
    low = np.quantile(points, quantile, axis=0)
    high = np.quantile(points, 1 - quantile, axis=0)
    span = np.where(high > low, high - low, 1.0)
    return low - margin * span, high + margin * span


def plot_embedding_2d(
    features: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray | None,
    out_png: str | Path,
    *,
    max_points: int = 2000,
    method: str = "pca",
    seed: int = 0,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Scatter a 2-D projection of embeddings, coloured by label.

    Args:
        features: ``[N, D]`` embeddings.
        labels: ``[N]`` integer labels, or ``None`` for one colour.
        out_png: the PNG to write.
        max_points: at most this many points are drawn (a seeded random sample).
        method: ``"pca"`` (default, fast) or ``"tsne"`` (scikit-learn, tens of seconds for 2000 points).
        seed: the sample's (and t-SNE's) seed.
        class_names: legend names, indexed by label.
        title: the figure's title.

    Returns:
        The path written.
    """
    array = _as_numpy(features)
    if array.ndim != 2 or array.shape[0] < 2:
        raise ValueError(f"plot_embedding_2d: expected features of shape [N, D] with N >= 2, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("plot_embedding_2d: expected finite features, got NaN/inf")
    if method not in ("pca", "tsne"):
        raise ValueError(f"plot_embedding_2d: unknown method {method!r}; expected one of: pca, tsne")
    label_array = None if labels is None else _as_numpy(labels).astype(np.int64).reshape(-1)
    if label_array is not None and label_array.shape[0] != array.shape[0]:
        raise ValueError(f"plot_embedding_2d: expected {array.shape[0]} labels, got {label_array.shape[0]}")
    if array.shape[0] > max_points:
        rows = np.sort(np.random.default_rng(seed).choice(array.shape[0], size=max_points, replace=False))
        array = array[rows]
        label_array = None if label_array is None else label_array[rows]
    points = project_2d(array, method=method, seed=seed)

    figure = _new_figure(8.0 if label_array is not None else 6.0, 6.0)  # room for the legend
    axes = figure.add_subplot(1, 1, 1)
    if label_array is None:
        axes.scatter(points[:, 0], points[:, 1], s=4, alpha=0.6)
    else:
        classes = np.unique(label_array)
        from matplotlib import colormaps

        colormap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
        counts = {label: int((label_array == label).sum()) for label in classes}
        # With many classes a legend of every one is unreadable: name the most frequent ones.
        named = set(sorted(classes, key=lambda label: -counts[label])[:LEGEND_CLASSES])
        for position, label in enumerate(classes):
            chosen = label_array == label
            name = class_names[label] if class_names is not None and 0 <= label < len(class_names) else str(label)
            axes.scatter(points[chosen, 0], points[chosen, 1], s=4, alpha=0.7,
                         color=colormap(position % colormap.N), label=name if label in named else None)  # fmt: skip
        title_legend = None if len(classes) <= LEGEND_CLASSES else f"{LEGEND_CLASSES} largest of {len(classes)} classes"
        axes.legend(markerscale=3, fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0),
                    title=title_legend, title_fontsize="x-small")
    low, high = robust_limits(points)
    axes.set_xlim(low[0], high[0])
    axes.set_ylim(low[1], high[1])
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(title or f"{method.upper()} of {array.shape[0]} embeddings")
    return save_figure_atomically(figure, out_png)

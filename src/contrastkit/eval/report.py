"""One call that evaluates a representation, and a small table to show the results."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import torch

from contrastkit.eval.knn import knn_accuracy
from contrastkit.eval.linear_probe import linear_probe_accuracy

#: The columns a table shows by default, when present.
DEFAULT_COLUMNS: tuple[str, ...] = ("knn_top1", "knn_top5", "linear_top1", "linear_top5")


def evaluate_representation(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    knn_k: int = 200,
    knn_temperature: float = 0.1,
    linear: bool = True,
    num_classes: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Weighted kNN and (optionally) linear-probe accuracy of frozen features.

    Args:
        train_features: ``[N, D]`` features of the training split.
        train_labels: ``[N]`` integer labels.
        test_features: ``[M, D]`` features of the test split.
        test_labels: ``[M]`` integer labels.
        knn_k: neighbours of the kNN classifier.
        knn_temperature: vote temperature of the kNN classifier.
        linear: also fit a linear probe (a few seconds on 60000 rows).
        num_classes: the number of classes; default ``max(label) + 1``.
        seed: the linear probe's hold-out seed.

    Returns:
        ``knn_top1`` (+ ``knn_top5``) and, with ``linear``, ``linear_top1`` (+ ``linear_top5``,
        ``linear_weight_decay``); accuracies are fractions in ``[0, 1]``.
    """
    if num_classes is None:
        num_classes = int(max(int(train_labels.max()), int(test_labels.max()))) + 1
    results = knn_accuracy(
        train_features, train_labels, test_features, test_labels,
        k=knn_k, temperature=knn_temperature, num_classes=num_classes,
    )  # fmt: skip
    if linear:
        results.update(
            linear_probe_accuracy(
                train_features, train_labels, test_features, test_labels, num_classes=num_classes, seed=seed
            )
        )
    return results


def _columns(rows: Mapping[str, Mapping[str, Any]], columns: Sequence[str] | None) -> list[str]:
    if columns is not None:
        return list(columns)
    present = {key for values in rows.values() for key in values}
    return [column for column in DEFAULT_COLUMNS if column in present]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            return "nan"
        return f"{value:.4f}" if isinstance(value, float) else str(value)
    return str(value)


def format_table(rows: Mapping[str, Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Plain, aligned text table: one line per row name, one column per metric.

    Args:
        rows: ``{row name: {metric: value}}``, e.g. ``{"learned": {...}, "raw_input": {...}}``.
        columns: the metrics to show; default the present ones of ``knn_top1, knn_top5,
            linear_top1, linear_top5``. A missing value shows as ``-``; floats with 4 decimals.

    Returns:
        The table, lines joined by newlines (no trailing newline).
    """
    names = _columns(rows, columns)
    header = ["representation", *names]
    body = [[str(row), *(_cell(values.get(name)) for name in names)] for row, values in rows.items()]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def render(line: list[str]) -> str:
        first = line[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(line[1:], widths[1:])]
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([render(header), rule, *(render(line) for line in body)])


def print_table(
    rows: Mapping[str, Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    title: str | None = None,
    file: TextIO | None = None,
) -> None:
    """Print :func:`format_table`'s table: with ``rich`` on a terminal, plain text otherwise.

    Args:
        rows: ``{row name: {metric: value}}``.
        columns: the metrics to show (see :func:`format_table`).
        title: an optional title line.
        file: where to print; default ``sys.stdout``.
    """
    stream = file if file is not None else sys.stdout
    is_terminal = bool(getattr(stream, "isatty", lambda: False)())
    if is_terminal:
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:  # pragma: no cover - rich is a dependency
            is_terminal = False
    if not is_terminal:
        if title:
            print(title, file=stream)
        print(format_table(rows, columns), file=stream)
        return
    table = Table(title=title)
    names = _columns(rows, columns)
    table.add_column("representation")
    for name in names:
        table.add_column(name, justify="right")
    for row, values in rows.items():
        table.add_row(str(row), *(_cell(values.get(name)) for name in names))
    Console(file=stream).print(table)

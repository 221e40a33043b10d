"""The run report: ``report.html`` (self-contained) and ``report.md`` beside ``metrics.json``.

What a person reads after a run, in one place: what was run (the recipe and what the run
changed in it), the results table with the baselines measured in the same run, the loss,
learning-rate and periodic-evaluation curves, the embedding plot, the environment, and the
commands that resume or re-evaluate the run. The HTML embeds its images as data URIs and
uses no script, so it opens anywhere (a browser, a CI artifact viewer) and loads nothing.

Both files are written atomically; a report that cannot be made (no matplotlib) never costs
the run its ``metrics.json``, which is written first.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from contrastkit.eval.plots import plot_curve_panels
from contrastkit.utils.atomic import atomic_write_text

REPORT_HTML = "report.html"
REPORT_MD = "report.md"
CURVES_PNG = "training_curves.png"


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train.lr": 0.001, ...}`` for a nested config (lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def config_diff(recipe: Mapping[str, Any] | None, run: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``[(key, recipe value, run value)]`` for every key the run changed or added.

    Protocol settings the run filled in from its defaults (``eval.*`` keys the recipe does not
    hold) are not changes and are left out.
    """
    if recipe is None:
        return []
    before, after = flatten(recipe), flatten(run)
    rows = []
    for key in sorted(set(before) | set(after)):
        if key not in before and key.startswith("eval."):
            continue
        old, new = before.get(key, "(absent)"), after.get(key, "(absent)")
        if old != new:
            rows.append((key, old, new))
    return rows


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "-" if not math.isfinite(value) else f"{value:.4f}"
    if value is None:
        return "-"
    return str(value)


def results_rows(learned: Mapping[str, Any], baselines: Mapping[str, Mapping[str, Any]],
                 columns: Sequence[str]) -> list[list[str]]:
    """The results table: one row for the learned representation, one per baseline."""
    rows = [["learned", *(_format(learned.get(column)) for column in columns)]]
    for name, scores in baselines.items():
        rows.append([name, *(_format(scores.get(column)) for column in columns)])
    return rows


def _image_tag(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Any]], table_id: str) -> str:
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f0f0f0; }
code, pre { background: #f6f6f6; padding: 0.1em 0.3em; }
img { max-width: 100%; }
"""


def write_report(
    run_dir: str | Path,
    *,
    config: Mapping[str, Any],
    recipe: Mapping[str, Any] | None,
    learned: Mapping[str, Any],
    baselines: Mapping[str, Mapping[str, Any]],
    columns: Sequence[str],
    description: str,
    train: Mapping[str, Any] | None = None,
    environment: Mapping[str, Any] | None = None,
    title: str | None = None,
    plots: bool = True,
) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` into ``run_dir``; return their paths.

    Args:
        run_dir: the run folder (its ``metrics.jsonl`` and PNGs are read from it).
        config: the run's resolved config.
        recipe: the recipe the run started from, resolved the same way (``None``: unknown;
            the diff section then says so).
        learned: the learned representation's scores.
        baselines: ``{baseline: scores}`` from the same run.
        columns: the score keys to show, in order (the protocol's).
        description: how the scores were measured (the protocol's one line).
        train: the ``train`` block of ``metrics.json`` (steps, seconds, final loss).
        environment: python / torch / platform / threads.
        title: the heading; default ``METHOD on DATA``.
        plots: also draw ``training_curves.png`` (loss, learning rate, periodic scores).
    """
    run_dir = Path(run_dir)
    title = title or f"{config['method']['name']} on {config['data']['name']}"
    if plots and (run_dir / "metrics.jsonl").exists():
        plot_curve_panels(run_dir / "metrics.jsonl", run_dir / CURVES_PNG, title=title)
    diff = config_diff(recipe, config)
    diff_rows = [(key, _format(old), _format(new)) for key, old, new in diff]
    results = results_rows(learned, baselines, columns)
    header = ["representation", *columns]
    commands = [
        ("resume (or extend: add --set train.steps=N)", f"contrastkit train --resume {run_dir}"),
        ("re-evaluate (other settings: add --set eval.KEY=VALUE)", f"contrastkit eval {run_dir}"),
        ("export the embeddings", f"contrastkit embed {run_dir} --split test --out {run_dir}/embeddings"),
    ]
    facts = [(key, _format(value)) for key, value in (train or {}).items()]
    environment_rows = [(key, _format(value)) for key, value in (environment or {}).items()]
    images = [(name, alt) for name, alt in (("loss_curve.png", "training loss"), (CURVES_PNG, "training curves"),
                                            ("embedding_2d.png", "2-D projection of the test embeddings"))
              if (run_dir / name).exists()]  # fmt: skip

    # -- markdown --------------------------------------------------------------------------------
    md = [f"# {title}", "", f"Run folder: `{run_dir}`. Scores: {description}.", "", "## Results", "",
          _md_table(header, results), ""]
    md += ["## What the run changed in the recipe", ""]
    if recipe is None:
        md += [f"The recipe `{config.get('name')}` could not be found to compare with.", ""]
    elif diff_rows:
        md += [_md_table(["key", "recipe", "this run"], diff_rows), ""]
    else:
        md += ["Nothing: the recipe as shipped.", ""]
    if facts:
        md += ["## Training", "", _md_table(["", ""], facts), ""]
    if images:
        md += ["## Curves and embeddings", ""] + [f"![{alt}]({name})" for name, alt in images] + [""]
    md += ["## Commands", ""] + [f"- {what}: `{command}`" for what, command in commands] + [""]
    if environment_rows:
        md += ["## Environment", "", _md_table(["", ""], environment_rows), ""]

    # -- html ------------------------------------------------------------------------------------
    body = [f"<h1>{html.escape(title)}</h1>",
            f"<p>Run folder: <code>{html.escape(str(run_dir))}</code>. Scores: {html.escape(description)}.</p>",
            "<h2>Results</h2>", _html_table(header, results, "results"),
            "<h2>What the run changed in the recipe</h2>"]
    if recipe is None:
        body.append(f"<p>The recipe <code>{html.escape(str(config.get('name')))}</code> could not be found "
                    "to compare with.</p>")
    elif diff_rows:
        body.append(_html_table(["key", "recipe", "this run"], diff_rows, "config-diff"))
    else:
        body.append("<p>Nothing: the recipe as shipped.</p>")
    if facts:
        body += ["<h2>Training</h2>", _html_table(["", ""], facts, "training")]
    if images:
        body.append("<h2>Curves and embeddings</h2>")
        body += [f"<p>{_image_tag(run_dir / name, alt)}</p>" for name, alt in images]
    body.append("<h2>Commands</h2><ul>")
    body += [f"<li>{html.escape(what)}: <code>{html.escape(command)}</code></li>" for what, command in commands]
    body.append("</ul>")
    if environment_rows:
        body += ["<h2>Environment</h2>", _html_table(["", ""], environment_rows, "environment")]
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")

    html_path, md_path = run_dir / REPORT_HTML, run_dir / REPORT_MD
    atomic_write_text(html_path, page)
    atomic_write_text(md_path, "\n".join(md))
    return html_path, md_path

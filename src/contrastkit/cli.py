"""Command line: ``contrastkit train | eval | list``.

``contrastkit train`` with no argument runs the main job (SimCLR on Fashion-MNIST)
and prints the run directory's path as its last line.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Contrastive representation learning.")


def _fail(error: Exception) -> None:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(code=2)


@app.command()
def train(
    recipe: Optional[str] = typer.Argument(None, help="Recipe name (see `contrastkit list`) or a YAML file."),
    set_: list[str] = typer.Option([], "--set", "-s", help="Override a value: --set train.lr=0.01 (repeatable)."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Where to write the run (default runs/NAME-TIME)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this directory."),
) -> None:
    """Train a recipe, evaluate it against baselines, and write a run directory."""
    from contrastkit.train.config import load_config, load_run_config
    from contrastkit.train.run import run

    try:
        if resume is not None:
            if recipe is not None or set_:
                raise ValueError("--resume continues a run with its saved config; drop the recipe and --set")
            config = load_run_config(resume)
            directory, _ = run(config, resume, resume=True)
        else:
            config = load_config(recipe, set_)
            directory, _ = run(config, run_dir)
    except (ValueError, FileNotFoundError) as error:
        _fail(error)
        return
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one line from rank 0 only
        typer.echo(str(directory))


@app.command("eval")
def evaluate(run_dir: Path = typer.Argument(..., help="A run directory written by `contrastkit train`.")) -> None:
    """Re-evaluate a run's latest checkpoint (kNN and linear probe) and update its metrics.json."""
    from contrastkit.train.run import evaluate_run

    try:
        evaluate_run(run_dir)
    except (ValueError, FileNotFoundError) as error:
        _fail(error)


@app.command("list")
def list_registered() -> None:
    """List the registered methods, datasets, encoders, view presets and recipes."""
    from contrastkit.data import dataset_descriptions
    from contrastkit.methods import method_names
    from contrastkit.nn.registry import encoder_names
    from contrastkit.recipes import recipe_names
    from contrastkit.views.image import view_preset_names
    from contrastkit.views.series import series_view_preset_names

    typer.echo("methods:      " + "; ".join(
        f"{modality}: {', '.join(method_names(modality))}" for modality in ("image", "series")
    ))  # fmt: skip
    typer.echo("encoders:     " + ", ".join(encoder_names()))
    typer.echo("view presets: image: " + ", ".join(view_preset_names()) + "; series: " + ", ".join(series_view_preset_names()))
    typer.echo("recipes:      " + ", ".join(recipe_names()))
    typer.echo("datasets:")
    descriptions = dataset_descriptions()
    width = max(map(len, descriptions), default=0)
    for name, description in descriptions.items():
        typer.echo(f"  {name:<{width}}  {description}")


def main() -> None:
    """Console-script entry point."""
    app(prog_name="contrastkit")


if __name__ == "__main__":
    sys.exit(main())

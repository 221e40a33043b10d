"""Named, runnable configurations shipped inside the package as YAML files.

A recipe names a method, a dataset, an encoder, views, a schedule and an
evaluation; ``contrastkit train NAME`` runs it. The registry is the folder itself:
every ``*.yaml`` beside this file is a recipe, named after the file.
"""

from __future__ import annotations

from pathlib import Path

from contrastkit.utils.checks import unknown_name_error

RECIPE_DIR = Path(__file__).resolve().parent
DEFAULT_RECIPE = "simclr-fashion-mnist"


def recipe_names() -> list[str]:
    """Names of the shipped recipes."""
    return sorted(path.stem for path in RECIPE_DIR.glob("*.yaml"))


def recipe_path(name_or_path: str) -> Path:
    """Resolve a recipe name (shipped) or a path to a user's YAML file."""
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"}:
        if not candidate.exists():
            raise FileNotFoundError(f"recipe file {candidate} does not exist")
        return candidate
    shipped = RECIPE_DIR / f"{name_or_path}.yaml"
    if not shipped.exists():
        raise unknown_name_error("recipe", name_or_path, recipe_names())
    return shipped

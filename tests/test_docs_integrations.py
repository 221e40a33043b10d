"""docs/integrations.md: each of its examples (scikit-learn, aeon, Lightning) runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "integrations.md"


def _block(marker: str) -> str:
    blocks = [b for b in re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S) if marker in b]
    assert blocks, f"docs/integrations.md lost its example using {marker}"
    return blocks[0]


def _run(marker: str) -> dict:
    namespace: dict = {"__name__": "integrations_doc"}
    exec(compile(_block(marker), "integrations.md", "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace


def test_scikit_learn_example_runs_and_learns():
    assert _run("ContrastiveTransformer(")["accuracy"] > 0.7


def test_aeon_example_runs_and_learns():
    namespace = _run("TS2VecTransformer(")
    assert namespace["model"].score(namespace["x_test"], namespace["y_test"]) >= 0.9


def test_lightning_example_runs():
    pytest.importorskip("lightning", reason="Lightning is not installed: pip install 'contrastkit[lightning]'")
    namespace = _run("MethodModule(")
    assert namespace["trainer"].global_step == 5

"""The code in README.md and docs/ runs as written (docs that drift fail here)."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from contrastkit.data import Batch
from contrastkit.nn.registry import build_encoder
from contrastkit.views.image import build_views

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


def test_readme_custom_loop_example_runs_and_learns(capsys):
    blocks = [b for b in _python_blocks(ROOT / "README.md") if "nt_xent" in b and "optimizer.step()" in b]
    assert blocks, "README lost its 'use a loss in your own loop' example"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102 - our own documentation
    assert "final loss" in capsys.readouterr().out
    assert torch.isfinite(namespace["loss"])


def test_adding_a_method_example_class_trains():
    blocks = [b for b in _python_blocks(ROOT / "docs" / "adding-a-method.md") if "class DCL(" in b]
    assert blocks, "docs/adding-a-method.md lost its DCL class"
    namespace: dict = {"__name__": "dcl_doc"}
    exec(compile(blocks[0], "adding-a-method.md", "exec"), namespace)  # noqa: S102
    encoder = build_encoder("mlp", in_channels=1, image_size=8, hidden_dims=(32,), output_dim=16)
    method = namespace["DCL"](encoder, build_views("simclr", image_size=8, channels=1), weighted=True)
    output = method(Batch(torch.rand(8, 1, 8, 8)))
    output.loss.backward()
    assert torch.isfinite(output.loss) and method.embed(torch.rand(3, 1, 8, 8)).shape == (3, 16)


def _run_readme_block(marker: str) -> dict:
    """Execute the first README Python block containing ``marker``; return its namespace."""
    blocks = [b for b in _python_blocks(ROOT / "README.md") if marker in b]
    assert blocks, f"README lost its example using {marker}"
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102 - our own documentation
    loss = namespace["loss"]
    assert loss.shape == () and torch.isfinite(loss)
    return namespace


def test_readme_time_series_example_runs() -> None:
    namespace = _run_readme_block("hierarchical_contrastive")
    namespace["loss"].backward()
    assert namespace["encoder"].input_fc.weight.grad is not None


def test_readme_text_example_runs() -> None:
    namespace = _run_readme_block("multiple_negatives_ranking")
    assert namespace["encoder"].transformer.embeddings.word_embeddings.weight.grad is not None


def test_readme_graph_example_runs() -> None:
    namespace = _run_readme_block("grace_loss")
    assert namespace["encoder"].convs[0].lin.weight.grad is not None


def test_readme_seed_components_example_runs() -> None:
    namespace = _run_readme_block("mochi_negatives")
    namespace["loss"].backward()
    assert namespace["views"].grad is not None
    accuracy = namespace["accuracy"]
    assert accuracy["opta"] > accuracy["prototype"]  # OpTA's transductive alignment helps on these clusters

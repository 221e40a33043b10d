"""``metrics.jsonl``: one JSON object per logged step, append-only, truncated on resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from contrastkit.utils.atomic import atomic_write_text


class MetricsLog:
    """Append step records to ``path``; optionally mirror scalars to TensorBoard.

    ``enabled=False`` (ranks other than 0 under torchrun) writes nothing.
    """

    def __init__(self, path: str | Path, tensorboard_dir: str | Path | None = None, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as error:  # tensorboard is an optional dependency
                raise ValueError(
                    "train.tensorboard=true needs the 'tensorboard' package: pip install tensorboard"
                ) from error
            self._writer = SummaryWriter(str(tensorboard_dir))

    def truncate_after(self, step: int) -> None:
        """Drop records with ``step > step`` (written after the checkpoint a run resumes from)."""
        if not self.enabled or not self.path.exists():
            return
        kept = [line for line in self.path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step]
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self._writer is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self._writer.add_scalar(key, value, record["step"])

    def read(self) -> list[dict[str, Any]]:
        """Every record written so far."""
        return read_metrics(self.path) if self.path.exists() else []

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Read every record of a ``metrics.jsonl``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no metrics log at {path}")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

"""Progress reporting: a live bar on a terminal, a few plain lines otherwise (CI logs stay short)."""

from __future__ import annotations

import sys
import time


class Progress:
    """Report training progress.

    On a terminal this draws a ``rich`` progress bar; elsewhere it prints one line
    at every tenth of the run, so logs are readable without flooding.

    Args:
        total: total number of steps.
        start: the step the run starts from (non-zero when resuming).
        enabled: ``False`` silences it completely.
        label: what the bar counts (``"train"``; ``"encode"`` for embedding a corpus).
        unit: the word before ``N/total`` in plain-text lines.
    """

    def __init__(self, total: int, start: int = 0, enabled: bool = True, *, label: str = "train",
                 unit: str = "step") -> None:
        self.total, self.start, self.enabled = total, start, enabled
        self.label, self.unit = label, unit
        self.interactive = enabled and sys.stderr.isatty()
        self._bar = None
        self._task = None
        self._t0 = time.perf_counter()
        self._next_line = start
        if self.interactive:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(), TimeRemainingColumn(), transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(label, total=total, completed=start, info="")

    def update(self, step: int, info: str = "") -> None:
        """Record that ``step`` steps are complete; ``info`` is a short status (e.g. the loss)."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=step, info=info)
        elif step >= self._next_line or step == self.total:
            elapsed = time.perf_counter() - self._t0
            print(f"{self.unit} {step}/{self.total}  {info}  {elapsed:.0f}s", file=sys.stderr, flush=True)
            self._next_line = step + max(1, self.total // 10)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()

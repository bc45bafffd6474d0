"""Progress of a training loop: a rich bar with loss, tokens/s and ETA (silent when disabled), and the step hook type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["TrainProgress", "StepHook"]

StepHook = Callable[[int, dict[str, Any]], None]
"""Called after every optimizer step with (step, log record); raising from it interrupts the run like a crash."""


class TrainProgress:
    """A rich progress bar with loss, tok/s and ETA; silent when disabled (tests, subprocess trials)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._p = None
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._p = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[tps]} tok/s"), TimeRemainingColumn(),
        )
        self._task = self._p.add_task("train", total=total, loss="-", tps="-")
        self._p.start()

    def advance(self, n: int) -> None:
        if self._p is not None:
            self._p.update(self._task, completed=n)

    def update(self, step: int, loss: float, tps: float) -> None:
        if self._p is not None:
            self._p.update(self._task, completed=step, loss=f"{loss:.3f}", tps=f"{tps:,.0f}")

    def close(self) -> None:
        if self._p is not None:
            self._p.stop()

"""Coder `none`: no edit — the idea is a flag that already exists, so there is nothing to implement."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from autoresearch.agents.roles import Coder, CoderResult, TaskSpec

__all__ = ["NoneCoder"]


class NoneCoder(Coder):
    """Leaves the worktree as it is; the pipeline goes straight to the checks with the existing flags."""

    spec: ClassVar[str] = "none"
    edits: ClassVar[bool] = False

    def implement(self, task: TaskSpec, worktree: Path, feedback: str | None = None) -> CoderResult:
        return CoderResult(ok=True, log="coder none: no edit (the task's flags already exist)", exit_code=None,
                           seconds=0.0)

"""Reviser `none`: the next version of an idea without a language model — only a numeric flag has one.

After a non-KEEP on a task with a numeric flag, the next version (v<k+1>) keeps the task's name and other flags and
asks optuna TPE for the next value of its last numeric flag (the one the planner sampled), given every earlier
version's value and Δ (the analyses' evidence; a crash is a failed trial). It stops (None) when:
- the analysis is `win` (the loop ends on KEEP) or `bug` (an implementation failure is the fix loop's business, not
  a new value's);
- the task has no numeric flag with a range (a bool or a choice has no "next value");
- TPE only offers values already tried (or the baseline value) after a few seeds.
Deterministic: the sampler's seed comes from (seed, task name, version number).
"""

from __future__ import annotations

import dataclasses
import math
import zlib

from autoresearch.agents.planner_none import suggest_value, task_name
from autoresearch.agents.roles import Analysis, Reviser, TaskSpec

__all__ = ["NoneReviser"]

_RETRIES = 8


class NoneReviser(Reviser):
    """`--reviser none`."""

    spec = "none"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def revise(self, task: TaskSpec, analysis: Analysis,
               history: list[tuple[TaskSpec, Analysis]]) -> TaskSpec | None:
        if analysis.kind in ("win", "bug"):
            return None
        numeric = [f for f in task.flags if f.numeric and f.low is not None and f.high is not None]
        if not numeric:
            return None
        flag = numeric[-1]
        versions = [*history, (task, analysis)]
        done: list[tuple[float, float | None]] = []
        for t, a in versions:
            value = next((f.on for f in t.flags if f.key == flag.key), None)
            if value is not None:
                done.append((value, _delta(a)))
        tried = {repr(v) for v, _ in done}
        for attempt in range(_RETRIES):
            seed = zlib.crc32(f"{self.seed}:{task.name}:{len(versions)}:{attempt}".encode())
            value = suggest_value(flag, done, seed)
            if repr(value) in tried or value == flag.off:
                continue
            flags = [f.with_on(value) if f.key == flag.key else f for f in task.flags]
            return dataclasses.replace(
                task, flags=flags,
                description=(f"v{len(versions) + 1} of {task.name}: {flag.key} {flag.on!r} -> {value!r} after "
                             f"{analysis.kind} ({task_name(flags)})"))
        return None


def _delta(analysis: Analysis) -> float | None:
    """The version's Δ (positive = better) from its analysis; None for a crash or a missing number."""
    if analysis.kind == "bug":
        return None
    d = analysis.evidence.get("delta")
    return float(d) if isinstance(d, (int, float)) and math.isfinite(d) else None

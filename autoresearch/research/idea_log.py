"""The idea log of a study (`studies/<name>/idea_log.md`): each idea's status with the numbers behind it and a date.

Status from the verdict: KEEP -> Validated; DISCARD because the CI excludes 0 on the bad side or lies below the
minimum effect -> Rejected; DISCARD because max seeds were spent without a decision -> Inconclusive (the idea is not
adopted, but nothing was shown against it either); CRASH -> Crashed (with the error). Rewritten atomically from the
state each time verdicts are final, so it always matches `state.json` and the ledger.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from autoresearch.harness.atomic import atomic_write_text
from autoresearch.research.state import StudyState
from autoresearch.research.study import ResolvedStudy

__all__ = ["write_idea_log", "render_idea_log", "STATUS_ORDER"]

STATUS_ORDER = ("Validated", "Rejected", "Inconclusive", "Crashed")


def _f(x: float, spec: str = "+.4f") -> str:
    return "-" if x is None or not math.isfinite(x) else format(x, spec)


def _p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "-"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def _date(state: StudyState, arm: str) -> str:
    times = [t.finished_at for t in state.trials.values() if t.arm == arm]
    return (max(times) if times else state.created_at)[:10]


def render_idea_log(resolved: ResolvedStudy, state: StudyState) -> str:
    """Markdown of the idea log."""
    s = resolved.study
    metric = s.metric.name
    verdicts = [state.verdicts[a] for a in resolved.idea_names if a in state.verdicts]
    lines = [f"# Idea log — study `{resolved.name}`", "",
             f"{s.description}".strip(), "",
             f"Metric `{metric}` ({resolved.direction} is better); Δ = idea − baseline oriented so Δ > 0 is better; "
             f"testbed `{s.testbed}` preset `{s.preset}`.", ""]
    for status in STATUS_ORDER:
        group = [v for v in verdicts if v.log_status == status]
        lines.append(f"## {status} ({len(group)})")
        lines.append("")
        if not group:
            lines += ["_none_", ""]
            continue
        for v in group:
            desc = resolved.description(v.idea)
            if v.verdict == "CRASH":
                lines.append(f"- **{v.idea}** ({_date(state, v.idea)}) — CRASH: {v.error}. {desc}")
                continue
            lines.append(
                f"- **{v.idea}** ({_date(state, v.idea)}) — {v.verdict}: Δ = {_f(v.mean)} "
                f"[{_f(v.lo)}, {_f(v.hi)}] ({100 * v.conf:.4g}% CI), p = {_p(v.p)}, n = {v.n}; {metric} "
                f"{_f(v.idea_mean, '.4f')} vs baseline {_f(v.baseline_mean, '.4f')}. {v.reason}. {desc}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_idea_log(study_dir: Path, resolved: ResolvedStudy, state: StudyState) -> Path:
    """Write `idea_log.md` atomically and return its path."""
    path = Path(study_dir) / "idea_log.md"
    atomic_write_text(path, render_idea_log(resolved, state))
    os.chmod(path, 0o644)  # temp files are created 0600; the log is meant to be read by others
    return path

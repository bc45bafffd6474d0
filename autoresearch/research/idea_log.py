"""The idea log of a study (`studies/<name>/idea_log.md`): each idea's status with the numbers behind it and a date.

Status from the verdict: KEEP -> Validated; DISCARD because the CI excludes 0 on the bad side or lies below the
minimum effect -> Rejected; DISCARD because max seeds were spent without a decision -> Inconclusive (the idea is not
adopted, but nothing was shown against it either); CRASH -> Crashed (with the error). Rewritten atomically from the
state each time verdicts are final, so it always matches `state.json` and the ledger.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from autoresearch.harness.atomic import atomic_write_text
from autoresearch.research.state import StudyState
from autoresearch.research.study import ResolvedStudy

__all__ = ["write_idea_log", "render_idea_log", "STATUS_ORDER", "IdeaEntry", "render_entries", "write_entries"]

STATUS_ORDER = ("Validated", "Rejected", "Inconclusive", "Crashed")
ENTRY_STATUSES = (*STATUS_ORDER, "Escalated")
"""A research pipeline's version can also end Escalated: its implementation failed the fix loop (no study ran)."""


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


@dataclass
class IdeaEntry:
    """One idea version in a workspace's idea log (the research pipeline): its status, change, numbers and lesson."""

    name: str
    """`<idea>/v<k>`"""
    status: str
    """Validated | Rejected | Inconclusive | Crashed | Escalated."""
    description: str = ""
    verdict: str = ""
    numbers: str = ""
    """Δ, CI, p, n and the two means in words (empty when no study ran)."""
    diff: str = ""
    """path of the version's diff, relative to the log."""
    lesson: str = ""
    date: str = ""


def render_entries(title: str, entries: list[IdeaEntry], preamble: str = "") -> str:
    """Markdown of an idea log of entries, grouped by status in ENTRY_STATUSES order, oldest first in each group."""
    lines = [f"# {title}", ""] + ([preamble.strip(), ""] if preamble.strip() else [])
    for status in ENTRY_STATUSES:
        group = [e for e in entries if e.status == status]
        lines += [f"## {status} ({len(group)})", ""]
        if not group:
            lines += ["_none_", ""]
            continue
        for e in group:
            parts = [f"- **{e.name}**" + (f" ({e.date[:10]})" if e.date else "")]
            parts.append(f"— {e.verdict}" + (f": {e.numbers}" if e.numbers else "") + "." if e.verdict else "")
            parts.append(f"{e.description}." if e.description else "")
            parts.append(f"Diff: [{e.diff}]({e.diff})." if e.diff else "")
            parts.append(f"Lesson: {e.lesson}" if e.lesson else "")
            lines.append(" ".join(p for p in parts if p))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_entries(path: Path, title: str, entries: list[IdeaEntry], preamble: str = "") -> Path:
    """Write an idea log of entries atomically (rebuilt from the pipeline state each time)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, render_entries(title, entries, preamble))
    os.chmod(path, 0o644)
    return path

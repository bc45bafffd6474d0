"""The status of a study (`autoresearch study status`): one typed row per arm, computed from the study folder.

Read-only and safe while a runner writes: the state file is replaced atomically, so it is read whole or not at all;
running trials are shown only while a runner holds the lock (a killed runner's `running` entries are stale). The
CLI only renders these records.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autoresearch.errors import StudyError
from autoresearch.research.lock import is_running
from autoresearch.research.state import StudyState
from autoresearch.research.stats import summarize
from autoresearch.research.study import BASELINE
from autoresearch.research.study_dir import read_definition
from autoresearch.research.trial_specs import arm_of

__all__ = ["ArmStatus", "StudyStatus", "study_status"]


@dataclass
class ArmStatus:
    """One arm: its seeds done/planned, running and crashed trials, its mean, Δ to the baseline and the verdict."""

    arm: str
    done: int
    """trials finished ok."""
    planned: int | None
    """seeds planned (the baseline: as many as the idea with the most); None before the ideas stage."""
    running: int
    crashed: int
    """trials that finished but not ok (crashed, diverged)."""
    mean: float | None
    delta: float | None = None
    """mean paired Δ (> 0 better) over the ok pairs, from two pairs on; None for the baseline."""
    lo: float | None = None
    hi: float | None = None
    p: float | None = None
    verdict: str = ""
    """the latest verdict ('' before the first decision, and for the baseline)."""


@dataclass
class StudyStatus:
    """What `study status` shows: title, one row per arm, and the caption."""

    name: str
    stage: str
    metric: str
    arms: list[ArmStatus]
    state: str
    """running | done | stopped (a runner ended or was killed before the study was done)."""
    wall_s: float
    trials: int
    """trials recorded."""


def study_status(sdir: Path) -> StudyStatus:
    """The status of the study in `sdir`; a damaged state.json or study.yaml is one StudyError naming the file."""
    state = StudyState.load(sdir / "state.json")
    path = sdir / "study.yaml"
    definition = read_definition(sdir)  # missing / unreadable / damaged: one line naming the file and the fix
    try:
        metric = definition["metric"]["name"]
        direction = definition["resolved"]["direction"]
        alpha = definition["decision"]["alpha"]
        arms = list(definition["resolved"]["arms"])
    except (TypeError, KeyError) as e:
        raise StudyError(f"study file {path} is damaged: expected the resolved study (sections metric, decision, "
                         f"resolved; {type(e).__name__} {e}); restore it from the original study file with "
                         f"`autoresearch study run FILE`") from None
    live = is_running(sdir)
    running = state.running if live else {}
    trials = list(state.trials.values())
    base = {t.index: t.metric for t in trials if t.arm == BASELINE and t.ok and t.metric is not None}
    rows = []
    for arm in arms:
        mine = [t for t in trials if t.arm == arm]
        ok = [t for t in mine if t.ok and t.metric is not None]
        planned = state.planned.get(arm) if arm != BASELINE else max(state.planned.values(), default=None)
        v = state.verdicts.get(arm)
        row = ArmStatus(arm, len(ok), planned, sum(1 for tid in running if arm_of(tid) == arm), len(mine) - len(ok),
                        sum(float(t.metric) for t in ok if t.metric is not None) / len(ok) if ok else None,
                        verdict=v.verdict if v else "")
        pairs = [(float(t.metric), float(base[t.index])) for t in ok
                 if t.metric is not None and t.index in base and base[t.index] is not None]
        if arm != BASELINE and len(pairs) >= 2:
            s = summarize([a for a, _ in pairs], [b for _, b in pairs], direction, conf=v.conf if v else 1 - alpha)
            row.delta, row.lo, row.hi, row.p = s.mean, s.lo, s.hi, s.p
        rows.append(row)
    where = "running" if live else ("done" if state.done else "stopped")
    return StudyStatus(state.name, state.stage, metric, rows, where, state.wall_seconds(), len(state.trials))

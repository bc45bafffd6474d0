"""The pipeline's state: `DIR/.autoresearch/pipeline.yaml`, typed, validated on read, written atomically.

One file holds where a research run stands — the stage, each idea version's status and numbers, every gate decision,
a history with times, the budget spent — so `research resume` after a `kill -9` at any moment continues from the last
save without redoing finished work (the save is `atomic_write_yaml`: the old file or the new one, never half). A
damaged file is a one-line PipelineError naming the file and the field, never a traceback and never overwritten.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import yaml

from autoresearch.errors import ConfigError, PipelineError
from autoresearch.harness.atomic import atomic_write_yaml
from autoresearch.harness.config import check_ranges, from_dict, param, require, to_dict
from autoresearch.research.study import BaselineRecord

if TYPE_CHECKING:
    from autoresearch.pipeline.workspace import Workspace

__all__ = [
    "STATE_VERSION", "STAGES", "RUN_STATUSES", "VERSION_STATUSES", "Attempt", "VersionRecord", "GateDecision",
    "HistoryEvent", "BudgetUsed", "PipelineState", "load_state", "save_state", "state_exists", "record", "now",
    "find_version", "new_state",
]

STATE_VERSION = 1
STAGES = ("ideation", "design", "implementation", "training", "analysis", "report", "done")
RUN_STATUSES = ("running", "waiting", "decided", "done", "stopped", "escalated")
VERSION_STATUSES = ("planned", "implementing", "implemented", "training", "analysed", "kept", "rejected",
                    "inconclusive", "crashed", "escalated")

Stage = Literal["ideation", "design", "implementation", "training", "analysis", "report", "done"]
RunStatus = Literal["running", "waiting", "decided", "done", "stopped", "escalated"]
VersionStatus = Literal["planned", "implementing", "implemented", "training", "analysed", "kept", "rejected",
                        "inconclusive", "crashed", "escalated"]


def now() -> str:
    """The current time as an ISO 8601 string with the UTC offset, to the second (what the state records)."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


@dataclass
class Attempt:
    """One failed implementation attempt of a version (also a block in logs/errors.log)."""

    section: ClassVar[str] = "attempt"
    kind: str = param("", "the failed step: protected | compile | lint | design | checks | regression | coder ...")
    n: int = param(1, "attempt number within its kind (1..3)", ge=1)
    error_head: str = param("", "first lines of the error")
    error_tail: str = param("", "last lines of the error (empty when it is short)")
    diff_path: str = param("", "the attempt's diff, relative to the workspace")
    at: str = param("", "when it failed (ISO time)")

    def __post_init__(self) -> None:
        check_ranges(self, "attempt")


@dataclass
class VersionRecord:
    """One idea version: branch idea/<name>/v<k>, its task, attempts, study and verdict."""

    section: ClassVar[str] = "version"
    name: str = param("", "idea name (letters, digits, _ . -)")
    k: int = param(1, "version number of the idea", ge=1)
    branch: str = param("", "git branch idea/<name>/v<k>")
    worktree: str = param("", "path of the worktree while it exists, else empty")
    status: VersionStatus = param("planned", "where this version stands")
    task: dict[str, Any] = param({}, "the task (TaskSpec.to_dict()): flags, files, expected effect")
    base_commit: str = param("", "commit the branch started from")
    attempts: list[Attempt] = param([], "failed implementation attempts, in order")
    diff_path: str = param("", "the version's final diff (ideas/<name>/v<k>.diff), relative to the workspace")
    study_dir: str = param("", "the version's study folder")
    verdict: str = param("", "the research verdict of the idea arm (KEEP, DISCARD, ...)")
    metrics: dict[str, Any] = param({}, "baseline_mean, idea_mean, delta, ci_low, ci_high, p_value, n_seeds ...")
    analysis: dict[str, Any] = param({}, "the analyzer's `kind` and one-line `summary`")
    lesson: str = param("", "what this version taught (shown in the report)")
    integrity_hash: str = param("", "protected_hash the version's study was measured with")
    started_at: str = param("", "ISO time")
    finished_at: str = param("", "ISO time, empty while running")

    def __post_init__(self) -> None:
        check_ranges(self, "version")

    @property
    def label(self) -> str:
        """`<name>/v<k>`, how gates and reports name the version."""
        return f"{self.name}/v{self.k}"


@dataclass
class GateDecision:
    """One decision at a stage gate."""

    stage: str = param("", "the gated stage")
    version: str = param("", "the version it was about (<name>/v<k>), or empty")
    mode: Literal["human", "auto-judge", "auto"] = param("auto", "gate mode")
    decision: Literal["approve", "revise", "reject"] = param("approve", "the decision")
    note: str = param("", "why (the judge's reasons, a person's note)")
    by: str = param("", "human | judge:<spec> | auto")
    at: str = param("", "ISO time")


@dataclass
class HistoryEvent:
    """One line of the run's history."""

    at: str = param("", "ISO time")
    stage: str = param("", "the stage it happened in")
    event: str = param("", "short name of what happened")
    detail: str = param("", "one line")


@dataclass
class BudgetUsed:
    """What the run has spent of workspace.yaml's `budgets`."""

    section: ClassVar[str] = "budget_used"
    versions: int = param(0, "versions started", ge=0)
    trials: int = param(0, "trials run", ge=0)
    seconds: float = param(0.0, "wall-clock seconds of the run", ge=0)

    def __post_init__(self) -> None:
        check_ranges(self, "budget_used")


@dataclass
class PipelineState:
    """The whole state of a research run."""

    version: int = param(STATE_VERSION, "file format")
    idea: str = param("", "the idea text the user gave (empty: explore the flag space)")
    stage: Stage = param("ideation", "current stage")
    status: RunStatus = param("running", "running | waiting (at a human gate) | decided (a gate was decided: resume "
                              "goes on) | done | stopped | escalated")
    waiting_for: str = param("", "the gate the run waits at (stage or stage:version), or empty")
    versions: list[VersionRecord] = param([], "every idea version, in order")
    gates: list[GateDecision] = param([], "every gate decision, in order")
    history: list[HistoryEvent] = param([], "what happened, in order")
    budget_used: BudgetUsed = param(BudgetUsed(), "what was spent")
    baseline: BaselineRecord | None = param(None, "the baseline (value, tolerance, source) once recorded")
    base_commit: str = param("", "the workspace commit idea branches start from")
    integrity_hash: str = param("", "protected_hash when the run started")
    options: dict[str, Any] = param({}, "the run's command-line choices (roles, gate overrides, budgets) for resume")
    run: int = param(1, "number of the current run: each `research run` on a finished workspace starts the next", ge=1)
    run_from: int = param(0, "index in `versions` of the current run's first version (earlier runs' are history)",
                          ge=0)
    started_at: str = param("", "ISO time")
    updated_at: str = param("", "ISO time of the last save")

    def __post_init__(self) -> None:
        require(self.version == STATE_VERSION, "version", self.version, f"must be {STATE_VERSION} (the file format "
                "this autoresearch reads)", "upgrade autoresearch, or start a new run in a new workspace")


def record(st: PipelineState, stage: str, event: str, detail: str = "") -> HistoryEvent:
    """Append a history event (now) to `st` and return it; the caller saves."""
    ev = HistoryEvent(at=now(), stage=stage, event=event, detail=detail)
    st.history.append(ev)
    return ev


def find_version(st: PipelineState, name: str, k: int) -> VersionRecord | None:
    """The record of version `k` of idea `name`, or None."""
    return next((v for v in st.versions if v.name == name and v.k == k), None)


def _path(ws: Workspace | Path) -> Path:
    return ws.state_file if not isinstance(ws, Path) else ws


def state_exists(ws: Workspace | Path) -> bool:
    """Whether a run was started in the workspace (its pipeline.yaml exists)."""
    return _path(ws).is_file()


def load_state(ws: Workspace | Path) -> PipelineState:
    """Read and validate `.autoresearch/pipeline.yaml` (or the file `ws`). Missing, unreadable, not YAML, not a
    mapping, or a bad field: a one-line PipelineError naming the file and the field."""
    path = _path(ws)
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineError(f"no research run in this workspace ({shown} does not exist); start one with "
                            "`autoresearch research run`") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PipelineError(f"cannot read {shown} ({type(e).__name__}: {e}); restore it from a backup or start a "
                            "new run") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise PipelineError(f"{shown} is not valid YAML{at}; restore it from a backup or start a new run") from None
    if not isinstance(data, dict):
        raise PipelineError(f"{shown} must hold a mapping (the pipeline state), got "
                            f"{type(data).__name__ if data is not None else 'an empty file'}; restore it from a "
                            "backup or start a new run")
    try:
        return from_dict(PipelineState, data)
    except ConfigError as e:
        raise PipelineError(f"{shown}: {e}") from None


def save_state(ws: Workspace | Path, st: PipelineState) -> Path:
    """Write `st` atomically (temp + fsync + rename), stamping `updated_at`; returns the file."""
    path = _path(ws)
    st.updated_at = now()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_yaml(path, to_dict(st))
    return path


def new_state(idea: str = "", **kw: Any) -> PipelineState:
    """A fresh state (stage ideation, status running) started now."""
    t = now()
    return PipelineState(idea=idea, started_at=t, updated_at=t, **kw)


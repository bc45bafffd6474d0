"""The state file of a study (`studies/<name>/state.json`) as typed records: `StudyState` and what it holds.

The state says which stages are done (`StageStatus`), every finished trial with its numbers (`TrialRecord`), the
planned seeds per arm, the latest verdicts (`Verdict`), the baseline measurement (`BaselineState`), the regression
plan (`RegressionPlan`) and every runner session (`RunSession`). It is read and checked field by field on load and
rewritten atomically after every change (temp file + `os.replace`), so a `kill -9` at any moment leaves the last
complete state; `study resume` continues from it. Trials that finished after the last save (the child wrote its
result, the runner died before recording it) are adopted from their `result.json`.

The JSON layout is the one earlier versions wrote (a field missing from an older file takes its default), so old
study folders open unchanged. A state file damaged by hand or by a disk fault is refused on load with one line
naming the file, what is wrong and the fix: move it aside, and `resume` rebuilds it from study.yaml and the trials'
result files (every finished trial is adopted again, so nothing is trained twice).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from threading import RLock
from typing import Any, TypeVar

from autoresearch.errors import StudyError
from autoresearch.harness.atomic import atomic_write_text
from autoresearch.research.verdicts import Verdict

__all__ = ["StudyState", "TrialRecord", "StageStatus", "BaselineState", "AcceptedBaseline", "RegressionPlan",
           "RunSession", "STAGES", "now"]

STAGES = ("checks", "baseline", "regression", "trials", "report")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class TrialRecord:
    """One finished trial (after retries), as the state keeps it and the ledger repeats it."""

    trial: str
    """trial id (`<arm>-s<seed>`, `regression-g<gen>-<k>`)."""
    arm: str
    status: str
    """ok | crashed | diverged."""
    seed: int | None = None
    index: int | None = None
    """pairing index: seed i of an idea is paired with baseline index i (None for regression runs)."""
    metric: float | None = None
    """the study's metric; None unless status is ok."""
    metrics: dict[str, Any] = field(default_factory=dict)
    exp: str = ""
    error: str = ""
    attempts: int = 1
    attempt: int = 1
    train_wall_s: float = 0.0
    wall_s: float = 0.0
    memory_gb: float = 0.0
    infra: bool = False
    finished_at: str = ""
    adopted: bool = False
    """found on disk (result.json) instead of recorded when the trial finished."""
    run: int = 0
    """runner session (1-based) that recorded it; `--retry-crashed` re-runs crashes of earlier sessions only."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class StageStatus:
    """How a stage ended; the optional fields are what that stage found (unset ones are left out of the file)."""

    status: str
    """done | failed."""
    at: str = ""
    error: str = ""
    checks: list[dict[str, Any]] | None = None
    """checks: every check's name, status and detail."""
    seconds: float | None = None
    """checks: wall time of the checks subprocess."""
    mean: float | None = None
    """baseline: measured mean."""
    recorded: float | None = None
    """baseline: the value it had to reproduce."""
    rel: float | None = None
    """baseline: relative deviation of the mean from the recorded value."""
    note: str = ""
    result: str = ""
    """regression: recorded | reproduced."""
    steps: int | None = None
    """regression: steps of the trace."""
    store: str = ""
    """regression: the trace file."""
    rounds: int | None = None
    """trials: decision rounds taken."""
    markdown: str = ""
    """report: report.md written."""
    html: str = ""
    """report: report.html written."""

    @property
    def done(self) -> bool:
        return self.status == "done"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "at": self.at}
        for f in dataclasses.fields(self)[2:]:
            value = getattr(self, f.name)
            if value != f.default:
                out[f.name] = value
        return out


@dataclass
class AcceptedBaseline:
    """A baseline value accepted by `study accept-baseline` in place of the study file's recorded one."""

    value: float
    at: str = ""
    previous: float | None = None
    values: list[float] | None = None


@dataclass
class BaselineState:
    """What the baseline seeds measured, and an accepted replacement of the recorded value."""

    measured: float | None = None
    values: list[float] = field(default_factory=list)
    recorded: float | None = None
    accepted: AcceptedBaseline | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.measured is not None:
            out.update(measured=self.measured, values=self.values, recorded=self.recorded)
        if self.accepted is not None:
            out["accepted"] = dataclasses.asdict(self.accepted)
        return out


@dataclass
class RegressionPlan:
    """Decided once per generation: record a new trace (2 runs) or compare with the stored one (1 run)."""

    gen: int
    key: str
    store: str
    runs: int
    fingerprint: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunSession:
    """One runner process that worked on the study."""

    pid: int
    started: float
    ended: float | None = None
    last_progress: float | None = None
    workers: int = 1


@dataclass
class StudyState:
    """The state of one study, bound to its file; mutate under `lock`, then `save()`."""

    path: Path
    name: str
    definition_hash: str
    version: int = 1
    created_at: str = ""
    stage: str = STAGES[0]
    """the stage the runner is in (or stopped in)."""
    stages: dict[str, StageStatus] = field(default_factory=dict)
    trials: dict[str, TrialRecord] = field(default_factory=dict)
    planned: dict[str, int] = field(default_factory=dict)
    """idea arm -> seeds planned (RETEST raises it up to seeds.max)."""
    round: int = 0
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    baseline: BaselineState = field(default_factory=BaselineState)
    regression: RegressionPlan | None = None
    runs: list[RunSession] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    done: bool = False
    definition: dict[str, Any] = field(default_factory=dict)
    registry: str = ""
    """experiment registry chosen by the first run; `resume` without --registry keeps it."""
    commit: str = ""
    running: dict[str, str] = field(default_factory=dict)
    """trial id -> start time of the trials running now (meaningful only while a runner holds the lock)."""
    generations: dict[str, int] = field(default_factory=dict)
    """re-runnable stage (checks, regression) -> generation, bumped by a failure so resume runs it anew."""
    lock: RLock = field(default_factory=RLock, repr=False, compare=False)

    # --- file ---

    @classmethod
    def load(cls, path: str | Path) -> StudyState:
        path = Path(path)
        fix = (f"move it aside (`mv {path} {path}.bad`) and `autoresearch study resume {path.parent.name}` rebuilds "
               f"it from study.yaml and the trials' result files")
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise StudyError(f"no state file {path}; is {path.parent.name} a study? run `autoresearch study run FILE`") from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise StudyError(f"state file {path} is damaged: not JSON ({type(e).__name__} at byte "
                             f"{getattr(e, 'pos', getattr(e, 'start', '?'))}); {fix}") from None
        try:
            return cls.from_dict(path, data)
        except _Invalid as e:
            raise StudyError(f"state file {path} is damaged: {e}; {fix}") from None

    @classmethod
    def create(cls, path: str | Path, name: str, definition_hash: str,
               definition: dict[str, Any] | None = None) -> StudyState:
        state = cls(Path(path), name, definition_hash, created_at=now(), definition=definition or {})
        state.save()
        return state

    def save(self) -> None:
        with self.lock:
            atomic_write_text(self.path, json.dumps(self.to_dict(), indent=1, default=str))

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version, "name": self.name, "definition_hash": self.definition_hash,
            "created_at": self.created_at, "stage": self.stage,
            "stages": {k: s.to_dict() for k, s in self.stages.items()},
            "trials": {k: t.to_dict() for k, t in self.trials.items()},
            "planned": dict(self.planned), "round": self.round,
            "verdicts": {k: v.to_dict() for k, v in self.verdicts.items()},
            "baseline": self.baseline.to_dict(),
            "regression": dataclasses.asdict(self.regression) if self.regression else {},
            "runs": [dataclasses.asdict(r) for r in self.runs], "environment": self.environment, "done": self.done,
            "definition": self.definition, "registry": self.registry, "commit": self.commit,
            "running": dict(self.running), "generations": dict(self.generations),
        }

    @classmethod
    def from_dict(cls, path: Path, data: Any) -> StudyState:
        """Check a parsed state document and build the typed state; raises _Invalid naming the first problem."""
        if not isinstance(data, dict):
            raise _Invalid(f"expected a JSON object, got {type(data).__name__}")
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise _Invalid(f"missing {', '.join(f'`{k}`' for k in missing[:4])}" + (" ..." if len(missing) > 4 else ""))
        top = _checked(cls, {k: v for k, v in data.items() if k != "path" and k != "lock"}, "")
        if top["stage"] not in STAGES:
            raise _Invalid(f"`stage` is {json.dumps(top['stage'])[:40]}, not one of {', '.join(STAGES)}")
        for stage, info in top["stages"].items():
            if stage not in STAGES or not isinstance(info, dict):
                raise _Invalid(f"`stages` holds {json.dumps(stage)[:40]}, not a record of one of {', '.join(STAGES)}")
        for tid, rec in top["trials"].items():
            if not isinstance(rec, dict) or not isinstance(rec.get("status"), str):
                raise _Invalid(f"trial record {tid!r} has no `status`")
        top["stages"] = {k: _build(StageStatus, v, f"stages.{k}") for k, v in top["stages"].items()}
        top["trials"] = {k: _build(TrialRecord, {"trial": k, "arm": "", **v}, f"trials.{k}")
                         for k, v in top["trials"].items()}
        top["verdicts"] = {k: _verdict(v, f"verdicts.{k}") for k, v in top["verdicts"].items()}
        top["baseline"] = base = _build(BaselineState, top["baseline"], "baseline")
        if base.accepted is not None:
            base.accepted = _build(AcceptedBaseline, base.accepted, "baseline.accepted")
        plan = top["regression"]
        top["regression"] = _build(RegressionPlan, plan, "regression") if plan and "runs" in plan else None
        top["runs"] = [_build(RunSession, r, f"runs[{i}]") for i, r in enumerate(top["runs"])]
        for key, kind in (("planned", int), ("generations", int), ("running", str)):
            bad = [k for k, v in top.get(key, {}).items() if not isinstance(v, kind) or isinstance(v, bool)]
            if bad:
                raise _Invalid(f"`{key}.{bad[0]}` must be {'an integer' if kind is int else 'a string'}, "
                               f"got {json.dumps(top[key][bad[0]], default=str)[:40]}")
        return cls(path, **top)

    # --- stages and trials ---

    def stage_done(self, stage: str) -> bool:
        st = self.stages.get(stage)
        return st is not None and st.done

    def set_stage(self, stage: str, status: str, **found: Any) -> None:
        """Record how `stage` ended; `found` are StageStatus fields (error, mean, result, ...)."""
        with self.lock:
            self.stages[stage] = StageStatus(status, now(), **found)
            self.stage = stage
            self.save()

    def enter(self, stage: str) -> None:
        with self.lock:
            self.stage = stage
            self.save()

    def trial(self, trial_id: str) -> TrialRecord | None:
        return self.trials.get(trial_id)

    def record_trial(self, record: TrialRecord) -> None:
        with self.lock:
            self.trials[record.trial] = record
            self.running.pop(record.trial, None)
            if self.runs:
                self.runs[-1].last_progress = time.time()
            self.save()

    def mark_running(self, trial_id: str, on: bool) -> None:
        with self.lock:
            if on:
                self.running[trial_id] = now()
            else:
                self.running.pop(trial_id, None)
            self.save()

    def generation(self, what: str) -> int:
        """Generation of a re-runnable stage (checks, regression): bumped by a failure so resume runs it anew."""
        return int(self.generations.get(what, 1))

    def bump_generation(self, what: str) -> None:
        with self.lock:
            self.generations[what] = self.generation(what) + 1
            self.save()

    # --- runner sessions ---

    def start_run(self, workers: int) -> None:
        with self.lock:
            self.running = {}
            t = time.time()
            self.runs.append(RunSession(os.getpid(), t, None, t, workers))
            self.save()

    def end_run(self) -> None:
        with self.lock:
            if self.runs:
                self.runs[-1].ended = time.time()
            self.save()

    def wall_seconds(self) -> float:
        """Wall time of all runner sessions; a killed session counts up to its last recorded progress."""
        total = 0.0
        for r in self.runs:
            end = r.ended or r.last_progress or r.started
            total += max(0.0, end - r.started)
        return total


# --- reading and checking ---------------------------------------------------------------------------------------


class _Invalid(Exception):
    """A problem of a state document, in a few words (turned into a StudyError naming the file and the fix)."""


_REQUIRED = ("version", "name", "definition_hash", "stage", "stages", "trials", "planned", "round", "verdicts",
             "baseline", "regression", "runs", "environment", "done")
"""Fields every state file since the first version holds (the others default when missing)."""

T = TypeVar("T")


def _checked(cls: type, raw: dict[str, Any], where: str) -> dict[str, Any]:
    """The known fields of `raw` after checking each against the annotation of `cls` (unknown keys are dropped)."""
    hints = _hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            continue
        value = raw[f.name]
        hint = hints[f.name]
        if not _accepts(hint, value):
            raise _Invalid(f"`{where}{f.name}` must be {_describe(hint)}, got {json.dumps(value, default=str)[:40]}")
        out[f.name] = value
    return out


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(cls: type[T], raw: Any, where: str) -> T:
    if not isinstance(raw, dict):
        raise _Invalid(f"`{where}` must be an object, got {json.dumps(raw, default=str)[:40]}")
    kw = _checked(cls, raw, f"{where}.")
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in kw and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise _Invalid(f"`{where}` has no `{f.name}`")
    return cls(**kw)


def _verdict(raw: Any, where: str) -> Verdict:
    _build(_VerdictFields, raw, where)
    return Verdict.from_dict(raw)


@dataclass
class _VerdictFields:
    """The fields of a stored Verdict that readers rely on (floats may be null: not finite)."""

    idea: str
    verdict: str
    code: str
    reason: str
    n: int


def _accepts(hint: Any, value: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, value) for a in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if dataclasses.is_dataclass(hint):
        return isinstance(value, dict)
    return isinstance(value, origin or hint)


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "an object",
             list: "a list", type(None): "null"}
    return names.get(typing.get_origin(hint) or hint, "an object")

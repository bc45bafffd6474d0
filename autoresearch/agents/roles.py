"""The role interface of the research pipeline: what the orchestrator hands each role and what it gets back.

Hub and spoke (DESIGN.md §7): the orchestrator (`pipeline/orchestrator.py`) decides, roles execute, and roles never
talk to each other. Each role is a small abstract class with one or two methods; the rule-based implementations of
this package (`planner_none`, `judge_rules`, `analyzer_rules`, `reviser_none`) and the coders (`agents/coders/`)
implement them, and the language-model roles plug into the SAME classes (issue 11). Everything that crosses a role
boundary is a plain dataclass here, YAML-serialisable with `to_dict` / `from_dict`, so that it can be written to
`design/tasks.yaml`, `pipeline.yaml` and an LLM's structured output alike. (`Flag` is defined with the flag space
in testbeds/flags.py, since `Testbed.flag_space` returns it, and re-exported here.)

The words:
- a `Flag` is one config key an idea switches: `off` is the baseline value (the config default, so the baseline code
  path is untouched), `on` the idea's value; numeric flags also carry the searched range (`low`, `high`, `log`);
- a `TaskSpec` is one idea version: its flags, the files a coder may touch, the expected effect;
- a `StudySummary` is a finished study boiled down to the numbers the analyzer and the reviser read.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from autoresearch.errors import ConfigError
from autoresearch.testbeds.flags import FLAG_TYPES, Flag

__all__ = [
    "Flag",
    "TaskSpec",
    "Design",
    "CoderResult",
    "Verdict",
    "Analysis",
    "Evidence",
    "PlanContext",
    "StudySummary",
    "Planner",
    "Coder",
    "Judge",
    "Analyzer",
    "Reviser",
    "FLAG_TYPES",
    "DECISIONS",
    "ANALYSIS_KINDS",
]

DECISIONS: tuple[str, ...] = ("approve", "revise", "reject")
ANALYSIS_KINDS: tuple[str, ...] = ("win", "noise", "systems", "theory", "bug")


def _plain(v: Any) -> Any:
    """A YAML-safe copy: dataclasses -> dicts, tuples -> lists, non-finite floats -> None."""
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, Path):
        return str(v)
    return v


def _known(cls: type, d: Any, what: str) -> dict[str, Any]:
    """The keys of `d` that are fields of `cls`; a one-line ConfigError for a non-mapping or an unknown key."""
    if not isinstance(d, dict):
        raise ConfigError(f"{what} must be a mapping, got {type(d).__name__}; write it as `key: value` lines")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"{what} has unknown key(s) {', '.join(map(str, unknown))}; "
                          f"use {', '.join(sorted(names))}")
    return dict(d)


# --- what crosses the role boundaries -------------------------------------------------------------------------------


@dataclass
class TaskSpec:
    """One idea version for the coder and the study: flags off = baseline arm, flags on = idea arm."""

    idea: str
    """the idea as the user (or the planner) said it."""
    name: str
    """short name, usable in a git branch (`idea/<name>/v<k>`): lowercase letters, digits, `-` and `.`."""
    description: str
    flags: list[Flag] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    """files the coder may touch (workspace-relative); [] when the flags already exist."""
    expected_effect: str = ""
    effect_size: float | None = None
    """expected Δ of the metric (positive = better), when the planner has a guess."""
    metric: str = ""
    needs_code: bool = False
    """False: every flag already exists (coder `none`); True: a coder must add the flags first."""

    def on_overrides(self) -> dict[str, Any]:
        """The idea arm's `--set` overrides."""
        return {f.key: f.on for f in self.flags}

    def off_overrides(self) -> dict[str, Any]:
        """The baseline arm's overrides (the declared off values; equal to the config defaults)."""
        return {f.key: f.off for f in self.flags}

    def signature(self) -> frozenset[tuple[str, str]]:
        """What the task changes, independent of its name: {(key, repr(on))}; equal signatures = the same idea."""
        return frozenset((f.key, repr(f.on)) for f in self.flags)

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_dict(cls, d: Any) -> TaskSpec:
        d = _known(cls, d, "a task")
        for k in ("idea", "name"):
            if k not in d:
                raise ConfigError(f"task {d.get('name', '?')} lacks `{k}`; every task has idea, name and flags")
        d.setdefault("description", d["idea"])
        d["flags"] = [Flag.from_dict(f) for f in d.get("flags") or []]
        d["files"] = [str(f) for f in d.get("files") or []]
        return cls(**d)


@dataclass
class Design:
    """The design stage's output: design/plan.md, design/tasks.yaml, design/metrics.yaml (written by the orchestrator)."""

    plan_md: str
    tasks: list[TaskSpec]
    metrics: dict[str, Any] = field(default_factory=dict)
    """e.g. {"primary": "val_loss", "direction": "lower", "also": ["tokens_per_s", "peak_memory_mb"]}."""

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass
class CoderResult:
    """What a coder reports; the edit itself is read back from the worktree as the git diff."""

    ok: bool
    log: str = ""
    """the coder's output (capped by the coder), shown in errors.log on failure."""
    exit_code: int | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass
class Verdict:
    """A judge's decision on an implemented version: approve, revise (with the blocking reasons) or reject."""

    decision: Literal["approve", "revise", "reject"]
    reasons: list[str] = field(default_factory=list)
    """one line per blocking reason (empty on approve)."""

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ConfigError(f"verdict decision {self.decision!r} is not one of {', '.join(DECISIONS)}")

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass
class Analysis:
    """An analyzer's reading of a finished study (written to analysis.md)."""

    kind: Literal["win", "noise", "systems", "theory", "bug"]
    summary: str
    """one readable line."""
    evidence: dict[str, Any] = field(default_factory=dict)
    """the numbers behind the kind (Δ, CI, p, n, tokens/s and memory moves with their noise...)."""
    text: str = ""
    """a Markdown body (an LLM analyzer's reasoning, analysis.md); "" for the rule-based analyzer."""

    def __post_init__(self) -> None:
        if self.kind not in ANALYSIS_KINDS:
            raise ConfigError(f"analysis kind {self.kind!r} is not one of {', '.join(ANALYSIS_KINDS)}")

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass
class Evidence:
    """What the implementation stage found out about an edit; the judge reviews it."""

    diff: str = ""
    changed_paths: list[str] = field(default_factory=list)
    editable_ok: bool = False
    """every changed path is editable and the protected hash is unchanged."""
    compile_ok: bool = False
    lint_ok: bool = False
    checks_ok: bool = False
    """the testbed's integration checks passed on the worktree's code."""
    regression_ok: bool = False
    """flag off -> per-step losses bit-identical to the base commit's trace."""
    details: str = ""
    """the failures in words (one line each), e.g. the regression's first differing step."""

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass
class PlanContext:
    """What a planner sees."""

    idea: str
    """the user's idea text ("" = explore the flag space)."""
    testbed: Any
    """the workspace's `Testbed` (its metrics and directions, `flag_space`)."""
    base_config: Any
    """the baseline config (the workspace's preset + overrides)."""
    flag_space: list[Flag]
    """`testbed.flag_space(base_config)`: candidate flags; numeric ones have on=None and a range."""
    tried: list[TaskSpec] = field(default_factory=list)
    """every task already proposed in this workspace (finished or not), oldest first."""
    kept: list[TaskSpec] = field(default_factory=list)
    """the tasks whose study said KEEP, oldest first."""
    seed: int = 0
    metric: str = ""
    """the study metric (default: the testbed's first metric)."""
    user_flags: dict[str, str] = field(default_factory=dict)
    """`--flag KEY=VALUE` of `research run`, as written (values parsed as YAML scalars by the planner)."""
    coder_edits: bool = False
    """True when the coder edits code (patch, cmd, claude, codex, aider): the idea text becomes ONE task."""
    idea_log: str = ""
    """the workspace's idea log as text (versions, verdicts, lessons), for planners that read it (the LLM ones);
    the rule-based planner reads `tried`, `kept` and what `observe` told it instead."""


@dataclass
class StudySummary:
    """A finished study of one version, as the analyzer and reviser read it. Δ = idea − baseline oriented so that
    positive is better (research/verdicts.py); means are in metric units; memory in MB."""

    verdict: str
    """KEEP | DISCARD | RETEST | CRASH (the research verdict)."""
    metric: str
    direction: str
    """lower | higher."""
    baseline_mean: float = math.nan
    idea_mean: float = math.nan
    delta: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    p_value: float = math.nan
    n_seeds: int = 0
    baseline_tokens_per_s: float = math.nan
    idea_tokens_per_s: float = math.nan
    baseline_memory: float = math.nan
    idea_memory: float = math.nan
    statuses: dict[str, list[str]] = field(default_factory=dict)
    """arm ("baseline" | "idea") -> the status of each trial (ok | diverged | crashed | ...)."""
    per_seed: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    """arm -> quantity ("tokens_per_s", "peak_memory_mb", the metric) -> one value per seed; the analyzer's noise
    estimate comes from their spread (empty: a fixed relative floor is used)."""
    error: str = ""
    """the first crashed trial's error, when any."""
    curves: dict[str, list[list[float]]] = field(default_factory=dict)
    """arm -> [[step, mean training loss over the arm's ok seeds], ...], at most 20 points (version_study.summarize)."""

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_dict(cls, d: Any) -> StudySummary:
        d = _known(cls, d, "a study summary")
        floats = {f.name for f in dataclasses.fields(cls) if f.type == "float"}
        return cls(**{k: (math.nan if v is None and k in floats else v) for k, v in d.items()})


# --- the roles --------------------------------------------------------------------------------------------------------


class Planner(ABC):
    """Ideation: turns the user's idea (or the flag space) into tasks. Never writes code."""

    spec: ClassVar[str] = ""
    """the role spec that makes this planner (`none`, later `openai:MODEL`...)."""

    @abstractmethod
    def propose(self, ctx: PlanContext, n: int = 1) -> list[TaskSpec]:
        """Up to `n` new tasks, none with the signature of a task in `ctx.tried`; [] = nothing left to propose."""

    def observe(self, task: TaskSpec, result: float | None, kept: bool) -> None:  # noqa: B027 - optional hook
        """Feedback after a task's study: `result` = its Δ (positive = better; None = crashed / no verdict), `kept`
        = the study said KEEP. A resumed orchestrator replays it for every finished version, oldest first."""

    def design(self, ctx: PlanContext, tasks: list[TaskSpec]) -> Design:
        """The design stage's files for `tasks` (design/plan.md, tasks.yaml, metrics.yaml). Default: a plan.md that
        lists each task's flags (off -> on), files and expected effect; an LLM planner writes its own."""
        metrics = dict(getattr(ctx.testbed, "metrics", {}) or {})
        primary = ctx.metric or (tasks[0].metric if tasks and tasks[0].metric else next(iter(metrics), ""))
        also = [m for m in ("tokens_per_s", "peak_memory_mb") if m != primary]
        lines = [f"# Plan: {ctx.idea or 'explore the flag space'}", "",
                 f"Testbed `{getattr(ctx.testbed, 'spec', '?')}`; metric `{primary}` "
                 f"({metrics.get(primary, 'lower')} is better). Baseline arm = every flag at its off value (the "
                 "config default, so the baseline code path is untouched); idea arm = the flags on.", ""]
        for t in tasks:
            lines += [f"## {t.name}", "", t.description, ""]
            lines += [f"- `{f.key}` ({f.type}): off `{f.off!r}` -> on `{f.on!r}`" for f in t.flags] or \
                ["- flags: added by the coder (read back from the edited config)"]
            lines += [f"- files to touch: {', '.join(t.files) if t.files else 'none (the flags exist)'}",
                      f"- needs code: {'yes' if t.needs_code else 'no'}",
                      f"- expected effect: {t.expected_effect or 'unknown'}"
                      + (f" (size {t.effect_size:g})" if t.effect_size is not None else ""), ""]
        return Design("\n".join(lines), list(tasks),
                      {"primary": primary, "direction": metrics.get(primary, "lower"), "also": also})


class Coder(ABC):
    """Implementation: edits the worktree so that the task's flags exist (off = baseline path untouched)."""

    spec: ClassVar[str] = ""
    edits: ClassVar[bool] = True
    """False for coder `none` (the idea is an existing flag; nothing is run)."""

    @abstractmethod
    def implement(self, task: TaskSpec, worktree: Path, feedback: str | None = None) -> CoderResult:
        """Edit `worktree` for `task`; `feedback` is the capped error of the last failed attempt (fix only that)."""


class Judge(ABC):
    """Review: stateless; sees the task and the evidence only, never the coder's conversation."""

    spec: ClassVar[str] = ""

    @abstractmethod
    def review(self, task: TaskSpec, evidence: Evidence) -> Verdict:
        """approve, or revise/reject with one line per blocking reason."""


class Analyzer(ABC):
    """Analysis: reads a finished study and says why it came out as it did."""

    spec: ClassVar[str] = ""

    @abstractmethod
    def analyze(self, task: TaskSpec, study: StudySummary) -> Analysis:
        """win | noise | systems | theory | bug, with the numbers as evidence."""


class Reviser(ABC):
    """Revision: turns an analysis into the next version of the idea, or stops it."""

    spec: ClassVar[str] = ""

    @abstractmethod
    def revise(self, task: TaskSpec, analysis: Analysis, history: list[tuple[TaskSpec, Analysis]]) -> TaskSpec | None:
        """The next version's task (v<k+1>), or None = stop this idea. `history` = the idea's earlier versions with
        their analyses, oldest first (`task`/`analysis` are the latest and not in it)."""

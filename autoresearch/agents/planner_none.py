"""Planner `none`: ideas from the testbed's declared flag space, numeric values from optuna TPE — no language model.

What it proposes, in this order of precedence:
1. The user's idea with a coder that edits (patch, cmd, claude, codex, aider), or with `--flag KEY=VALUE`: ONE task,
   the idea text as its description, its flags from `--flag` (a key the config lacks yet has off=None; after the
   edit the orchestrator calls `testbeds.flags.complete_flags(task.flags, before_cfg, after_cfg)`, which fills the
   off values from the edited config's defaults and adds each new bool field the edit introduced — found by
   `flags_from_config_diff` — with on = its negation; a new non-bool field needs `--flag KEY=VALUE`).
2. After a KEEP (`observe(kept=True)`, or `ctx.kept`): neighbours of the latest winner — the winner's flags plus one
   more flag of the space, or the winner's numeric values re-sampled in a narrowed range around it.
3. Otherwise the flag space itself: each bool/choice alternative once, and numeric flags sampled with TPE.

Each candidate is a "slot": a context (flags already on) plus one more flag — a fixed alternative, or a numeric key
whose value TPE samples. The slots are shuffled by the seed; each proposal takes the slot used least so far (a
fixed alternative only while untried), so discrete ideas and the first value of each numeric key come first, then
TPE keeps refining the numeric keys. Everything is a function of the seed, `ctx.tried` and the results `observe`
recorded: each TPE value comes from a fresh in-memory study holding that slot's finished trials (value = the
study's Δ, positive = better; a crash is a FAIL trial) and a sampler seeded from (seed, slot, count). So a resumed
orchestrator that replays `observe` for its finished versions proposes exactly what an uninterrupted one would.
Never proposes a task whose flags (`TaskSpec.signature`) were tried.
"""

from __future__ import annotations

import math
import random
import re
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from autoresearch.agents.roles import Flag, PlanContext, Planner, TaskSpec
from autoresearch.errors import ConfigError
from autoresearch.testbeds.flags import parse_user_flags

__all__ = ["NonePlanner", "suggest_value", "task_name", "NEAR_FRACTION", "TPE_STARTUP"]

NEAR_FRACTION = 0.15
"""A winner's neighbourhood: ±15% of the declared range's width (log-width on a log range), ±1 for ints."""
TPE_STARTUP = 3
"""Random samples before TPE models a slot (optuna's default of 10 is more than a pipeline's budget of versions)."""
_RETRIES = 8
_NO_RESULT = object()


@dataclass(frozen=True)
class _Slot:
    context: tuple[Flag, ...]
    flag: Flag
    """a fixed alternative (on set), or a numeric flag (on None) with the range to sample."""

    @property
    def id(self) -> str:
        ctx = ",".join(f"{f.key}={f.on!r}" for f in self.context)
        return f"{ctx}|{self.flag.key}" + ("" if self.flag.numeric else f"={self.flag.on!r}")

    def holds(self, task: TaskSpec) -> bool:
        """`task` is this slot's context plus one flag of this slot's key (and value, for a fixed alternative)."""
        if len(task.flags) != len(self.context) + 1:
            return False
        rest = [f for f in task.flags if f.key != self.flag.key]
        mine = [f for f in task.flags if f.key == self.flag.key]
        ctx = {(f.key, repr(f.on)) for f in self.context}
        return (len(mine) == 1 and {(f.key, repr(f.on)) for f in rest} == ctx
                and (self.flag.numeric or repr(mine[0].on) == repr(self.flag.on)))


class NonePlanner(Planner):
    """`--planner none`. `observe` must be called after each study (the orchestrator does, and replays it on resume)."""

    spec = "none"

    def __init__(self) -> None:
        self._results: dict[frozenset[tuple[str, str]], float | None] = {}
        self._kept: list[TaskSpec] = []

    # --- the role -----------------------------------------------------------------------------------------------

    def observe(self, task: TaskSpec, result: float | None, kept: bool) -> None:
        self._results[task.signature()] = None if result is None or not math.isfinite(result) else float(result)
        if kept and all(t.signature() != task.signature() for t in self._kept):
            self._kept.append(task)

    def propose(self, ctx: PlanContext, n: int = 1) -> list[TaskSpec]:
        tried = list(ctx.tried)
        if ctx.user_flags or ctx.coder_edits:
            task = self._idea_task(ctx)
            return [] if any(t.name == task.name or (task.flags and t.signature() == task.signature())
                             for t in tried) else [task]
        kept = list(ctx.kept) + [t for t in self._kept if all(t.signature() != k.signature() for k in ctx.kept)]
        # a winner whose flags a coder added lives on its idea branch, not in this run's base config: no neighbours
        kept = [t for t in kept if not t.needs_code]
        winner = kept[-1] if kept else None
        out: list[TaskSpec] = []
        for _ in range(n):
            task = self._next(ctx, tried, winner)
            if task is None and winner is not None:
                task = self._next(ctx, tried, None)
            if task is None:
                break
            out.append(task)
            tried.append(task)
        return out

    # --- the user's idea ----------------------------------------------------------------------------------------

    def _idea_task(self, ctx: PlanContext) -> TaskSpec:
        flags = parse_user_flags([f"{k}={v}" for k, v in ctx.user_flags.items()], ctx.base_config)
        unknown = [f.key for f in flags if f.off is None]
        if unknown and not ctx.coder_edits:
            raise ConfigError(f"--flag {unknown[0]}: not a config key of the testbed, and coder none edits nothing; "
                              "use an existing key (see `train --list-flags`) or a coder that edits (patch:FILE, "
                              "cmd:PATH, claude, codex, aider)")
        words = re.findall(r"[a-z0-9]+", ctx.idea.lower())[:6]
        name = "-".join(words) if words else task_name(flags) if flags else "idea"
        metric, better = _metric(ctx)
        return TaskSpec(idea=ctx.idea or _describe(flags), name=name[:60].strip("-"),
                        description=ctx.idea or _describe(flags), flags=flags, files=[],
                        expected_effect=f"{better} {metric} than the baseline", effect_size=None, metric=metric,
                        needs_code=ctx.coder_edits)

    # --- the flag space -----------------------------------------------------------------------------------------

    def _slots(self, space: Sequence[Flag], winner: TaskSpec | None, seed: int) -> list[_Slot]:
        if winner is None:
            slots = [_Slot((), f) for f in space]
        else:
            base = tuple(winner.flags)
            keys = {f.key for f in base}
            slots = [_Slot(base, f) for f in space if f.key not in keys]
            for f in base:
                near = _near(f)
                if near is not None:
                    slots.append(_Slot(tuple(g for g in base if g.key != f.key), near))
        random.Random(f"{seed}:{winner.name if winner else ''}").shuffle(slots)
        return slots

    def _next(self, ctx: PlanContext, tried: list[TaskSpec], winner: TaskSpec | None) -> TaskSpec | None:
        seen = {t.signature() for t in tried}
        names = {t.name for t in tried}
        slots = self._slots(ctx.flag_space, winner, ctx.seed)
        counts = [sum(s.holds(t) for t in tried) for s in slots]
        for i in sorted(range(len(slots)), key=lambda j: (counts[j], j)):
            slot = slots[i]
            if not slot.flag.numeric:
                task = self._task(ctx, [*slot.context, slot.flag], names, winner)
                if counts[i] == 0 and task.signature() not in seen:
                    return task
                continue
            history = [(next(f.on for f in t.flags if f.key == slot.flag.key), self._results.get(t.signature(),
                        _NO_RESULT)) for t in tried if slot.holds(t)]
            done = [(v, r) for v, r in history if r is not _NO_RESULT]
            for attempt in range(_RETRIES):
                value = suggest_value(slot.flag, done, _seed(ctx.seed, slot.id, counts[i], attempt))  # type: ignore[arg-type]
                task = self._task(ctx, [*slot.context, slot.flag.with_on(value)], names, winner)
                if value != slot.flag.off and task.signature() not in seen:
                    return task
        return None

    def _task(self, ctx: PlanContext, flags: list[Flag], names: set[str], winner: TaskSpec | None) -> TaskSpec:
        metric, better = _metric(ctx)
        name = task_name(flags)
        k = 2
        while name in names:
            name, k = f"{task_name(flags)}-{k}", k + 1
        why = f"a neighbour of the kept {winner.name}: " if winner is not None else ""
        return TaskSpec(idea=ctx.idea or _describe(flags), name=name, description=why + _describe(flags),
                        flags=list(flags), files=[], expected_effect=f"{better} {metric} than the baseline",
                        effect_size=None, metric=metric, needs_code=False)


# --- numbers --------------------------------------------------------------------------------------------------------


def suggest_value(flag: Flag, history: Sequence[tuple[float, float | None]], seed: int) -> float | int:
    """One TPE value for the numeric `flag` in [flag.low, flag.high] (log scale when `flag.log`), given the finished
    trials of this slot: (value, result) with result = Δ (positive = better) or None (crashed). An in-memory optuna
    study with a TPESampler seeded by `seed`; values outside the range are left out of the history. Floats are
    rounded to 3 significant digits (readable names and tasks.yaml; finer steps are below seed noise)."""
    import optuna
    from optuna.distributions import FloatDistribution, IntDistribution
    from optuna.trial import TrialState, create_trial

    assert flag.low is not None and flag.high is not None, f"numeric flag {flag.key} has no range"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    is_int = flag.type == "int"
    dist = (IntDistribution(int(flag.low), int(flag.high), log=flag.log) if is_int
            else FloatDistribution(float(flag.low), float(flag.high), log=flag.log))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna's ExperimentalWarning for sampler options
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=TPE_STARTUP)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        for value, result in history:
            if value is None or not float(flag.low) <= float(value) <= float(flag.high):
                continue
            if result is None:
                study.add_trial(create_trial(params={"x": value}, distributions={"x": dist}, state=TrialState.FAIL))
            else:
                study.add_trial(create_trial(params={"x": value}, distributions={"x": dist}, value=float(result)))
        trial = study.ask()
        if is_int:
            return int(trial.suggest_int("x", int(flag.low), int(flag.high), log=flag.log))
        raw = trial.suggest_float("x", float(flag.low), float(flag.high), log=flag.log)
    return min(float(flag.high), max(float(flag.low), float(f"{raw:.3g}")))


def _near(flag: Flag) -> Flag | None:
    """The numeric `flag` (a winner's value in `on`) with its range narrowed around that value; None for others."""
    if not flag.numeric or flag.low is None or flag.high is None or flag.on is None:
        return None
    lo, hi, v = float(flag.low), float(flag.high), float(flag.on)
    if flag.type == "int":
        a, b = max(lo, v - 1), min(hi, v + 1)
    elif flag.log:
        f = (hi / lo) ** NEAR_FRACTION
        a, b = max(lo, v / f), min(hi, v * f)
    else:
        w = NEAR_FRACTION * (hi - lo)
        a, b = max(lo, v - w), min(hi, v + w)
    if not a < b:
        return None
    return Flag(flag.key, flag.type, off=flag.off, on=None, low=int(a) if flag.type == "int" else a,
                high=int(b) if flag.type == "int" else b, log=flag.log)


def _seed(seed: int, slot: str, count: int, attempt: int) -> int:
    return zlib.crc32(f"{seed}:{slot}:{count}:{attempt}".encode())


# --- words ----------------------------------------------------------------------------------------------------------


def task_name(flags: Sequence[Flag]) -> str:
    """A readable name usable in a git branch: `qk-norm-off`, `optimizer-adamw`, `muon-lr-0.031-and-mlp-swiglu`."""
    parts = []
    for f in flags:
        short = f.key.rsplit(".", 1)[-1]
        if f.type == "bool":
            value = "on" if f.on else "off"
        elif f.numeric:
            value = f"{f.on:g}" if isinstance(f.on, (int, float)) else str(f.on)
        else:
            value = str(f.on)
        parts.append(f"{short}-{value}")
    name = re.sub(r"[^a-z0-9.-]+", "-", "-and-".join(parts).lower())
    return re.sub(r"\.{2,}", ".", name).strip("-.") or "idea"


def _describe(flags: Sequence[Flag]) -> str:
    return "; ".join(f"{f.key}: {f.off!r} -> {f.on!r}" for f in flags) or "no flag yet"


def _metric(ctx: PlanContext) -> tuple[str, str]:
    metrics = dict(getattr(ctx.testbed, "metrics", {}) or {})
    metric = ctx.metric or next(iter(metrics), "")
    return metric, "higher" if metrics.get(metric) == "higher" else "lower"

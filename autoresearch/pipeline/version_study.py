"""The training stage of one idea version: an in-memory research `Study` of that version's worktree, run to a verdict.

The study is built from what is persisted — the workspace's study defaults (`workspace.yaml` `study:`), the recorded
baseline (`design/baselines.yaml`), the version's task and its worktree's testbed spec — so building it again after a
`kill -9` gives the same definition, and `run_study` continues the same study folder (finished trials are adopted from
their `result.json`, never trained again). Arms: `baseline` = every task flag at its off value, one idea arm = every
flag at its on value. Studies live in `<ws>/studies/<name>-v<k>/`, their trials' experiments in `<ws>/experiments/`.

The integration checks and the baseline-path regression of the study are off: the implementation stage ran both on
this very worktree (the regression against a trace of the unedited base commit, which a study's own trace — keyed by
the worktree's path — could not do). The baseline reproduction stays on: the first version records the baseline, and
every later version must reproduce it within the tolerance before its idea arm counts (`design/baselines.yaml`).
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from autoresearch.errors import StudyError
from autoresearch.research.study import (
    BASELINE,
    BaselineRecord,
    Idea,
    Regression,
    Resources,
    Study,
)

if TYPE_CHECKING:
    from autoresearch.agents.roles import StudySummary, TaskSpec
    from autoresearch.pipeline.workspace import Workspace
    from autoresearch.research.scheduler import Emit

__all__ = ["IDEA_ARM", "study_name", "build_study", "run_version_study", "summarize", "loss_curves", "BaselineFile",
           "read_baselines", "write_baselines"]

IDEA_ARM = "idea"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def study_name(name: str, k: int) -> str:
    """Folder name of version k's study: `<idea name>-v<k>`, reduced to the characters a study name allows."""
    return f"{_SAFE.sub('_', name).strip('_.-') or 'idea'}-v{k}"[:100]


# --- design/baselines.yaml -----------------------------------------------------------------------------------------


@dataclass
class BaselineFile:
    """`design/baselines.yaml`: the baseline every version's study must reproduce."""

    value: float | None
    tolerance: float
    source: str
    metric: str = ""

    def record(self) -> BaselineRecord:
        return BaselineRecord(value=self.value, tolerance=self.tolerance, source=self.source)


def read_baselines(path: Path, tolerance: float = 0.05) -> BaselineFile:
    """The recorded baseline, or an empty record (value None: the next study records it) when none was written."""
    import yaml

    if not path.is_file():
        return BaselineFile(None, tolerance, "")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise StudyError(f"{path} is not valid YAML ({type(e).__name__}); fix it or delete it to record the baseline "
                         f"again") from None
    base = data.get("baseline", data) if isinstance(data, dict) else None
    value = base.get("value") if isinstance(base, dict) else None
    if not isinstance(base, dict) or not (value is None or isinstance(value, (int, float)) and math.isfinite(value)):
        raise StudyError(f"{path}: `baseline.value` must be a finite number or null, got {value!r}; fix it or delete "
                         f"the file to record the baseline again")
    tol = base.get("tolerance", tolerance)
    if not isinstance(tol, (int, float)) or not 0 < tol < 1:
        raise StudyError(f"{path}: `baseline.tolerance` must be in (0, 1), got {tol!r}; use 0.05")
    return BaselineFile(None if value is None else float(value), float(tol), str(base.get("source", "")),
                        str(base.get("metric", "")))


def write_baselines(path: Path, baseline: BaselineFile) -> None:
    from autoresearch.harness.atomic import atomic_write_yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_yaml(path, {"baseline": {"metric": baseline.metric, "value": baseline.value,
                                          "tolerance": baseline.tolerance, "source": baseline.source}})


# --- the study -----------------------------------------------------------------------------------------------------


def build_study(ws: Workspace, testbed_spec: str, task: TaskSpec, k: int, baseline: BaselineFile) -> Study:
    """The study of version k: the worktree's testbed, baseline = flags off, one idea arm = flags on, the rest from the
    workspace's study defaults. Deterministic in its inputs, so a resumed pipeline continues the same study."""
    d = ws.file.study
    return Study(
        name=study_name(task.name, k),
        description=task.description or task.idea,
        testbed=testbed_spec,
        preset=d.preset,
        overrides={**dict(d.overrides or {}), **task.off_overrides()},
        budget=copy.deepcopy(d.budget),
        metric=copy.deepcopy(d.metric),
        baseline=baseline.record(),
        seeds=copy.deepcopy(d.seeds),
        decision=copy.deepcopy(d.decision),
        control=None,
        regression=Regression(enabled=False),
        resources=Resources(workers=d.workers),
        checks=False,
        ideas=[Idea(name=IDEA_ARM, description=task.description or task.name, overrides=task.on_overrides())],
    )


def run_version_study(study: Study, ws_root: Path, *, emit: Emit | None = None, workers: int | None = None) -> Path:
    """Run (or continue) the study in `<ws>/studies/`, trials registered in `<ws>/experiments/`; returns its folder."""
    from autoresearch.research.runner import run_study

    result = run_study(study, ws_root / "studies", registry=ws_root / "experiments", emit=emit, workers=workers)
    return result.study_dir


def _mean(xs: list[float]) -> float:
    xs = [x for x in xs if math.isfinite(x)]
    return sum(xs) / len(xs) if xs else math.nan


CURVE_POINTS = 20
"""At most this many points per arm in `StudySummary.curves` (what an LLM analyzer reads as numbers)."""


def loss_curves(exp_dirs: list[str], max_points: int = CURVE_POINTS) -> list[list[float]]:
    """[[step, mean training loss], ...] over the runs in `exp_dirs` (their log.jsonl training lines), at the steps
    every run logged (all logged steps when they share none), thinned to at most `max_points` evenly spaced points
    that keep the first and the last."""
    from autoresearch.harness.atomic import read_jsonl

    runs: list[dict[int, float]] = []
    for exp in exp_dirs:
        rows = {}
        for r in read_jsonl(Path(exp) / "log.jsonl"):
            step, loss = r.get("step"), r.get("loss")
            if (isinstance(step, int) and not isinstance(step, bool) and isinstance(loss, (int, float))
                    and math.isfinite(loss)):
                rows[step] = float(loss)
        if rows:
            runs.append(rows)
    if not runs:
        return []
    steps = sorted(set.intersection(*(set(r) for r in runs))) or sorted(set().union(*runs))
    points = [[float(s), sum(r[s] for r in runs if s in r) / sum(s in r for r in runs)] for s in steps]
    if len(points) > max_points > 1:
        idx = sorted({round(i * (len(points) - 1) / (max_points - 1)) for i in range(max_points)})
        points = [points[i] for i in idx]
    return points


def summarize(study_dir: Path) -> StudySummary:
    """The study's result as the roles see it: the idea's verdict and numbers, per-seed throughput, memory and metric
    per arm (the analyzer's noise estimate), each arm's mean training-loss curve (`loss_curves`), the first crash's
    error."""
    from autoresearch.agents.roles import StudySummary
    from autoresearch.research.state import StudyState

    state = StudyState.load(study_dir / "state.json")
    definition = state.definition or {}
    metric = (definition.get("metric") or {}).get("name", "val_loss")
    direction = (definition.get("resolved") or {}).get("direction", "lower")
    v = state.verdicts.get(IDEA_ARM)
    arms = (BASELINE, IDEA_ARM)
    trials = sorted((t for t in state.trials.values() if t.arm in arms), key=lambda t: (t.arm, t.index or 0))
    per_seed: dict[str, dict[str, list[float]]] = {}
    for arm in arms:
        q: dict[str, list[float]] = {"tokens_per_s": [], "peak_memory_mb": [], metric: []}
        for t in trials:
            if t.arm != arm or not t.ok:
                continue
            for key in q:
                x = t.metrics.get(key)
                if key == "peak_memory_mb" and not x and t.memory_gb:
                    x = t.memory_gb * 1024
                if isinstance(x, (int, float)) and not isinstance(x, bool):
                    q[key].append(float(x))
        per_seed[arm] = q
    error = next((t.error for t in trials if not t.ok and t.error), "") or (v.error if v else "")

    def num(x: float | None) -> float:
        return math.nan if x is None else float(x)

    return StudySummary(
        verdict=v.verdict if v else "MISSING",
        metric=metric,
        direction=direction,
        baseline_mean=num(v.baseline_mean) if v else _mean(per_seed[BASELINE][metric]),
        idea_mean=num(v.idea_mean) if v else _mean(per_seed[IDEA_ARM][metric]),
        delta=num(v.mean) if v else math.nan,
        ci_low=num(v.lo) if v else math.nan,
        ci_high=num(v.hi) if v else math.nan,
        p_value=num(v.p) if v else math.nan,
        n_seeds=v.n if v else 0,
        baseline_tokens_per_s=_mean(per_seed[BASELINE]["tokens_per_s"]),
        idea_tokens_per_s=_mean(per_seed[IDEA_ARM]["tokens_per_s"]),
        baseline_memory=_mean(per_seed[BASELINE]["peak_memory_mb"]),
        idea_memory=_mean(per_seed[IDEA_ARM]["peak_memory_mb"]),
        statuses={arm: [t.status for t in trials if t.arm == arm] for arm in arms},
        per_seed=per_seed,
        error=error,
        curves={arm: loss_curves([t.exp for t in trials if t.arm == arm and t.ok and t.exp]) for arm in arms},
    )

"""The gates a study passes before any idea is judged: the integration checks pass, the baseline reproduces its
recorded value, and the baseline code path still reproduces its short-run loss trace bit for bit (regression.py).

Each gate decides from what the trials produced, records its stage in the state (done, or failed with the reason)
and raises one StudyError line naming what failed and the fix when it does not pass. A failed checks or regression
gate bumps its generation, so `resume` runs it anew under new trial ids instead of re-reading the failed runs.
The regression plan (record a new trace with two runs, or compare with the stored one in one run) is decided once
per generation and persisted, so a resume keeps comparing against the same store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autoresearch.errors import StudyError
from autoresearch.harness.provenance import machine_fingerprint
from autoresearch.research import regression as reg
from autoresearch.research.state import RegressionPlan, StudyState, TrialRecord
from autoresearch.research.study import ResolvedStudy
from autoresearch.research.trial import TrialOutcome

__all__ = ["decide_checks", "checks_summary", "decide_baseline", "baseline_failure", "regression_plan",
           "decide_regression"]


# --- integration checks -------------------------------------------------------------------------------------------


def checks_summary(out: TrialOutcome) -> str:
    if not out.ok:
        return f"crashed ({out.error})"
    passed = sum(c.get("status") == "pass" for c in out.checks)
    return f"{passed}/{len(out.checks)} passed"


def decide_checks(resolved: ResolvedStudy, state: StudyState, out: TrialOutcome, trials_dir: Path) -> None:
    """Pass the checks stage, or record it failed and raise (from a worker thread this stops the whole batch)."""
    name = resolved.name
    failed = [c for c in out.checks if c.get("status") != "pass"]
    if not out.ok or failed:
        detail = out.error or "; ".join(f"{c['name']}: {c.get('detail', '')}" for c in failed)
        state.set_stage("checks", "failed", error=detail)
        state.bump_generation("checks")
        if "timed out" in (out.error or "") and not out.checks:  # a slow machine, not a broken testbed
            raise StudyError(f"integration checks of study {name!r} did not finish: {detail}")
        if out.infra:
            raise StudyError(f"integration checks of study {name!r} could not run ({detail}); see "
                             f"{trials_dir}/checks-g*/attempt-*/output.log, then `autoresearch study resume {name}`")
        raise StudyError(f"integration checks failed for study {name!r} ({detail}); fix the testbed, then "
                         f"`autoresearch study resume {name}`")
    state.set_stage("checks", "done", checks=out.checks, seconds=round(out.wall_s, 2))


# --- baseline reproduction ----------------------------------------------------------------------------------------


def baseline_failure(resolved: ResolvedStudy, trial_id: str, rec: TrialRecord | None, advice: str) -> str:
    """The one line for a baseline trial that did not finish ok (every idea is paired with the baseline)."""
    error = rec.error if rec else ""
    head = f"baseline trial {trial_id} {rec.status if rec else 'missing'}: {error}"
    if "timed out" in error:  # the message already says which limit to raise and how to resume
        return head
    return f"{head}; {advice}, then `autoresearch study resume {resolved.name} --retry-crashed`"


def decide_baseline(resolved: ResolvedStudy, state: StudyState, values: list[float]) -> dict[str, Any]:
    """Compare the baseline seeds' mean with the recorded (or accepted) value within the tolerance; returns what was
    found (mean, values, recorded, rel) or records the stage failed and raises with the way forward."""
    s = resolved.study
    mean = sum(values) / len(values)
    accepted = state.baseline.accepted
    recorded = accepted.value if accepted else s.baseline.value
    with state.lock:
        state.baseline.measured, state.baseline.values, state.baseline.recorded = mean, values, s.baseline.value
        state.save()
    if recorded is None:
        state.set_stage("baseline", "done", mean=mean, note="no recorded value; measured value recorded")
        return {"mean": mean, "values": values, "recorded": None}
    tol = s.baseline.tolerance
    rel = abs(mean - recorded) / max(abs(recorded), 1e-12)
    if rel > tol:
        state.set_stage("baseline", "failed", mean=mean, recorded=recorded, rel=rel)
        src = f" from {s.baseline.source!r}" if s.baseline.source else ""
        vals = ", ".join(f"{v:.4f}" for v in values)
        raise StudyError(
            f"baseline not reproduced: {s.metric.name} mean {mean:.4f} over {len(values)} seeds ({vals}) is "
            f"{100 * rel:.1f}% from the recorded {recorded:.4f}{src}, tolerance {100 * tol:g}% "
            f"[{recorded * (1 - tol):.4f}, {recorded * (1 + tol):.4f}]; if the new value is right run "
            f"`autoresearch study accept-baseline {resolved.name}` then `autoresearch study resume {resolved.name}`, "
            f"else fix the setup")
    state.set_stage("baseline", "done", mean=mean, recorded=recorded, rel=rel)
    return {"mean": mean, "values": values, "recorded": recorded, "rel": rel}


# --- baseline-path regression -------------------------------------------------------------------------------------


def regression_plan(resolved: ResolvedStudy, state: StudyState) -> RegressionPlan:
    """Decide once per generation (persisted) whether this study records a new trace or compares with a stored one."""
    with state.lock:
        gen = state.generation("regression")
        if state.regression is not None and state.regression.gen == gen:
            return state.regression
        s = resolved.study
        fp = machine_fingerprint()
        key = reg.trace_key(s.testbed, s.preset, resolved.regression_key_overrides, fp)
        store = reg.trace_store(s.regression.store) / f"{key}.json"
        state.regression = RegressionPlan(gen=gen, key=key, store=str(store), runs=1 if store.exists() else 2,
                                          fingerprint=fp)
        state.save()
        return state.regression


def decide_regression(resolved: ResolvedStudy, state: StudyState, plan: RegressionPlan,
                      runs: list[tuple[str, TrialRecord | None]]) -> dict[str, Any]:
    """Record the trace of the short runs (two identical runs must agree) or compare them with the stored one;
    returns what was found (result, steps, store) or records the stage failed and raises."""
    s = resolved.study

    def fail(msg: str) -> None:
        state.set_stage("regression", "failed", error=msg)
        state.bump_generation("regression")
        raise StudyError(f"baseline-path regression failed for study {resolved.name!r}: {msg}")

    traces = []
    for tid, rec in runs:
        if rec is None or not rec.ok:
            fail(f"regression run {tid} {rec.status if rec else 'missing'}: {rec.error if rec else ''}")
        assert rec is not None
        traces.append(reg.read_trace(rec.exp))
    store = Path(plan.store)
    meta = {"study": resolved.name, "testbed": s.testbed, "preset": s.preset,
            "overrides": resolved.regression_key_overrides, "fingerprint": plan.fingerprint, "key": plan.key}
    stored = reg.load_trace(store)
    if stored is None:
        diff = reg.first_difference(traces[0], traces[1]) if len(traces) > 1 else None
        if diff:
            fail(f"the short baseline run is not deterministic — two identical runs differ, {diff}; make CPU training "
                 f"deterministic (fixed threads, seeded data order)")
        first = runs[0][1]
        assert first is not None
        reg.save_trace(store, traces[0], {**meta, "exp": first.exp})
        stored = reg.load_trace(store)
        result = "recorded"
    else:
        for trace in traces:
            diff = reg.first_difference(stored[0], trace)
            if diff:
                fail(f"with every idea flag off the baseline no longer reproduces the trace recorded "
                     f"{stored[1].get('recorded_at', '?')} by study {stored[1].get('study', '?')!r} ({store}): "
                     f"{diff}; an 'off' flag changed the baseline code path (or training is not deterministic) — "
                     f"fix it, or if the change is intended delete {store} and `autoresearch study resume "
                     f"{resolved.name}`")
        result = "reproduced"
    assert stored is not None
    reg.save_trace(state.path.parent / "regression_trace.json", stored[0], {**stored[1], "result": result})
    state.set_stage("regression", "done", result=result, steps=len(stored[0].steps), store=str(store))
    return {"result": result, "steps": len(stored[0].steps), "store": str(store)}

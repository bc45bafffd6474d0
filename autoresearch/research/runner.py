"""The study pipeline: checks -> baseline reproduction -> baseline-path regression -> ideas × seeds -> verdicts ->
report, each stage persisted in `state.json` and resumable after `kill -9` (issue 4 §3, §5).

Layout of `studies/<name>/`:
    study.yaml          the resolved study (decision rule included), written before any trial runs
    state.json          stages, finished trials, planned seeds, latest verdicts (atomic rewrites)
    ledger.jsonl        append-only, every trial/verdict with every field; results.tsv the same in karpathy columns
    trials/<id>/attempt-<k>/   spec.json, output.log, result.json of each subprocess attempt
    regression_trace.json      the trace this study was checked against
    idea_log.md, report.md, report.html, plots/

Trials run in parallel (a thread per worker, each waiting on one subprocess). A finished trial is durable the moment
its child writes `result.json`; the runner then appends it to the ledger (idempotent by key) and saves the state.
On resume, a trial counts as finished if the state has it or an attempt folder holds a final result — so no finished
trial is ever re-run — and everything else runs from scratch under a new attempt number.

Scheduling: the short regression runs go into the same batch as the baseline seeds (they are independent and fill
otherwise idle workers), but their verdict is only looked at after the baseline has been reproduced.

Authoritative vs derived files: state.json, the trials' result.json files and study.yaml are authoritative; the
ledger is append-only; results.tsv, idea_log.md and the report are derived and rebuilt from them on every run,
resume and `study report` (a torn or deleted results.tsv comes back). The definition hash stored in state.json is
checked against study.yaml on resume (study_dir.py), so an edited study never pairs trials of two budgets in one
verdict.
Disk errors (full, read-only, no permission) stop the study with one line naming the path; they are never recorded
as a trial's CRASH.
"""

from __future__ import annotations

import hashlib
import math
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoresearch.errors import StudyError
from autoresearch.research import regression as reg
from autoresearch.research.ledger import Ledger
from autoresearch.research.state import StudyState, now, runner_lock
from autoresearch.research.study import BASELINE, MAX_SECONDS, ResolvedStudy
from autoresearch.research.study_dir import (
    DEFAULT_STUDY_ROOT,
    accept_baseline,
    open_study,
    prepare_study,
    storage_errors,
    study_dir_for,
)
from autoresearch.research.trial import TrialInterrupted, TrialOutcome, TrialSpec, read_outcome, run_trial
from autoresearch.research.verdicts import Verdict, decide, n_looks, rule_text

__all__ = ["StudyRunner", "StudyResult", "prepare_study", "open_study", "default_workers", "gpu_count", "accept_baseline",
           "study_dir_for", "storage_errors", "DEFAULT_STUDY_ROOT", "DEFAULT_REGISTRY", "HEARTBEAT_S"]

HEARTBEAT_S = 60.0
"""While trials run, a progress line this often (a stage can run for minutes between finished trials)."""

DEFAULT_REGISTRY = "experiments"

Emit = Callable[[str, dict[str, Any]], None]


def gpu_count() -> int:
    """NVIDIA GPUs visible to this process, without importing torch (honours CUDA_VISIBLE_DEVICES)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    gpus = Path("/proc/driver/nvidia/gpus")
    return len(list(gpus.iterdir())) if gpus.is_dir() else 0


def default_workers(threads_per_trial: int = 1) -> int:
    """Parallel trials that fit the machine: usable cores // threads per trial, at most one per GPU when there are
    GPUs (each worker slot is pinned to one GPU through CUDA_VISIBLE_DEVICES), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    n = max(1, cores // max(1, threads_per_trial))
    gpus = gpu_count()
    return min(n, gpus) if gpus else n


@dataclass
class StudyResult:
    """What a finished study hands back to the CLI."""

    name: str
    study_dir: Path
    verdicts: list[Verdict]
    rule: str
    metric: str
    wall_s: float
    trials: int
    report_md: Path | None
    report_html: Path | None


def _git_commit() -> str:
    """Short commit of the checkout holding the code under test (+"-dirty"), karpathy's `commit` column."""
    from autoresearch.harness.provenance import git_info

    info = git_info()
    if not info.get("commit"):
        return ""
    return str(info["commit"])[:7] + ("-dirty" if info.get("dirty") else "")


def _environment(workers: int) -> dict[str, Any]:
    import platform

    env = {**reg.fingerprint(), "platform": platform.platform(), "cores": default_workers(1), "workers": workers,
           "commit": _git_commit()}
    try:
        mem = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
        env["memory_gb"] = round(int(mem.split()[1]) / 1024**2, 1)
    except (OSError, StopIteration, ValueError):
        pass
    return env


# --- the runner ---------------------------------------------------------------------------------------------------


class StudyRunner:
    """Drives one study through its stages; safe to construct again on the same folder to resume."""

    def __init__(
        self,
        resolved: ResolvedStudy,
        study_dir: str | Path,
        *,
        registry: str | Path | None = None,
        workers: int | None = None,
        emit: Emit | None = None,
        retry_crashed: bool = False,
        timeout_s: float | None = None,
    ) -> None:
        if workers is not None and not 0 <= workers <= 1024:
            raise StudyError(f"`--workers` must be in [1, 1024] (0 = auto), got {workers}; e.g. --workers 2")
        if timeout_s is not None and not (math.isfinite(timeout_s) and 0 <= timeout_s <= MAX_SECONDS):
            raise StudyError(f"`--timeout` must be in [0, {MAX_SECONDS:.0f}] seconds (0 = no limit), got {timeout_s}; "
                             f"e.g. --timeout 3600")
        self.r = resolved
        self.s = resolved.study
        self.dir = Path(study_dir)
        self._registry_arg = registry
        self.registry = Path(registry or DEFAULT_REGISTRY).resolve()
        self.workers = workers or self.s.resources.workers or default_workers(self.s.resources.threads_per_trial)
        self.timeout_s = self.s.resources.timeout_s if timeout_s is None else float(timeout_s)
        self.emit: Emit = emit or (lambda kind, data: None)
        self.retry_crashed = retry_crashed
        self.state = StudyState.load(self.dir / "state.json")
        self.ledger = Ledger(self.dir, self.s.metric.name, direction=resolved.direction)
        self.stop = threading.Event()
        self._lock_fd: int | None = None
        self._started: dict[str, float] = {}
        self._slots: queue.Queue[int] = queue.Queue()
        for slot in range(self.workers):
            self._slots.put(slot)
        self._gpus = gpu_count()
        self.commit = ""
        self._total = 0
        self._done = 0

    # --- entry point ---

    def run(self) -> StudyResult:
        with storage_errors(self.dir, self.r.name, "--root DIR / --registry DIR"):
            return self._run()

    def _run(self) -> StudyResult:
        with runner_lock(self.dir) as lock_fd:
            self._lock_fd = lock_fd
            self.state = StudyState.load(self.dir / "state.json")  # fresh, now that no other runner can write it
            self.commit = _git_commit()
            with self.state.lock:
                # the registry is chosen once per study: `resume` without --registry keeps using it
                chosen = self._registry_arg or self.state.data.get("registry") or DEFAULT_REGISTRY
                self.registry = Path(chosen).resolve()
                self.state.data["registry"] = str(self.registry)
                if not self.state.data.get("environment"):
                    self.state.data["environment"] = _environment(self.workers)
                self.state.data["commit"] = self.state.data.get("commit") or self.commit
            if self.retry_crashed and any(t.get("status") != "ok" for t in self.state.data["trials"].values()):
                with self.state.lock:  # crashed trials run again, so the verdicts and report must be redone
                    for stage in ("trials", "report"):
                        self.state.data["stages"].pop(stage, None)
                    self.state.data["done"] = False
                    self.state.save()
            self.state.start_run(self.workers)
            self.emit("start", {"name": self.r.name, "workers": self.workers, "dir": str(self.dir),
                                "timeout_s": self.timeout_s})
            self._repair_derived()
            try:
                self._pipeline()
            finally:
                self.stop.set()
                self.state.end_run()
        return self.result()

    def _repair_derived(self) -> None:
        """Bring the ledger and results.tsv in line with the authoritative state: trials recorded in state.json but
        missing from the ledger (a torn or garbled line) are appended again, and results.tsv is rebuilt."""
        have = {r.get("key") for r in self.ledger.records()}
        for rec in self.state.data["trials"].values():
            key = f"trial:{rec.get('trial')}:a{rec.get('attempt')}"
            if key not in have and rec.get("trial"):
                kind = "regression" if rec.get("arm") == "regression" else "trial"
                desc = ("short deterministic baseline run (regression check)" if kind == "regression"
                        else self.r.description(rec["arm"]) if rec.get("arm") in self.r.arms else "")
                self.ledger.append({"key": key, "kind": kind, "study": self.r.name, "commit": self.commit,
                                    "description": desc, "delta": None, "restored_from_state": True, **rec})
        self.ledger.rebuild()
        problem = self.ledger.problem()
        if problem:
            self.emit("warning", {"message": problem})

    def _pipeline(self) -> None:
        need_checks = self.s.checks and not self.state.stage_done("checks")
        need_regression = self.s.regression.enabled and not self.state.stage_done("regression")
        if need_checks or need_regression or not self.state.stage_done("baseline"):
            self._stage_baseline(need_checks, need_regression)
        if self.s.regression.enabled and not self.state.stage_done("regression"):
            self._stage_regression()
        if not self.state.stage_done("trials"):
            self._stage_trials()
        if not self.state.stage_done("report"):
            self._stage_report()
        with self.state.lock:
            self.state.data["done"] = True
            self.state.save()

    # --- stages ---

    def _enter(self, stage: str, label: str = "") -> None:
        with self.state.lock:
            self.state.data["stage"] = stage
            self.state.save()
        self.emit("stage", {"stage": label or stage})

    def _checks_spec(self) -> TrialSpec:
        return self._spec(f"checks-g{self._generation('checks')}", "checks", None, "checks", self.r.arms[BASELINE])

    def _apply_checks(self, out: TrialOutcome) -> None:
        """Decide the checks stage; raising here (in a worker thread) stops the whole batch."""
        self._ledger_misc("checks", out, f"integration checks: {self._checks_summary(out)}")
        failed = [c for c in out.checks if c.get("status") != "pass"]
        if not out.ok or failed:
            detail = out.error or "; ".join(f"{c['name']}: {c.get('detail', '')}" for c in failed)
            self.state.set_stage("checks", "failed", error=detail)
            self._bump("checks")
            if "timed out" in (out.error or "") and not out.checks:  # a slow machine, not a broken testbed
                raise StudyError(f"integration checks of study {self.r.name!r} did not finish: {detail}")
            if out.infra:
                raise StudyError(f"integration checks of study {self.r.name!r} could not run ({detail}); see "
                                 f"{self.dir / 'trials'}/checks-g*/attempt-*/output.log, then `autoresearch study "
                                 f"resume {self.r.name}`")
            raise StudyError(f"integration checks failed for study {self.r.name!r} ({detail}); fix the testbed, then "
                             f"`autoresearch study resume {self.r.name}`")
        self.state.set_stage("checks", "done", checks=out.checks, seconds=round(out.wall_s, 2))
        self.emit("checks", {"checks": out.checks})

    def _stage_baseline(self, need_checks: bool, need_regression: bool) -> None:
        """Checks, baseline seeds and the short regression runs go into one batch (they are independent, so they
        fill the workers); the checks' verdict stops the batch at once if they fail, and the baseline is decided
        only after the checks passed, the regression only after the baseline reproduced."""
        self._enter("baseline", "checks + baseline" if need_checks else "baseline")
        n0 = self.s.seeds.initial
        keys = [(BASELINE, i) for i in range(n0)]
        extra = ([self._checks_spec()] if need_checks else []) + (self._regression_specs() if need_regression else [])
        self._run_batch(keys, extra)
        if self.state.stage_done("baseline"):
            return
        values = []
        for i in range(n0):
            rec = self.state.trial(self._tid(BASELINE, i)) or {}
            if rec.get("status") != "ok":
                self.state.set_stage("baseline", "failed", error=rec.get("error", "missing"))
                raise StudyError(self._baseline_failed(i, rec, "fix the baseline"))
            values.append(float(rec["metric"]))
        mean = sum(values) / len(values)
        b = self.state.data["baseline"]
        accepted = b.get("accepted")
        recorded = accepted["value"] if accepted else self.s.baseline.value
        with self.state.lock:
            b.update({"measured": mean, "values": values, "recorded": self.s.baseline.value})
            self.state.save()
        if recorded is None:
            self.state.set_stage("baseline", "done", mean=mean, note="no recorded value; measured value recorded")
            self.emit("baseline", {"mean": mean, "values": values, "recorded": None})
            return
        tol = self.s.baseline.tolerance
        rel = abs(mean - recorded) / max(abs(recorded), 1e-12)
        if rel > tol:
            self.state.set_stage("baseline", "failed", mean=mean, recorded=recorded, rel=rel)
            src = f" from {self.s.baseline.source!r}" if self.s.baseline.source else ""
            vals = ", ".join(f"{v:.4f}" for v in values)
            raise StudyError(
                f"baseline not reproduced: {self.s.metric.name} mean {mean:.4f} over {len(values)} seeds ({vals}) is "
                f"{100 * rel:.1f}% from the recorded {recorded:.4f}{src}, tolerance {100 * tol:g}% "
                f"[{recorded * (1 - tol):.4f}, {recorded * (1 + tol):.4f}]; if the new value is right run "
                f"`autoresearch study accept-baseline {self.r.name}` then `autoresearch study resume {self.r.name}`, "
                f"else fix the setup")
        self.state.set_stage("baseline", "done", mean=mean, recorded=recorded, rel=rel)
        self.emit("baseline", {"mean": mean, "values": values, "recorded": recorded, "rel": rel})

    def _regression_plan(self) -> dict[str, Any]:
        """Decide once (persisted) whether this study records a new trace or compares with a stored one."""
        with self.state.lock:
            plan = self.state.data["regression"]
            if plan.get("gen") == self._generation("regression") and "runs" in plan:
                return plan
            fp = reg.fingerprint()
            key = reg.trace_key(self.s.testbed, self.s.preset, self.r.regression_key_overrides, fp)
            store = reg.trace_store(self.s.regression.store) / f"{key}.json"
            runs = 1 if store.exists() else 2
            gen = self._generation("regression")
            plan.clear()
            plan.update({"gen": gen, "key": key, "store": str(store), "runs": runs, "fingerprint": fp})
            self.state.save()
            return plan

    def _regression_specs(self) -> list[TrialSpec]:
        plan = self._regression_plan()
        seed_ov = self.r.testbed.seed_overrides(self.s.seeds.base)
        return [self._spec(f"regression-g{plan['gen']}-{k}", "regression", self.s.seeds.base, "train",
                           {**self.r.regression_overrides, **seed_ov}) for k in range(1, plan["runs"] + 1)]

    def _stage_regression(self) -> None:
        self._enter("regression")
        specs = self._regression_specs()
        plan = self.state.data["regression"]
        self._run_batch([], specs)
        traces = []
        for spec in specs:
            rec = self.state.trial(spec.trial_id) or {}
            if rec.get("status") != "ok":
                self._fail_regression(f"regression run {spec.trial_id} {rec.get('status', 'missing')}: "
                                      f"{rec.get('error', '')}")
            traces.append(reg.read_trace(rec["exp"]))
        store = Path(plan["store"])
        meta = {"study": self.r.name, "testbed": self.s.testbed, "preset": self.s.preset,
                "overrides": self.r.regression_key_overrides, "fingerprint": plan["fingerprint"], "key": plan["key"]}
        stored = reg.load_trace(store)
        if stored is None:
            diff = reg.first_difference(traces[0], traces[1]) if len(traces) > 1 else None
            if diff:
                self._fail_regression(f"the short baseline run is not deterministic — two identical runs differ, "
                                      f"{diff}; make CPU training deterministic (fixed threads, seeded data order)")
            reg.save_trace(store, traces[0], {**meta, "exp": self.state.trial(specs[0].trial_id)["exp"]})
            stored = reg.load_trace(store)
            verdict = "recorded"
        else:
            for trace in traces:
                diff = reg.first_difference(stored[0], trace)
                if diff:
                    self._fail_regression(
                        f"with every idea flag off the baseline no longer reproduces the trace recorded "
                        f"{stored[1].get('recorded_at', '?')} by study {stored[1].get('study', '?')!r} ({store}): "
                        f"{diff}; an 'off' flag changed the baseline code path (or training is not deterministic) — "
                        f"fix it, or if the change is intended delete {store} and `autoresearch study resume "
                        f"{self.r.name}`")
            verdict = "reproduced"
        assert stored is not None
        reg.save_trace(self.dir / "regression_trace.json", stored[0], {**stored[1], "result": verdict})
        self.state.set_stage("regression", "done", result=verdict, steps=len(stored[0].steps), store=str(store))
        self.emit("regression", {"result": verdict, "steps": len(stored[0].steps), "store": str(store)})

    def _fail_regression(self, msg: str) -> None:
        self.state.set_stage("regression", "failed", error=msg)
        self._bump("regression")
        raise StudyError(f"baseline-path regression failed for study {self.r.name!r}: {msg}")

    def _stage_trials(self) -> None:
        self._enter("trials")
        arms = self.r.idea_names
        seeds = self.s.seeds
        looks = n_looks(seeds.initial, seeds.max, seeds.step)
        planned = self.state.data["planned"]
        with self.state.lock:
            for arm in arms:
                planned.setdefault(arm, seeds.initial)
            self.state.save()
        while True:
            n_base = max(planned[a] for a in arms)
            keys = [(BASELINE, i) for i in range(n_base)] + [(a, i) for a in arms for i in range(planned[a])]
            self._run_batch(keys)
            for i in range(n_base):
                rec = self.state.trial(self._tid(BASELINE, i)) or {}
                if rec.get("status") != "ok":
                    raise StudyError(self._baseline_failed(i, rec, "every idea is paired with it — fix it"))
            verdicts = {a: self._decide(a, planned[a], looks) for a in arms}
            rnd = self.state.data["round"]
            for v in verdicts.values():
                # keyed by the numbers: a resume re-deciding the same data appends nothing, a retried trial does
                digest = hashlib.sha1(repr((v.verdict, v.n, v.mean, v.lo, v.hi, v.error)).encode()).hexdigest()[:10]
                self.ledger.append({"key": f"verdict:{v.idea}:n{v.n}:{digest}", "kind": "verdict", "arm": v.idea,
                                    "round": rnd, "commit": self.commit, "at": now(), **v.to_dict()})
            retest = [a for a, v in verdicts.items() if v.verdict == "RETEST"]
            with self.state.lock:
                self.state.data["verdicts"] = {a: v.to_dict() for a, v in verdicts.items()}
                if retest:
                    for a in retest:
                        planned[a] = min(seeds.max, planned[a] + seeds.step)
                    self.state.data["round"] = rnd + 1
                self.state.save()
            self.emit("verdicts", {"round": rnd, "verdicts": list(verdicts.values()), "retest": retest})
            if not retest:
                break
        self.state.set_stage("trials", "done", rounds=self.state.data["round"] + 1)

    def _baseline_failed(self, index: int, rec: dict[str, Any], advice: str) -> str:
        error = str(rec.get("error", ""))
        head = f"baseline trial {self._tid(BASELINE, index)} {rec.get('status', 'missing')}: {error}"
        if "timed out" in error:  # the message already says which limit to raise and how to resume
            return head
        return f"{head}; {advice}, then `autoresearch study resume {self.r.name} --retry-crashed`"

    def _decide(self, arm: str, n: int, looks: int) -> Verdict:
        idea_vals, base_vals, error = [], [], ""
        for i in range(n):
            rec = self.state.trial(self._tid(arm, i)) or {}
            if rec.get("status") != "ok":
                error = error or f"{self._tid(arm, i)} {rec.get('status', 'missing')}: {rec.get('error', '')}"
                continue
            idea_vals.append(float(rec["metric"]))
            base_vals.append(float(self.state.trial(self._tid(BASELINE, i))["metric"]))
        return decide(arm, idea_vals, base_vals, direction=self.r.direction, rule=self.s.decision,
                      max_seeds=self.s.seeds.max, looks=looks, error=error)

    def _stage_report(self) -> None:
        self._enter("report")
        from autoresearch.research.idea_log import write_idea_log
        from autoresearch.research.report import write_report

        write_idea_log(self.dir, self.r, self.state)
        md, html = write_report(self.dir, self.r, self.state, self.ledger)
        self.state.set_stage("report", "done", markdown=str(md), html=str(html))
        self.emit("report", {"markdown": str(md), "html": str(html)})

    # --- results ---

    def verdicts(self) -> list[Verdict]:
        return [Verdict.from_dict(self.state.data["verdicts"][a]) for a in self.r.idea_names
                if a in self.state.data["verdicts"]]

    def rule(self) -> str:
        sp = self.s.seeds
        return rule_text(self.s.decision, metric=self.s.metric.name, direction=self.r.direction, initial=sp.initial,
                         max_seeds=sp.max, step=sp.step)

    def result(self) -> StudyResult:
        rep = self.state.data["stages"].get("report", {})
        return StudyResult(self.r.name, self.dir, self.verdicts(), self.rule(), self.s.metric.name,
                           self.state.wall_seconds(), len(self.state.data["trials"]),
                           # from the folder opened, not the stored path (the folder may have been copied or moved)
                           self.dir / Path(rep["markdown"]).name if rep.get("markdown") else None,
                           self.dir / Path(rep["html"]).name if rep.get("html") else None)

    # --- trials ---

    def _tid(self, arm: str, index: int) -> str:
        return f"{arm}-s{self.r.seed(arm, index)}"

    def _generation(self, what: str) -> int:
        """Generation of a re-runnable stage (checks, regression): bumped by a failure so resume runs it anew."""
        return int(self.state.data.get("generations", {}).get(what, 1))

    def _bump(self, what: str) -> None:
        with self.state.lock:
            gens = self.state.data.setdefault("generations", {})
            gens[what] = gens.get(what, 1) + 1
            self.state.save()

    def _spec(self, tid: str, arm: str, seed: int | None, kind: str, overrides: dict[str, Any]) -> TrialSpec:
        res = self.s.resources
        return TrialSpec(study=self.r.name, trial_id=tid, arm=arm, seed=seed, kind=kind, testbed=self.s.testbed,
                         preset=self.s.preset, overrides=dict(overrides), registry=str(self.registry),
                         threads=res.threads_per_trial, timeout_s=self.timeout_s, retries=res.retries)

    def _arm_spec(self, arm: str, index: int) -> TrialSpec:
        return self._spec(self._tid(arm, index), arm, self.r.seed(arm, index), "train",
                          self.r.trial_overrides(arm, index))

    def _visible(self, slot: int) -> str:
        """CUDA_VISIBLE_DEVICES of a worker slot: one device out of those this process may use."""
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        ids = [d.strip() for d in visible.split(",") if d.strip()] if visible else [str(i) for i in range(self._gpus)]
        return ids[slot % len(ids)]

    def _finished(self, tid: str) -> bool:
        rec = self.state.trial(tid)
        if rec is not None and (rec.get("status") == "ok" or not self.retry_crashed
                                or rec.get("run") == len(self.state.data["runs"])):
            return True
        if rec is None:
            out = read_outcome(self.dir / "trials" / tid)
            if out is not None:  # finished after the last state save: adopt, do not re-run
                self._record(out, adopted=True)
                return True
        return False

    def _run_batch(self, keys: list[tuple[str, int]], extra: list[TrialSpec] | None = None) -> None:
        extra = list(extra or [])
        first = [e for e in extra if e.kind == "checks"]  # the gate starts first
        specs = first + [self._arm_spec(arm, i) for arm, i in keys] + [e for e in extra if e.kind != "checks"]
        seen: set[str] = set()
        todo = []
        for spec in specs:
            if spec.trial_id in seen or (spec.kind != "checks" and self._finished(spec.trial_id)):
                continue
            seen.add(spec.trial_id)
            todo.append(spec)
        if not todo:
            return
        self._total = len(todo)
        self._done = 0
        self.emit("batch", {"trials": [s.trial_id for s in todo], "workers": self.workers})
        pool = ThreadPoolExecutor(max_workers=min(self.workers, len(todo)), thread_name_prefix="trial")
        futures = [pool.submit(self._run_one, spec) for spec in todo]
        t0 = time.monotonic()
        try:
            while True:
                done, pending = wait(futures, timeout=HEARTBEAT_S, return_when=FIRST_EXCEPTION)
                if not pending or any(f.exception() is not None for f in done):
                    break
                now_ = time.monotonic()
                running = {tid: now_ - t for tid, t in list(self._started.items())}
                self.emit("heartbeat", {"done": self._done, "total": self._total, "running": running,
                                        "elapsed_s": now_ - t0})
            for f in done:
                f.result()
        except BaseException:
            self.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    def _run_one(self, spec: TrialSpec, record: bool = True) -> TrialOutcome | None:
        if self.stop.is_set():
            return None
        slot = self._slots.get()  # a worker slot; with GPUs, slot k runs on GPU k % n so parallel trials never share
        if self.stop.is_set():
            self._slots.put(slot)
            return None
        self.state.mark_running(spec.trial_id, True)
        self._started[spec.trial_id] = time.monotonic()
        self.emit("trial_start", {"trial": spec.trial_id, "kind": spec.kind, "arm": spec.arm, "seed": spec.seed,
                                  "timeout_s": spec.timeout_s})
        env = {"CUDA_VISIBLE_DEVICES": self._visible(slot)} if self._gpus else {}
        try:
            out = run_trial(spec, self.dir / "trials" / spec.trial_id, stop=self.stop, env=env,
                            lock_fd=self._lock_fd, rerun_failed=self.retry_crashed)
        except TrialInterrupted:
            return None
        finally:
            self._slots.put(slot)
            self._started.pop(spec.trial_id, None)
        if out.disk:  # the disk, not the trial: stop the study, record nothing
            self.state.mark_running(spec.trial_id, False)
            raise StudyError(f"{out.error}; free space or make it writable (or use --root DIR / --registry DIR on "
                             f"another disk), then `autoresearch study resume {self.r.name}` (nothing written so far "
                             f"was lost)")
        if spec.kind == "checks":
            self.state.mark_running(spec.trial_id, False)
            self._apply_checks(out)
        elif record:
            self._record(out)
        else:
            self.state.mark_running(spec.trial_id, False)
        return out

    def _record(self, out: TrialOutcome, adopted: bool = False) -> None:
        metric = out.metrics.get(self.s.metric.name) if out.ok else None
        status = out.status
        error = out.error
        if out.ok and (metric is None or not math.isfinite(float(metric))):
            status, error = "crashed", f"metric {self.s.metric.name!r} missing or not finite in the results"
            metric = None
        index = self._index(out)
        delta = None
        if metric is not None and out.arm not in (BASELINE, "regression") and index is not None:
            base = self.state.trial(self._tid(BASELINE, index)) or {}
            if base.get("status") == "ok":
                d = float(metric) - float(base["metric"])
                delta = d if self.r.direction == "higher" else -d
        rec = {"trial": out.trial_id, "arm": out.arm, "seed": out.seed, "index": index, "status": status,
               "metric": metric, "metrics": out.metrics, "exp": out.exp, "error": error, "attempts": out.attempts,
               "attempt": out.attempt, "train_wall_s": round(out.train_wall_s, 3), "wall_s": round(out.wall_s, 3),
               "memory_gb": round(out.memory_gb, 3), "infra": out.infra, "finished_at": now(), "adopted": adopted,
               "run": len(self.state.data["runs"])}
        kind = "regression" if out.arm == "regression" else "trial"
        desc = ("short deterministic baseline run (regression check)" if kind == "regression"
                else self.r.description(out.arm))
        self.ledger.append({"key": f"trial:{out.trial_id}:a{out.attempt}", "kind": kind, "study": self.r.name,
                            "commit": self.commit, "description": desc, "delta": delta, **rec})
        self.state.record_trial(out.trial_id, rec)
        if not adopted:
            self._done += 1
            self.emit("trial_done", {**rec, "delta": delta, "done": self._done, "total": self._total})

    def _index(self, out: TrialOutcome) -> int | None:
        if out.seed is None or out.arm == "regression":
            return None
        offset = self.s.seeds.base
        if self.s.control is not None and out.arm == self.s.control.name:
            offset += self.s.control.seed_offset
        return int(out.seed) - offset

    def _ledger_misc(self, kind: str, out: TrialOutcome, description: str) -> None:
        self.ledger.append({"key": f"{kind}:{out.trial_id}:a{out.attempt}", "kind": kind, "study": self.r.name,
                            "arm": kind, "trial": out.trial_id, "commit": self.commit, "description": description,
                            "status": out.status if out.ok else "crashed", "error": out.error, "checks": out.checks,
                            "wall_s": round(out.wall_s, 3), "at": now()})

    @staticmethod
    def _checks_summary(out: TrialOutcome) -> str:
        if not out.ok:
            return f"crashed ({out.error})"
        passed = sum(c.get("status") == "pass" for c in out.checks)
        return f"{passed}/{len(out.checks)} passed"


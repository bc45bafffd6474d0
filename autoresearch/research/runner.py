"""The study pipeline: checks -> baseline reproduction -> baseline-path regression -> ideas × seeds -> verdicts ->
report, each stage persisted in `state.json` and resumable after `kill -9` (issue 4 §3, §5).

Layout of `studies/<name>/`:
    study.yaml          the resolved study (decision rule included), written before any trial runs
    state.json          stages, finished trials, planned seeds, latest verdicts (atomic rewrites; state.py)
    ledger.jsonl        append-only, every trial/verdict with every field; results.tsv the same in karpathy columns
    trials/<id>/attempt-<k>/   spec.json, output.log, result.json of each subprocess attempt (ids: trial_specs.py)
    regression_trace.json      the trace this study was checked against
    idea_log.md, report.md, report.html, plots/

This file is the stage sequence. What it calls: `scheduler.py` runs batches of trials in parallel subprocesses,
`gates.py` decides the checks, the baseline reproduction and the regression, `recording.py` writes outcomes into
the state and the ledger, `verdicts.py` decides the ideas.

A finished trial is durable the moment its child writes `result.json`; the runner then appends it to the ledger
(idempotent by key) and saves the state. On resume, a trial counts as finished if the state has it or an attempt
folder holds a final result — no finished trial is ever re-run — and everything else runs anew under a new attempt
number. The short regression runs share the batch of the baseline seeds (they fill otherwise idle workers), but
their verdict is only looked at after the baseline has been reproduced. state.json, the trials' result.json files
and study.yaml are authoritative; results.tsv, idea_log.md and the report are rebuilt from them on every run. Disk
errors (full, read-only, no permission) stop the study with one line naming the path, never a trial's CRASH.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path

from autoresearch.errors import StudyError
from autoresearch.harness.settings import DEFAULT_EXPERIMENTS_ROOT
from autoresearch.harness.trackers import check_trackers
from autoresearch.research.executors import make_launcher
from autoresearch.research.gates import (
    baseline_failure,
    checks_summary,
    decide_baseline,
    decide_checks,
    decide_regression,
    regression_plan,
)
from autoresearch.research.ledger import Ledger
from autoresearch.research.lock import runner_lock
from autoresearch.research.recording import Recorder, git_commit, study_environment
from autoresearch.research.scheduler import Emit, TrialScheduler, default_workers
from autoresearch.research.state import StudyState
from autoresearch.research.study import BASELINE, MAX_SECONDS, ResolvedStudy, Study
from autoresearch.research.study_dir import DEFAULT_STUDY_ROOT, prepare_study, storage_errors
from autoresearch.research.trial import TrialOutcome, TrialSpec, read_outcome
from autoresearch.research.trial_specs import TrialSpecs, arm_trial_id
from autoresearch.research.verdicts import Verdict, decide, n_looks, rule_text

__all__ = ["StudyRunner", "StudyResult", "run_study", "DEFAULT_REGISTRY"]

DEFAULT_REGISTRY = DEFAULT_EXPERIMENTS_ROOT


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


def run_study(study: Study | str | Path, root: str | Path = DEFAULT_STUDY_ROOT, *, registry: str | Path | None = None,
              workers: int | None = None, emit: Emit | None = None, restart: bool = False,
              timeout_s: float | None = None, executor: str = "local", address: str | None = None,
              trackers: list[str] | None = None) -> StudyResult:
    """Run a study — a study file, or a `Study` built in Python — in `root/<name>/`, or continue it there when a study
    of that name and definition exists; `restart` moves an existing one aside first. Everything is validated before
    the first trial; errors are one-line StudyErrors."""
    resolved, sdir = prepare_study(study, root, restart=restart)
    return StudyRunner(resolved, sdir, registry=registry, workers=workers, emit=emit, timeout_s=timeout_s,
                       executor=executor, address=address, trackers=trackers).run()


class StudyRunner:
    """Drives one study through its stages; safe to construct again on the same folder to resume."""

    def __init__(self, resolved: ResolvedStudy, study_dir: str | Path, *, registry: str | Path | None = None,
                 workers: int | None = None, emit: Emit | None = None, retry_crashed: bool = False,
                 timeout_s: float | None = None, executor: str = "local", address: str | None = None,
                 trackers: list[str] | None = None) -> None:
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
        self.workers = workers or self.s.resources.workers or default_workers(self.s.resources.threads_per_trial
                                                                                  * self.s.resources.nproc_per_trial)
        self.timeout_s = self.s.resources.timeout_s if timeout_s is None else float(timeout_s)
        self.trackers = tuple(check_trackers([*self.s.resources.trackers, *(trackers or [])]))
        """experiment trackers every trial mirrors into (study file + --tracker); a missing package fails here."""
        self.launcher = make_launcher(executor, address=address, workers=self.workers)
        """how trials start (executors.py); closed when run() ends."""
        self.emit: Emit = emit or (lambda kind, data: None)
        self.retry_crashed = retry_crashed
        self.state = StudyState.load(self.dir / "state.json")
        self.ledger = Ledger(self.dir, self.s.metric.name, direction=resolved.direction)
        self.stop = threading.Event()
        self.commit = ""

    def run(self) -> StudyResult:
        with storage_errors(self.dir, self.r.name, "--root DIR / --registry DIR"):
            with runner_lock(self.dir) as lock_fd:
                self.state = StudyState.load(self.dir / "state.json")  # fresh, now that no other runner can write it
                self.commit = git_commit()
                self._open_session()
                self.specs = TrialSpecs(self.r, str(self.registry), self.timeout_s, self.trackers)
                self.recorder = Recorder(self.r, self.state, self.ledger, self.commit)
                self.scheduler = TrialScheduler(self.dir / "trials", self.workers, emit=self.emit, stop=self.stop,
                                                lock_fd=lock_fd, rerun_failed=self.retry_crashed,
                                                launcher=self.launcher)
                self.emit("start", {"name": self.r.name, "workers": self.workers, "dir": str(self.dir),
                                    "timeout_s": self.timeout_s})
                problem = self.recorder.repair()
                if problem:
                    self.emit("warning", {"message": problem})
                try:
                    self._stages()
                finally:
                    self.stop.set()
                    self.launcher.close()
                    self.state.end_run()
            return self.result()

    def _open_session(self) -> None:
        st = self.state
        with st.lock:  # the registry is chosen once per study: `resume` without --registry keeps using it
            self.registry = Path(self._registry_arg or st.registry or DEFAULT_REGISTRY).resolve()
            st.registry = str(self.registry)
            st.environment = st.environment or study_environment(self.workers)
            st.commit = st.commit or self.commit
            if self.retry_crashed and any(not t.ok for t in st.trials.values()):
                for stage in ("trials", "report"):  # crashed trials run again: the verdicts and report are redone
                    st.stages.pop(stage, None)
                st.done = False
                st.save()
        st.start_run(self.workers)

    # --- the stages, in order ---

    def _stages(self) -> None:
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
            self.state.done = True
            self.state.save()

    def _stage_baseline(self, need_checks: bool, need_regression: bool) -> None:
        """Checks, baseline seeds and the short regression runs go into one batch (they are independent, so they
        fill the workers); the checks' verdict stops the batch at once if they fail, and the baseline is decided
        only after the checks passed, the regression only after the baseline reproduced."""
        self._enter("baseline", "checks + baseline" if need_checks else "baseline")
        n0 = self.s.seeds.initial
        extra = [self.specs.checks(self.state.generation("checks"))] if need_checks else []
        extra += self.specs.regression(regression_plan(self.r, self.state)) if need_regression else []
        self._run_batch([(BASELINE, i) for i in range(n0)], extra)
        if self.state.stage_done("baseline"):
            return
        values = []
        for i in range(n0):
            tid = arm_trial_id(self.r, BASELINE, i)
            rec = self.state.trial(tid)
            if rec is None or not rec.ok or rec.metric is None:
                self.state.set_stage("baseline", "failed", error=rec.error if rec else "missing")
                raise StudyError(baseline_failure(self.r, tid, rec, "fix the baseline"))
            values.append(float(rec.metric))
        self.emit("baseline", decide_baseline(self.r, self.state, values))

    def _stage_regression(self) -> None:
        self._enter("regression")
        plan = regression_plan(self.r, self.state)
        specs = self.specs.regression(plan)
        self._run_batch([], specs)
        runs = [(sp.trial_id, self.state.trial(sp.trial_id)) for sp in specs]
        self.emit("regression", decide_regression(self.r, self.state, plan, runs))

    def _stage_trials(self) -> None:
        """Ideas × seeds, decided after each round; a RETEST adds seeds (paired with new baseline seeds) and loops."""
        self._enter("trials")
        arms, seeds, planned = self.r.idea_names, self.s.seeds, self.state.planned
        looks = n_looks(seeds.initial, seeds.max, seeds.step)
        with self.state.lock:
            for arm in arms:
                planned.setdefault(arm, seeds.initial)
            self.state.save()
        while True:
            n_base = max(planned[a] for a in arms)
            self._run_batch([(BASELINE, i) for i in range(n_base)] + [(a, i) for a in arms for i in range(planned[a])])
            for i in range(n_base):
                tid = arm_trial_id(self.r, BASELINE, i)
                rec = self.state.trial(tid)
                if rec is None or not rec.ok:
                    raise StudyError(baseline_failure(self.r, tid, rec, "every idea is paired with it — fix it"))
            verdicts = {a: self._decide(a, planned[a], looks) for a in arms}
            rnd = self.state.round
            self.recorder.record_verdicts(list(verdicts.values()), rnd)
            retest = [a for a, v in verdicts.items() if v.verdict == "RETEST"]
            with self.state.lock:
                self.state.verdicts = verdicts
                for a in retest:
                    planned[a] = min(seeds.max, planned[a] + seeds.step)
                self.state.round = rnd + 1 if retest else rnd
                self.state.save()
            self.emit("verdicts", {"round": rnd, "verdicts": list(verdicts.values()), "retest": retest})
            if not retest:
                break
        self.state.set_stage("trials", "done", rounds=self.state.round + 1)

    def _decide(self, arm: str, n: int, looks: int) -> Verdict:
        idea_vals, base_vals, error = self.recorder.paired_metrics(arm, n)
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

    def _enter(self, stage: str, label: str = "") -> None:
        self.state.enter(stage)
        self.emit("stage", {"stage": label or stage})

    def result(self) -> StudyResult:
        """The verdicts (in the study's order), the rule that made them, and where the report is."""
        sp, rep = self.s.seeds, self.state.stages.get("report")
        rule = rule_text(self.s.decision, metric=self.s.metric.name, direction=self.r.direction, initial=sp.initial,
                         max_seeds=sp.max, step=sp.step)
        # from the folder opened, not the stored path (the folder may have been copied or moved)
        md = self.dir / Path(rep.markdown).name if rep and rep.markdown else None
        html = self.dir / Path(rep.html).name if rep and rep.html else None
        verdicts = [self.state.verdicts[a] for a in self.r.idea_names if a in self.state.verdicts]
        return StudyResult(self.r.name, self.dir, verdicts, rule, self.s.metric.name, self.state.wall_seconds(),
                           len(self.state.trials), md, html)

    # --- trials ---

    def _finished(self, tid: str) -> bool:
        """Recorded (a crash of an earlier session counts unless --retry-crashed), or adopted from its result.json."""
        rec = self.state.trial(tid)
        if rec is not None and (rec.ok or not self.retry_crashed or rec.run == len(self.state.runs)):
            return True
        if rec is None:
            out = read_outcome(self.dir / "trials" / tid)
            if out is not None:  # finished after the last state save: adopt, do not re-run
                self.recorder.record(out, adopted=True)
                return True
        return False

    def _run_batch(self, keys: list[tuple[str, int]], extra: list[TrialSpec] | None = None) -> None:
        extra = list(extra or [])
        first = [e for e in extra if e.kind == "checks"]  # the gate starts first
        specs = first + [self.specs.arm(arm, i) for arm, i in keys] + [e for e in extra if e.kind != "checks"]
        seen: set[str] = set()
        todo = []
        for spec in specs:
            if spec.trial_id in seen or (spec.kind != "checks" and self._finished(spec.trial_id)):
                continue
            seen.add(spec.trial_id)
            todo.append(spec)
        self.scheduler.run(todo, self._on_done, on_start=lambda spec: self.state.mark_running(spec.trial_id, True))

    def _on_done(self, spec: TrialSpec, out: TrialOutcome) -> None:
        """In the worker thread of a finished trial: record it (or decide the checks); raising stops the batch."""
        if out.disk:  # the disk, not the trial: stop the study, record nothing
            self.state.mark_running(spec.trial_id, False)
            raise StudyError(f"{out.error}; free space or make it writable (or use --root DIR / --registry DIR on "
                             f"another disk), then `autoresearch study resume {self.r.name}` (nothing written so far "
                             f"was lost)")
        if spec.kind == "checks":
            self.state.mark_running(spec.trial_id, False)
            self.recorder.record_gate("checks", out, f"integration checks: {checks_summary(out)}")
            decide_checks(self.r, self.state, out, self.dir / "trials")
            self.emit("checks", {"checks": out.checks})
            return
        rec, delta = self.recorder.record(out)
        self.emit("trial_done", {**rec.to_dict(), "delta": delta, "done": self.scheduler.tick(),
                                 "total": self.scheduler.total})

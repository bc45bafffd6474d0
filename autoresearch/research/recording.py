"""Recording a study's results: trial outcomes become `TrialRecord`s in state.json and lines in the ledger; gates
(checks) and verdicts go into the ledger; what the machine and checkout were is recorded once per study.

Order of writes for a trial: ledger line first (append-only, idempotent by key), then the state; a crash between
the two is repaired on the next start (`repair`: trials in the state but not in the ledger are appended again), and
results.tsv is rebuilt from the ledger. The state is authoritative, the ledger append-only, results.tsv derived.
"""

from __future__ import annotations

import hashlib
import math
import platform
from typing import Any

from autoresearch.harness.provenance import machine_fingerprint, memory_gb
from autoresearch.research.ledger import Ledger
from autoresearch.research.scheduler import default_workers
from autoresearch.research.state import StudyState, TrialRecord, now
from autoresearch.research.study import BASELINE, ResolvedStudy
from autoresearch.research.trial import TrialOutcome
from autoresearch.research.trial_specs import REGRESSION, arm_trial_id, pairing_index
from autoresearch.research.verdicts import Verdict

__all__ = ["Recorder", "git_commit", "study_environment"]

REGRESSION_DESCRIPTION = "short deterministic baseline run (regression check)"


def git_commit() -> str:
    """Short commit of the checkout holding the code under test (+"-dirty"), karpathy's `commit` column."""
    from autoresearch.harness.provenance import git_info

    info = git_info()
    if not info.get("commit"):
        return ""
    return str(info["commit"])[:7] + ("-dirty" if info.get("dirty") else "")


def study_environment(workers: int) -> dict[str, Any]:
    """The machine a study ran on (fingerprint, platform, cores, workers, commit, memory), recorded once."""
    env = {**machine_fingerprint(), "platform": platform.platform(), "cores": default_workers(1), "workers": workers,
           "commit": git_commit()}
    if (mem := memory_gb()) is not None:
        env["memory_gb"] = mem
    return env


class Recorder:
    """Writes what trials and decisions produced into the study's state and ledger."""

    def __init__(self, resolved: ResolvedStudy, state: StudyState, ledger: Ledger, commit: str) -> None:
        self.r = resolved
        self.state = state
        self.ledger = ledger
        self.commit = commit

    def record(self, out: TrialOutcome, adopted: bool = False) -> tuple[TrialRecord, float | None]:
        """Record a finished trial; returns its record and Δ against its baseline pair (None when unpaired)."""
        metric_name = self.r.study.metric.name
        metric = out.metrics.get(metric_name) if out.ok else None
        status, error = out.status, out.error
        if out.ok and (metric is None or not math.isfinite(float(metric))):
            status, error = "crashed", f"metric {metric_name!r} missing or not finite in the results"
            metric = None
        index = pairing_index(self.r, out.arm, out.seed)
        delta = None
        if metric is not None and out.arm not in (BASELINE, REGRESSION) and index is not None:
            base = self.state.trial(arm_trial_id(self.r, BASELINE, index))
            if base is not None and base.ok and base.metric is not None:
                d = float(metric) - float(base.metric)
                delta = d if self.r.direction == "higher" else -d
        rec = TrialRecord(
            trial=out.trial_id, arm=out.arm, seed=out.seed, index=index, status=status, metric=metric,
            metrics=out.metrics, exp=out.exp, error=error, attempts=out.attempts, attempt=out.attempt,
            train_wall_s=round(out.train_wall_s, 3), wall_s=round(out.wall_s, 3), memory_gb=round(out.memory_gb, 3),
            infra=out.infra, finished_at=now(), adopted=adopted, run=len(self.state.runs))
        self._append_trial(rec, delta)
        self.state.record_trial(rec)
        return rec, delta

    def _append_trial(self, rec: TrialRecord, delta: float | None, **extra: Any) -> None:
        kind = REGRESSION if rec.arm == REGRESSION else "trial"
        desc = (REGRESSION_DESCRIPTION if kind == REGRESSION
                else self.r.description(rec.arm) if rec.arm in self.r.arms else "")
        self.ledger.append({"key": f"trial:{rec.trial}:a{rec.attempt}", "kind": kind, "study": self.r.name,
                            "commit": self.commit, "description": desc, "delta": delta, **extra, **rec.to_dict()})

    def record_gate(self, kind: str, out: TrialOutcome, description: str) -> None:
        """A gate run (the integration checks) in the ledger; its decision lives in the state's stage."""
        self.ledger.append({"key": f"{kind}:{out.trial_id}:a{out.attempt}", "kind": kind, "study": self.r.name,
                            "arm": kind, "trial": out.trial_id, "commit": self.commit, "description": description,
                            "status": out.status if out.ok else "crashed", "error": out.error, "checks": out.checks,
                            "wall_s": round(out.wall_s, 3), "at": now()})

    def record_verdicts(self, verdicts: list[Verdict], rnd: int) -> None:
        for v in verdicts:
            # keyed by the numbers: a resume re-deciding the same data appends nothing, a retried trial does
            digest = hashlib.sha1(repr((v.verdict, v.n, v.mean, v.lo, v.hi, v.error)).encode()).hexdigest()[:10]
            self.ledger.append({"key": f"verdict:{v.idea}:n{v.n}:{digest}", "kind": "verdict", "arm": v.idea,
                                "round": rnd, "commit": self.commit, "at": now(), **v.to_dict()})

    def repair(self) -> str:
        """Bring the ledger and results.tsv in line with the authoritative state: trials recorded in state.json but
        missing from the ledger (a torn or garbled line) are appended again, and results.tsv is rebuilt. Returns the
        ledger's problem ('' when none) for a warning."""
        have = {r.get("key") for r in self.ledger.records()}
        for rec in self.state.trials.values():
            if f"trial:{rec.trial}:a{rec.attempt}" not in have and rec.trial:
                self._append_trial(rec, None, restored_from_state=True)
        self.ledger.rebuild()
        return self.ledger.problem()

    def paired_metrics(self, arm: str, n: int) -> tuple[list[float], list[float], str]:
        """The metrics of `arm`'s first `n` trials and of their baseline pairs, and the first failure ('' if none).
        The baseline pairs must all be ok (the runner checks them before deciding)."""
        idea_vals: list[float] = []
        base_vals: list[float] = []
        error = ""
        for i in range(n):
            tid = arm_trial_id(self.r, arm, i)
            rec = self.state.trial(tid)
            if rec is None or not rec.ok:
                status = rec.status if rec else "missing"
                error = error or f"{tid} {status}: {rec.error if rec else ''}"
                continue
            base = self.state.trial(arm_trial_id(self.r, BASELINE, i))
            assert base is not None and base.metric is not None and rec.metric is not None
            idea_vals.append(float(rec.metric))
            base_vals.append(float(base.metric))
        return idea_vals, base_vals, error

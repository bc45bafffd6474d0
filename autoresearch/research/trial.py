"""One trial of a study = one subprocess that allocates an experiment in the registry and runs `testbed.train`.

Parent side: `run_trial` writes `trials/<id>/attempt-<k>/spec.json`, starts
`python -m autoresearch.research.trial SPEC`, waits (with an optional timeout) and reads `result.json`.
Child side (`main`): loads the testbed, builds the config, allocates `experiments/exp-NNN`, trains, and writes
`result.json` atomically with the status, metrics and error.

Why a subprocess per trial (DESIGN.md §2): a segfault, OOM kill or runaway allocation in one trial cannot take the
study down, and each trial gets a clean interpreter (no state leaks between seeds).

Failure classes:
  ok / diverged / crashed   the child wrote a result; diverged (NaN, DivergenceError) and crashed (an exception in
                            the testbed, MemoryError, CUDA OOM, a timeout) are final — retrying would fail the same way.
  infrastructure            the child died without a result (killed by a signal, interpreter failed to start) or
                            could not allocate its experiment (registry/disk error): retried up to `retries` times,
                            then recorded as crashed with the last error.
The child watches its parent: if the study process dies (kill -9), the trial exits within half a second instead of
running on as an orphan; `study resume` re-runs it from scratch under a new attempt number.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autoresearch.harness.atomic import atomic_write_text

__all__ = ["TrialSpec", "TrialOutcome", "run_trial", "read_outcome", "attempt_dirs", "TrialInterrupted"]

ATTEMPT_ENV = "AUTORESEARCH_TRIAL_ATTEMPT"


class TrialInterrupted(Exception):
    """The study is stopping (Ctrl-C); the trial was killed and must not be recorded."""


@dataclass
class TrialSpec:
    """Everything the trial subprocess needs; written as spec.json."""

    study: str
    trial_id: str
    arm: str
    seed: int | None
    kind: str
    testbed: str
    preset: str
    overrides: dict[str, Any]
    registry: str
    threads: int = 1
    timeout_s: float = 0.0
    retries: int = 3
    attempt: int = 1


@dataclass
class TrialOutcome:
    """What happened to a trial (after retries)."""

    trial_id: str
    arm: str
    seed: int | None
    status: str
    metrics: dict[str, Any] = field(default_factory=dict)
    exp: str = ""
    error: str = ""
    attempts: int = 1
    attempt: int = 1
    train_wall_s: float = 0.0
    wall_s: float = 0.0
    memory_gb: float = 0.0
    infra: bool = False
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# --- parent side --------------------------------------------------------------------------------------------------


def attempt_dirs(trial_dir: Path) -> list[Path]:
    """Existing attempt folders of a trial, in attempt order."""
    if not trial_dir.is_dir():
        return []
    found = [(int(p.name.split("-", 1)[1]), p) for p in trial_dir.iterdir()
             if p.is_dir() and p.name.startswith("attempt-") and p.name.split("-", 1)[1].isdigit()]
    return [p for _, p in sorted(found)]


def read_outcome(trial_dir: Path) -> TrialOutcome | None:
    """The final (non-infrastructure) result already on disk, if any attempt produced one."""
    for adir in reversed(attempt_dirs(trial_dir)):
        res = _read_result(adir)
        if res is not None and not res.get("infra"):
            return _outcome(res, attempts=1)
    return None


def _read_result(adir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((adir / "result.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _outcome(res: dict[str, Any], attempts: int) -> TrialOutcome:
    names = TrialOutcome.__dataclass_fields__
    out = TrialOutcome(**{k: v for k, v in res.items() if k in names})
    out.attempts = attempts
    return out


def _describe_exit(code: int, log: Path) -> str:
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        why = " (out of memory, or killed from outside)" if -code == signal.SIGKILL else ""
        return f"trial process killed by {name}{why} before writing a result"
    tail = ""
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        tail = lines[-1].strip()[:200] if lines else ""
    except FileNotFoundError:
        pass
    return f"trial process exited with code {code} before writing a result" + (f": {tail}" if tail else "")


def run_trial(
    spec: TrialSpec,
    trial_dir: Path,
    *,
    stop: threading.Event | None = None,
    env: dict[str, str] | None = None,
) -> TrialOutcome:
    """Run one trial in a subprocess, retrying infrastructure failures; never raises for trial failures."""
    trial_dir.mkdir(parents=True, exist_ok=True)
    prior = attempt_dirs(trial_dir)
    k = int(prior[-1].name.split("-", 1)[1]) + 1 if prior else 1
    error = ""
    t_start = time.perf_counter()
    for tries in range(1, spec.retries + 2):
        adir = trial_dir / f"attempt-{k}"
        adir.mkdir(parents=True, exist_ok=True)
        spec.attempt = k
        atomic_write_text(adir / "spec.json", json.dumps(asdict(spec), indent=1, default=str))
        child_env = {**os.environ, **(env or {})}
        child_env.update({"OMP_NUM_THREADS": str(spec.threads), "MKL_NUM_THREADS": str(spec.threads),
                          ATTEMPT_ENV: str(tries)})
        log = adir / "output.log"
        t0 = time.perf_counter()
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "autoresearch.research.trial", str(adir / "spec.json")],
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=child_env)
            timed_out = _wait(proc, spec.timeout_s, stop)
        wall = time.perf_counter() - t0
        if stop is not None and stop.is_set():  # Ctrl-C reached the child too: not a failure of the trial
            raise TrialInterrupted()
        if timed_out:
            return TrialOutcome(spec.trial_id, spec.arm, spec.seed, "crashed", attempts=tries, attempt=k,
                                error=f"timed out after {spec.timeout_s:g}s (resources.timeout_s)", wall_s=wall)
        res = _read_result(adir)
        if res is not None and not res.get("infra"):
            out_ = _outcome(res, attempts=tries)
            out_.wall_s = wall
            return out_
        error = res["error"] if res is not None else _describe_exit(proc.returncode, log)
        k += 1
    return TrialOutcome(spec.trial_id, spec.arm, spec.seed, "crashed", attempts=spec.retries + 1, attempt=k - 1,
                        infra=True, wall_s=time.perf_counter() - t_start,
                        error=f"infrastructure failure after {spec.retries + 1} attempts: {error}")


def _wait(proc: subprocess.Popen, timeout_s: float, stop: threading.Event | None) -> bool:
    """Wait for `proc`; True if it was killed for exceeding `timeout_s`. Raises TrialInterrupted on `stop`."""
    deadline = time.monotonic() + timeout_s if timeout_s > 0 else math.inf
    while True:
        try:
            proc.wait(timeout=0.2)
            return False
        except subprocess.TimeoutExpired:
            pass
        if stop is not None and stop.is_set():
            proc.kill()
            proc.wait()
            raise TrialInterrupted()
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            return True


# --- child side ---------------------------------------------------------------------------------------------------


def _watch_parent() -> None:
    parent = os.getppid()

    def loop() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(70)

    threading.Thread(target=loop, daemon=True, name="parent-watchdog").start()


def _max_rss_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux reports KiB


def _metrics(results: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in results.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")[:300]


def main(argv: list[str] | None = None) -> int:
    """Child entry point: `python -m autoresearch.research.trial SPEC.json`."""
    argv = sys.argv[1:] if argv is None else argv
    spec_path = Path(argv[0])
    adir = spec_path.parent
    spec = TrialSpec(**json.loads(spec_path.read_text()))
    _watch_parent()
    result: dict[str, Any] = {"trial_id": spec.trial_id, "arm": spec.arm, "seed": spec.seed, "attempt": spec.attempt}

    def finish(**kw: Any) -> int:
        result.update(kw)
        result.setdefault("memory_gb", _max_rss_gb())
        atomic_write_text(adir / "result.json", json.dumps(result, indent=1, default=str))
        return 0

    from autoresearch.errors import DivergenceError, RegistryError
    from autoresearch.harness.atomic import atomic_write_yaml
    from autoresearch.harness.registry import new_experiment
    from autoresearch.research.study import load_testbed

    try:
        testbed = load_testbed(spec.testbed)
        cfg = testbed.make_config(spec.preset, dict(spec.overrides))
    except Exception as e:
        traceback.print_exc()
        return finish(status="crashed", error=_first_line(e))

    if spec.kind == "checks":
        try:
            checks = testbed.checks(cfg, adir / "checks")
        except Exception as e:
            traceback.print_exc()
            return finish(status="crashed", error=_first_line(e))
        rows = [{"name": c.name, "status": c.status, "detail": c.detail, "seconds": c.seconds} for c in checks]
        return finish(status="ok", checks=rows)

    try:
        exp = new_experiment(spec.registry)
        atomic_write_yaml(exp.path / "study_trial.yaml", {"study": spec.study, "trial": spec.trial_id,
                                                          "arm": spec.arm, "seed": spec.seed, "attempt": spec.attempt})
    except (OSError, RegistryError) as e:
        traceback.print_exc()
        return finish(status="crashed", infra=True, error=f"cannot allocate an experiment: {_first_line(e)}")
    result["exp"] = str(exp.path)
    t0 = time.perf_counter()
    try:
        res = testbed.train(cfg, exp, progress=False) or {}
    except DivergenceError as e:
        return finish(status="diverged", error=_first_line(e), train_wall_s=time.perf_counter() - t0)
    except Exception as e:  # the trial's own failure: recorded, final
        tb = traceback.format_exc()
        print(tb, file=sys.stderr)
        exp.log_error(tb)
        oom = isinstance(e, MemoryError) or "OutOfMemoryError" in type(e).__name__
        msg = f"out of memory ({_first_line(e)})" if oom else _first_line(e)
        return finish(status="crashed", error=msg, train_wall_s=time.perf_counter() - t0)
    train_wall = time.perf_counter() - t0
    if not res:
        res = exp.read_results()
    status = str(res.get("status", "ok"))
    metrics = _metrics(res)
    mem = next((float(res[k]) for k in ("memory_gb", "peak_memory_gb", "max_memory_gb") if k in metrics), None)
    if mem is None and "peak_memory_mb" in metrics:
        mem = float(res["peak_memory_mb"]) / 1024
    if status == "ok":
        return finish(status="ok", metrics=metrics, train_wall_s=train_wall, **({"memory_gb": mem} if mem else {}))
    error = str(res.get("error") or ("loss became NaN/inf or exploded" if status == "diverged" else status))
    return finish(status="diverged" if status == "diverged" else "crashed", metrics=metrics, error=error[:300],
                  train_wall_s=train_wall)


if __name__ == "__main__":
    sys.exit(main())

"""One trial of a study = one subprocess that allocates an experiment in the registry and runs `testbed.train`.

Parent side: `run_trial` writes `trials/<id>/attempt-<k>/spec.json`, has its AttemptLauncher start the child
(`python -m autoresearch.research.trial SPEC`; or a fork of a warm worker, warm_pool.py, which calls `main([SPEC])`
after the same set-up: own session, stdout/stderr to output.log, the attempt's environment), waits (with an optional
timeout) and reads `result.json`.
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
Parent death (issue 8 §4: after `kill -9` of the runner, trials outlived it by > 5 s in 6 of 16 kills when only a
polling thread watched the parent, which a long C call can starve): the child asks the kernel for SIGKILL when its
parent dies (`PR_SET_PDEATHSIG`, Linux) as its very first act and then checks that the parent is still the one that
started it (it may have died before the request); a 0.5 s watchdog thread stays as the fallback elsewhere. Each
trial runs in its own process group, so a timeout or Ctrl-C kills what the trial started too. The child also
inherits the study's runner lock, so a `resume` cannot start while a trial of a killed runner still lives, and
`run_trial` never starts an attempt of a trial that already has a final `result.json`.

Disk errors (full, read-only, no permission) are not the trial's fault: the child reports them as infrastructure
failures marked `disk`, and the runner stops the study with one line naming the path instead of recording a CRASH.
"""

from __future__ import annotations

import ctypes
import errno
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

from autoresearch.errors import StudyError
from autoresearch.harness.atomic import atomic_write_text

__all__ = ["TrialSpec", "TrialOutcome", "AttemptLauncher", "AttemptExit", "run_trial", "read_outcome", "attempt_dirs", "TrialInterrupted",
           "result_problem", "DISK_ERRNOS", "EXIT_DISK"]

ATTEMPT_ENV = "AUTORESEARCH_TRIAL_ATTEMPT"
PARENT_ENV = "AUTORESEARCH_TRIAL_PARENT"
STATUSES = ("ok", "crashed", "diverged")
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)
EXIT_DISK = 74
"""Exit code of a trial that hit a disk error and could not even write its result.json (EX_IOERR)."""
EXP_FILE = "experiment.txt"
"""File in an attempt folder naming the experiment folder the attempt trains into (written before training)."""


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
    gpus: float = 0.0
    """GPUs the attempt reserves (`resources.gpus_per_trial`; the Ray executor declares them, the others pin GPUs by
    worker slot)."""
    trackers: list[str] = field(default_factory=list)
    """Experiment trackers the trial's experiment mirrors into (harness/trackers), tagged study/arm/seed/trial."""
    nproc: int = 1
    """Training processes (`resources.nproc_per_trial`): > 1 makes the child torchrun's agent of that many ranks of
    this same child (`_launch_ranks`); rank 0 is the trial as usual, the others only train (`_follow_rank`)."""


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
    disk: bool = False
    """infrastructure failure caused by the disk (full, read-only, no permission): stop the study, do not retry."""

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
    """The final (non-infrastructure) result already on disk, if any attempt produced one.

    A damaged result.json is an error naming the file (never silently a "not finished" trial that would then be
    trained again): the person decides whether to delete the attempt and run it anew."""
    for adir in reversed(attempt_dirs(trial_dir)):
        path = adir / "result.json"
        res, problem = _load_result(path)
        if problem:
            raise StudyError(f"trial result {path} is damaged: {problem}; delete its attempt folder "
                             f"(`rm -r {adir}`) to run the trial again, then resume the study")
        if res is not None and not res.get("infra"):
            return _outcome(res, attempts=1)
    return None


def result_problem(res: Any) -> str:
    """What is wrong with a parsed result.json ('' when it is well-formed)."""
    if not isinstance(res, dict):
        return f"expected a JSON object, got {type(res).__name__}"
    if not isinstance(res.get("trial_id"), str) or not res.get("trial_id"):
        return "missing `trial_id`"
    if res.get("status") not in STATUSES:
        return f"`status` must be one of {', '.join(STATUSES)}, got {json.dumps(res.get('status'))}"
    if not isinstance(res.get("metrics", {}), dict) or not isinstance(res.get("checks", []), list):
        return "`metrics` must be an object and `checks` a list"
    return ""


def _load_result(path: Path) -> tuple[dict[str, Any] | None, str]:
    """(result, problem): (None, '') when there is no result file, (None, why) when it is damaged."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, ""
    try:
        res = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, f"not JSON ({len(raw)} bytes)"
    problem = result_problem(res)
    return (None, problem) if problem else (res, "")


def _read_result(adir: Path) -> dict[str, Any] | None:
    return _load_result(adir / "result.json")[0]


def _outcome(res: dict[str, Any], attempts: int) -> TrialOutcome:
    names = TrialOutcome.__dataclass_fields__
    out = TrialOutcome(**{k: v for k, v in res.items() if k in names})
    out.attempts = attempts
    return out


def _describe_exit(code: int | None, log: Path) -> str:
    """Why an attempt left no result; `code` None = its process was lost (a remote worker or node died), and the
    launcher's last line in output.log says how."""
    if code == EXIT_DISK:
        return "trial process hit a disk error (full, read-only or not permitted) and could not write its result"
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        why = " (out of memory, or killed from outside)" if -code == signal.SIGKILL else ""
        return f"trial process killed by {name}{why} before writing a result"
    tail = ""
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        tail = lines[-1].strip()[:200] if lines else ""
    except FileNotFoundError:
        pass
    what = "was lost" if code is None else f"exited with code {code}"
    return f"trial process {what} before writing a result" + (f": {tail}" if tail else "")


def timeout_message(spec: TrialSpec) -> str:
    """What a timed-out trial records: the limit, the key that sets it, and how to raise it."""
    what = {"checks": "integration checks", "train": "trial"}.get(spec.kind, "trial")
    if spec.arm == "regression":
        what = "regression run"
    return (f"{what} timed out after {spec.timeout_s:g}s (resources.timeout_s: {spec.timeout_s:g}); raise "
            f"`resources.timeout_s` in the study file or pass `--timeout SECONDS` (0 = no limit) to "
            f"`autoresearch study resume {spec.study} --retry-crashed`")


@dataclass
class AttemptExit:
    """How one attempt's process ended: its exit code (None when unknown), or killed for exceeding its timeout."""

    returncode: int | None
    timed_out: bool = False


class AttemptLauncher:
    """Starts one attempt of a trial — the child side, `main(spec.json)` — and waits for it. The default launches a
    fresh interpreter (`python -m autoresearch.research.trial SPEC`); executors.py lists the others (warm workers,
    Ray). Whatever the launcher, the attempt writes `adir/result.json` and `adir/output.log` (a remote launcher
    copies them back), runs in its own process group, and is killed on `stop` (raise TrialInterrupted) or after
    `timeout_s` (> 0; return timed_out=True)."""

    name = "subprocess"

    def run_attempt(self, spec: TrialSpec, adir: Path, env: dict[str, str], *, lock_fd: int | None,
                    stop: threading.Event | None) -> AttemptExit:
        with open(adir / "output.log", "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "autoresearch.research.trial", str(adir / "spec.json")],
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                    start_new_session=True, pass_fds=() if lock_fd is None else (lock_fd,))
            timed_out = _wait(proc, spec.timeout_s, stop)
        return AttemptExit(proc.returncode, timed_out)

    def close(self) -> None:
        """Release what the launcher holds (worker processes, a cluster connection); idempotent."""


def run_trial(
    spec: TrialSpec,
    trial_dir: Path,
    *,
    stop: threading.Event | None = None,
    env: dict[str, str] | None = None,
    lock_fd: int | None = None,
    rerun_failed: bool = False,
    launcher: AttemptLauncher | None = None,
) -> TrialOutcome:
    """Run one trial in a subprocess, retrying infrastructure failures; never raises for trial failures.

    `lock_fd` (the study's runner lock) is inherited by the child, so the lock outlives a killed runner until its
    trials are gone too. An attempt is never started for a trial that already has a final result on disk (with
    `rerun_failed`, `resume --retry-crashed`, only an ok result counts)."""
    trial_dir.mkdir(parents=True, exist_ok=True)
    if spec.kind != "checks":
        done = read_outcome(trial_dir)
        if done is not None and (done.ok or not rerun_failed):  # finished by an earlier runner: adopt
            return done
        if done is None and (adopted := _adopt_finished_training(spec, trial_dir)) is not None:
            return adopted
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
                          ATTEMPT_ENV: str(tries), PARENT_ENV: str(os.getpid())})
        log = adir / "output.log"
        t0 = time.perf_counter()
        ended = (launcher or AttemptLauncher()).run_attempt(spec, adir, child_env, lock_fd=lock_fd, stop=stop)
        timed_out, returncode = ended.timed_out, ended.returncode
        wall = time.perf_counter() - t0
        if stop is not None and stop.is_set():  # the study is stopping: not a failure of the trial
            raise TrialInterrupted()
        if timed_out:
            return TrialOutcome(spec.trial_id, spec.arm, spec.seed, "crashed", attempts=tries, attempt=k,
                                error=timeout_message(spec), wall_s=wall)
        res, problem = _load_result(adir / "result.json")
        if res is not None and not res.get("infra"):
            out_ = _outcome(res, attempts=tries)
            out_.wall_s = wall
            return out_
        if (res is not None and res.get("disk")) or returncode == EXIT_DISK:
            error = res["error"] if res is not None else _describe_exit(returncode, log)
            return TrialOutcome(spec.trial_id, spec.arm, spec.seed, "crashed", attempts=tries, attempt=k,
                                infra=True, disk=True, wall_s=wall, error=error)
        if problem:
            error = f"the trial wrote a damaged {adir / 'result.json'} ({problem})"
        else:
            error = res["error"] if res is not None else _describe_exit(returncode, log)
        k += 1
    return TrialOutcome(spec.trial_id, spec.arm, spec.seed, "crashed", attempts=spec.retries + 1, attempt=k - 1,
                        infra=True, wall_s=time.perf_counter() - t_start,
                        error=f"infrastructure failure after {spec.retries + 1} attempts: {error}")


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the trial's process group (the trial and whatever it started), then reap the trial."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


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
            _kill_group(proc)
            raise TrialInterrupted()
        if time.monotonic() > deadline:
            _kill_group(proc)
            return True


# --- child side ---------------------------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies, then make sure the parent has not died already.

    Set before anything slow (imports of torch take seconds), so a runner killed at any moment takes its trials
    with it at once. PR_SET_PDEATHSIG fires when the parent *thread* exits; the runner's worker thread that started
    this process waits for it, so that thread outlives it."""
    expected = int(os.environ.get(PARENT_ENV, "0") or 0)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if expected and os.getppid() != expected:  # the parent died before the request took effect
        os._exit(70)


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
    _die_with_parent()
    _watch_parent()
    spec_path = Path(argv[0])
    adir = spec_path.parent
    spec = TrialSpec(**json.loads(spec_path.read_text()))
    if spec.kind == "train" and spec.nproc > 1:
        from autoresearch.testbeds.common import distributed

        if not distributed.launched():
            return _launch_ranks(spec, spec_path)
        if not distributed.is_main():
            return _follow_rank(spec)
    result: dict[str, Any] = {"trial_id": spec.trial_id, "arm": spec.arm, "seed": spec.seed, "attempt": spec.attempt}

    def finish(**kw: Any) -> int:
        result.update(kw)
        result.setdefault("memory_gb", _max_rss_gb())
        try:
            atomic_write_text(adir / "result.json", json.dumps(result, indent=1, default=str))
        except OSError as e:
            if e.errno in DISK_ERRNOS:
                print(f"cannot write {adir / 'result.json'}: {e}", file=sys.stderr)
                return EXIT_DISK
            raise
        return 0

    def disk_failure(e: OSError) -> int | None:
        """A full/read-only disk is the machine's problem, not the trial's: report it as such."""
        if e.errno not in DISK_ERRNOS:
            return None
        traceback.print_exc()
        where = e.filename or spec.registry
        return finish(status="crashed", infra=True, disk=True,
                      error=f"cannot write {where}: {os.strerror(e.errno or 0)} ({errno.errorcode.get(e.errno or 0)})")

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
            cause = e if isinstance(e, OSError) else (e.__cause__ or e.__context__)
            code = disk_failure(cause) if isinstance(cause, OSError) else None
            if code is not None:
                return code
            traceback.print_exc()
            return finish(status="crashed", error=_first_line(e))
        rows = [{"name": c.name, "status": c.status, "detail": c.detail, "seconds": c.seconds} for c in checks]
        return finish(status="ok", checks=rows)

    try:
        exp = new_experiment(spec.registry)
        atomic_write_yaml(exp.path / "study_trial.yaml", {"study": spec.study, "trial": spec.trial_id,
                                                          "arm": spec.arm, "seed": spec.seed, "attempt": spec.attempt})
    except (OSError, RegistryError) as e:
        cause = e if isinstance(e, OSError) else (e.__cause__ or e.__context__)
        code = disk_failure(cause) if isinstance(cause, OSError) else None
        if code is not None:
            return code
        traceback.print_exc()
        return finish(status="crashed", infra=True, error=f"cannot allocate an experiment: {_first_line(e)}")
    result["exp"] = str(exp.path)
    if spec.nproc > 1:  # rank 0 of a multi-process trial: the other ranks train into this experiment
        distributed.broadcast_object(str(exp.path))
    atomic_write_text(adir / EXP_FILE, str(exp.path))  # lets a resume adopt a run killed after training ended
    exp = exp.with_trackers(spec.trackers, {"study": spec.study, "arm": spec.arm, "seed": spec.seed,
                                            "trial": spec.trial_id, "attempt": spec.attempt},
                            run_name=f"{spec.study}/{spec.trial_id}")  # never raises: a failing tracker is a warning
    t0 = time.perf_counter()
    try:
        res = testbed.train(cfg, exp, progress=False) or {}
    except DivergenceError as e:
        return finish(status="diverged", error=_first_line(e), train_wall_s=time.perf_counter() - t0)
    except Exception as e:  # the trial's own failure: recorded, final (a disk error is not the trial's)
        cause = e if isinstance(e, OSError) else (e.__cause__ or e.__context__)
        code = disk_failure(cause) if isinstance(cause, OSError) else None
        if code is not None:
            return code
        tb = traceback.format_exc()
        print(tb, file=sys.stderr)
        exp.log_error(tb)
        oom = isinstance(e, MemoryError) or "OutOfMemoryError" in type(e).__name__
        msg = f"out of memory ({_first_line(e)})" if oom else _first_line(e)
        return finish(status="crashed", error=msg, train_wall_s=time.perf_counter() - t0)
    finally:
        exp.close_trackers()
    train_wall = time.perf_counter() - t0
    return finish(**_fields_from_results(res or exp.read_results(), train_wall))


def _launch_ranks(spec: TrialSpec, spec_path: Path) -> int:
    """A trial of `nproc` > 1 processes: this child becomes torchrun's agent of `nproc` ranks of itself; rank 0 writes
    result.json. A rank killed by a signal (or no result at all) is an infrastructure failure, retried like a killed
    single-process trial, even if rank 0 recorded the crash its lost peer caused."""
    from autoresearch.errors import DistributedError
    from autoresearch.testbeds.common import distributed

    os.environ[PARENT_ENV] = str(os.getpid())  # the ranks' parent is this process: they die with it
    try:
        distributed.launch(spec.nproc, distributed.python_module_cmd("autoresearch.research.trial", [str(spec_path)]))
    except DistributedError as e:
        res = _read_result(spec_path.parent)
        if res is None or (getattr(e, "killed", False) and res.get("status") != "ok"):
            result = {"trial_id": spec.trial_id, "arm": spec.arm, "seed": spec.seed, "attempt": spec.attempt,
                      "status": "crashed", "infra": True, "error": str(e)[:300],
                      **({"exp": res["exp"]} if res and res.get("exp") else {})}
            atomic_write_text(spec_path.parent / "result.json", json.dumps(result, indent=1, default=str))
    return 0


def _follow_rank(spec: TrialSpec) -> int:
    """A rank > 0 of a multi-process trial: build the same config, train into the experiment rank 0 allocated (its
    folder arrives by broadcast); rank 0 alone writes the experiment and result.json."""
    from autoresearch.harness.registry import Experiment
    from autoresearch.research.study import load_testbed
    from autoresearch.testbeds.common import distributed

    testbed = load_testbed(spec.testbed)
    cfg = testbed.make_config(spec.preset, dict(spec.overrides))
    exp = Experiment(Path(distributed.broadcast_object(None)))
    try:
        testbed.train(cfg, exp, progress=False)
    finally:
        distributed.teardown()
    return 0


def _fields_from_results(res: dict[str, Any], train_wall: float) -> dict[str, Any]:
    """result.json fields (status, metrics, error, train_wall_s, memory_gb) from an experiment's results."""
    status = str(res.get("status", "ok"))
    metrics = _metrics(res)
    mem = next((float(res[k]) for k in ("memory_gb", "peak_memory_gb", "max_memory_gb") if k in metrics), None)
    if mem is None and "peak_memory_mb" in metrics:
        mem = float(res["peak_memory_mb"]) / 1024
    if status == "ok":
        return {"status": "ok", "metrics": metrics, "train_wall_s": train_wall, **({"memory_gb": mem} if mem else {})}
    error = str(res.get("error") or ("loss became NaN/inf or exploded" if status == "diverged" else status))
    return {"status": "diverged" if status == "diverged" else "crashed", "metrics": metrics, "error": error[:300],
            "train_wall_s": train_wall}


def _adopt_finished_training(spec: TrialSpec, trial_dir: Path) -> TrialOutcome | None:
    """The last attempt's run finished training (results.yaml ok) but its process was killed before result.json was
    written (e.g. the runner was killed and PR_SET_PDEATHSIG took the trial with it): record that run instead of
    training the trial again."""
    prior = attempt_dirs(trial_dir)
    if not prior or (prior[-1] / "result.json").exists() or not (prior[-1] / EXP_FILE).is_file():
        return None
    adir = prior[-1]
    try:
        from autoresearch.harness.registry import Experiment

        exp_path = Path((adir / EXP_FILE).read_text().strip())
        res = Experiment(exp_path).read_results()
    except Exception:  # a damaged or missing run is simply not adoptable: the trial runs again
        return None
    if res.get("status") != "ok":
        return None
    fields = _fields_from_results(res, float(res.get("train_seconds") or 0.0))
    result = {"trial_id": spec.trial_id, "arm": spec.arm, "seed": spec.seed,
              "attempt": int(adir.name.split("-", 1)[1]), "exp": str(exp_path), "adopted": True, **fields}
    atomic_write_text(adir / "result.json", json.dumps(result, indent=1, default=str))
    return read_outcome(trial_dir)


if __name__ == "__main__":
    sys.exit(main())

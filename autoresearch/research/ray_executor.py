"""The Ray executor (`study run FILE --executor ray [--address ADDR]`): each attempt of a trial is one Ray task that
declares the trial's resources (`num_cpus` = resources.threads_per_trial, `num_gpus` = resources.gpus_per_trial) and
runs the SAME child as the subprocess executor — `python -m autoresearch.research.trial SPEC` in a subprocess of the
Ray worker, in its own process group — so a crash, OOM or `kill -9` of a trial stays a trial's failure, exactly as
locally. Ray is only the transport: where the attempt runs, and with which CPUs/GPUs.

Process boundaries (three processes, two hops):
    study process (Ray driver)   RayLauncher.run_attempt: submits the task, waits on its ObjectRef, maps how it
                                 ended onto an AttemptExit; the only writer of state.json and the ledger
    Ray worker (any node)        run_remote_attempt: writes spec.json where the study folder is not shared, starts
                                 the trial child, enforces the trial's timeout, returns (returncode, result.json text,
                                 output.log tail)
    trial child                  trial.main: trains and writes result.json + output.log, as with every executor

The data changes form once per hop: TrialSpec -> spec.json text + an environment delta -> a RemoteAttempt dict ->
AttemptExit (+ result.json/output.log copied into the attempt folder when the worker did not share the filesystem).

Failure mapping: the trial's own exit code comes back as is (killed by a signal = infrastructure, retried by
run_trial); a lost worker or node (WorkerCrashedError, NodeDiedError, ObjectLostError, any other RayError) is an
infrastructure failure too (returncode None, the Ray error's first line in output.log). Ray's own task retries are off
(max_retries=0): run_trial retries, each retry under a new attempt folder. `stop` cancels the task (KeyboardInterrupt
in the worker, which kills the trial's process group; after STOP_GRACE_S a forced cancel kills the worker, and the
trial child dies with it through PR_SET_PDEATHSIG) and raises TrialInterrupted.

Filesystem: the registry and the study folder should be on a filesystem every node shares (NFS, a local instance),
so experiments and checkpoints land where the study can see them; without one, the trial trains into the worker's
copy of the registry path and only its result.json and the tail of its output.log come back.

The runner lock (lock_fd) cannot cross a process tree that Ray owns. On a local instance this is equivalent: the Ray
processes share the driver's fate (Ray starts them with PR_SET_PDEATHSIG), the workers die with them, and each trial
dies with its worker. On a cluster, Ray kills the tasks of a driver that exits; a trial still finishing then can only
write its own attempt folder, which a resume never reuses (it starts a new attempt number).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from autoresearch.errors import StudyError
from autoresearch.harness.atomic import atomic_write_text
from autoresearch.research.trial import (
    PARENT_ENV,
    AttemptExit,
    AttemptLauncher,
    TrialInterrupted,
    TrialSpec,
    _kill_group,
    _wait,
)

__all__ = ["RayLauncher", "run_remote_attempt", "import_ray", "INSTALL_HINT"]

INSTALL_HINT = "`--executor ray` needs the `ray` package, which is not installed; pip install 'autoresearch[scale]'"
LOG_TAIL_BYTES = 64_000
"""How much of a remote trial's output.log comes back when the worker does not share the study folder."""
STOP_GRACE_S = 5.0
"""After a polite cancel (the worker kills the trial's group), how long to wait before killing the worker itself."""
POLL_S = 0.2


def import_ray() -> Any:
    """The `ray` module, or a one-line StudyError with the install command."""
    try:
        import ray
    except ImportError as e:
        raise StudyError(INSTALL_HINT) from e
    return ray


# --- worker side (runs inside a Ray worker process) -----------------------------------------------------------------


def _tail(path: Path, limit: int = LOG_TAIL_BYTES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - limit))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def run_remote_attempt(spec_json: str, adir: str, env_delta: dict[str, str], timeout_s: float,
                       cwd: str) -> dict[str, Any]:
    """One attempt on a Ray worker: the trial child in its own process group, killed after `timeout_s` (> 0; the
    clock starts when the worker starts the attempt, not while the task waits for resources). Returns returncode,
    timed_out, shared (the worker saw the attempt folder: result.json and output.log are already in place), node,
    and — when not shared — result (result.json text or None) and log (output.log's tail)."""
    folder = Path(adir)
    try:
        shared = (folder / "spec.json").read_text() == spec_json
    except OSError:
        shared = False
    work = folder if shared else Path(tempfile.mkdtemp(prefix="autoresearch-attempt-"))
    try:
        if not shared:
            (work / "spec.json").write_text(spec_json)
        env = {**os.environ, **env_delta, PARENT_ENV: str(os.getpid())}  # the trial's parent is this worker
        with open(work / "output.log", "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "autoresearch.research.trial", str(work / "spec.json")],
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                    cwd=cwd if os.path.isdir(cwd) else str(work), start_new_session=True)
            try:
                timed_out = _wait(proc, timeout_s, None)
            except BaseException:  # ray.cancel: KeyboardInterrupt here; the trial's whole group goes with it
                _kill_group(proc)
                raise
        ended: dict[str, Any] = {"returncode": proc.returncode, "timed_out": timed_out, "shared": shared,
                                 "node": os.uname().nodename}
        if not shared:
            result = work / "result.json"
            ended["result"] = result.read_text() if result.is_file() else None
            ended["log"] = _tail(work / "output.log")
        return ended
    finally:
        if not shared:
            shutil.rmtree(work, ignore_errors=True)


# --- driver side (the study process) --------------------------------------------------------------------------------


def _env_delta(env: dict[str, str]) -> dict[str, str]:
    """What the attempt's environment adds to the driver's own: a remote worker keeps its own PATH, HOME and Python,
    and gets the trial's threads, attempt number, the AUTORESEARCH_* settings and whatever the caller set (a
    worktree, say). CUDA_VISIBLE_DEVICES is Ray's to set (the task's `num_gpus`), and the parent pid is the worker's."""
    keep = {"OMP_NUM_THREADS", "MKL_NUM_THREADS"}
    delta = {k: v for k, v in env.items()
             if os.environ.get(k) != v or k in keep or k.startswith("AUTORESEARCH_")}
    delta.pop("CUDA_VISIBLE_DEVICES", None)
    delta.pop(PARENT_ENV, None)
    return delta


def _first_line(e: BaseException) -> str:
    lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0].strip() if lines else ''}".rstrip(": ")[:300]


class _DropRayThreadWarning(logging.Filter):
    """Ray warns that it sets no SIGTERM handler outside the main thread; the study keeps its own handling."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()


class RayLauncher(AttemptLauncher):
    """Runs each attempt as a Ray task on a local instance (started at the first attempt with `workers` x threads
    CPUs, shut down by close()) or on the cluster at `address` (joined at the first attempt, left by close()). A Ray
    already initialised in this process (a notebook, a test) is used as it is and left running."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int = 1) -> None:
        self.ray = import_ray()  # a missing ray is said before the study starts
        self.address = address
        self.workers = max(1, workers)
        self._lock = threading.Lock()
        self._owned = False
        self._remote: Any = None
        self._checked: set[tuple[int, float]] = set()
        self._closed = threading.Event()
        self._host: threading.Thread | None = None

    def _connect(self, spec: TrialSpec) -> Any:
        """The remote function, after joining (or starting) Ray; checks once per shape that the cluster can ever fit
        an attempt (an infeasible task would wait forever)."""
        ray = self.ray
        with self._lock:
            if self._remote is None:
                if not ray.is_initialized():
                    self._start(spec.threads)
                self._remote = ray.remote(run_remote_attempt)
            shape = (spec.threads, spec.gpus)
            if shape not in self._checked:
                total = ray.cluster_resources()
                cpus, gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
                if spec.threads > cpus or spec.gpus > gpus:
                    raise StudyError(
                        f"a trial needs {spec.threads} CPU and {spec.gpus:g} GPU (resources.threads_per_trial, "
                        f"resources.gpus_per_trial) but the Ray cluster has {cpus:g} CPU and {gpus:g} GPU in all; "
                        "lower them in the study file, or add nodes that have them")
                self._checked.add(shape)
            return self._remote

    def _start(self, threads: int) -> None:
        """ray.init in a thread that lives until close(). Not in the caller's thread: that is a scheduler worker thread
        which ends with its batch, and Ray's local processes share the fate of the thread that started them
        (PR_SET_PDEATHSIG fires when the parent *thread* exits) — they were killed between two batches."""
        ray = self.ray
        opts: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING, "include_dashboard": False}
        problem = _unreachable(self.address) if self.address else None
        if problem:  # ray.init retries an unreachable GCS for minutes while the study looks busy (fresh-user finding)
            raise StudyError(f"cannot reach the Ray cluster at {self.address}: {problem}; check it with `ray status "
                             f"--address {self.address}`, or drop --address to start a local instance")
        if self.address:
            opts["address"] = self.address
        else:
            opts["num_cpus"] = self.workers * max(1, threads)
        started = threading.Event()
        failure: list[BaseException] = []

        def host() -> None:
            quiet = _DropRayThreadWarning()
            logging.getLogger("ray._private.worker").addFilter(quiet)
            try:
                ray.init(**opts)
            except BaseException as e:  # reported in the caller's thread
                failure.append(e)
                return
            finally:
                logging.getLogger("ray._private.worker").removeFilter(quiet)
                started.set()
            self._closed.wait()

        self._closed.clear()
        self._host = threading.Thread(target=host, daemon=True, name="ray-driver")
        self._host.start()
        started.wait()
        if failure:
            e = failure[0]
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
            fix = (f"check it with `ray status --address {self.address}`, or drop --address to start a local "
                   "instance") if self.address else "see `ray start --head`, or use --executor local"
            raise StudyError(f"cannot start trials on {where}: {_first_line(e)}; {fix}") from e
        self._owned = True

    def run_attempt(self, spec: TrialSpec, adir: Path, env: dict[str, str], *, lock_fd: int | None,
                    stop: threading.Event | None) -> AttemptExit:
        ray = self.ray
        remote = self._connect(spec)
        spec_json = (adir / "spec.json").read_text() if (adir / "spec.json").is_file() else json.dumps(asdict(spec))
        ref = remote.options(num_cpus=spec.threads, num_gpus=spec.gpus, max_retries=0, retry_exceptions=False,
                             name=f"{spec.study}/{spec.trial_id}/attempt-{spec.attempt}").remote(
            spec_json, str(adir), _env_delta(env), float(spec.timeout_s), os.getcwd())
        while not ray.wait([ref], timeout=POLL_S)[0]:
            if stop is not None and stop.is_set():
                self._cancel(ref)
                raise TrialInterrupted()
        try:
            ended = ray.get(ref)
        except ray.exceptions.RayError as e:  # a lost worker or node, or the task itself failed: infrastructure
            self._note(adir, f"ray: the attempt's worker was lost, no result came back ({_first_line(e)})")
            return AttemptExit(None)
        if not ended["shared"]:
            self._copy_back(adir, ended)
        return AttemptExit(ended["returncode"], bool(ended["timed_out"]))

    def _cancel(self, ref: Any) -> None:
        """Politely (the worker kills the trial's group), then by force (the worker dies; the trial with it)."""
        ray = self.ray
        try:
            ray.cancel(ref, force=False)
            if not ray.wait([ref], timeout=STOP_GRACE_S)[0]:
                ray.cancel(ref, force=True)
        except Exception:  # finished or already gone meanwhile
            pass

    @staticmethod
    def _note(adir: Path, line: str) -> None:
        with open(adir / "output.log", "a", encoding="utf-8") as f:
            f.write(line + "\n")

    @staticmethod
    def _copy_back(adir: Path, ended: dict[str, Any]) -> None:
        """The worker did not see the study folder: its output.log tail and result.json come back here."""
        atomic_write_text(adir / "output.log", f"[ran on Ray node {ended.get('node', '?')}; last "
                                               f"{LOG_TAIL_BYTES} bytes of its output.log]\n{ended.get('log', '')}")
        if ended.get("result") is not None and not (adir / "result.json").exists():
            atomic_write_text(adir / "result.json", ended["result"])

    def close(self) -> None:
        """Leave the cluster, or shut down the local instance this launcher started; idempotent."""
        with self._lock:
            if self._owned and self.ray.is_initialized():
                self.ray.shutdown()
            self._closed.set()
            if self._host is not None:
                self._host.join(timeout=10)
                self._host = None
            self._owned = False
            self._remote = None
            self._checked.clear()


def _unreachable(address: str, timeout_s: float = 5.0) -> str | None:
    """Why a `HOST:PORT` (or `ray://HOST:PORT`) address takes no TCP connection within `timeout_s`, else None;
    None for `auto`/`local` and anything without a port (Ray resolves those itself)."""
    import socket

    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return None
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return None
    except OSError as e:
        return e.strerror or type(e).__name__

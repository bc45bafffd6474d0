"""A pool of sandbox executors (one per core by default) that runs `Job`s in parallel and returns `ProgramResult`s.

Each slot is a worker thread that owns one executor process for the pool's lifetime: bwrap's --die-with-parent
fires when the *thread* that started it exits, so the thread that starts an executor is the one that keeps it.
An executor that dies or stops answering is killed and restarted and its job retried once; a job that kills two
executors comes back as an error (that would be a sandbox bug, so it is also counted in `Pool.restarts`).

The executor process tree is started under outer rlimits (no core dumps; a hard address-space cap; for root, an
NPROC cap that the job uid inherits) so that a bug inside the sandbox fails a job instead of exhausting the host.
"""

from __future__ import annotations

import json
import os
import queue
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future

from autoresearch.errors import SandboxError
from autoresearch.harness.sandbox.config import Job, SandboxConfig
from autoresearch.harness.sandbox.isolation import (
    INSTALL_HINT,
    Isolation,
    bwrap_status,
    init_message,
    isolation_from_features,
    launch_command,
)
from autoresearch.harness.sandbox.result import ProgramResult, TestResult

__all__ = ["Pool", "run_jobs"]

_GRACE_S = 10.0  # on top of a job's program timeout before the pool declares its executor hung
_LEVEL_RANK = {"reduced": 0, "strict": 1}


class _ExecutorDied(Exception):
    pass


class _ExecutorProc:
    """One executor process and its framed pipes; used only by the worker thread that owns it."""

    def __init__(self, mode: str, cfg: SandboxConfig) -> None:
        self.mode = mode
        self.cfg = cfg
        self.proc: subprocess.Popen | None = None
        self.scratch: str | None = None
        self.hello: dict = {}

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> dict:
        if self.mode == "reduced":
            self.scratch = tempfile.mkdtemp(prefix="autoresearch-sandbox-")
            os.chmod(self.scratch, 0o711)  # the job uid must traverse it to reach its own 0700 dir
        argv, env, fds = launch_command(self.mode, self.cfg, self.scratch)
        self._stderr = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=env,
                cwd=self.scratch or "/",
                start_new_session=True,
                preexec_fn=_outer_limits(self.cfg),
                pass_fds=fds,
            )
        finally:
            for fd in fds:  # bwrap has its own copies (it reads them before the executor starts)
                os.close(fd)
        try:
            self._write(init_message(self.mode, self.cfg))
            msg = self._read(time.monotonic() + self.cfg.start_timeout_s)
        except _ExecutorDied as e:
            self.kill()
            raise SandboxError(
                f"sandbox executor ({self.mode}) failed to start: {e}: {self.stderr_tail()}; {INSTALL_HINT}"
            ) from None
        if msg.get("op") != "hello":
            self.kill()
            raise SandboxError(f"sandbox executor sent {msg.get('op')!r} instead of hello; reinstall autoresearch")
        self.hello = msg
        return msg

    def stderr_tail(self, n: int = 400) -> str:
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""
        return text[-n:].replace("\n", " | ") or "(no stderr)"

    def run(self, wire: dict, timeout_s: float) -> dict:
        self._write(wire)
        return self._read(time.monotonic() + timeout_s)

    def _write(self, msg: dict) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        data = json.dumps(msg).encode("utf-8")
        try:
            self.proc.stdin.write(struct.pack(">I", len(data)) + data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise _ExecutorDied(f"write failed: {e}") from None

    def _read(self, deadline: float) -> dict:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        head = self._read_exact(fd, 4, deadline)
        body = self._read_exact(fd, struct.unpack(">I", head)[0], deadline)
        return json.loads(body.decode("utf-8"))

    @staticmethod
    def _read_exact(fd: int, n: int, deadline: float) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _ExecutorDied("no answer before the deadline")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                raise _ExecutorDied("executor exited")
            buf += chunk
        return bytes(buf)

    def kill(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait()
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()  # type: ignore[union-attr]
                except OSError:
                    pass
            self.proc = None
        self._cleanup()

    def close(self) -> None:
        if self.proc is None:
            return self._cleanup()
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # EOF: the executor returns and the namespace goes with it
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()

    def _cleanup(self) -> None:
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None


def _outer_limits(cfg: SandboxConfig) -> Callable[[], None]:
    as_hard = (cfg.memory_mb + 1024) << 20
    soft_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    nproc = cfg.nproc if os.getuid() == 0 else None

    def apply() -> None:  # runs in the forked child before exec: plain setrlimit calls only
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_AS, (as_hard, as_hard))
        # Every fd in the tree stays below 4096, so the job child's closerange(5, 65536) provably closes them all.
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft_nofile, 4096), 4096))
        if nproc is not None:
            # Ignored for root itself, but inherited by jobs after they drop to the job uid: a backstop.
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

    return apply


class Pool:
    """Parallel sandbox: `run(job)`, `submit(job)`, `map(jobs)`; use as a context manager (or call `close`)."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = cfg = config or SandboxConfig()
        self.mode = self._choose_mode(cfg)
        self.restarts = 0
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._ready: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._procs: list[_ExecutorProc] = []
        self._threads: list[threading.Thread] = []
        self._closed = False
        self.isolation: Isolation | None = None
        for slot in range(cfg.n_workers):
            t = threading.Thread(target=self._worker, name=f"sandbox-{slot}", daemon=True)
            t.start()
            self._threads.append(t)
        hellos, errors = [], []
        for _ in self._threads:
            item = self._ready.get()
            (errors if isinstance(item, Exception) else hellos).append(item)
        if errors:
            self.close()
            raise errors[0]
        self.isolation = min(
            (isolation_from_features(self.mode, h["features"]) for h in hellos),
            key=lambda iso: _LEVEL_RANK[iso.level],
        )
        if self.isolation.level != "strict" and not (cfg.allow_reduced or cfg.level == "reduced"):
            visible = sorted({p for h in hellos for p in h.get("visible_paths", [])})
            notes = "; ".join(e for h in hellos for e in h.get("errors", []))
            self.close()
            raise SandboxError(
                f"strict isolation requested but the executor reports {self.isolation.features}"
                + (f" (visible: {visible})" if visible else "")
                + (f" ({notes})" if notes else "")
                + "; fix the host or pass --allow-reduced (allow_reduced=True)"
            )
        if self.isolation.level != "strict":
            print(self.isolation.describe(), file=sys.stderr)

    @staticmethod
    def _choose_mode(cfg: SandboxConfig) -> str:
        if cfg.level == "reduced":
            return "reduced"
        ok, why = bwrap_status()
        if ok:
            return "strict"
        if cfg.allow_reduced:
            return "reduced"
        raise SandboxError(f"strict sandbox unavailable: {why}; {INSTALL_HINT}")

    # -- workers --------------------------------------------------------------------------------------------------
    def _worker(self) -> None:
        ex = _ExecutorProc(self.mode, self.config)
        try:
            hello = ex.start()
        except Exception as e:  # noqa: BLE001 - handed to the constructor, which raises it
            self._ready.put(e)
            return
        with self._lock:
            self._procs.append(ex)
        self._ready.put(hello)
        try:
            while True:
                item = self._jobs.get()
                if item is None:
                    return
                job, fut = item
                if not fut.set_running_or_notify_cancel():
                    continue
                try:
                    fut.set_result(self._run_on(ex, job))
                except BaseException as e:  # noqa: BLE001 - delivered to the caller through the future
                    fut.set_exception(e)
        finally:
            ex.close()

    def _run_on(self, ex: _ExecutorProc, job: Job) -> ProgramResult:
        wire = job.wire(self.config)
        timeout = wire["program_timeout"] + _GRACE_S
        level = self.isolation.level if self.isolation else self.mode
        for attempt in range(2):
            try:
                if ex.proc is None:
                    self._restart(ex)
                msg = ex.run(wire, timeout)
            except _ExecutorDied as e:
                with self._lock:
                    self.restarts += 1
                why = f"{e}: {ex.stderr_tail()}"
                ex.kill()
                if attempt == 1:
                    err = TestResult("error", "SandboxError", f"sandbox executor died twice on this job ({why})")
                    return ProgramResult("error", err, tuple(err for _ in job.tests), level, id=job.id)
                continue
            if msg.get("sandbox_error"):
                raise SandboxError(
                    f"a job child could not be locked down: {msg['sandbox_error']}; the sandbox is not safe to use "
                    "here, run `pytest tests/test_sandbox_attacks.py` to see which layer fails"
                )
            return ProgramResult.from_wire(msg, level)
        raise AssertionError("unreachable")

    def _restart(self, ex: _ExecutorProc) -> None:
        hello = ex.start()
        iso = isolation_from_features(self.mode, hello["features"])
        if self.isolation is not None and _LEVEL_RANK[iso.level] < _LEVEL_RANK[self.isolation.level]:
            ex.kill()
            raise SandboxError(f"a restarted executor came up at level {iso.level}, below {self.isolation.level}")

    # -- public API -----------------------------------------------------------------------------------------------
    @property
    def workers(self) -> int:
        return len(self._threads)

    def executor_pids(self) -> list[int]:
        """Host pids of the running executor processes (bwrap or python), for tests and diagnostics."""
        with self._lock:
            return [p.pid for p in self._procs if p.pid is not None]

    def submit(self, job: Job) -> Future:
        if self._closed:
            raise SandboxError("this sandbox pool is closed; create a new Pool")
        fut: Future = Future()
        self._jobs.put((job, fut))
        return fut

    def run(self, job: Job) -> ProgramResult:
        return self.submit(job).result()

    def map(self, jobs: Iterable[Job], on_result: Callable[[int, ProgramResult], None] | None = None) -> list:
        """Run all jobs; results in input order. `on_result(index, result)` is called as each one finishes."""
        futures = [self.submit(j) for j in jobs]
        if on_result is not None:
            for i, f in enumerate(futures):
                f.add_done_callback(lambda f, i=i: f.exception() is None and on_result(i, f.result()))
        return [f.result() for f in futures]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for _ in self._threads:
            self._jobs.put(None)
        for t in self._threads:
            t.join(timeout=30)

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def run_jobs(jobs: Iterable[Job], config: SandboxConfig | None = None) -> list[ProgramResult]:
    """One-shot convenience: start a pool, run `jobs`, close it."""
    with Pool(config) as pool:
        return pool.map(jobs)

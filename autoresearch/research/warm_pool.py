"""Warm trial workers, the `local` executor (issue 13 §1): a long-lived *zygote* process per study imports torch, numpy
and the study's testbed once (and opens its cached tokens and tokenizer), then forks a fresh child for every trial
attempt; the child runs the same `trial.main(spec.json)` that `python -m autoresearch.research.trial` runs.

Processes and channels:
    study process (runner)  WarmLauncher: one zygote handle shared by the scheduler's worker threads; each thread
      │                     asks for one attempt and waits on that attempt's own socket
      └─ zygote             `python -m autoresearch.research.warm_pool FD`: single-threaded; a select loop over its
           │                control socket (requests), one socket per running attempt (kill; exit status back) and a
           │                SIGCHLD wake-up pipe. It never runs a torch op: fork is safe only without thread pools.
           └─ trial child   fork(): setsid (own process group), stdin /dev/null, stdout+stderr -> adir/output.log, the
                            attempt's environment and cwd, fresh RNG seeds, torch threads from the spec, trial.main
Messages are JSON over AF_UNIX SOCK_SEQPACKET (one datagram each); an attempt's socket travels with SCM_RIGHTS.

What a fresh subprocess per trial gave is kept:
- A crash, OOM or `kill -9` of a trial ends that child only; the zygote reaps it and sends the exit status, so a
  child killed by a signal is an infrastructure failure (retried) exactly as before. If the zygote dies, its
  running attempts end with an unknown exit status (infrastructure, retried) and the next attempt starts a new one.
- No state leaks between seeds: every attempt is a fresh fork of the same zygote snapshot, which never trains. The
  child reseeds Python's and numpy's global RNGs from the OS as a fresh interpreter does; torch's default generator
  is never touched in the zygote, so it starts where a fresh interpreter's starts.
- The runner lock: the zygote inherits the study's lock descriptor when it starts and every child inherits it from
  the zygote, so the kernel frees the lock only once the runner, the zygote and every trial are gone. That is the
  guarantee of a lock held by each trial, because the zygote lives no longer than the runner (next point).
- Parent death: the zygote asks for PR_SET_PDEATHSIG first thing, from a launcher thread that lives exactly as long
  as the zygote (the signal fires when the creating *thread* exits), and each child asks for it against the zygote;
  `kill -9` of the runner takes the zygote and then its trials within milliseconds. EOF on the control socket is the
  fallback: the zygote kills its children and exits.
- Timeout and stop: the launcher asks the zygote to SIGKILL the child's process group; the zygote kills before it
  reaps, so the group id cannot have been reused.
- Code edited during a study: before each fork the zygote checks the files of the modules it imported from outside
  the standard library and site-packages (this package, a testbed file); if one changed it retires (finishes its
  running trials, takes no new one) and the launcher starts a new zygote, so the next trial runs the new code.

Not kept, on purpose: the children of one zygote share its hash seed and numpy's BLAS thread count (1; training uses
torch's threads, set from the spec). An attempt whose PYTHON* environment (PYTHONPATH, ...) differs from the one
the zygote started with runs in a fresh subprocess instead. Fork needs Linux: elsewhere, or when the zygote cannot
start, `local` runs a fresh subprocess per trial and says so once.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from autoresearch.research.trial import (
    ATTEMPT_ENV,
    PARENT_ENV,
    AttemptExit,
    AttemptLauncher,
    TrialInterrupted,
    TrialSpec,
)

__all__ = ["WarmLauncher", "fork_available", "READY_TIMEOUT_S"]

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 300.0
"""How long a new zygote may take to import torch and report ready (a loaded 2-core machine takes ~5-15 s)."""
KILL_WAIT_S = 10.0
"""After asking for a kill, how long to wait for the exit status before giving the attempt up as unknown."""
POLL_S = 0.2
_MSG = 1 << 20
_WARM_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
"""The zygote's own thread settings: numpy's OpenBLAS starts its pool at import unless told 1 (measured: 2 threads
after `import numpy` on this 2-core machine, 1 with these), and a process that forks must have no other threads."""


def fork_available() -> bool:
    """Warm workers need fork() with PR_SET_PDEATHSIG: Linux only (macOS forbids fork after some frameworks load)."""
    return sys.platform.startswith("linux") and hasattr(os, "fork") and hasattr(socket, "send_fds")


def _import_env(env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The part of an environment a process reads only at start (PYTHONPATH, PYTHONHASHSEED, ...)."""
    return tuple(sorted((k, v) for k, v in env.items() if k.startswith("PYTHON")))


class _Stale(Exception):
    """The zygote's code changed on disk: it retires and the attempt goes to a new zygote."""


class _StartFailed(Exception):
    """A zygote did not come up; the message says why (its last line of output)."""


# --- launcher side (the study process) -----------------------------------------------------------------------------


class WarmLauncher(AttemptLauncher):
    """Runs attempts as forks of one warm zygote process per study (module docstring); the `local` executor."""

    name = "local"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._zygote: _Zygote | None = None
        self._retired: list[_Zygote] = []
        self._closed = False
        self._broken = ""
        self._said: set[str] = set()
        self._fallback = AttemptLauncher()
        self.zygotes_started = 0
        """how many zygotes this launcher started (1 for a study whose code did not change; tests read it)."""

    def run_attempt(self, spec: TrialSpec, adir: Path, env: dict[str, str], *, lock_fd: int | None,
                    stop: threading.Event | None) -> AttemptExit:
        for _ in range(3):  # a zygote that turned stale hands the attempt to a new one
            z = self._get(env, lock_fd)
            if z is None:
                break
            try:
                return z.run(spec, adir, env, stop)
            except _Stale:
                self._retire(z)
        return self._fallback.run_attempt(spec, adir, env, lock_fd=lock_fd, stop=stop)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            zygotes = [z for z in (self._zygote, *self._retired) if z is not None]
            self._zygote, self._retired = None, []
        for z in zygotes:
            z.close()

    def _say(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            log.warning(message)

    def _get(self, env: dict[str, str], lock_fd: int | None) -> _Zygote | None:
        """The live zygote for this attempt (started on first use), or None: run it as a fresh subprocess."""
        with self._lock:
            if self._closed or self._broken:
                return None
            z = self._zygote
            if z is not None and (not z.alive() or z.lock_fd != lock_fd):
                self._retired.append(z)
                z = self._zygote = None
            if z is None:
                try:
                    z = self._zygote = _Zygote(env, lock_fd)
                    self.zygotes_started += 1
                except _StartFailed as e:
                    self._broken = str(e)
                    self._say(f"warm trial workers unavailable ({e}); trials run as fresh subprocesses")
                    return None
            if z.import_env != _import_env(env):
                self._say("a trial's PYTHON* environment differs from the warm worker's; it runs as a fresh "
                          "subprocess")
                return None
            return z

    def _retire(self, z: _Zygote) -> None:
        with self._lock:
            if self._zygote is z:
                self._zygote = None
                self._retired.append(z)


class _Zygote:
    """Launcher-side handle of one zygote process."""

    def __init__(self, env: dict[str, str], lock_fd: int | None) -> None:
        self.lock_fd = lock_fd
        self.import_env = _import_env(env)
        zenv = {k: v for k, v in env.items() if k != ATTEMPT_ENV}
        zenv.update(_WARM_ENV)
        zenv[PARENT_ENV] = str(os.getpid())
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.ctl = ours
        self._send = threading.Lock()
        self._out = tempfile.TemporaryFile()  # the zygote's own output: read back only to explain a failed start
        self.proc: subprocess.Popen[bytes] | None = None
        started = threading.Event()
        error: list[BaseException] = []

        def keeper() -> None:
            """Starts the zygote and lives as long as it does: PR_SET_PDEATHSIG fires when this thread ends."""
            try:
                fds = (theirs.fileno(),) + (() if lock_fd is None else (lock_fd,))
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "autoresearch.research.warm_pool", str(theirs.fileno())],
                    stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT, env=zenv,
                    pass_fds=fds, start_new_session=True)
            except BaseException as e:  # noqa: BLE001 — handed to the starting thread
                error.append(e)
            finally:
                started.set()
            if self.proc is not None:
                self.proc.wait()

        threading.Thread(target=keeper, daemon=True, name="warm-zygote").start()
        started.wait()
        theirs.close()
        if error or self.proc is None:
            ours.close()
            raise _StartFailed(f"cannot start a warm worker: {error[0] if error else 'unknown error'}")
        try:
            hello = self._recv_ready()
        except _StartFailed:
            self.close()
            raise
        self.pid = int(hello["ready"])
        self.threads = int(hello.get("threads", 0))
        """threads of the zygote when it reported ready (must be 1: fork is safe only without other threads)."""

    def _recv_ready(self) -> dict[str, Any]:
        self.ctl.settimeout(READY_TIMEOUT_S)
        try:
            data = self.ctl.recv(_MSG)
        except (TimeoutError, OSError) as e:
            raise _StartFailed(f"the warm worker did not start within {READY_TIMEOUT_S:g}s ({e})") from None
        if not data:
            raise _StartFailed(f"the warm worker exited at start: {self._last_line()}")
        self.ctl.settimeout(None)
        return json.loads(data)

    def _last_line(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            if self.proc is not None:
                self.proc.wait(timeout=5)
            self._out.seek(0)
            lines = [ln for ln in self._out.read().decode(errors="replace").splitlines() if ln.strip()]
            return lines[-1].strip()[:200] if lines else f"exit code {self.proc.returncode if self.proc else '?'}"
        return "no output"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self.ctl.fileno() != -1

    def run(self, spec: TrialSpec, adir: Path, env: dict[str, str], stop: threading.Event | None) -> AttemptExit:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        req = {"op": "run", "spec": str(adir / "spec.json"), "log": str(adir / "output.log"), "cwd": os.getcwd(),
               "env": {**env, PARENT_ENV: str(self.pid)}, "threads": spec.threads,
               "warm": {"testbed": spec.testbed, "preset": spec.preset, "overrides": spec.overrides}}
        with mine:
            try:
                with self._send:
                    socket.send_fds(self.ctl, [json.dumps(req, default=str).encode()], [theirs.fileno()])
            except OSError:  # the zygote is gone: an infrastructure failure of this attempt (retried)
                theirs.close()
                return AttemptExit(None)
            theirs.close()
            ended = _wait(mine, spec.timeout_s, stop)
        if ended.returncode is None and not ended.timed_out:  # say how it was lost, for run_trial's error line
            with contextlib.suppress(OSError), open(adir / "output.log", "a") as out:
                out.write(f"\nthe warm worker (pid {self.pid}) running this trial died or could not fork it\n")
        return ended

    def close(self) -> None:
        """End the zygote (EOF on its control socket makes it kill its children and exit; SIGKILL if it lingers)."""
        with contextlib.suppress(OSError):
            self.ctl.close()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(OSError):
            self._out.close()


def _wait(sock: socket.socket, timeout_s: float, stop: threading.Event | None) -> AttemptExit:
    """Wait on an attempt's socket for its exit status; kill it on `stop` (TrialInterrupted) or after `timeout_s`."""
    deadline = time.monotonic() + timeout_s if timeout_s > 0 else float("inf")
    killed = ""  # "stop" or "timeout" once the kill was asked for
    kill_deadline = float("inf")
    sock.settimeout(POLL_S)
    while True:
        try:
            data: bytes | None = sock.recv(_MSG)
        except TimeoutError:
            data = None
        except OSError:
            data = b""
        if data is not None:
            msg = json.loads(data) if data else {}
            if msg.get("stale"):
                raise _Stale()
            if "started" in msg:
                continue
            if killed == "stop" or (stop is not None and stop.is_set() and killed):
                raise TrialInterrupted()
            # "exit": the child's status; no message (EOF) or "error": the zygote lost it or could not fork
            return AttemptExit(msg.get("exit"), timed_out=killed == "timeout")
        if not killed and stop is not None and stop.is_set():
            killed = "stop"
        elif not killed and time.monotonic() > deadline:
            killed = "timeout"
        else:
            if killed and time.monotonic() > kill_deadline:  # the zygote does not answer: give the attempt up
                if killed == "stop":
                    raise TrialInterrupted()
                return AttemptExit(None, timed_out=True)
            continue
        kill_deadline = time.monotonic() + KILL_WAIT_S
        with contextlib.suppress(OSError):
            sock.send(b'{"op": "kill"}')


# --- zygote side ---------------------------------------------------------------------------------------------------


@dataclass
class _Running:
    sock: socket.socket | None
    """the attempt's socket; None once the launcher side closed it (nobody waits: the child was killed)."""


def _tracked_files() -> dict[str, tuple[int, int]]:
    """(mtime_ns, size) of the source files of imported modules outside the standard library and site-packages."""
    skip = tuple({sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")})
    out: dict[str, tuple[int, int]] = {}
    for mod in list(sys.modules.values()):
        path = getattr(mod, "__file__", None)
        if not path or path.startswith(skip) or not path.endswith(".py"):
            continue
        with contextlib.suppress(OSError):
            st = os.stat(path)
            out[path] = (st.st_mtime_ns, st.st_size)
    return out


def _changed(tracked: dict[str, tuple[int, int]]) -> str:
    for path, sig in tracked.items():
        try:
            st = os.stat(path)
        except OSError:
            return path
        if (st.st_mtime_ns, st.st_size) != sig:
            return path
    return ""


def _thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


class _Server:
    """The zygote's loop: requests on the control socket, kills and exit statuses on the attempt sockets."""

    def __init__(self, ctl: socket.socket) -> None:
        self.ctl = ctl
        self.running: dict[int, _Running] = {}
        self.retiring = False
        self.configs: dict[str, Any] = {}
        self.preloaded: set[str] = set()
        self.wake_r, self.wake_w = os.pipe()
        for fd in (self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a Python handler, so that the wake-up fd is written
        signal.set_wakeup_fd(self.wake_w)
        self.tracked = _tracked_files()

    def serve(self) -> int:
        while not (self.retiring and not self.running):
            socks = {r.sock.fileno(): (pid, r.sock) for pid, r in self.running.items() if r.sock is not None}
            ready, _, _ = select.select([self.ctl.fileno(), self.wake_r, *socks], [], [], 0.5)
            if self.wake_r in ready:
                with contextlib.suppress(OSError):
                    while os.read(self.wake_r, 4096):
                        pass
            self._reap()
            for fd in ready:
                if fd in socks and socks[fd][0] in self.running:
                    self._attempt_message(socks[fd][0], socks[fd][1])
            if self.ctl.fileno() in ready:
                try:
                    msg, fds, _, _ = socket.recv_fds(self.ctl, _MSG, 4)
                except OSError:
                    msg, fds = b"", []
                if not msg:  # the launcher closed it or the runner died: take the trials down and end
                    for fd in fds:
                        os.close(fd)
                    self._kill_all()
                    return 0
                self._request(json.loads(msg), fds)
        return 0

    def _reap(self) -> None:
        while self.running:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            r = self.running.pop(pid, None)
            if r is not None and r.sock is not None:
                with contextlib.suppress(OSError):
                    r.sock.send(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode())
                r.sock.close()

    def _attempt_message(self, pid: int, sock: socket.socket) -> None:
        try:
            data = sock.recv(_MSG)
        except OSError:
            data = b""
        if data and json.loads(data).get("op") != "kill":
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # not reaped yet, so the group id is still this trial's
        if not data:  # the launcher side is gone: nobody reads the status
            sock.close()
            self.running[pid].sock = None

    def _kill_all(self) -> None:
        for pid in list(self.running):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)

    def _request(self, msg: dict[str, Any], fds: list[int]) -> None:
        if not fds:
            return
        sock = socket.socket(fileno=fds[0])
        for fd in fds[1:]:
            os.close(fd)
        if not self.retiring and _changed(self.tracked):
            self.retiring = True
        if self.retiring:
            with sock:
                sock.send(b'{"stale": true}')
            return
        self._warm(msg.get("warm") or {})
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as e:
            with sock:
                sock.send(json.dumps({"error": f"fork failed: {e}"}).encode())
            return
        if pid == 0:
            others = [r.sock for r in self.running.values() if r.sock is not None]
            _child(msg, close=[self.ctl, sock, *others], close_fds=[self.wake_r, self.wake_w])
        self.running[pid] = _Running(sock)
        with contextlib.suppress(OSError):
            sock.send(json.dumps({"started": pid, "threads": _thread_count()}).encode())

    def _warm(self, w: dict[str, Any]) -> None:
        """Import the trial's testbed, build its config once (imports what make_config needs) and open its cached
        tokens and tokenizer (harness.data.preload). Errors are left to the child, which records them properly."""
        if not w.get("testbed"):
            return
        key = json.dumps(w, sort_keys=True, default=str)
        if key in self.preloaded:
            return
        try:
            from autoresearch.research.study import load_testbed

            if key not in self.configs:
                testbed = load_testbed(str(w["testbed"]))
                self.configs[key] = testbed.make_config(str(w.get("preset", "")), dict(w.get("overrides") or {}))
            # only a testbed that uses the shared DataConfig has imported it (and torch, which harness.data needs)
            kit = sys.modules.get("autoresearch.testbeds.common.config")
            data = getattr(self.configs[key], "data", None)
            if kit is None or not isinstance(data, kit.DataConfig):
                self.preloaded.add(key)
            else:
                from autoresearch.harness.data import preload

                if preload(data):  # False until a first trial built the token cache
                    self.preloaded.add(key)
        except Exception:  # noqa: BLE001 — the child meets the same error and records it
            self.preloaded.add(key)
            traceback.print_exc()
        self.tracked.update({k: v for k, v in _tracked_files().items() if k not in self.tracked})


def _child(msg: dict[str, Any], *, close: list[socket.socket], close_fds: list[int]) -> NoReturn:
    """The forked trial: the set-up a fresh `python -m autoresearch.research.trial SPEC` has, then trial.main."""
    code = 1
    try:
        os.setsid()  # its own process group: a timeout or stop kills what the trial started too
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the zygote ignores it; a fresh interpreter not
        for s in close:
            s.close()
        for fd in close_fds:
            os.close(fd)
        out = os.open(msg["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.environ.clear()
        os.environ.update(msg["env"])
        os.chdir(msg["cwd"])
        from autoresearch.research import trial

        sys.argv = [trial.__file__, msg["spec"]]
        _fresh_process_state(int(msg.get("threads") or 1))
        code = trial.main([msg["spec"]])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 — a child must never return into the zygote's loop
        with contextlib.suppress(BaseException):
            traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 1)


def _fresh_process_state(threads: int) -> None:
    """What differs between a fork of the zygote and a fresh interpreter: global RNG seeds (a fresh interpreter
    seeds Python's and numpy's from the OS) and torch's thread count (the zygote's OpenMP read OMP_NUM_THREADS=1)."""
    import random

    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(max(1, threads))


def _preload() -> None:
    """What every trial imports: numpy, the trial and registry code, the study machinery. Torch and the testbed's own
    modules come with the first request (`_Server._warm` imports the testbed and builds its config), so a testbed
    without torch (tests/fake_testbed.py) does not pay the ~4 s of `import torch` (measured here, loaded 2 cores)."""
    import resource  # noqa: F401 — trial.main reads its peak memory with it

    import numpy  # noqa: F401
    import numpy.random  # noqa: F401 — lazy in numpy 2: importing it in each child cost 0.4 s (measured here)

    import autoresearch.harness.registry  # noqa: F401
    import autoresearch.research.study  # noqa: F401
    import autoresearch.research.trial  # noqa: F401


def main(argv: list[str] | None = None) -> NoReturn:
    """Zygote entry point: `python -m autoresearch.research.warm_pool FD` (FD: its end of the control socket)."""
    argv = sys.argv[1:] if argv is None else argv
    from autoresearch.research.trial import _die_with_parent

    _die_with_parent()
    ctl = socket.socket(fileno=int(argv[0]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the runner, which stops the trials and closes us
    _preload()
    server = _Server(ctl)
    ctl.send(json.dumps({"ready": os.getpid(), "threads": _thread_count()}).encode())
    code = server.serve()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip the interpreter's teardown of torch & co. (seconds on a loaded machine): nothing to save


if __name__ == "__main__":
    sys.exit(main())

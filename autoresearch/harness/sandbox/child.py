"""The job child: forked from the executor, it locks itself down, then runs untrusted code and reports each phase.

Lock-down order (each step needs the ones before it): setsid -> fds (0 = /dev/null, 1/2 = capped output pipes,
3 = result pipe, 4 = ack pipe; nothing else) -> chdir to its scratch dir -> rlimits -> drop to the job uid/gid ->
PR_SET_PDEATHSIG (cleared by the uid change, so after it) -> no_new_privs -> seccomp deny-list + kill guard.
A failure anywhere there is reported as a sandbox failure ("X") and the child dies; the pool then refuses to go on.

Untrusted code then runs with exec(): the program's top level, then each test snippet, all in one globals dict.
Each phase is reported as a line "<nonce>\tP|T\t<idx>\t<status>\t<exc type>\t<where>\t<line>\t<seconds>\t<message>".

This file runs inside the sandbox and may import only the stdlib and seccomp_filter.
"""

from __future__ import annotations

import _thread
import builtins
import ctypes
import fcntl
import os
import resource
import signal
import sys
import time

try:
    from . import seccomp_filter as _sf
except ImportError:  # executed inside the sandbox, next to seccomp_filter.py
    import seccomp_filter as _sf  # type: ignore[no-redef]

__all__ = ["child_main"]

_PR_SET_PDEATHSIG = 1
_M_ARENA_MAX = -8
_THREAD_STACK = 4 << 20
_MSG_LIMIT = 500
_libc = ctypes.CDLL(None, use_errno=True)


def _esc(s: str) -> str:
    """Escape a field for a tab-separated result line (str methods only: untrusted code cannot patch them)."""
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def child_main(job: dict, start: int, nonce: str, fds: tuple[int, int, int, int], cfg: dict) -> None:
    """Runs in the forked child; never returns (always os._exit).

    fds (res_w, out_w, err_w, ack_r) become 3, 1, 2 and 4. After reporting a phase the child waits for the
    executor's ack on fd 4: the executor drains stdout/stderr before acking, so output is charged to the right test.
    """
    # Everything the reporting path uses is bound here, before untrusted code runs and could patch module globals.
    write, read, getpid, perf, exit_, esc = os.write, os.read, os.getpid, time.perf_counter, os._exit, _esc
    isinstance_, type_, str_, len_, exec_, compile_ = isinstance, type, str, len, exec, compile

    def send(*fields: object) -> None:
        line = nonce + "\t" + "\t".join(esc(str_(f)) for f in fields) + "\n"
        data = line.encode("utf-8", "replace")
        while data:
            data = data[write(3, data) :]

    def report(*fields: object) -> None:
        send(*fields)
        try:
            read(4, 1)
        except OSError:  # the program closed or stole fd 4: go on without the barrier
            pass

    # -- lock down (any failure here is a sandbox failure, reported as such) --
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        # Park the sources above every target first, so no dup2 below overwrites a source not yet copied.
        parked = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in (null, fds[1], fds[2], fds[0], fds[3])]
        for target, fd in enumerate(parked):
            os.dup2(fd, target)
        os.closerange(5, 1 << 16)
        # Threads must be cheap in address space, or RLIMIT_AS caps them long before RLIMIT_NPROC does: glibc gives
        # each new thread an 8 MiB stack and up to 8 x cores malloc arenas of 64 MiB each (measured: 21 threads fit
        # in 1 GiB). Two arenas and 4 MiB stacks: ~230 threads (recursion at the default limit needs far less).
        _libc.mallopt(_M_ARENA_MAX, 2)
        _thread.stack_size(_THREAD_STACK)
        os.chdir(cfg["scratch"])
        os.environ["HOME"] = os.environ["TMPDIR"] = cfg["scratch"]
        cpu = int(cfg["cpu_s"]) + 1
        for lim, soft, hard in (
            (resource.RLIMIT_CPU, cpu, cpu + 1),
            (resource.RLIMIT_AS, cfg["memory_bytes"], cfg["memory_bytes"]),
            (resource.RLIMIT_FSIZE, cfg["file_size_bytes"], cfg["file_size_bytes"]),
            (resource.RLIMIT_NOFILE, cfg["max_open_files"], cfg["max_open_files"]),
            (resource.RLIMIT_NPROC, cfg["max_processes"], cfg["max_processes"]),
            (resource.RLIMIT_CORE, 0, 0),
            (resource.RLIMIT_MEMLOCK, 0, 0),
            (resource.RLIMIT_MSGQUEUE, 0, 0),
        ):
            resource.setrlimit(lim, (soft, hard))
        if cfg["drop_uid"]:
            uid, gid = cfg["uid"], cfg["gid"]
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
                raise OSError(f"uid drop to {uid}/{gid} did not stick")
        # Cleared by the uid change above, so set after it: the job dies with the executor.
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if cfg["seccomp"]:
            _sf.set_no_new_privs()
            _sf.load_filter(cfg["deny_bpf"])
            _sf.load_filter(_sf.kill_guard_filter(getpid()))
        else:
            _sf.set_no_new_privs()
    except BaseException as e:  # noqa: BLE001 - report and die, never return into the executor loop
        try:
            send("X", f"{type(e).__name__}: {e}")
        finally:
            exit_(71)

    # -- run untrusted code --
    g: dict = {"__name__": "__sandbox__", "__builtins__": builtins}
    flush_out, flush_err = sys.stdout.flush, sys.stderr.flush

    def flush() -> None:
        for f in (flush_out, flush_err):
            try:
                f()
            except BaseException:  # noqa: BLE001 - a closed/replaced stream must not stop reporting
                pass

    def located(e: BaseException, sources: dict) -> tuple[str, int | str, str]:
        where, line = "", ""
        try:
            tb = e.__traceback__
            while tb is not None:
                name = tb.tb_frame.f_code.co_filename
                if name in sources:
                    where, line = name, tb.tb_lineno
                tb = tb.tb_next
            if isinstance_(e, SyntaxError) and e.filename in sources:
                where, line = e.filename, e.lineno or ""
        except BaseException:  # noqa: BLE001
            pass
        text = ""
        if where and line != "":
            src_lines = sources[where].splitlines()
            if 0 < int(line) <= len_(src_lines):
                text = src_lines[int(line) - 1].strip()
        return where, line, text

    def describe(e: BaseException) -> str:
        try:
            msg = str_(e.msg if isinstance_(e, SyntaxError) else e)
        except BaseException:  # noqa: BLE001 - a hostile __str__
            msg = "<unprintable>"
        return msg[:_MSG_LIMIT]

    def classify(e: BaseException) -> str:
        if isinstance_(e, AssertionError):
            return "fail"
        if isinstance_(e, MemoryError):
            return "memory"
        return "error"

    def run_phase(kind: str, idx: int, name: str, src: str, sources: dict) -> bool:
        t0 = perf()
        try:
            try:
                code = compile_(src, name, "exec")
            except (SyntaxError, ValueError, RecursionError) as ce:  # ValueError: null bytes; deep nesting
                status = "syntax_error"
                where, line, _ = located(ce, sources) if isinstance_(ce, SyntaxError) else (name, "", "")
                flush()
                report(kind, idx, status, type_(ce).__name__, where, line, perf() - t0, describe(ce))
                return False
            exec_(code, g)
            flush()
            report(kind, idx, "pass", "", "", "", perf() - t0, "")
            return True
        except BaseException as e:  # noqa: BLE001 - SystemExit/KeyboardInterrupt from the program are errors too
            status = classify(e)
            where, line, text = located(e, sources)
            msg = describe(e)
            if status == "fail" and not msg and text:
                msg = f"assertion failed: {text}"[:_MSG_LIMIT]
            flush()
            report(kind, idx, status, type_(e).__name__, where, line, perf() - t0, msg)
            return False

    tests = job["tests"]
    sources = {"<program>": job["program"]}
    sources.update({f"<test {i}>": t for i, t in enumerate(tests)})
    if run_phase("P", 0, "<program>", job["program"], sources):
        for i in range(start, len_(tests)):
            send("S", i)
            run_phase("T", i, f"<test {i}>", tests[i], sources)
    flush()
    send("E")
    exit_(0)

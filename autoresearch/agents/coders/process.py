"""Run one coder executable in a worktree: its own process group, a timeout that kills the whole group, output
captured to a file and returned capped (head + tail).

Process boundary: the pipeline's process (here) -> the coder's process group (the executable and whatever it
starts). The coder runs with `start_new_session=True`, so its process group id is its pid; on timeout the group gets
SIGTERM, then SIGKILL after a grace period (mini-swe-agent does the same with its actions, DESIGN.md §7). Processes
the coder left behind after a normal exit are killed too: a coder's background job must not outlive its attempt.
A process that calls setsid() itself leaves the group and escapes this (as in research/trial.py).

The group is signalled before its leader is reaped (`waitid(WNOWAIT)`): while the leader is an unreaped zombie its
pid, hence the group id, cannot be reused, so the kill can never reach an unrelated process.
Output goes to a file, not a pipe: a chatty coder cannot fill a pipe buffer and block, and a grandchild that keeps
the descriptor open cannot make the wait hang.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcessOutcome", "run_in_group", "cap_text", "TERM_GRACE_S"]

TERM_GRACE_S = 3.0
"""Seconds between SIGTERM and SIGKILL of a timed-out coder's process group."""
_POLL_S = 0.05


@dataclass
class ProcessOutcome:
    """What one run of a coder executable gave: its exit code (negative = killed by that signal), its output (stdout
    and stderr interleaved, capped), its wall time, and whether the timeout killed it."""

    exit_code: int
    output: str
    seconds: float
    timed_out: bool


def cap_text(text: str, head: int = 4000, tail: int = 4000) -> str:
    """`text` if it is at most head + tail characters, else its first `head` and last `tail` characters with a line
    saying how many were left out between them."""
    if len(text) <= head + tail:
        return text
    cut = len(text) - head - tail
    return f"{text[:head]}\n[... {cut} characters left out ...]\n{text[-tail:]}"


def _exited(pid: int) -> bool:
    """True once `pid` has exited, without reaping it (the zombie keeps its pid and process group reserved)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_exit(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not _exited(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_S)
    return True


def run_in_group(argv: list[str], cwd: Path, env: dict[str, str], timeout_s: float, *, head: int = 4000,
                 tail: int = 4000) -> ProcessOutcome:
    """Run `argv` in `cwd` with exactly `env`, stdin from /dev/null (an agent that reads stdin, e.g. `codex exec`,
    would otherwise wait forever), in a new process group; kill the group on timeout (SIGTERM, then SIGKILL after
    TERM_GRACE_S) and after a normal exit. `timeout_s` <= 0 means no timeout. Raises OSError if `argv[0]` cannot be
    started (the caller words it)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        timed_out = not _wait_exit(proc.pid, timeout_s if timeout_s > 0 else float("inf"))
        if timed_out:
            _signal_group(proc.pid, signal.SIGTERM)
            _wait_exit(proc.pid, TERM_GRACE_S)
        # SIGKILL whatever of the group is left (children of a coder that exited, or one that ignored SIGTERM);
        # the leader is not reaped yet, so the group id still names only this coder's processes
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        seconds = time.perf_counter() - t0
        text = _read_capped(out, head, tail)
    return ProcessOutcome(exit_code=proc.returncode, output=text, seconds=seconds, timed_out=timed_out)


def _read_capped(f, head: int, tail: int) -> str:
    """The file's text capped like `cap_text`, reading only its head and tail (a runaway coder may write gigabytes);
    characters are counted as bytes here, so multi-byte text keeps a little less than head + tail characters."""
    size = f.seek(0, os.SEEK_END)
    f.seek(0)
    if size <= head + tail:
        return f.read().decode("utf-8", errors="replace")
    first = f.read(head).decode("utf-8", errors="replace")
    f.seek(size - tail)
    last = f.read(tail).decode("utf-8", errors="replace")
    return f"{first}\n[... {size - head - tail} bytes left out ...]\n{last}"

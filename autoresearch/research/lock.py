"""The runner lock of a study (`studies/<name>/.runner.lock`): one runner per study, across processes.

The lock is shared with the trial processes (they inherit its file descriptor), so the kernel releases it only
when the runner *and* every trial it started are gone: a `resume` right after a `kill -9` waits for them instead of
starting a second copy of a trial that is still running.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from autoresearch.errors import StudyError

__all__ = ["runner_lock", "is_running", "LOCK_WAIT_S"]

LOCK_WAIT_S = 10.0
"""How long a new runner waits for the lock: the trials of a killed runner die within a second (PDEATHSIG)."""


@contextlib.contextmanager
def runner_lock(study_dir: Path, wait_s: float = LOCK_WAIT_S) -> Iterator[int]:
    """Hold `studies/<name>/.runner.lock` for the runner's lifetime; yields the lock's file descriptor.

    flock is released by the kernel when the last holder dies, so a `kill -9`ed runner never leaves a stale lock.
    The runner hands the descriptor to its trial processes, so the lock also stays held while a trial of a killed
    runner is still alive; a new runner waits up to `wait_s` for them, then refuses.
    """
    path = study_dir / ".runner.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pid = Path(path).read_text().strip() or "?"
                if _alive(pid) or time.monotonic() >= deadline:  # a live runner: refuse now; its orphans: wait
                    raise StudyError(f"study {study_dir.name!r} is already running (runner pid {pid}, or trial "
                                     f"processes it started are still alive); watch it with `autoresearch study "
                                     f"status {study_dir.name} --watch`, or stop that process first") from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield fd
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _alive(pid: str) -> bool:
    """True if `pid` names a live process other than this one."""
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_running(study_dir: Path) -> bool:
    """True if a runner holds the study's lock right now."""
    path = study_dir / ".runner.lock"
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False

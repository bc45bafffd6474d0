"""The sandbox judge of an adversarial run: one `Pool` of locked-down executors for the whole run, fed in batches.

    with Judge(cfg.reward) as judge:
        results = judge.run([(problem.program(code), tests), ...])   # one ProgramResult per job, in order

Every reward and metric of the testbed is computed from the `ProgramResult`s this returns (typed per-test statuses,
never parsed from pytest text: DESIGN.md §5, §8). The pool starts at the strict level (bwrap namespaces + seccomp);
when bubblewrap is missing it refuses with one line naming `reward.allow_reduced`, unless that is set.
Sits in the trainer's process; the pool's worker threads own the executor processes (harness/sandbox/pool.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from autoresearch.errors import SandboxError
from autoresearch.harness.sandbox import Job, Pool, ProgramResult, SandboxConfig, bwrap_status
from autoresearch.testbeds.adversarial.config import RewardConfig

__all__ = ["Judge", "JobSpec"]

# (program, tests) or a full sandbox Job (own timeouts); batches may mix both.
JobSpec = tuple[str, Sequence[str]] | Job

_FIX = ("install bubblewrap (`apt-get install -y bubblewrap` as root) or set reward.allow_reduced=true "
        "(--set reward.allow_reduced=true) to run at the reduced level")


class Judge:
    """One sandbox pool for a whole run; `run(jobs)` executes a batch in parallel and returns results in order."""

    def __init__(self, reward_cfg: RewardConfig | None = None) -> None:
        self.cfg = cfg = reward_cfg or RewardConfig()
        ok, why = bwrap_status()
        if not ok and not cfg.allow_reduced:
            raise SandboxError(f"strict sandbox unavailable ({why}); {_FIX}")
        sandbox = SandboxConfig(
            level="strict",
            allow_reduced=cfg.allow_reduced,
            workers=cfg.workers,
            test_timeout_s=cfg.test_timeout_s,
            program_timeout_s=cfg.program_timeout_s,
        )
        try:
            self.pool = Pool(sandbox)
        except SandboxError as e:
            if cfg.allow_reduced:
                raise
            raise SandboxError(f"{str(e).splitlines()[0]}; or set reward.allow_reduced=true") from None
        self.jobs_run = 0
        self.seconds = 0.0

    @property
    def level(self) -> str:
        """The isolation level the pool runs at: strict | reduced."""
        iso = self.pool.isolation
        return iso.level if iso is not None else self.pool.mode

    @property
    def workers(self) -> int:
        return self.pool.workers

    def run(self, jobs: Sequence[JobSpec]) -> list[ProgramResult]:
        """Run every job (program + its tests, in order, in one process; a crash resumes in a fresh one)."""
        wired = [j if isinstance(j, Job) else Job(program=j[0], tests=tuple(j[1])) for j in jobs]
        if not wired:
            return []
        t0 = time.perf_counter()
        out = self.pool.map(wired)
        self.seconds += time.perf_counter() - t0
        self.jobs_run += len(wired)
        return out

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Judge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

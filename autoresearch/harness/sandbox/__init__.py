"""The code-execution sandbox: run a program plus test snippets in isolation and get a typed result per test.

    from autoresearch.harness.sandbox import Job, Pool, SandboxConfig
    with Pool(SandboxConfig(workers=2)) as pool:
        r = pool.run(Job(program="def f(x): return x + 1", tests=("assert f(1) == 2",)))
    r.status, [t.status for t in r.tests], pool.isolation.level

Design, levels and what is not covered: docs/sandbox.md.
"""

from __future__ import annotations

from autoresearch.harness.sandbox.config import Job, Level, SandboxConfig
from autoresearch.harness.sandbox.isolation import (
    FEATURE_GAPS,
    NOT_COVERED_ALWAYS,
    STRICT_FEATURES,
    Isolation,
    bwrap_status,
)
from autoresearch.harness.sandbox.pool import Pool, run_jobs
from autoresearch.harness.sandbox.result import STATUSES, ProgramResult, TestResult, aggregate_status
from autoresearch.harness.sandbox.timeouts import calibrated_timeouts

__all__ = [
    "Job",
    "Level",
    "SandboxConfig",
    "Pool",
    "run_jobs",
    "ProgramResult",
    "TestResult",
    "STATUSES",
    "aggregate_status",
    "Isolation",
    "STRICT_FEATURES",
    "FEATURE_GAPS",
    "NOT_COVERED_ALWAYS",
    "bwrap_status",
    "calibrated_timeouts",
]

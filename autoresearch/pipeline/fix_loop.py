"""The fix loop ("Ralph loop", issue 10 §6): what happens after a failed implementation step.

The failed step's error, capped to its head and tail, goes back to the coder with the instruction to fix only that
error; each failure is one attempt of its kind, logged to `logs/errors.log` with the diff it left and to the
version's record in `pipeline.yaml`. A kind gets `MAX_ATTEMPTS` (3) attempts; the third failure — or the first of a
kind that no edit can fix (`design`: the idea cannot be expressed as the declared flags; `protected`: the edit touched
the harness, refused and reported, never reverted into a pass) — ends the loop with an `Escalation` carrying the whole
context, and the orchestrator decides: new instructions, back to design, or stop and ask the human.

This module only counts, records and words things; `implement.py` runs the steps.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autoresearch.harness.atomic import atomic_write_text
from autoresearch.pipeline.errors_log import HEAD_LINES, TAIL_LINES, ErrorsLog, LogEntry, cap_error
from autoresearch.pipeline.state import Attempt, now

__all__ = ["Failure", "Escalation", "FixLoop", "KINDS", "AT_ONCE", "MAX_ATTEMPTS", "feedback_text", "error_gist"]

MAX_ATTEMPTS = 3
KINDS: dict[str, str] = {
    "coder": "the coder did not finish its edit",
    "protected": "the edit touched a protected path or changed the evaluation code",
    "compile": "an edited Python file does not compile",
    "lint": "ruff found an error (F, E9) in an edited Python file",
    "design": "the task's flags are not in the config with their declared off value",
    "checks": "the testbed's integration checks failed on the edited code",
    "regression": "with every flag off the per-step losses differ from the base commit's",
    "review": "the judge asked for a revision",
}
"""Every kind of failed step, with what it means (the escalation's context says it)."""
AT_ONCE = frozenset({"design", "protected"})
"""Kinds that escalate on their first failure: no edit of the coder makes them right."""


@dataclass
class Failure:
    """A failed step: its kind (a key of KINDS) and its full error text (capped when recorded)."""

    kind: str
    error: str

    def __post_init__(self) -> None:
        assert self.kind in KINDS, self.kind


@dataclass
class Escalation:
    """The fix loop gave up: the kind that failed, every attempt (with its error and diff) and a paragraph of context
    for whoever decides next (the orchestrator, a person)."""

    kind: str
    reason: str
    """one line: what failed last."""
    attempts: list[Attempt] = field(default_factory=list)
    context: str = ""
    diffs: dict[str, str] = field(default_factory=dict)
    """diff path -> diff text of each attempt (the diff files stay on disk too)."""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "reason": self.reason, "context": self.context,
                "attempts": [_attempt_dict(a) for a in self.attempts]}


def _attempt_dict(a: Attempt) -> dict[str, Any]:
    to_dict = getattr(a, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    from dataclasses import asdict

    return asdict(a)


def feedback_text(kind: str, n: int, error: str, max_attempts: int = MAX_ATTEMPTS) -> str:
    """What the coder gets on its next attempt: the failed step, and its capped error."""
    return (f"The previous attempt failed at the `{kind}` step ({KINDS[kind]}; attempt {n}/{max_attempts} for this "
            f"step). Fix only this error; keep the flags' off values and the baseline code path unchanged, and touch "
            f"only the allowed files.\n\n{cap_error(error)}\n")


class FixLoop:
    """Counts failed attempts per kind for one version, records each (errors.log, diff file, the version's attempts
    via `on_attempt`) and says when to escalate."""

    def __init__(self, version: str, errors: ErrorsLog, diff_dir: Path, *, root: Path | None = None,
                 max_attempts: int = MAX_ATTEMPTS, on_attempt: Callable[[Attempt], None] | None = None,
                 task_line: str = "") -> None:
        """`root`: the workspace root the attempts' diff paths are made relative to (absolute paths without it)."""
        self.version = version
        self.errors = errors
        self.diff_dir = Path(diff_dir)
        self.root = root
        self.max_attempts = max_attempts
        self.on_attempt = on_attempt
        self.task_line = task_line
        self.counts: Counter[str] = Counter()
        self.attempts: list[Attempt] = []
        self.diffs: dict[str, str] = {}
        self.last: Failure | None = None

    @property
    def feedback(self) -> str | None:
        """The capped error of the last failure for the coder, or None before the first failure."""
        if self.last is None:
            return None
        return feedback_text(self.last.kind, self.counts[self.last.kind], self.last.error, self.max_attempts)

    def fail(self, failure: Failure, diff: str, *, at_once: bool = False) -> Escalation | None:
        """Record a failed attempt; an Escalation when its kind is spent, escalates at once (AT_ONCE) or `at_once`
        is asked (a coder that cannot retry), else None (retry with `feedback`)."""
        self.counts[failure.kind] += 1
        n = self.counts[failure.kind]
        self.last = failure
        slug = self.version.replace("/", "-")
        diff_path = self.diff_dir / f"{slug}-{failure.kind}-{n}.diff"
        atomic_write_text(diff_path, diff)
        self.diffs[str(diff_path)] = diff
        at = now()
        self.errors.append(LogEntry(self.version, failure.kind, n, self.max_attempts, failure.error, diff,
                                    str(diff_path), at))
        shown = str(diff_path.relative_to(self.root)) if self.root and diff_path.is_relative_to(self.root) else str(
            diff_path)
        attempt = _make_attempt(failure, n, shown, at)
        self.attempts.append(attempt)
        if self.on_attempt is not None:
            self.on_attempt(attempt)
        if at_once or failure.kind in AT_ONCE or n >= self.max_attempts:
            return self.escalation(failure, at_once)
        return None

    def escalation(self, failure: Failure, at_once: bool = False) -> Escalation:
        n = self.counts[failure.kind]
        first = error_gist(failure.error)
        if failure.kind in AT_ONCE:
            why = "escalated at once: no edit of the coder can fix this kind"
        elif at_once:
            why = "escalated at once: the coder cannot retry (it makes no edits) or the judge rejected the edit"
        else:
            why = f"failed {n} times (the cap is {self.max_attempts})"
        tally = ", ".join(f"{k} {c}" for k, c in self.counts.items())
        context = (f"Version {self.version}{f' ({self.task_line})' if self.task_line else ''}: the `{failure.kind}` "
                   f"step ({KINDS[failure.kind]}) {why}. Attempts so far by kind: {tally}; every attempt's error and "
                   f"diff is in {self.errors.path} and under {self.diff_dir}. Last error: {first[:300]}. Decide: give "
                   f"the coder new instructions, go back to design (change the task or its flags), or stop and ask "
                   f"a person.")
        return Escalation(failure.kind, f"{failure.kind}: {first[:300]}", list(self.attempts), context,
                          dict(self.diffs))


def _make_attempt(failure: Failure, n: int, diff_path: str, at: str) -> Attempt:
    """The state record of one attempt: the error's head and tail as the coder saw it."""
    lines = failure.error.rstrip().splitlines()
    head = "\n".join(lines[:HEAD_LINES])
    tail = "\n".join(lines[HEAD_LINES:][-TAIL_LINES:])
    return Attempt(kind=failure.kind, n=n, error_head=cap_error(head), error_tail=cap_error(tail),
                   diff_path=diff_path, at=at)


def error_gist(error: str) -> str:
    """The error's first line, with the next one when the first only introduces it ("... failed:")."""
    lines = [ln.strip() for ln in error.splitlines() if ln.strip()] or ["(no output)"]
    return " ".join(lines[:2]) if lines[0].endswith(":") and len(lines) > 1 else lines[0]

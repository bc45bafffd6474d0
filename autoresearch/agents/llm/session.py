"""What every LLM role gets (`AgentEnv`) and the one door its calls go through (`LLMSession.ask`).

`ask` fills the request's role and tag, checks the budgets BEFORE the call (a worst-case estimate; budget.py), calls
the backend (which retries transient errors itself), charges what the call cost, appends the call to the transcript
(a failed call too, with its error line, then re-raises) and emits one live spend line. Roles never call a backend
directly. The orchestrator builds one AgentEnv per run (from workspace.yaml `agents:` and the command line) and sets
`env.version` before each stage; `AgentEnv.standalone()` is the no-workspace one for tests and library use.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoresearch.agents.llm.budget import BudgetBook, estimate
from autoresearch.agents.llm.transcript import Transcript, make_record
from autoresearch.errors import LLMUnsupportedError

if TYPE_CHECKING:
    from autoresearch.agents.llm.backend import Backend, LLMReply, LLMRequest, Price
    from autoresearch.agents.roles import TaskSpec

__all__ = ["AgentEnv", "LLMSession"]


def _no_emit(kind: str, payload: dict[str, Any]) -> None:
    return None


@dataclass
class AgentEnv:
    """Everything an LLM role needs besides its backend; one per run, shared by every role."""

    root: Path | None = None
    """the workspace root (None = no workspace)."""
    transcript: Transcript | None = None
    """where every call is recorded (DIR/.autoresearch/transcripts.jsonl); None = not recorded."""
    book: BudgetBook = field(default_factory=BudgetBook)
    """the run's budgets and spend."""
    templates_dir: Path | None = None
    """DIR/prompts: the user's prompt template overrides (<role>.md)."""
    failed_dir: Path | None = None
    """where the raw answers of a failed structured call are saved (DIR/.autoresearch/failed)."""
    editable: list[str] = field(default_factory=list)
    """globs of the workspace files the coder may edit."""
    run: int = 1
    """the run number (pipeline state `run`), recorded in each transcript record."""
    version: str = ""
    """the current version label `<name>/v<k>` ("" before one exists); the orchestrator sets it before each stage."""
    idea_log: Callable[[], str] = field(default=lambda: "")
    """the current idea log text (versions, diffs, verdicts, lessons)."""
    tried: Callable[[], list[TaskSpec]] = field(default=list)
    """the tasks already tried in this workspace (memory: not proposed again unchanged)."""
    emit: Callable[[str, dict[str, Any]], None] = field(default=_no_emit)
    """live output: emit("llm", {"role", "version", "calls", "tokens", "dollars", "text"}) after each call."""
    prices: dict[str, Price] = field(default_factory=dict)
    """workspace.yaml agents.prices: model -> Price (overrides of the known prices)."""
    judge_samples: int = 3
    """independent judge conversations at the auto-judge gate; the majority decides."""
    timeout_s: float = 120.0
    """seconds a backend waits for one answer (workspace.yaml agents.timeout_s)."""
    context_tokens: int = 16000
    """how many tokens of workspace files the planner and the coder may send."""
    settings: dict[str, Any] = field(default_factory=dict)
    """free per-role knobs: {role: {knob: value}}."""

    @classmethod
    def standalone(cls, **overrides: Any) -> AgentEnv:
        """No workspace, unlimited budgets, no transcript (tests and library use)."""
        return cls(**overrides)


class LLMSession:
    """One role's calls on one backend, through the budgets and the transcript."""

    def __init__(self, env: AgentEnv, role: str, backend: Backend) -> None:
        self.env = env
        self.role = role
        self.backend = backend
        self.calls = 0
        """calls this session made (failed ones included)."""
        self.mode_override: str | None = None
        """the structured-output mode to use from now on (structured.py sets it when a backend refuses one)."""

    @property
    def failed_dir(self) -> Path | None:
        return self.env.failed_dir

    def ask(self, request: LLMRequest, *, try_no: int = 1) -> LLMReply:
        """One call: budgets checked first (BudgetError: the call is not made), then the backend, the charge, the
        transcript record and the live line. `try_no` is the structured re-ask number (1 = the first try). A backend
        error is recorded and charged as a call, then re-raised."""
        env = self.env
        if not request.role:
            request.role = self.role
        if not request.tag:
            request.tag = env.version
        tokens, dollars = estimate(request, self.backend.price)
        env.book.check(self.role, env.version, tokens, dollars)
        t0 = time.monotonic()
        try:
            reply = self.backend.complete(request)
        except Exception as e:
            seconds = time.monotonic() - t0
            self.calls += 1
            price = self.backend.price  # a free backend (local server, scripted) cost nothing even when it failed
            free = 0.0 if price is not None and price.input_per_mtok == price.output_per_mtok == 0 else None
            env.book.charge(self.role, env.version, None, seconds=seconds, failed_cost=free)
            self._record(request, None, e, seconds, try_no, failed_cost=free)
            self._emit("the server refused this answer format (a simpler one is tried next)"
                       if isinstance(e, LLMUnsupportedError) else f"failed: {type(e).__name__}")
            raise
        self.calls += 1
        env.book.charge(self.role, env.version, reply)
        self._record(request, reply, None, None, try_no)
        self._emit("")
        return reply

    def _record(self, request: LLMRequest, reply: LLMReply | None, error: BaseException | None,
                seconds: float | None, try_no: int, failed_cost: float | None = None) -> None:
        if self.env.transcript is None:
            return
        record = make_record(run=self.env.run, role=self.role, version=self.env.version, backend=self.backend,
                             request=request, reply=reply, error=error, latency_s=seconds, try_no=try_no)
        if reply is None:
            record["cost_usd"] = failed_cost
        self.env.transcript.append(record)

    def _emit(self, note: str) -> None:
        book = self.env.book
        role, run = book.spend("role", self.role), book.spend("run")
        where = f" {self.env.version}" if self.env.version else ""
        text = f"llm {self.role}{where}: {role.line()} (run: {run.line()})" + (f"; {note}" if note else "")
        self.env.emit("llm", {"role": self.role, "version": self.env.version, "calls": role.calls,
                              "tokens": role.tokens, "dollars": role.dollars, "text": text})

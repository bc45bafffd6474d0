"""`replay:FILE` — answers from a recorded transcript (`DIR/.autoresearch/transcripts.jsonl`, transcript.py): re-run
a recorded session with no model and no cost, for demos, bisecting a pipeline change, or a test built from a real
run.

The i-th call of role R gets the i-th recorded *successful* reply of role R (its text and tool calls; failed calls are
skipped, since their retries answered later). What is asked is not compared with what was recorded: a run that asks
differently still gets the recorded answers in order. Running out is an LLMError naming the file, the role and how
many replies it had.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from autoresearch.agents.llm.backend import Backend, LLMReply, LLMRequest, Price, ToolCall, Usage
from autoresearch.agents.llm.retry import RetryPolicy
from autoresearch.errors import ConfigError, LLMError

__all__ = ["ReplayBackend"]


class ReplayBackend(Backend):
    """Recorded replies, per role, in order."""

    scheme = "replay"

    def __init__(self, path: str | Path, *, retry: RetryPolicy | None = None) -> None:
        from autoresearch.agents.llm.transcript import read_transcript

        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"replay transcript {self.path} does not exist; point replay:FILE at a "
                              "DIR/.autoresearch/transcripts.jsonl")
        self.replies: dict[str, list[dict[str, Any]]] = {}
        """role -> the recorded records with a response, in order."""
        for rec in read_transcript(self.path):
            if rec.get("response") is not None and not rec.get("error"):
                self.replies.setdefault(str(rec.get("role") or ""), []).append(rec)
        if not self.replies:
            raise ConfigError(f"replay transcript {self.path} holds no successful call to replay; record a run first")
        self.served: dict[str, int] = {}
        self.requests: list[LLMRequest] = []
        """every request received, in order."""
        self._lock = threading.Lock()
        super().__init__(f"replay:{self.path}", "replay", price=Price(0.0, 0.0, "replay"), supports_schema=True,
                         supports_tools=True, retry=retry or RetryPolicy(max_retries=0))

    def _call(self, request: LLMRequest) -> LLMReply:
        with self._lock:
            self.requests.append(request)
            role = request.role
            recorded = self.replies.get(role, [])
            i = self.served.get(role, 0)
            if i >= len(recorded):
                raise LLMError(f"{self.spec}: no recorded reply left for role {role!r} (the transcript had "
                               f"{len(recorded)}); record a longer run or use a live backend")
            self.served[role] = i + 1
        rec = recorded[i]
        resp = rec["response"]
        calls = [ToolCall(str(c.get("name", "")), _args(c.get("arguments", "{}")), str(c.get("id", "")))
                 for c in resp.get("tool_calls") or [] if isinstance(c, dict)]
        u = rec.get("usage")
        usage = Usage(int(u.get("prompt", 0)), int(u.get("completion", 0))) if isinstance(u, dict) else None
        return LLMReply(text=str(resp.get("text") or ""), tool_calls=calls, usage=usage,
                        finish_reason=str(resp.get("finish_reason") or ""), model=str(rec.get("model") or "replay"))


def _args(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)

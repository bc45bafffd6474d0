"""The transcript: every LLM call of a workspace, one JSON line each, in `DIR/.autoresearch/transcripts.jsonl`.

Append-only (each line written in one `write`, flushed and fsync'ed; the file is created with mode 0o600), secrets
redacted before writing (redact.py). It is the only record of what was spent: budget.BudgetBook.load rebuilds the
spend from it after a resume, `research status` and the report read it, `replay:FILE` answers from it.

A record (one call; `RECORD_KEYS`):

    {"at": ISO time, "run": 1, "role": "planner", "version": "name/v2" or "", "backend": spec, "model": str,
     "request": {"messages": [...], "tools": [names], "schema_name": str, "max_tokens": int, "temperature": float},
     "response": {"text": str, "tool_calls": [{"name", "arguments", "id"}], "finish_reason": str} | null,
     "error": one line | null, "usage": {"prompt": int, "completion": int} | null, "cost_usd": float | null,
     "latency_s": float, "retries": int, "try": 1-based structured re-ask number}
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoresearch.agents.llm.budget import Spend
from autoresearch.agents.llm.redact import redact
from autoresearch.errors import ConfigError

if TYPE_CHECKING:
    from autoresearch.agents.llm.backend import Backend, LLMReply, LLMRequest

__all__ = ["RECORD_KEYS", "Transcript", "make_record", "read_transcript", "spend_by", "error_line"]

RECORD_KEYS = ("at", "run", "role", "version", "backend", "model", "request", "response", "error", "usage",
               "cost_usd", "latency_s", "retries", "try")


def error_line(exc: BaseException) -> str:
    """An exception as one line (`Type: message`, at most 500 characters)."""
    msg = " ".join(str(exc).split())
    line = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
    return line[:500]


def make_record(*, run: int, role: str, version: str, backend: Backend, request: LLMRequest,
                reply: LLMReply | None, error: BaseException | str | None = None, latency_s: float | None = None,
                try_no: int = 1) -> dict[str, Any]:
    """The transcript record of one call: its reply, or (reply None) the error it raised (not yet redacted)."""
    schema_name = request.schema_name if (request.schema is not None or request.tool_choice) else ""
    rec: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "run": run, "role": role, "version": version, "backend": backend.spec,
        "model": (reply.model if reply is not None and reply.model else backend.model),
        "request": {"messages": [dict(m) for m in request.messages], "tools": [t.name for t in request.tools],
                    "schema_name": schema_name, "max_tokens": request.max_tokens,
                    "temperature": request.temperature},
        "response": None, "error": None, "usage": None, "cost_usd": None,
        "latency_s": 0.0 if latency_s is None else round(latency_s, 4), "retries": 0, "try": try_no,
    }
    if reply is not None:
        rec["response"] = {"text": reply.text, "finish_reason": reply.finish_reason,
                           "tool_calls": [{"name": c.name, "arguments": c.arguments, "id": c.id}
                                          for c in reply.tool_calls]}
        if reply.usage is not None:
            rec["usage"] = {"prompt": reply.usage.prompt_tokens, "completion": reply.usage.completion_tokens}
        rec["cost_usd"] = reply.cost_usd
        rec["latency_s"] = round(reply.latency_s if latency_s is None else latency_s, 4)
        rec["retries"] = reply.retries
    if error is not None:
        rec["error"] = error if isinstance(error, str) else error_line(error)
    return rec


class Transcript:
    """An append-only JSONL file of call records; thread-safe within a process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, record: Mapping[str, Any]) -> None:
        """Redact `record` and append it as one line (flushed + fsync'ed; a new file gets mode 0o600)."""
        line = json.dumps(redact(dict(record)), ensure_ascii=False, default=str) + "\n"
        data = line.encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                if os.fstat(fd).st_size and not _ends_with_newline(self.path):
                    data = b"\n" + data  # a torn last line (a crash mid-write) stays torn; ours starts afresh
                view = memoryview(data)
                while view:  # a regular file takes it all at once; loop in case a signal cut a write short
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)

    def read(self) -> list[dict[str, Any]]:
        return read_transcript(self.path)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def read_transcript(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a transcript ([] when the file does not exist). A torn line (a crash mid-write: not JSON and
    not ended by a newline, or followed only by such lines) is skipped; any other malformed line is a one-line
    ConfigError naming file:line."""
    p = Path(path)
    if not p.exists():
        return []
    raw = p.read_bytes().decode("utf-8", errors="replace")
    lines = raw.split("\n")
    out: list[dict[str, Any]] = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        torn = i == len(lines)  # the last piece has no newline after it
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            if torn or _is_torn_then_appended(line):
                continue
            raise ConfigError(f"{p}:{i} is not a JSON transcript record ({e.msg}); fix or delete that line") from None
        if not isinstance(rec, dict):
            raise ConfigError(f"{p}:{i} is not a transcript record (a JSON object); fix or delete that line")
        missing = [k for k in RECORD_KEYS if k not in rec]
        if missing:
            raise ConfigError(f"{p}:{i} is missing transcript key(s) {', '.join(missing)}; fix or delete that line")
        out.append(rec)
    return out


def _is_torn_then_appended(line: str) -> bool:
    """A line a crash cut short before a newline was written is followed by a full record on the next line (append
    starts it on a new line), so a torn line is one that opens an object, never closes it and does not parse."""
    return line.startswith("{") and not line.rstrip().endswith("}")


def spend_by(records: Iterable[Mapping[str, Any]], key: str) -> dict[str, Spend]:
    """Spend per value of a record key (`role`, `version`, `backend`, `model`, `run`), in first-seen order."""
    if key not in RECORD_KEYS:
        raise ValueError(f"spend_by key must be one of {', '.join(RECORD_KEYS)}, got {key!r}")
    out: dict[str, Spend] = {}
    for r in records:
        out.setdefault(str(r.get(key, "")), Spend()).add_record(r)
    return out

"""`DIR/logs/errors.log`: every failed implementation attempt, appended as one readable block, and the capped error
text that both the log and the coder's feedback carry.

The log is for a person reading what went wrong (issue 10 §6): one block per attempt with the time, the version, the
failed step (its kind), the attempt number out of the cap, the error and the diff the attempt left. It is append-only
(a block is written with one `write` under an exclusive lock, so versions implemented side by side never interleave)
and never rewritten. Errors are capped the way the coder sees them — the first and the last lines, where a compiler
or a traceback puts what matters — so one runaway log cannot flood the file or a language model's context.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from autoresearch.harness.atomic import file_lock

__all__ = ["cap_error", "ErrorsLog", "LogEntry", "HEAD_LINES", "TAIL_LINES", "MAX_ERROR_CHARS", "MAX_DIFF_CHARS",
           "BLOCK_START"]

HEAD_LINES = 40
TAIL_LINES = 40
MAX_ERROR_CHARS = 8000
MAX_DIFF_CHARS = 20_000
"""A diff longer than this is cut in errors.log (the attempt's full diff is kept in its own file)."""
BLOCK_START = "=== "
_HEADER = re.compile(r"^=== \S+ version \S+ kind \S+ attempt \d+/\d+$", re.M)


def cap_error(text: str, head: int = HEAD_LINES, tail: int = TAIL_LINES, max_chars: int = MAX_ERROR_CHARS) -> str:
    """The first `head` and last `tail` lines of `text` with a marker for what was left out, at most `max_chars`
    characters (a few huge lines are cut in their middle the same way)."""
    lines = text.rstrip().splitlines()
    if len(lines) > head + tail:
        lines = [*lines[:head], f"[... {len(lines) - head - tail} lines left out ...]", *lines[-tail:]]
    out = "\n".join(lines)
    if len(out) <= max_chars:
        return out
    marker = f"\n[... {len(out) - max_chars} characters left out ...]\n"
    keep = max(0, max_chars - len(marker) - 16)  # 16: room for the digits the count may gain
    return out[: keep // 2] + marker + out[len(out) - (keep - keep // 2):]


@dataclass
class LogEntry:
    """One failed attempt, as written to errors.log."""

    version: str
    """`<idea name>/v<k>`"""
    kind: str
    n: int
    max_attempts: int
    error: str
    diff: str
    diff_path: str = ""
    at: str = ""

    def render(self) -> str:
        at = self.at or time.strftime("%Y-%m-%dT%H:%M:%S")
        diff = self.diff if len(self.diff) <= MAX_DIFF_CHARS else (
            self.diff[:MAX_DIFF_CHARS] + f"\n[... diff cut at {MAX_DIFF_CHARS} characters; full diff: "
                                         f"{self.diff_path or 'not saved'} ...]")
        parts = [f"{BLOCK_START}{at} version {self.version} kind {self.kind} attempt {self.n}/{self.max_attempts}",
                 "--- error", cap_error(self.error) or "(no output)",
                 f"--- diff{f' ({self.diff_path})' if self.diff_path else ''}", diff.rstrip() or "(no change)", ""]
        return "\n".join(parts) + "\n"


class ErrorsLog:
    """Appends attempt blocks to one errors.log file (created with its folder on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def append(self, entry: LogEntry) -> None:
        block = entry.render().encode("utf-8", errors="replace")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(self.path.with_name(f".{self.path.name}.lock")):
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, block)
                os.fsync(fd)
            finally:
                os.close(fd)

    def blocks(self) -> list[str]:
        """The attempt blocks written so far, oldest first (for tests and `research status`)."""
        try:
            text = self.path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        starts = [m.start() for m in _HEADER.finditer(text)]
        return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)])]

"""Secrets out of everything the LLM layer writes: transcripts, failed answers, logs.

A secret is the value (8 characters or more) of an environment variable whose NAME contains KEY, TOKEN, SECRET or
PASSWORD (OPENAI_API_KEY, ANTHROPIC_API_KEY, HF_TOKEN, ...), plus anything shaped like an API key wherever it came
from: `sk-...` (OpenAI, Anthropic `sk-ant-...`), `Bearer ...`, and `api_key: ...` / `x-api-key=...` pairs. `redact`
returns a deep copy with each one replaced by `[REDACTED]`. The values are read from the environment at each call, so
a key set after import is covered too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["REDACTED", "secret_values", "redact", "redact_text"]

REDACTED = "[REDACTED]"
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD", re.IGNORECASE)
_MIN_LEN = 8
_PATTERNS = [
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"), REDACTED),
    (re.compile(r"\b(Bearer\s+)[A-Za-z0-9._~+/\-]{8,}=*"), r"\1" + REDACTED),
    (re.compile(r"(?i)\b((?:x-)?api[_-]?key[\"']?\s*[:=]\s*[\"']?)(?!\[REDACTED\])[^\s\"',}]{8,}"), r"\1" + REDACTED),
]


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of the environment variables whose name contains KEY, TOKEN, SECRET or PASSWORD (>= 8 characters),
    longest first (so that a secret containing another is replaced whole)."""
    env = os.environ if environ is None else environ
    vals = {v for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= _MIN_LEN}
    return sorted(vals, key=len, reverse=True)


def redact_text(text: str, secrets: list[str] | None = None) -> str:
    """`text` with every secret value and key-shaped string replaced by [REDACTED]."""
    for s in secret_values() if secrets is None else secrets:
        if s in text:
            text = text.replace(s, REDACTED)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def redact(obj: Any, secrets: list[str] | None = None) -> Any:
    """A deep copy of a JSON-like object (dicts, lists, tuples, strings, numbers) with the secrets in every string,
    keys included, replaced by [REDACTED]; other objects are returned as they are."""
    found = secret_values() if secrets is None else secrets
    return _walk(obj, found)


def _walk(obj: Any, secrets: list[str]) -> Any:
    if isinstance(obj, str):
        return redact_text(obj, secrets)
    if isinstance(obj, Mapping):
        return {(_walk(k, secrets) if isinstance(k, str) else k): _walk(v, secrets) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_walk(v, secrets) for v in obj]
    return obj

"""Retries for one backend call: exponential back-off with full jitter on what may pass (connection errors, timeouts,
429, 5xx), honouring the server's Retry-After; everything else passes through at once.

A backend's `_call` raises `TransientError` for a failure worth another try and an `LLMError` (or any other
exception) for one that is not. `with_retries` runs it in the caller's thread and sleeps between tries:
try k (0-based) waits `uniform(0, min(max_s, base_s * 2**k))` ("full jitter", AWS architecture blog, 2015: it
spreads clients that failed together), or exactly the server's Retry-After when it sent one — capped at `max_s`, so a
server asking for an hour cannot stall a run for an hour (the call then fails after the last try with a line saying
so, and the run's budget or the user decides what next).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from autoresearch.errors import LLMAuthError, LLMContextError, LLMError, LLMUnsupportedError

__all__ = ["TransientError", "RetryPolicy", "with_retries", "backoff_s", "parse_retry_after", "http_error",
           "server_message", "one_line"]

T = TypeVar("T")


class TransientError(LLMError):
    """A failure that may pass (connection error, timeout, 429, 5xx, a garbled answer): worth another try."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        """what the server asked for (Retry-After / retry-after-ms), None when it did not say."""


@dataclass
class RetryPolicy:
    """How often and how long to retry a transient failure."""

    max_retries: int = 4
    """tries after the first (0 = no retry)."""
    base_s: float = 1.0
    """back-off before the first retry (doubles each retry)."""
    max_s: float = 30.0
    """the longest single wait, Retry-After included."""
    jitter: bool = True
    """full jitter: wait uniform(0, back-off) instead of the back-off itself."""

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.base_s < 0 or self.max_s < 0:
            raise ValueError(f"RetryPolicy values must be >= 0, got {self}")


def backoff_s(policy: RetryPolicy, attempt: int, retry_after_s: float | None = None,
              rng: Callable[[float, float], float] = random.uniform) -> float:
    """The wait before retry number `attempt + 1` (attempt 0 = after the first failure)."""
    if retry_after_s is not None and retry_after_s >= 0:
        return min(policy.max_s, retry_after_s)
    cap = min(policy.max_s, policy.base_s * (2 ** attempt))
    return rng(0.0, cap) if policy.jitter else cap


def _sleep(seconds: float) -> None:
    """The wait between tries (tests replace it to run instantly and record the waits)."""
    time.sleep(seconds)


def with_retries(fn: Callable[[], T], policy: RetryPolicy | None, *, what: str,
                 sleep: Callable[[float], None] | None = None) -> tuple[T, int]:
    """`fn()` and how many failed tries came before its answer. A `TransientError` is retried up to
    `policy.max_retries` times; after the last one an `LLMError` names `what` (the backend spec), the tries, the last
    error and the fix. Any other exception passes through at once. `sleep` defaults to the module's `_sleep`."""
    policy = policy or RetryPolicy()
    sleep = sleep or _sleep
    attempt = 0
    while True:
        try:
            return fn(), attempt
        except TransientError as e:
            if attempt >= policy.max_retries:
                raise LLMError(
                    f"{what}: gave up after {attempt + 1} tries; last error: {one_line(str(e))}; check that the "
                    f"server is up and not overloaded, or raise the retries (RetryPolicy.max_retries)") from e
            sleep(backoff_s(policy, attempt, e.retry_after_s))
            attempt += 1


def parse_retry_after(headers: object) -> float | None:
    """Seconds from `retry-after-ms` or `Retry-After` (seconds, or an HTTP date) in a headers mapping; None if absent
    or unreadable."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    ms = get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(str(value))
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


_CONTEXT_WORDS = ("context length", "context_length", "context window", "maximum context", "context size",
                  "too many tokens", "prompt is too long", "input is too long", "exceeds the available context",
                  "maximum number of tokens", "reduce the length")
_FEATURE_WORDS = ("response_format", "json_schema", "json schema", "structured output", "tools", "tool_choice",
                  "tool use", "function call", "functions")
_VALIDATION_WORDS = ("validation error", "input should be")
"""Words of a request validator's refusal (pydantic's, in llama-cpp-python's server)."""
_UNSUPPORTED_WORDS = ("not supported", "unsupported", "does not support", "doesn't support", "not available",
                      "unrecognized", "unknown parameter", "unknown field", "not permitted", "not implemented")


def http_error(what: str, status: int, message: str, *, code: str | None = None, retry_after_s: float | None = None,
               key_env: str = "the API key variable") -> LLMError:
    """The error for an HTTP failure `status` with the server's `message`: TransientError for 408/409/429/5xx (529
    "overloaded" included), LLMAuthError for 401/403, LLMContextError for a full context window, LLMUnsupportedError
    for a refused response_format / json_schema / tools, LLMError otherwise (404: model or URL unknown). One line:
    `what` (the backend spec), the status, the message and the fix. `key_env` names the key's variable (never its
    value)."""
    msg = one_line(message or "(no message)", 240)
    low = f"{msg} {code or ''}".lower()
    head = f"{what}: HTTP {status}: {msg}"
    feature = any(w in low for w in _FEATURE_WORDS)
    refused_feature = feature and any(w in low for w in _UNSUPPORTED_WORDS)
    if status >= 500 and feature and any(w in low for w in _VALIDATION_WORDS):
        # llama-cpp-python's server (0.3.36, measured) answers a json_schema response_format with HTTP 500 and its
        # request validator's message: a refusal that no retry will fix, not a failing server
        return LLMUnsupportedError(f"{head}; this server does not support the request's response format or tools")
    if status in (408, 409, 429) or status >= 500:
        return TransientError(f"{head}; the server is busy or failing, retrying", retry_after_s)
    if status in (401, 403):
        return LLMAuthError(f"{head}; check {key_env} (a valid key with access to this model)")
    if "context_length_exceeded" in low or any(w in low for w in _CONTEXT_WORDS):
        return LLMContextError(f"{head}; the prompt does not fit the model's context window: shorten it "
                               "(workspace.yaml agents.context_tokens) or use a model with a larger window")
    if status in (400, 422) and refused_feature:
        return LLMUnsupportedError(f"{head}; this server does not support the request's response format or tools")
    if status == 404:
        return LLMError(f"{head}; check the model name and the base URL")
    return LLMError(f"{head}; the request was refused, fix it as the message says")


def server_message(body: object, fallback: str) -> str:
    """The server's own error text in a decoded error body: {"error": {"message"}} (OpenAI, Anthropic),
    {"error": "..."} (some proxies), {"message": ...}, or the raw text; else `fallback`."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str) and err:
            return err
        if body.get("message"):
            return str(body["message"])
    if isinstance(body, str) and body.strip():
        return body
    return fallback


def one_line(text: str, limit: int = 300) -> str:
    """`text` on one line, at most `limit` characters."""
    return " ".join(text.split())[:limit]

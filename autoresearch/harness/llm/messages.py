"""What crosses the LLM transport: chat messages in; completions, token usage and latency out.

A message is `{"role": ..., "content": ...}` (the OpenAI chat shape) or a `Message`; `as_messages` checks either and
returns the wire form. A `Response` holds every choice of one request (`n` of them), the token usage the server
reported (None when it reports none, as some local servers do) and the wall-clock of the call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from autoresearch.errors import ConfigError

__all__ = ["ROLES", "Message", "MessageLike", "Usage", "Choice", "Response", "as_messages"]

ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class Message:
    """One chat message."""

    role: str
    """system | user | assistant | tool"""
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


MessageLike = Message | Mapping[str, str]


def as_messages(messages: Iterable[MessageLike]) -> list[dict[str, str]]:
    """The wire form of `messages`; a bad role, a non-string content or an empty list is a ConfigError."""
    out: list[dict[str, str]] = []
    for i, m in enumerate(messages):
        d = m.to_dict() if isinstance(m, Message) else m
        if not isinstance(d, Mapping) or "role" not in d or "content" not in d:
            raise ConfigError(f"message {i} must have `role` and `content`, got {d!r:.80}; e.g. "
                              '{"role": "user", "content": "..."}')
        if d["role"] not in ROLES:
            raise ConfigError(f"message {i} has role {d['role']!r}; use one of {', '.join(ROLES)}")
        if not isinstance(d["content"], str):
            raise ConfigError(f"message {i} content must be a string, got {type(d['content']).__name__}")
        out.append({"role": d["role"], "content": d["content"]})
    if not out:
        raise ConfigError("a chat request needs at least one message; pass e.g. [{'role': 'user', 'content': '...'}]")
    return out


@dataclass(frozen=True)
class Usage:
    """Tokens one request consumed, as the server counted them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens)


@dataclass(frozen=True)
class Choice:
    """One completion of a request."""

    text: str
    finish_reason: str = ""
    """"stop" (a stop sequence or the model's end), "length" (max_tokens reached), ...; "" when not reported."""
    index: int = 0


@dataclass(frozen=True)
class Response:
    """Every choice of one request, in `index` order, with usage and latency."""

    choices: list[Choice]
    usage: Usage | None
    """None when the server reported no usage."""
    latency_s: float
    """Wall-clock of the call, retries and their back-off included."""
    model: str = ""
    attempts: int = 1

    @property
    def text(self) -> str:
        """The first choice's text (the whole answer when n=1)."""
        return self.choices[0].text

    @property
    def finish_reason(self) -> str:
        return self.choices[0].finish_reason

    @property
    def texts(self) -> list[str]:
        return [c.text for c in self.choices]

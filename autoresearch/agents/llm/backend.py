"""The one backend protocol of the LLM roles: a chat request (messages, optional tools, optional response schema) in;
text, tool calls, token usage, cost, latency and finish reason out.

Every backend (`openai:MODEL[@URL]`, `anthropic:MODEL`, `litellm:MODEL`, `replay:FILE`, `scripted:FILE`; specs.py)
subclasses `Backend` and implements `_call` — ONE attempt, no retries. `Backend.complete` adds the retries
(retry.py: exponential back-off with jitter on connection errors, 429 and 5xx, honouring Retry-After; a fatal error
— authentication, 400/404, a full context window — raises at once) and fills latency, retries and cost. Keys come
from environment variables only; a backend never stores one in anything it returns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from autoresearch.harness.llm.messages import Usage

__all__ = ["Tool", "ToolCall", "LLMRequest", "LLMReply", "Price", "Backend", "Usage"]


@dataclass(frozen=True)
class Tool:
    """A function the model may call (OpenAI `tools`, Anthropic `tools`)."""

    name: str
    description: str
    parameters: dict[str, Any]
    """its arguments as a JSON schema (an object)."""


@dataclass(frozen=True)
class ToolCall:
    """A tool call the model made."""

    name: str
    arguments: str
    """the arguments as the model wrote them (JSON text, not yet parsed or validated)."""
    id: str = ""


@dataclass
class LLMRequest:
    """One chat request. `role` and `tag` are metadata for budgets, transcripts and scripted/replay backends; they are
    never sent to a server."""

    messages: list[dict[str, str]]
    """[{"role": "system"|"user"|"assistant", "content": str}, ...] (harness/llm/messages.as_messages checks them)."""
    max_tokens: int = 2048
    temperature: float = 0.0
    tools: list[Tool] = field(default_factory=list)
    tool_choice: str = ""
    """"" = the model chooses; a tool's name = that call is forced."""
    schema: dict[str, Any] | None = None
    """a JSON schema the answer must follow (native structured-output mode); None = free text."""
    schema_name: str = "answer"
    seed: int | None = None
    role: str = ""
    """planner | coder | judge | analyzer | reviser (metadata)."""
    tag: str = ""
    """free metadata, e.g. the version label `name/v2` (metadata)."""


@dataclass
class LLMReply:
    """What one request returned."""

    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    """None when the server reported no usage."""
    cost_usd: float | None = None
    """None when the backend's price is unknown."""
    latency_s: float = 0.0
    """wall-clock of the request, retries and back-off included."""
    finish_reason: str = ""
    """stop | length | tool_calls | ... as the backend reported it ("" unknown)."""
    model: str = ""
    retries: int = 0
    """failed attempts before this answer (0 = the first attempt answered)."""


@dataclass(frozen=True)
class Price:
    """USD per million tokens (prompt, completion)."""

    input_per_mtok: float
    output_per_mtok: float
    source: str = ""
    """where the figure comes from (a pricing page and date, `workspace.yaml agents.prices`, `local server`)."""

    def cost(self, usage: Usage | None) -> float | None:
        if usage is None:
            return None
        return (usage.prompt_tokens * self.input_per_mtok + usage.completion_tokens * self.output_per_mtok) / 1e6


class Backend(ABC):
    """One model on one service. Subclasses implement `_call`; callers use `complete`."""

    scheme: ClassVar[str] = ""
    """openai | anthropic | litellm | replay | scripted."""

    def __init__(self, spec: str, model: str, *, price: Price | None = None, supports_schema: bool = False,
                 supports_tools: bool = False, retry: Any = None) -> None:
        self.spec = spec
        """the spec string it was made from (never holds a key)."""
        self.model = model
        self.price = price
        """None = unknown: a dollar budget is refused for this backend."""
        self.supports_schema = supports_schema
        """native JSON-schema answers (LLMRequest.schema) are honoured."""
        self.supports_tools = supports_tools
        """tool calls (LLMRequest.tools / tool_choice) are honoured."""
        self.retry = retry
        """a retry.RetryPolicy (None = its defaults)."""

    @abstractmethod
    def _call(self, request: LLMRequest) -> LLMReply:
        """ONE attempt. Raise retry.TransientError (with retry_after_s when the server said) for what may pass
        (connection errors, timeouts, 429, 5xx); raise autoresearch.errors.LLMError (or its subclasses LLMAuthError,
        LLMContextError, LLMUnsupportedError) for what will not — one line naming the backend spec, what happened and
        the fix."""

    def complete(self, request: LLMRequest) -> LLMReply:
        """`_call` with retries (retry.with_retries), then latency, retries and cost filled in."""
        import time

        from autoresearch.agents.llm.retry import with_retries

        t0 = time.monotonic()
        reply, retries = with_retries(lambda: self._call(request), self.retry, what=self.spec)
        reply.latency_s = time.monotonic() - t0
        reply.retries = retries
        if reply.cost_usd is None and self.price is not None:
            reply.cost_usd = self.price.cost(reply.usage)
        if not reply.model:
            reply.model = self.model
        return reply

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"

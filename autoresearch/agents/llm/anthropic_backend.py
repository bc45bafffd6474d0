"""`anthropic:MODEL` — Claude through the official `anthropic` SDK (Messages API).

The SDK is imported when a backend is made (`pip install 'autoresearch[agents]'` when it is missing) and never
retries by itself (`max_retries=0`; retry.py decides: 429, 5xx and 529 "overloaded" are transient). The key is
$ANTHROPIC_API_KEY (missing: a ConfigError naming it), sent in the SDK's auth header and kept nowhere else; the base URL
is $ANTHROPIC_BASE_URL when set (proxies, tests), else the SDK's. Chat messages map onto the Messages API: system
messages go to `system=`, consecutive messages of one role are merged (the API wants user/assistant turns), tools
become Anthropic tools (`input_schema`), a forced tool is `{"type": "tool", "name": ...}`, and `tool_use` blocks
come back as ToolCalls with the input as JSON text. There is no native JSON-schema mode here (`supports_schema` is
False: the structured layer forces a tool call instead). The SDK's `messages.create` has no temperature parameter
in this version, so `LLMRequest.temperature` is not sent. Stop reasons are normalised to the OpenAI words
(end_turn -> stop, max_tokens -> length, tool_use -> tool_calls) so callers test one vocabulary.
"""

from __future__ import annotations

import json
import os
from typing import Any

from autoresearch.agents.llm.backend import Backend, LLMReply, LLMRequest, Price, ToolCall, Usage
from autoresearch.agents.llm.openai_backend import INSTALL_HINT
from autoresearch.agents.llm.retry import (
    RetryPolicy,
    TransientError,
    http_error,
    one_line,
    parse_retry_after,
    server_message,
)
from autoresearch.errors import ConfigError, LLMError, LLMUnsupportedError

__all__ = ["AnthropicBackend", "to_anthropic_messages"]

_STOP = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
         "model_context_window_exceeded": "length"}


def to_anthropic_messages(messages: list[dict[str, str]]) -> tuple[str, list[dict[str, str]]]:
    """(system text, user/assistant turns) for the Messages API: system messages joined, `tool` messages sent as
    user text, consecutive messages of one role merged."""
    system: list[str] = []
    turns: list[dict[str, str]] = []
    for m in messages:
        role, content = m["role"], m["content"]
        if role == "system":
            system.append(content)
            continue
        role = "assistant" if role == "assistant" else "user"
        if turns and turns[-1]["role"] == role:
            turns[-1] = {"role": role, "content": f"{turns[-1]['content']}\n\n{content}"}
        else:
            turns.append({"role": role, "content": content})
    return "\n\n".join(system), turns


class AnthropicBackend(Backend):
    """One Claude model."""

    scheme = "anthropic"

    def __init__(self, model: str, *, price: Price | None = None, timeout_s: float = 120.0,
                 retry: RetryPolicy | None = None) -> None:
        if not model:
            raise ConfigError("anthropic backend needs a model name; use anthropic:MODEL, e.g. "
                              "anthropic:claude-sonnet-4-5")
        spec = f"anthropic:{model}"
        key = os.environ.get("ANTHROPIC_API_KEY", "")
        if not key:
            raise ConfigError(f"{spec}: $ANTHROPIC_API_KEY is not set; export ANTHROPIC_API_KEY=... (keys come only "
                              "from the environment)")
        try:
            import anthropic
        except ImportError as e:
            raise ConfigError(f"{spec} needs the anthropic SDK, which is not installed; {INSTALL_HINT}") from e
        super().__init__(spec, model, price=price, supports_schema=False, supports_tools=True, retry=retry)
        self.base_url = os.environ.get("ANTHROPIC_BASE_URL", "").rstrip("/") or None
        self.timeout_s = timeout_s
        self._secret = key
        self._anthropic = anthropic
        self._client = anthropic.Anthropic(api_key=key, base_url=self.base_url, max_retries=0, timeout=timeout_s)

    def _params(self, request: LLMRequest) -> dict[str, Any]:
        if request.schema is not None:
            raise LLMUnsupportedError(f"{self.spec}: the Anthropic backend has no native JSON-schema mode; use a "
                                      "forced tool call (supports_schema is False)")
        system, turns = to_anthropic_messages(request.messages)
        params: dict[str, Any] = {"model": self.model, "max_tokens": request.max_tokens, "messages": turns}
        if system:
            params["system"] = system
        if request.tools:
            params["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.parameters}
                               for t in request.tools]
            if request.tool_choice:
                params["tool_choice"] = {"type": "tool", "name": request.tool_choice}
        return params

    def _call(self, request: LLMRequest) -> LLMReply:
        an = self._anthropic
        params = self._params(request)  # outside the try: a bad request is our bug, not a transient failure
        try:
            message = self._client.messages.create(**params)
        except an.APIStatusError as e:
            text = getattr(e, "api_message", None) or server_message(e.body, e.message)
            raise self._scrub(http_error(self.spec, e.status_code, text, code=getattr(e, "type", None),
                                         retry_after_s=parse_retry_after(e.response.headers),
                                         key_env="$ANTHROPIC_API_KEY")) from None
        except an.APITimeoutError:
            raise TransientError(f"{self.spec}: no answer within {self.timeout_s:g} s; retrying (workspace.yaml "
                                 "agents.timeout_s sets the limit)") from None
        except an.APIConnectionError as e:
            where = self.base_url or "api.anthropic.com"
            raise self._scrub(TransientError(f"{self.spec}: cannot reach {where}: {one_line(str(e))}")) from None
        except an.APIResponseValidationError as e:
            raise self._scrub(TransientError(f"{self.spec}: the answer does not parse: {one_line(str(e))}")) from None
        except (ValueError, TypeError, AttributeError) as e:  # a non-JSON body the SDK could not decode
            raise self._scrub(TransientError(f"{self.spec}: the answer does not parse "
                                             f"({type(e).__name__}: {one_line(str(e))})")) from None
        try:
            return self._reply(message)
        except (ValueError, TypeError, AttributeError) as e:  # a message missing its parts
            raise self._scrub(TransientError(f"{self.spec}: the answer is not a message "
                                             f"({type(e).__name__}: {one_line(str(e))})")) from None

    def _reply(self, message: Any) -> LLMReply:
        blocks = getattr(message, "content", None)
        if isinstance(message, str) or blocks is None:
            raise TransientError(f"{self.spec}: the server answered without a message: {one_line(str(message), 160)!r}")
        texts: list[str] = []
        calls: list[ToolCall] = []
        for b in blocks:
            kind = getattr(b, "type", "")
            if kind == "text":
                texts.append(b.text)
            elif kind == "tool_use":
                calls.append(ToolCall(b.name, json.dumps(b.input), b.id or ""))
        u = getattr(message, "usage", None)
        usage = None
        if u is not None:
            prompt = int(u.input_tokens or 0) + int(getattr(u, "cache_creation_input_tokens", 0) or 0) \
                + int(getattr(u, "cache_read_input_tokens", 0) or 0)
            usage = Usage(prompt, int(u.output_tokens or 0))
        stop = str(message.stop_reason or "")
        return LLMReply(text="".join(texts), tool_calls=calls, usage=usage, finish_reason=_STOP.get(stop, stop),
                        model=str(message.model or self.model))

    def _scrub(self, error: LLMError) -> LLMError:
        if self._secret and self._secret in str(error):
            error.args = (str(error).replace(self._secret, "[REDACTED]"),)
        return error


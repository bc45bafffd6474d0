"""`openai:MODEL[@URL]` — any OpenAI-compatible chat server (OpenAI, vLLM, llama.cpp server, Ollama, LM Studio,
OpenRouter) through the official `openai` SDK.

The SDK is imported when a backend is made (`pip install 'autoresearch[agents]'` when it is missing) and never
retries by itself (`max_retries=0`): retry.py decides, so that a 429's Retry-After and the run's budget are seen in
one place. The base URL is the spec's @URL, else $OPENAI_BASE_URL, else https://api.openai.com/v1; the key is
$OPENAI_API_KEY, sent in the Authorization header and kept nowhere else (a local server — 127.0.0.1, localhost,
::1 — needs none: a placeholder is sent). A schema request becomes `response_format={"type": "json_schema", ...}`
(strict off: many servers reject strict schemas); tools become function tools. A server that refuses either answers
400, which maps to LLMUnsupportedError so that the structured layer falls back to the next mode.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

from autoresearch.agents.llm.backend import Backend, LLMReply, LLMRequest, Price, ToolCall, Usage
from autoresearch.agents.llm.prices import is_local_url
from autoresearch.agents.llm.retry import (
    RetryPolicy,
    TransientError,
    http_error,
    one_line,
    parse_retry_after,
    server_message,
)
from autoresearch.errors import ConfigError, LLMError

__all__ = ["OpenAIBackend", "reply_from_completion", "INSTALL_HINT"]

INSTALL_HINT = "pip install 'autoresearch[agents]'"
_NO_KEY = "sk-no-key-needed-for-a-local-server"


class OpenAIBackend(Backend):
    """One model on one OpenAI-compatible server."""

    scheme = "openai"

    def __init__(self, model: str, base_url: str | None = None, *, price: Price | None = None,
                 timeout_s: float = 120.0, retry: RetryPolicy | None = None) -> None:
        from autoresearch.harness.settings import load_settings

        if not model:
            raise ConfigError("openai backend needs a model name; use openai:MODEL or openai:MODEL@URL")
        settings = load_settings()
        url = (base_url or settings.openai_base_url).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"openai backend URL {url!r} must start with http:// or https://; "
                              "e.g. openai:MODEL@http://127.0.0.1:8080/v1")
        spec = f"openai:{model}@{base_url.rstrip('/')}" if base_url else f"openai:{model}"
        key = settings.openai_api_key
        if not key and not is_local_url(url):
            raise ConfigError(f"{spec}: $OPENAI_API_KEY is not set and {url} is not a local server; export "
                              "OPENAI_API_KEY=... (keys come only from the environment)")
        try:
            import openai
        except ImportError as e:
            raise ConfigError(f"{spec} needs the openai SDK, which is not installed; {INSTALL_HINT}") from e
        super().__init__(spec, model, price=price, supports_schema=True, supports_tools=True, retry=retry)
        self.base_url = url
        self.timeout_s = timeout_s
        self._secret = key
        self._openai = openai
        self._client = openai.OpenAI(api_key=key or _NO_KEY, base_url=url, max_retries=0, timeout=timeout_s)
        # the official endpoint wants max_completion_tokens (reasoning models refuse max_tokens); local servers and
        # most proxies know only max_tokens
        self._tokens_param = "max_completion_tokens" if urlparse(url).hostname == "api.openai.com" else "max_tokens"

    def _params(self, request: LLMRequest) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.model, "messages": request.messages,
                                  self._tokens_param: request.max_tokens, "temperature": request.temperature}
        if request.seed is not None:
            params["seed"] = request.seed
        return {**params, **structure_params(request)}

    def _timeout(self) -> LLMError:
        """No answer within `timeout_s`: retried for a remote service; fatal for a local server, which is still
        working on the abandoned request (a retry would queue the same prompt behind it, measured with llama.cpp)."""
        head = f"{self.spec}: no answer within {self.timeout_s:g} s"
        if is_local_url(self.base_url):
            return LLMError(f"{head} from the local server (a slow model: the prompt alone may take minutes on a CPU); "
                            "raise workspace.yaml agents.timeout_s, or lower agents.context_tokens or the role's "
                            "agents.settings.<role>.max_tokens, or use a faster model")
        return TransientError(f"{head}; retrying (workspace.yaml agents.timeout_s sets the limit)")

    def _call(self, request: LLMRequest) -> LLMReply:
        oa = self._openai
        params = self._params(request)
        try:
            completion = self._client.chat.completions.create(**params)
        except oa.APIStatusError as e:
            raise self._scrub(http_error(self.spec, e.status_code, server_message(e.body, e.message),
                                         code=getattr(e, "code", None),
                                         retry_after_s=parse_retry_after(e.response.headers),
                                         key_env="$OPENAI_API_KEY")) from None
        except oa.APITimeoutError:
            raise self._timeout() from None
        except oa.APIConnectionError as e:
            raise self._scrub(TransientError(f"{self.spec}: cannot reach {self.base_url}: {one_line(str(e))}; is the "
                                             "server running?")) from None
        except oa.APIResponseValidationError as e:
            raise self._scrub(TransientError(f"{self.spec}: the server's answer does not parse: {one_line(str(e))}")) \
                from None
        except (ValueError, TypeError, AttributeError) as e:  # a non-JSON body the SDK could not decode
            raise self._scrub(TransientError(f"{self.spec}: the server's answer does not parse "
                                             f"({type(e).__name__}: {one_line(str(e))})")) from None
        try:
            return reply_from_completion(completion, self.spec, self.model)
        except (ValueError, TypeError, AttributeError) as e:  # a completion missing its parts
            raise self._scrub(TransientError(f"{self.spec}: the server's answer is not a chat completion "
                                             f"({type(e).__name__}: {one_line(str(e))})")) from None

    def _scrub(self, error: LLMError) -> LLMError:
        """The key never travels in an error's text, whatever a server or proxy echoed back."""
        if self._secret and self._secret in str(error):
            error.args = (str(error).replace(self._secret, "[REDACTED]"),)
        return error


def reply_from_completion(completion: Any, spec: str, model: str) -> LLMReply:
    """An LLMReply from an OpenAI-shaped chat completion (the SDK's ChatCompletion, LiteLLM's ModelResponse); a body
    with no choice is a TransientError (a garbled answer may pass)."""
    choices = getattr(completion, "choices", None)
    if isinstance(completion, str) or not choices:
        raise TransientError(f"{spec}: the server answered without a completion: {one_line(str(completion), 160)!r}")
    choice = choices[0]
    message = choice.message
    calls: list[ToolCall] = []
    for tc in getattr(message, "tool_calls", None) or []:
        fn = getattr(tc, "function", None)
        if fn is not None:
            args = fn.arguments if isinstance(fn.arguments, str) else json.dumps(fn.arguments)
            calls.append(ToolCall(str(fn.name), args or "{}", str(getattr(tc, "id", "") or "")))
    u = getattr(completion, "usage", None)
    usage = Usage(int(u.prompt_tokens or 0), int(u.completion_tokens or 0)) if u is not None else None
    return LLMReply(text=message.content or "", tool_calls=calls, usage=usage,
                    finish_reason=str(choice.finish_reason or ""), model=str(getattr(completion, "model", "") or model))


def structure_params(request: LLMRequest) -> dict[str, Any]:
    """The OpenAI chat parameters of `request`'s schema (`response_format` json_schema, not strict) and tools
    (`tools`, `tool_choice` when forced); {} for a free-text request. LiteLLM takes the same."""
    params: dict[str, Any] = {}
    if request.schema is not None:
        params["response_format"] = {"type": "json_schema", "json_schema": {
            "name": request.schema_name or "answer", "schema": request.schema, "strict": False}}
    if request.tools:
        params["tools"] = [{"type": "function", "function": {
            "name": t.name, "description": t.description, "parameters": t.parameters}} for t in request.tools]
        if request.tool_choice:
            params["tool_choice"] = {"type": "function", "function": {"name": request.tool_choice}}
    return params

"""`litellm:MODEL` — any provider LiteLLM knows (Bedrock, Vertex, Gemini, Mistral, Groq, ...) through its
`completion` call, for what the OpenAI-compatible and Anthropic backends do not reach.

LiteLLM is optional and not a dependency (`pip install litellm`); it is imported when a backend is made. Keys come
from the provider's own environment variables, which LiteLLM reads. LiteLLM's own retries are off (`num_retries=0`):
retry.py decides. Its exceptions carry the HTTP status, so they map like the OpenAI backend's. A price comes from
prices.py, else from LiteLLM's own cost table (`litellm.model_cost`), else it is unknown. Native JSON-schema mode is
off by default (support varies by provider); tools are on, and a provider that refuses them raises
LLMUnsupportedError so that the structured layer falls back to prompted JSON.
"""

from __future__ import annotations

from typing import Any

from autoresearch.agents.llm.backend import Backend, LLMReply, LLMRequest, Price
from autoresearch.agents.llm.openai_backend import reply_from_completion, structure_params
from autoresearch.agents.llm.retry import RetryPolicy, TransientError, http_error, one_line, server_message
from autoresearch.errors import ConfigError, LLMUnsupportedError

__all__ = ["LiteLLMBackend", "LITELLM_HINT"]

LITELLM_HINT = "pip install litellm"


class LiteLLMBackend(Backend):
    """One model through LiteLLM."""

    scheme = "litellm"

    def __init__(self, model: str, *, price: Price | None = None, timeout_s: float = 120.0,
                 retry: RetryPolicy | None = None) -> None:
        if not model:
            raise ConfigError("litellm backend needs a model name; use litellm:MODEL, e.g. litellm:gemini/gemini-2.0-flash")
        spec = f"litellm:{model}"
        try:
            import litellm
        except ImportError as e:
            raise ConfigError(f"{spec} needs LiteLLM, which is not installed; {LITELLM_HINT} (or use openai:MODEL@URL "
                              "for an OpenAI-compatible server)") from e
        if price is None:
            price = _litellm_price(litellm, model)
        super().__init__(spec, model, price=price, supports_schema=False, supports_tools=True, retry=retry)
        self.timeout_s = timeout_s
        self._litellm = litellm

    def _call(self, request: LLMRequest) -> LLMReply:
        params: dict[str, Any] = {"model": self.model, "messages": request.messages, "max_tokens": request.max_tokens,
                                  "temperature": request.temperature, "timeout": self.timeout_s, "num_retries": 0,
                                  **structure_params(request)}
        try:
            completion = self._litellm.completion(**params)
        except Exception as e:  # LiteLLM raises its own classes (subclasses of the openai SDK's); map by status
            name = type(e).__name__
            if name == "UnsupportedParamsError":
                raise LLMUnsupportedError(f"{self.spec}: {one_line(str(e), 200)}") from None
            status = getattr(e, "status_code", None)
            if isinstance(status, int):
                raise http_error(self.spec, status, server_message(getattr(e, "body", None), str(e)),
                                 key_env="the provider's key variable") from None
            if "Timeout" in name or "Connection" in name:
                raise TransientError(f"{self.spec}: {name}: {one_line(str(e), 200)}") from None
            raise
        return reply_from_completion(completion, self.spec, self.model)


def _litellm_price(litellm: Any, model: str) -> Price | None:
    info = getattr(litellm, "model_cost", {}).get(model)
    if not isinstance(info, dict):
        return None
    try:
        return Price(float(info["input_cost_per_token"]) * 1e6, float(info["output_cost_per_token"]) * 1e6,
                     "litellm.model_cost")
    except (KeyError, TypeError, ValueError):
        return None

"""Backend specs: the strings a user writes (`--agent openai:gpt-4o-mini`, `--judge anthropic:claude-sonnet-4-5`)
turned into Backend objects.

    openai:MODEL                 $OPENAI_BASE_URL (else api.openai.com), key $OPENAI_API_KEY
    openai:MODEL@URL             any OpenAI-compatible server: vLLM, llama.cpp, Ollama, LM Studio, OpenRouter
    anthropic:MODEL              key $ANTHROPIC_API_KEY (base URL $ANTHROPIC_BASE_URL when set)
    litellm:MODEL                any provider LiteLLM knows (pip install litellm)
    replay:FILE                  the answers recorded in a transcripts.jsonl
    scripted:FILE                canned answers from a YAML/JSON file (tests, demos)

`openai:MODEL@URL` splits on the LAST `@` followed by `http`, so a model name with an `@` in it (`org/model@v2`) still
works. The price comes from prices.price_for (workspace overrides first).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from autoresearch.agents.llm.backend import Backend, Price
from autoresearch.agents.llm.prices import price_for
from autoresearch.agents.llm.retry import RetryPolicy
from autoresearch.errors import ConfigError

__all__ = ["BACKEND_SCHEMES", "SPEC_FORMS", "make_backend", "is_backend_spec", "split_spec"]

BACKEND_SCHEMES = ("openai", "anthropic", "litellm", "replay", "scripted")
SPEC_FORMS = "openai:MODEL[@URL], anthropic:MODEL, litellm:MODEL, replay:FILE, scripted:FILE"


def is_backend_spec(spec: str) -> bool:
    """True when `spec` names an LLM backend (`scheme:rest` with a known scheme and a non-empty rest)."""
    scheme, sep, rest = spec.partition(":")
    return bool(sep) and scheme in BACKEND_SCHEMES and bool(rest.strip())


def split_spec(spec: str) -> tuple[str, str, str | None]:
    """(scheme, model or file, base URL or None); a malformed spec is a ConfigError listing the forms."""
    scheme, sep, rest = spec.strip().partition(":")
    if not sep or scheme not in BACKEND_SCHEMES:
        raise ConfigError(f"unknown LLM backend {spec!r}; use one of {SPEC_FORMS}")
    rest = rest.strip()
    url: str | None = None
    if scheme == "openai":
        at = rest.rfind("@http")
        if at >= 0:
            rest, url = rest[:at], rest[at + 1:]
        elif re.search(r"@[A-Za-z][A-Za-z0-9+.-]*://", rest):  # e.g. @ftp://host: a URL, but not one we can call
            raise ConfigError(f"LLM backend {spec!r}: the server URL must start with http:// or https://; e.g. "
                              "openai:MODEL@http://127.0.0.1:8080/v1")
    if not rest:
        what = "FILE" if scheme in ("replay", "scripted") else "MODEL"
        raise ConfigError(f"LLM backend {spec!r} names no {what}; use {scheme}:{what}"
                          + ("[@URL]" if scheme == "openai" else "") + f" (forms: {SPEC_FORMS})")
    return scheme, rest, url


def make_backend(spec: str, *, prices: Mapping[str, Price] | None = None, retry: RetryPolicy | None = None,
                 timeout_s: float = 120.0) -> Backend:
    """The backend `spec` names, priced by prices.price_for(overrides=`prices`)."""
    scheme, name, url = split_spec(spec)
    if scheme == "scripted":
        from autoresearch.agents.llm.scripted import ScriptedBackend

        return ScriptedBackend(name, spec=spec, retry=retry)
    if scheme == "replay":
        from autoresearch.agents.llm.replay import ReplayBackend

        return ReplayBackend(name, retry=retry)
    price = price_for(scheme, name, url, prices)
    if scheme == "openai":
        from autoresearch.agents.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(name, url, price=price, timeout_s=timeout_s, retry=retry)
    if scheme == "anthropic":
        from autoresearch.agents.llm.anthropic_backend import AnthropicBackend

        return AnthropicBackend(name, price=price, timeout_s=timeout_s, retry=retry)
    from autoresearch.agents.llm.litellm_backend import LiteLLMBackend

    return LiteLLMBackend(name, price=price, timeout_s=timeout_s, retry=retry)

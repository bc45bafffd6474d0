"""Sampling interface for code generation: `Sampler.generate(prompts, n, ...) -> n completions per prompt`.

Adapters (one small class each):
    hf:/path/to/model               a Hugging Face causal LM from a local directory (transformers, imported lazily)
    openai:MODEL[@BASE_URL]         an OpenAI-compatible /completions endpoint (vLLM, llama.cpp server, ollama, ...)
    openai-chat:MODEL[@BASE_URL]    the same for /chat/completions
    python:package.module:function  a plain Python callable
The OpenAI adapters are thin: the HTTP transport (base URL from $OPENAI_BASE_URL, key from $OPENAI_API_KEY, retries,
one-line errors) is `harness/llm/`, which the agents layer reuses. Higher layers add their own kinds (our testbed
checkpoints: `exp-NNN`) with `register_sampler_factory(prefix, factory)`, so this module never imports them.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from autoresearch.errors import ConfigError, DataError
from autoresearch.harness.llm import OpenAIClient
from autoresearch.harness.postprocess import truncate_at_stop

__all__ = [
    "Sampler",
    "CallableSampler",
    "OpenAISampler",
    "HFSampler",
    "get_sampler",
    "register_sampler_factory",
    "sampler_prefixes",
]


class Sampler(ABC):
    """Produces completions; implementations must return exactly `n` strings per prompt, in prompt order."""

    @abstractmethod
    def generate(
        self,
        prompts: list[str],
        n: int = 1,
        temperature: float = 0.8,
        top_p: float = 0.95,
        max_tokens: int = 512,
        stop: Sequence[str] | None = None,
    ) -> list[list[str]]:
        """`n` completions (continuations, prompt not included) for each prompt, cut at the first stop sequence."""


def _check_args(n: int, temperature: float, top_p: float, max_tokens: int) -> None:
    if n < 1 or max_tokens < 1:
        raise ConfigError(f"need n >= 1 and max_tokens >= 1, got n={n}, max_tokens={max_tokens}")
    if temperature < 0 or not 0 < top_p <= 1:
        raise ConfigError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature=}, {top_p=}")


def _cut(texts: list[str], stop: Sequence[str] | None) -> list[str]:
    return [truncate_at_stop(t, stop) for t in texts] if stop else list(texts)


# --- plain callable ------------------------------------------------------------------------------------------------
class CallableSampler(Sampler):
    """Wraps `fn(prompt, *, n, temperature, top_p, max_tokens, stop)` returning n strings (a list) or one string
    (then it is called n times)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        if not callable(fn):
            raise ConfigError(f"CallableSampler needs a callable, got {type(fn).__name__}")
        self.fn = fn

    def generate(self, prompts, n=1, temperature=0.8, top_p=0.95, max_tokens=512, stop=None):  # noqa: D102
        _check_args(n, temperature, top_p, max_tokens)
        kw = dict(temperature=temperature, top_p=top_p, max_tokens=max_tokens, stop=list(stop or []))
        out = []
        for p in prompts:
            got = self.fn(p, n=n, **kw)
            if isinstance(got, str):
                texts = [got, *(self.fn(p, n=n, **kw) for _ in range(n - 1))]
            else:
                texts = list(got)
            if len(texts) != n or not all(isinstance(t, str) for t in texts):
                raise ConfigError(f"sampler callable must return {n} strings (or one str), got {got!r:.80}")
            out.append(_cut(texts, stop))
        return out


# --- OpenAI-compatible HTTP ----------------------------------------------------------------------------------------
class OpenAISampler(Sampler):
    """Any OpenAI-compatible server, over `harness.llm.OpenAIClient` (which retries on 429/5xx/network); prompts
    run `concurrency` at a time. Chat mode sends each prompt as one user message."""

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        chat: bool = False,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        concurrency: int = 4,
        backoff_s: float = 0.5,
    ) -> None:
        self.client = OpenAIClient(model, base_url, api_key, timeout_s=timeout_s, max_retries=max_retries,
                                   backoff_s=backoff_s)
        self.chat = chat
        self.concurrency = max(1, concurrency)

    @property
    def model(self) -> str:
        return self.client.model

    @property
    def base_url(self) -> str:
        return self.client.base_url

    @property
    def url(self) -> str:
        return self.client.url(self.chat)

    def _one_prompt(self, prompt: str, n: int, params: dict[str, Any]) -> list[str]:
        texts: list[str] = []
        while len(texts) < n:  # some servers (llama.cpp) ignore n: ask again for the rest
            if self.chat:
                r = self.client.chat([{"role": "user", "content": prompt}], n=n - len(texts), **params)
            else:
                r = self.client.complete(prompt, n=n - len(texts), **params)
            texts += r.texts
        return texts[:n]

    def generate(self, prompts, n=1, temperature=0.8, top_p=0.95, max_tokens=512, stop=None):  # noqa: D102
        _check_args(n, temperature, top_p, max_tokens)
        params: dict[str, Any] = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens}
        if stop:
            params["stop"] = list(stop)  # the client sends the API's first four; all of them are applied below
        with ThreadPoolExecutor(self.concurrency) as ex:
            outs = list(ex.map(lambda p: self._one_prompt(p, n, params), prompts))
        return [_cut(o, stop) for o in outs]


# --- Hugging Face --------------------------------------------------------------------------------------------------
class HFSampler(Sampler):
    """A causal LM from a local directory (`from_pretrained(..., local_files_only=True)`: never downloads)."""

    def __init__(self, path: str | Path, device: str | None = None, batch_size: int = 8) -> None:
        try:
            import torch
            import transformers
        except ImportError:
            raise ConfigError("the hf sampler needs transformers; pip install 'autoresearch[hf]'") from None
        p = Path(path)
        if not (p / "config.json").is_file():
            raise DataError(f"no Hugging Face model at {p} (config.json missing); pass hf:/dir/with/config.json")
        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tok = transformers.AutoTokenizer.from_pretrained(p, local_files_only=True, padding_side="left")
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        self.model = transformers.AutoModelForCausalLM.from_pretrained(p, local_files_only=True).to(self.device)
        self.model.eval()
        self.batch_size = max(1, batch_size)

    def generate(self, prompts, n=1, temperature=0.8, top_p=0.95, max_tokens=512, stop=None):  # noqa: D102
        _check_args(n, temperature, top_p, max_tokens)
        out: list[list[str]] = []
        sample = temperature > 0
        for i in range(0, len(prompts), self.batch_size):
            batch = prompts[i : i + self.batch_size]
            enc = self.tok(batch, return_tensors="pt", padding=True).to(self.device)
            with self.torch.no_grad():
                gen = self.model.generate(
                    **enc,
                    do_sample=sample,
                    temperature=temperature if sample else None,
                    top_p=top_p if sample else None,
                    max_new_tokens=max_tokens,
                    num_return_sequences=n,
                    pad_token_id=self.tok.pad_token_id,
                )
            new = gen[:, enc["input_ids"].shape[1] :]
            texts = self.tok.batch_decode(new, skip_special_tokens=True)
            out += [_cut(texts[j * n : (j + 1) * n], stop) for j in range(len(batch))]
        return out


# --- specs ---------------------------------------------------------------------------------------------------------
def _python_factory(spec: str) -> Sampler:
    target = spec.removeprefix("python:")
    mod, _, fn = target.rpartition(":")
    if not mod or not fn:
        raise ConfigError(f"python sampler spec must be python:module:function, got {spec!r}")
    try:
        obj = getattr(importlib.import_module(mod), fn)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"cannot load {mod}:{fn} for sampler {spec!r} ({e}); is the module on PYTHONPATH?") from None
    return obj if isinstance(obj, Sampler) else CallableSampler(obj)


def _openai_factory(spec: str) -> Sampler:
    kind, _, rest = spec.partition(":")
    model, at, url = rest.rpartition("@")
    if not at or not url.startswith(("http://", "https://")):
        model, url = rest, ""  # no @URL: the model name may itself contain '@' or ':' (ollama "llama3:8b")
    if not model:
        raise ConfigError(f"openai sampler spec must be {kind}:MODEL[@http://host:port/v1], got {spec!r}")
    return OpenAISampler(model, base_url=url or None, chat=kind == "openai-chat")


_FACTORIES: dict[str, Callable[[str], Sampler]] = {
    "hf:": lambda spec: HFSampler(spec.removeprefix("hf:")),
    "openai:": _openai_factory,
    "openai-chat:": _openai_factory,
    "python:": _python_factory,
}


def register_sampler_factory(prefix: str, factory: Callable[[str], Sampler]) -> None:
    """Make `get_sampler` build specs starting with `prefix` via `factory(spec)` (the full spec is passed)."""
    if not prefix:
        raise ConfigError("sampler prefix must be non-empty, e.g. 'exp-'")
    _FACTORIES[prefix] = factory


def sampler_prefixes() -> list[str]:
    return sorted(_FACTORIES)


def get_sampler(spec: str) -> Sampler:
    """Build a sampler from a spec string (the longest registered prefix that matches wins)."""
    hits = [p for p in _FACTORIES if spec.startswith(p)]
    if not hits:
        raise ConfigError(
            f"unknown model spec {spec!r}; use one of {', '.join(sampler_prefixes())} "
            "(e.g. openai:MODEL@http://127.0.0.1:8000/v1, hf:/path/to/model, python:mod:fn)"
        )
    return _FACTORIES[max(hits, key=len)](spec)

"""Model-agnostic autoregressive generation (greedy, temperature, top-k, top-p, stop sequences) and a pass@k sampler.

Works for any model with the testbeds' LM API: `model(idx) -> logits [B, T, V]`, and for the KV-cached mode
`model.new_cache(batch_size, max_len)` plus `model(idx, cache=cache)`, which consumes `idx` after the cached tokens
and advances the cache (the codegen HRM and the LM testbed's GPT both have it).

Batching: the model API has no attention mask, so a left-padded row would attend to its pad tokens and differ from
its unbatched run. Instead `generate` groups prompts of equal token length into one batch (no padding at all) and
runs the groups one after another; pass@k sampling, the heavy case, is n samples of the *same* prompt, which is one
full batch. Rows keep decoding until every row of the batch has stopped; a stopped row's later tokens are dropped.

Uncached mode re-runs the whole sequence for every new token (O(T^2) work); it exists for the speed benchmark and as
the reference that the cached mode must reproduce.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from autoresearch.errors import ConfigError

__all__ = ["GenerationResult", "generate", "sample_next", "context_length", "ModelSampler"]


@dataclass
class GenerationResult:
    """Completions of one `generate` call, in prompt order, and the decoding speed."""

    tokens: list[list[int]]
    """Generated ids per prompt, ending before the eot token, or with the token that completed a stop sequence."""
    texts: list[str] | None
    """Decoded completions cut before the first stop sequence (None when no `decode` was given)."""
    finish: list[str]
    """Why each row ended: "eot", "stop" or "length"."""
    decoded_tokens: int = 0
    """Tokens the model produced, counting every row of every step (stopped rows included)."""
    seconds: float = 0.0
    """Wall-clock of prefill + decoding."""
    prompt_truncated: list[bool] = field(default_factory=list)
    """Rows whose prompt was cropped on the left to fit the model's context."""

    @property
    def tokens_per_s(self) -> float:
        return self.decoded_tokens / self.seconds if self.seconds > 0 else 0.0


def context_length(model: nn.Module) -> int | None:
    """The model's context length (`model.cfg.seq_len`, `model.config.seq_len` or `model.seq_len`), if it has one."""
    for owner in (getattr(model, "cfg", None), getattr(model, "config", None), model):
        n = getattr(owner, "seq_len", None)
        if isinstance(n, int) and n > 0:
            return n
    return None


def sample_next(logits: torch.Tensor, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Next token ids [B] from last-position logits [B, V]: argmax when temperature <= 0, else filtered sampling.

    top-k keeps the k largest logits; top-p keeps the smallest set of most likely tokens whose probability mass
    reaches top_p (the most likely token is always kept).
    """
    logits = logits.float()
    if temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs
        sorted_logits = sorted_logits.masked_fill(mass_before >= top_p, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(-1)


def _validate(max_new_tokens: int, temperature: float, top_k: int, top_p: float) -> None:
    if max_new_tokens < 1:
        raise ConfigError(f"`max_new_tokens` must be >= 1, got {max_new_tokens}; use e.g. 128")
    if temperature < 0:
        raise ConfigError(f"`temperature` must be >= 0 (0 = greedy), got {temperature}; use 0 or e.g. 0.8")
    if top_k < 0:
        raise ConfigError(f"`top_k` must be >= 0 (0 = off), got {top_k}; use 0 or e.g. 50")
    if not 0.0 < top_p <= 1.0:
        raise ConfigError(f"`top_p` must be in (0, 1] (1 = off), got {top_p}; use 1.0 or e.g. 0.95")


@torch.no_grad()
def generate(model: nn.Module, prompts: Sequence[Sequence[int]], *, max_new_tokens: int, temperature: float = 0.0,
             top_k: int = 0, top_p: float = 1.0, stop: Sequence[str] = (), eot_id: int | None = None,
             decode: Callable[[list[int]], str] | None = None, use_cache: bool = True,
             generator: torch.Generator | None = None) -> GenerationResult:
    """Continue each prompt (token ids) by up to `max_new_tokens`; see the module docstring for batching."""
    _validate(max_new_tokens, temperature, top_k, top_p)
    stop = [s for s in stop if s]
    if stop and decode is None:
        raise ConfigError(f"stop sequences {stop!r} need a `decode` function to check the text; pass tokenizer.decode")
    if any(len(p) == 0 for p in prompts):
        raise ConfigError("every prompt must have at least one token, got an empty one; start it with e.g. eot_id")
    ctx = context_length(model)
    if ctx is not None and max_new_tokens >= ctx:
        raise ConfigError(f"`max_new_tokens` must be < the model's context {ctx}, got {max_new_tokens}; lower it")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    n = len(prompts)
    out_tokens: list[list[int]] = [[] for _ in range(n)]
    texts: list[str] | None = [""] * n if decode is not None else None
    finish = ["length"] * n
    truncated = [False] * n
    decoded = 0
    t0 = time.perf_counter()
    try:
        groups: dict[int, list[int]] = {}
        for i, p in enumerate(prompts):
            keep = len(p) if ctx is None else min(len(p), ctx - max_new_tokens)
            truncated[i] = keep < len(p)
            groups.setdefault(keep, []).append(i)
        for keep, rows in groups.items():
            batch = torch.tensor([list(prompts[i])[len(prompts[i]) - keep:] for i in rows], device=device)
            res = _generate_batch(model, batch, max_new_tokens, temperature, top_k, top_p, stop, eot_id, decode,
                                  use_cache, generator)
            for j, i in enumerate(rows):
                out_tokens[i], finish[i] = res[0][j], res[2][j]
                if texts is not None:
                    texts[i] = res[1][j]
            decoded += res[3]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    finally:
        model.train(was_training)
    return GenerationResult(out_tokens, texts, finish, decoded, time.perf_counter() - t0, truncated)


def _generate_batch(model: nn.Module, prompt: torch.Tensor, max_new: int, temperature: float, top_k: int,
                    top_p: float, stop: list[str], eot_id: int | None, decode: Callable[[list[int]], str] | None,
                    use_cache: bool, generator: torch.Generator | None
                    ) -> tuple[list[list[int]], list[str], list[str], int]:
    B, P = prompt.shape
    cache: Any = model.new_cache(B, P + max_new) if use_cache else None  # type: ignore[operator]
    seq = prompt
    logits = (model(prompt, cache=cache) if use_cache else model(prompt))[:, -1]
    tokens: list[list[int]] = [[] for _ in range(B)]
    texts = [""] * B
    finish = ["length"] * B
    done = [False] * B
    longest_stop = max((len(s) for s in stop), default=0)
    steps = 0
    for _ in range(max_new):
        nxt = sample_next(logits, temperature, top_k, top_p, generator)
        steps += 1
        for b, tok in enumerate(nxt.tolist()):
            if done[b]:
                continue
            if eot_id is not None and tok == eot_id:
                done[b], finish[b] = True, "eot"
                continue
            tokens[b].append(tok)
            if decode is None:
                continue
            old_len = len(texts[b])
            texts[b] = decode(tokens[b])
            if stop:
                # Only text that this token added (plus an overlap for a stop spanning tokens) can hold a new stop.
                start = max(0, old_len - longest_stop)
                hits = [i for i in (texts[b].find(s, start) for s in stop) if i >= 0]
                if hits:
                    texts[b] = texts[b][: min(hits)]
                    done[b], finish[b] = True, "stop"
        if all(done) or steps == max_new:
            break
        if use_cache:
            logits = model(nxt[:, None], cache=cache)[:, -1]
        else:
            seq = torch.cat([seq, nxt[:, None]], dim=1)
            logits = model(seq)[:, -1]
    return tokens, texts, finish, steps * B


class ModelSampler:
    """pass@k sampling from a local model: the harness's `Sampler` shape, by duck typing.

    `generate(prompts, n, temperature, top_p, max_tokens, stop)` returns n completions per prompt, each cut before
    its first stop sequence and at the tokenizer's eot. The n samples of one prompt decode as one batch (chunks of
    `batch_size`); greedy decoding (temperature 0) runs once and repeats the result n times. Each prompt's random
    stream is seeded from (seed, prompt text), so its samples do not depend on the other prompts or their order (they
do depend on `batch_size`, which sets how the stream is split into batches).
    """

    def __init__(self, model: nn.Module, tokenizer: Any, *, batch_size: int = 16, top_k: int = 0,
                 use_cache: bool = True, seed: int = 0) -> None:
        if batch_size < 1:
            raise ConfigError(f"`batch_size` must be >= 1, got {batch_size}; use e.g. 16")
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.top_k, self.use_cache, self.seed = batch_size, top_k, use_cache, seed
        self.decoded_tokens = 0
        self.seconds = 0.0

    @property
    def tokens_per_s(self) -> float:
        """Decoding throughput over every call so far."""
        return self.decoded_tokens / self.seconds if self.seconds > 0 else 0.0

    def generate(self, prompts: Sequence[str], n: int, temperature: float, top_p: float, max_tokens: int,
                 stop: Sequence[str] | None = None) -> list[list[str]]:
        if n < 1:
            raise ConfigError(f"`n` (samples per prompt) must be >= 1, got {n}; use e.g. 10")
        device = next(self.model.parameters()).device
        eot_id = getattr(self.tokenizer, "eot_id", None)
        out: list[list[str]] = []
        for prompt in prompts:
            ids = self.tokenizer.encode(prompt) or ([eot_id] if eot_id is not None else [])
            gen = torch.Generator(device=device)
            gen.manual_seed(self.seed * 1_000_003 + zlib.crc32(prompt.encode()))
            rows = 1 if temperature <= 0 else n
            texts: list[str] = []
            while len(texts) < rows:
                chunk = min(self.batch_size, rows - len(texts))
                res = generate(self.model, [ids] * chunk, max_new_tokens=max_tokens, temperature=temperature,
                               top_k=self.top_k, top_p=top_p, stop=list(stop or ()), eot_id=eot_id,
                               decode=self.tokenizer.decode, use_cache=self.use_cache, generator=gen)
                texts.extend(res.texts or [])
                self.decoded_tokens += res.decoded_tokens
                self.seconds += res.seconds
            out.append(texts * n if temperature <= 0 else texts)
        return out

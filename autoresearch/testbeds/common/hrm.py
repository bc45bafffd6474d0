"""Causal HRM (Hierarchical Reasoning Model) language model with an exact per-module-call KV cache.

Two transformer stacks share one token stream: L (fast) and H (slow). One forward runs, for each of `h_cycles` outer
cycles, the L stack `l_cycles` times and then the H stack once, with input injection as in sapientinc/HRM:

    z_L <- L(z_L + z_H + x)      (l_cycles times)
    z_H <- H(z_H + z_L)          (once per H cycle)
    logits = head(z_H)

`x` is the scaled token embedding and z_H, z_L start from fixed random vectors (HRM's `H_init`/`L_init` buffers).
Every stack is causal: position t of a call's output depends only on positions <= t of its input, so the whole
recurrence is causal and a next-token LM.

Gradients (`grad_mode`): HRM's "one-step gradient" runs every module call except the final L and H call under
`torch.no_grad()` (the earlier states enter as constants); `last_k` keeps the last k calls in the graph (truncated
backprop through time over module calls); `full` backpropagates through all of them. Every parameter still gets a
gradient in every mode, because the final L and H calls use all the weights of both stacks and the embedding.

KV cache: each module call runs its stack on a different input, so each (module call, layer) pair has its own keys
and values. One forward makes h_cycles x (l_cycles + 1) module calls (h_cycles x l_cycles L calls plus h_cycles H
calls) of `layers_per_stack` blocks each, hence `layers_per_stack x h_cycles x (l_cycles + 1)` cache slots (e.g.
4 x 2 x 3 = 24 for the official 4-block stacks at 2x2 cycles), slot = call_index x layers_per_stack + layer.
The cache is the GPT's `KVCache` (testbeds/common/gpt.py) with one slot per (module call, layer).
Decoding one token runs all module calls on that token only, each attending to its own slot's past keys/values:
that is exactly what the uncached forward computes for the last position, so cached logits equal uncached ones up
to float rounding (tested to 1e-5 in fp32).

What is left out of the official HRM, and why:
- ACT (adaptive computation time: Q-head halting, carried z across segments) — the carry makes a sequence's state
  depend on how many segments earlier positions ran, and per-sequence halting cannot be applied per token in a
  causal LM whose every position must be computed in one pass; HRM-Text dropped it for the same reason.
- Puzzle embeddings — per-puzzle-id prefix tokens memorise individual training puzzles; code generation has no
  puzzle ids and a held-out task has no learned embedding.
- Non-causal attention and FlashAttention-only kernels — replaced by causal `scaled_dot_product_attention` (any
  device, CPU included).

Differences from the official designs (no `transformers` here to compare logits against, so they are listed):
- sapientinc/HRM: post-norm blocks; here pre-norm RMSNorm blocks, and each stack ends with an RMSNorm (as
  HRM-Text's `HrmTextStack.final_norm`), which keeps z_H, z_L at unit scale across the recurrence and makes the H
  stack's final norm the model's final norm.
- HRM-Text (`HrmTextForCausalLM`): it starts z_H from the embedding and z_L from zeros and injects no x into L;
  here L gets z_H + x as in HRM (DESIGN.md §4). It also has a per-head sigmoid gate on the attention output,
  a learned embedding scale, a prefix-LM mask and per-H-cycle `L_bp_cycles` gradient routing; here none of those
  (plain MHA, fixed embedding scale 1/init_std, causal everywhere, gradients by the last k module calls).
- RMSNorms have no gain (as in both official codes), attention is MHA without QK-norm, linear layers have no bias.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from autoresearch.errors import ConfigError
from autoresearch.testbeds.common.gpt import KVCache
from autoresearch.testbeds.common.hrm_config import HRMConfig

__all__ = ["HRM"]


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x1, x2) of the two halves of the head dim (GPT-NeoX / Llama layout)."""
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)  # under autocast q/k are bf16 while the tables are fp32
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


class _Attention(nn.Module):
    def __init__(self, cfg: HRMConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, d, bias=False)
        self.o = nn.Linear(d, d, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None,
                slot: int) -> torch.Tensor:
        B, T, D = x.shape
        q = self.q(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        v = self.v(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        q, k = _rope(q, cos, sin), _rope(k, cos, sin)
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            pos, end = cache.pos, cache.pos + T
            k_all, v_all = cache.update(slot, k.detach(), v.detach())  # stored detached: inference only
            k_all, v_all = k_all.to(q.dtype), v_all.to(q.dtype)
            if T == 1:  # one new token sees every cached position
                y = F.scaled_dot_product_attention(q, k_all, v_all)
            elif pos == 0:
                y = F.scaled_dot_product_attention(q, k_all, v_all, is_causal=True)
            else:  # a chunk after a prefix: query i sees keys 0..pos+i (SDPA's is_causal is top-left aligned)
                mask = torch.arange(end, device=x.device)[None, :] <= (pos + torch.arange(T, device=x.device))[:, None]
                y = F.scaled_dot_product_attention(q, k_all, v_all, attn_mask=mask)
        return self.o(y.transpose(1, 2).reshape(B, T, D))


class _SwiGLU(nn.Module):
    def __init__(self, cfg: HRMConfig) -> None:
        super().__init__()
        self.gate = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.up = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.down = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


def _norm(x: torch.Tensor) -> torch.Tensor:
    return F.rms_norm(x, (x.shape[-1],), eps=1e-6)


class _Block(nn.Module):
    def __init__(self, cfg: HRMConfig) -> None:
        super().__init__()
        self.attn = _Attention(cfg)
        self.mlp = _SwiGLU(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None,
                slot: int) -> torch.Tensor:
        x = x + self.attn(_norm(x), cos, sin, cache, slot)
        return x + self.mlp(_norm(x))


class _Stack(nn.Module):
    """`layers_per_stack` pre-norm blocks and an output RMSNorm (HRM-Text's stack final norm)."""

    def __init__(self, cfg: HRMConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(_Block(cfg) for _ in range(cfg.layers_per_stack))

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None,
                call: int) -> torch.Tensor:
        first_slot = call * len(self.layers)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, cache, first_slot + i)
        return _norm(x)


class HRM(nn.Module):
    """Causal HRM LM: `forward(idx, targets=None, *, cache=None)` -> logits [B, T, V] or mean CE (ignore -100)."""

    def __init__(self, cfg: HRMConfig, vocab_size: int) -> None:
        super().__init__()
        if vocab_size <= 0:
            raise ConfigError(f"`vocab_size` must be > 0, got {vocab_size}; pass the tokenizer's vocab_size")
        self.cfg = cfg
        self.vocab_size = vocab_size
        d = cfg.d_model
        self.embed = nn.Embedding(vocab_size, d)
        # Embedding weights start at std init_std (small, as the tied head needs); the scale 1/init_std puts the
        # injected x at unit RMS, the scale of the normalised states z_H, z_L (HRM-Text: embedding_scale = 1/init).
        self.embed_scale = 1.0 / cfg.init_std
        self.L_stack = _Stack(cfg)
        self.H_stack = _Stack(cfg)
        self.head = None if cfg.tie_embeddings else nn.Linear(d, vocab_size, bias=False)
        # HRM's fixed initial states (truncated normal, std 1), saved with the model but never trained.
        self.register_buffer("z_H_init", nn.init.trunc_normal_(torch.empty(d), std=1.0, a=-2.0, b=2.0))
        self.register_buffer("z_L_init", nn.init.trunc_normal_(torch.empty(d), std=1.0, a=-2.0, b=2.0))
        half = cfg.head_dim // 2
        inv_freq = 1.0 / (cfg.rope_base ** (torch.arange(half, dtype=torch.float64) / half))
        self.register_buffer("inv_freq", inv_freq.float(), persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, mean=0.0, std=self.cfg.init_std)

    # --- API shared with the LM testbed's GPT ------------------------------------------------------------------

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, *,
                cache: KVCache | None = None) -> torch.Tensor:
        cfg = self.cfg
        B, T = idx.shape
        pos = 0
        if cache is not None:
            if cache.batch_size != B or cache.pos + T > cache.max_len:
                raise ConfigError(
                    f"KV cache holds batch {cache.batch_size} x {cache.max_len} tokens, got batch {B} with "
                    f"{cache.pos} + {T} tokens; make the cache with new_cache(batch_size={B}, max_len>={cache.pos + T})"
                )
            pos = cache.pos
        x = self.embed(idx) * self.embed_scale
        cos, sin = self._rope_tables(pos, T, x.dtype)
        z_H, z_L = self.z_H_init.to(x.dtype), self.z_L_init.to(x.dtype)
        first_grad = cfg.n_calls - cfg.n_grad_calls
        call = 0
        for _ in range(cfg.h_cycles):
            for _ in range(cfg.l_cycles):
                with nullcontext() if call >= first_grad else torch.no_grad():
                    z_L = self.L_stack(z_L + z_H + x, cos, sin, cache, call)
                call += 1
            with nullcontext() if call >= first_grad else torch.no_grad():
                z_H = self.H_stack(z_H + z_L, cos, sin, cache, call)
            call += 1
        if cache is not None:
            cache.advance(T)
        logits = F.linear(z_H, self.embed.weight) if self.head is None else self.head(z_H)
        if targets is None:
            return logits
        return F.cross_entropy(logits.float().reshape(-1, self.vocab_size), targets.reshape(-1), ignore_index=-100)

    def new_cache(self, batch_size: int, max_len: int, *, dtype: torch.dtype | None = None) -> KVCache:
        """An empty KV cache for `batch_size` sequences of up to `max_len` tokens (prompt + generated)."""
        p = self.embed.weight
        return KVCache(self.cfg.cache_slots, batch_size, max_len, self.cfg.n_heads, self.cfg.head_dim,
                       device=p.device, dtype=dtype or p.dtype)

    def num_params(self) -> int:
        """Trainable parameters, the tied embedding counted once (the z_H/z_L init buffers are not parameters)."""
        return sum(p.numel() for p in self.parameters())

    def param_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(2-D hidden weights of the stacks for Muon, everything else — embedding, untied head — for AdamW)."""
        hidden = [p for n, p in self.named_parameters() if p.ndim == 2 and n.startswith(("L_stack.", "H_stack."))]
        ids = {id(p) for p in hidden}
        return hidden, [p for p in self.parameters() if id(p) not in ids]

    def flops_per_token(self, seq_len: int | None = None, *, training: bool = True) -> float:
        """FLOPs per token: forward through every module call, backward (2x) only through the grad-carrying calls.

        Per block evaluation the forward costs 2 x its matmul params + 4 x d_model x seq_len of attention
        (nanoGPT/PaLM convention, DESIGN.md §3); the output head costs 2 x vocab x d_model forward.
        """
        cfg = self.cfg
        T = seq_len or cfg.seq_len
        block_params = 4 * cfg.d_model**2 + 3 * cfg.d_model * cfg.d_ff
        block_fwd = 2 * block_params + 4 * cfg.d_model * T
        head_fwd = 2 * self.vocab_size * cfg.d_model
        fwd = cfg.n_calls * cfg.layers_per_stack * block_fwd + head_fwd
        if not training:
            return float(fwd)
        return float(fwd + 2 * (cfg.n_grad_calls * cfg.layers_per_stack * block_fwd + head_fwd))

    # --- internals -----------------------------------------------------------------------------------------------

    def _rope_tables(self, start: int, length: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        # Computed per call from absolute positions, so a cached step at position p uses bit-identical angles to
        # the uncached forward at p (the cached == uncached test relies on it).
        t = torch.arange(start, start + length, device=self.inv_freq.device, dtype=self.inv_freq.dtype)
        ang = torch.outer(t, self.inv_freq)
        return ang.cos().to(dtype), ang.sin().to(dtype)

"""The GPT shared by the testbeds (DESIGN.md §3 anchor: 5-dollar-llm `MinimalLLM`) and its KV cache.

The LM testbed trains it; the codegen testbed uses it as the parameter-matched baseline of HRM.

Pre-norm blocks (RMSNorm), grouped-query attention with QK-norm then RoPE, SDPA causal attention, squared-ReLU MLP,
no biases, normal(0, 0.02) init, a final norm and an output head tied to the token embedding. As in the anchor, the
token embedding is multiplied by sqrt(d_model) on the way in (it is initialised at std 0.02, so the residual stream
starts at rms ~0.45 for d=512 instead of 0.02).

`KVCache` holds preallocated keys/values per cache slot (one slot per attention call per token; for this GPT, one per
layer) and the number of positions already filled; decoding with it is exact, i.e. gives the logits of a full forward.
The building blocks (`Attention`, `Block`, `MLP`, `Rotary`, `make_norm`) are public so that other models of the
testbeds (e.g. HRM) reuse them with their own slot numbering.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from autoresearch.testbeds.common.config import ModelConfig

__all__ = ["GPT", "KVCache", "Block", "Attention", "MLP", "Rotary", "RMSNorm", "make_norm"]


class KVCache:
    """Preallocated keys/values [n_slots, B, n_kv_heads, max_len, head_dim] and the count `pos` of filled positions.

    A forward with the cache writes its T new positions at [pos, pos + T) of every slot it touches, attends over
    [0, pos + T) and the caller (`GPT.forward`) then calls `advance(T)`.
    """

    def __init__(self, n_slots: int, batch_size: int, max_len: int, n_kv_heads: int, head_dim: int, *,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> None:
        shape = (n_slots, batch_size, n_kv_heads, max_len, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.max_len = max_len
        self.batch_size = batch_size
        self.pos = 0

    def update(self, slot: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v [B, n_kv_heads, T, head_dim] at the current position; return all keys/values so far."""
        t = k.shape[2]
        end = self.pos + t
        if end > self.max_len:
            raise ValueError(f"KV cache holds max_len={self.max_len} positions, got {end}; make a larger cache "
                             f"with new_cache(batch_size, max_len={end})")
        self.k[slot, :, :, self.pos:end] = k
        self.v[slot, :, :, self.pos:end] = v
        return self.k[slot, :, :, :end], self.v[slot, :, :, :end]

    def advance(self, n: int) -> None:
        self.pos += n

    def reset(self) -> None:
        self.pos = 0


class RMSNorm(nn.RMSNorm):
    """`nn.RMSNorm` (default eps, as the anchor) whose gain follows the input dtype.

    Under bf16 autocast the q/k projections come out in bf16 while the gain is fp32; torch then leaves its fused
    kernel for a slow path (and warns), so the gain is cast instead.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = None if self.weight is None else self.weight.to(x.dtype)
        return F.rms_norm(x, self.normalized_shape, w, self.eps)


def make_norm(kind: str, dim: int) -> nn.Module:
    """RMSNorm or LayerNorm without bias; both keep a learnable gain."""
    if kind == "rmsnorm":
        return RMSNorm(dim)
    if kind == "layernorm":
        return nn.LayerNorm(dim, bias=False)
    raise ValueError(f"unknown norm {kind!r}; use rmsnorm or layernorm")


class Rotary(nn.Module):
    """RoPE (Su et al. 2021) in the half-split layout; cos/sin tables grow on demand past `max_len`."""

    def __init__(self, head_dim: int, max_len: int, base: float) -> None:
        super().__init__()
        self.head_dim, self.base = head_dim, base
        self.register_buffer("cos", torch.empty(0), persistent=False)
        self.register_buffer("sin", torch.empty(0), persistent=False)
        self._build(max_len, None)

    def _build(self, n: int, device: torch.device | None) -> None:
        inv = 1.0 / (self.base ** (torch.arange(0, self.head_dim, 2, dtype=torch.float64, device=device) / self.head_dim))
        ang = torch.outer(torch.arange(n, dtype=torch.float64, device=device), inv)
        self.cos, self.sin = ang.cos().float(), ang.sin().float()

    def forward(self, x: torch.Tensor, pos: int = 0) -> torch.Tensor:
        """Rotate x [B, H, T, head_dim] as positions pos .. pos + T - 1."""
        t = x.shape[2]
        if pos + t > self.cos.shape[0]:
            self._build(max(pos + t, 2 * self.cos.shape[0]), self.cos.device)
        cos = self.cos[pos:pos + t].to(x.dtype)
        sin = self.sin[pos:pos + t].to(x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class Attention(nn.Module):
    """Grouped-query causal self-attention: q/k/v/o projections without bias, QK-norm then RoPE, SDPA."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads = cfg.n_heads, cfg.n_kv_heads
        self.head_dim = cfg.d_model // cfg.n_heads
        self.q_proj = nn.Linear(cfg.d_model, self.n_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.d_model, self.n_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.d_model, self.n_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, cfg.d_model, bias=False)
        self.q_norm = make_norm(cfg.norm, self.head_dim) if cfg.qk_norm else None
        self.k_norm = make_norm(cfg.norm, self.head_dim) if cfg.qk_norm else None

    def forward(self, x: torch.Tensor, rope: Rotary, cache: KVCache | None = None, slot: int = 0) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim)
        k = self.k_proj(x).view(b, t, self.n_kv_heads, self.head_dim)
        v = self.v_proj(x).view(b, t, self.n_kv_heads, self.head_dim)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        pos = cache.pos if cache is not None else 0
        v = v.transpose(1, 2)
        # autocast may run the norms in fp32 (LayerNorm) while v stays bf16; SDPA needs one dtype
        q = rope(q.transpose(1, 2), pos).to(v.dtype)
        k = rope(k.transpose(1, 2), pos).to(v.dtype)
        mask, causal = None, True
        if cache is not None:
            k, v = cache.update(slot, k.to(cache.k.dtype), v.to(cache.v.dtype))
            k, v = k.to(q.dtype), v.to(q.dtype)
            if t == 1:
                causal = False  # one new query attends to every cached position
            elif pos > 0:
                # SDPA's is_causal aligns the mask top-left when T_q != T_k; new query i sits at absolute pos + i
                mask = torch.ones(t, pos + t, dtype=torch.bool, device=x.device).tril(diagonal=pos)
                causal = False
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           enable_gqa=self.n_kv_heads != self.n_heads)
        return self.o_proj(y.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim))


class MLP(nn.Module):
    """Squared ReLU (Primer, So et al. 2021; the anchor's), SwiGLU (Shazeer 2020) or GELU; no biases."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.kind = cfg.mlp
        self.up = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.gate = nn.Linear(cfg.d_model, cfg.d_ff, bias=False) if cfg.mlp == "swiglu" else None
        self.down = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)
        if cfg.mlp not in ("relu2", "swiglu", "gelu"):
            raise ValueError(f"unknown mlp {cfg.mlp!r}; use relu2, swiglu or gelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up(x)
        if self.kind == "relu2":
            h = F.relu(h).square()
        elif self.kind == "swiglu":
            h = F.silu(self.gate(x)) * h
        else:
            h = F.gelu(h)
        return self.down(h)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.norm1 = make_norm(cfg.norm, cfg.d_model)
        self.attn = Attention(cfg)
        self.norm2 = make_norm(cfg.norm, cfg.d_model)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, rope: Rotary, cache: KVCache | None = None, slot: int = 0) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), rope, cache, slot)
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
    """Decoder-only transformer; `forward` returns float logits [B, T, V], or the mean CE when given targets."""

    def __init__(self, cfg: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.cfg, self.vocab_size = cfg, vocab_size
        self.head_dim = cfg.d_model // cfg.n_heads
        self.embed = nn.Embedding(vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = make_norm(cfg.norm, cfg.d_model)
        self.head = None if cfg.tie_embeddings else nn.Linear(cfg.d_model, vocab_size, bias=False)
        self.rope = Rotary(self.head_dim, cfg.seq_len, cfg.rope_base)
        self.emb_scale = math.sqrt(cfg.d_model)
        self.apply(self._init_weights)

    def _init_weights(self, m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=self.cfg.init_std)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, *,
                cache: KVCache | None = None) -> torch.Tensor:
        x = self.embed(idx) * self.emb_scale
        for i, block in enumerate(self.blocks):
            x = block(x, self.rope, cache, i)
        if cache is not None:
            cache.advance(idx.shape[1])
        x = self.norm(x)
        logits = (F.linear(x, self.embed.weight) if self.head is None else self.head(x)).float()
        if targets is None:
            return logits
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)

    def param_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(Muon: the 2-D weights inside blocks; AdamW: embedding, untied head, norm gains), each parameter once."""
        muon = [p for p in self.blocks.parameters() if p.ndim == 2]
        seen = {id(p) for p in muon}
        adamw = [p for p in self.parameters() if id(p) not in seen]
        return muon, adamw

    def num_params(self, non_embedding: bool = False) -> int:
        """Unique parameters (a tied head counts once); `non_embedding` leaves out the token embedding."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.embed.weight.numel() if non_embedding else n

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token, 6*N_matmul + 12*L*H*Q*T (PaLM appendix B; nanoGPT's estimate_mfu).

        N_matmul counts every weight used in a matmul: the blocks' 2-D weights and the output head (tied or not, the
        head is a d x V matmul); the embedding lookup and norm gains are not matmuls.
        """
        t = self.cfg.seq_len if seq_len is None else seq_len
        n_matmul = sum(p.numel() for p in self.blocks.parameters() if p.ndim == 2) + self.vocab_size * self.cfg.d_model
        return 6.0 * n_matmul + 12.0 * self.cfg.n_layers * self.cfg.n_heads * self.head_dim * t

    def new_cache(self, batch_size: int, max_len: int, *, dtype: torch.dtype | None = None) -> KVCache:
        """An empty cache for `batch_size` sequences of up to `max_len` tokens, on the model's device."""
        w = self.embed.weight
        return KVCache(self.cfg.n_layers, batch_size, max_len, self.cfg.n_kv_heads, self.head_dim,
                       device=w.device, dtype=dtype or w.dtype)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, *, temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Append `max_new_tokens` sampled tokens to idx [B, T] with a KV cache (temperature 0 = greedy)."""
        cache = self.new_cache(idx.shape[0], idx.shape[1] + max_new_tokens)
        logits = self(idx, cache=cache)[:, -1]
        out = [idx]
        for i in range(max_new_tokens):
            if temperature <= 0:
                nxt = logits.argmax(-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                nxt = torch.multinomial(logits.softmax(-1), 1, generator=generator)
            out.append(nxt)
            if i + 1 < max_new_tokens:
                logits = self(nxt, cache=cache)[:, -1]
        return torch.cat(out, dim=1)

"""Tests of the LM testbed's GPT: shapes, loss, param groups, causality, KV cache, FLOPs, flags, determinism."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from autoresearch.testbeds.common.config import ModelConfig
from autoresearch.testbeds.common.gpt import GPT, KVCache
from autoresearch.testbeds.lm.config import preset

V = 97


def small_cfg(**kw) -> ModelConfig:
    base = dict(d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=64, seq_len=24)
    base.update(kw)
    return ModelConfig(**base)


def make(seed: int = 0, **kw) -> GPT:
    torch.manual_seed(seed)
    return GPT(small_cfg(**kw), V).eval()


def test_shapes_and_loss_match_manual_cross_entropy():
    m = make()
    x = torch.randint(0, V, (3, 24))
    y = torch.randint(0, V, (3, 24))
    logits = m(x)
    assert logits.shape == (3, 24, V) and logits.dtype == torch.float32
    loss = m(x, y)
    assert loss.ndim == 0
    torch.testing.assert_close(loss, F.cross_entropy(logits.reshape(-1, V), y.reshape(-1)))
    y2 = y.clone()
    y2[:, :10] = -100  # ignored targets drop out of the mean
    torch.testing.assert_close(m(x, y2), F.cross_entropy(logits[:, 10:].reshape(-1, V), y[:, 10:].reshape(-1)))


def test_param_groups_partition_every_parameter_once():
    for tie in (True, False):
        m = make(tie_embeddings=tie)
        muon, adamw = m.param_groups()
        ids_m, ids_a = [id(p) for p in muon], [id(p) for p in adamw]
        assert len(set(ids_m)) == len(ids_m) and len(set(ids_a)) == len(ids_a)
        assert not set(ids_m) & set(ids_a)
        assert set(ids_m) | set(ids_a) == {id(p) for p in m.parameters()}
        assert all(p.ndim == 2 for p in muon) and len(muon) == 2 * 6  # q, k, v, o, up, down per block
        assert id(m.embed.weight) in ids_a
        assert (m.head is None) == tie
        if not tie:
            assert id(m.head.weight) in ids_a
        assert all(p.ndim == 1 for p in adamw if p is not m.embed.weight and (m.head is None or p is not m.head.weight))


def _hand_count(c: ModelConfig, vocab: int, tied: bool = True) -> int:
    hd = c.d_model // c.n_heads
    attn = 2 * c.d_model * c.n_heads * hd + 2 * c.d_model * c.n_kv_heads * hd
    mlp = 2 * c.d_model * c.d_ff
    norms = 2 * c.d_model + (2 * hd if c.qk_norm else 0)
    return vocab * c.d_model * (1 if tied else 2) + c.n_layers * (attn + mlp + norms) + c.d_model


def test_num_params_matches_hand_count_and_anchor():
    m = make()
    assert m.num_params() == _hand_count(m.cfg, V)
    assert m.num_params(non_embedding=True) == _hand_count(m.cfg, V) - V * 32
    assert make(tie_embeddings=False).num_params() == _hand_count(small_cfg(), V, tied=False)
    c = preset("5dollar")
    with torch.device("meta"):
        big = GPT(c.model, c.data.vocab_size)
    assert big.num_params() == _hand_count(c.model, 49152)
    assert round(big.num_params() / 1e6, 2) == 88.63  # DESIGN.md §3: the anchor's 88.63M
    muon, adamw = big.param_groups()
    assert round(sum(p.numel() for p in muon) / 1e6, 1) == 63.4
    assert round(sum(p.numel() for p in adamw) / 1e6, 1) == 25.2


def test_flops_per_token_hand_checked():
    torch.manual_seed(0)
    m = GPT(ModelConfig(d_model=16, n_layers=1, n_heads=2, n_kv_heads=1, d_ff=32, seq_len=8), 10)
    # matmul weights: q 16x16, k 16x8, v 16x8, o 16x16, up 16x32, down 32x16, head 10x16 = 1952
    assert m.flops_per_token() == 6 * 1952 + 12 * 1 * 2 * 8 * 8
    assert m.flops_per_token(seq_len=4) == 6 * 1952 + 12 * 1 * 2 * 8 * 4


def test_causal_future_tokens_never_change_past_logits():
    m = make()
    x = torch.randint(0, V, (2, 24))
    base = m(x)
    for t in (0, 7, 23):
        x2 = x.clone()
        x2[:, t] = (x2[:, t] + 1) % V
        out = m(x2)
        torch.testing.assert_close(out[:, :t], base[:, :t], rtol=0, atol=0)
        assert (out[:, t] - base[:, t]).abs().max() > 1e-4


@pytest.mark.parametrize("kw", [{}, {"qk_norm": False, "n_kv_heads": 4}, {"n_kv_heads": 1, "mlp": "swiglu"}])
def test_kv_cache_decoding_equals_full_forward(kw):
    m = make(**kw)
    x = torch.randint(0, V, (3, 20))
    full = m(x)
    cache = m.new_cache(3, 20)
    assert isinstance(cache, KVCache)
    out = [m(x[:, :6], cache=cache)]  # prefill
    for t in range(6, 14):  # 1-token steps
        out.append(m(x[:, t:t + 1], cache=cache))
    out.append(m(x[:, 14:20], cache=cache))  # a multi-token chunk at an offset (explicit mask path)
    assert cache.pos == 20
    torch.testing.assert_close(torch.cat(out, dim=1), full, rtol=0, atol=1e-5)


def test_kv_cache_overflow_and_reset():
    m = make()
    cache = m.new_cache(1, 4)
    m(torch.zeros(1, 4, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="max_len=4"):
        m(torch.zeros(1, 1, dtype=torch.long), cache=cache)
    cache.reset()
    x = torch.randint(0, V, (1, 4))
    torch.testing.assert_close(m(x, cache=cache), m(x), rtol=0, atol=1e-5)


def test_generate_greedy_matches_full_forward_argmax():
    m = make()
    x = torch.randint(0, V, (2, 5))
    got = m.generate(x, 8, temperature=0)
    ref = x
    for _ in range(8):
        ref = torch.cat([ref, m(ref)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(got, ref)
    g = torch.Generator().manual_seed(1)
    sampled = m.generate(x, 4, temperature=1.0, top_k=5, generator=g)
    assert sampled.shape == (2, 9) and torch.equal(sampled[:, :5], x)


def test_positions_past_seq_len_extend_rope():
    m = make()
    x = torch.randint(0, V, (1, 40))  # seq_len is 24
    full = m(x)
    cache = m.new_cache(1, 40)
    out = torch.cat([m(x[:, :30], cache=cache)] + [m(x[:, t:t + 1], cache=cache) for t in range(30, 40)], dim=1)
    torch.testing.assert_close(out, full, rtol=0, atol=1e-5)


FLAGS = list(itertools.product([True, False], ["relu2", "swiglu", "gelu"], ["rmsnorm", "layernorm"], [True, False]))


@pytest.mark.parametrize("qk_norm,mlp,norm,tie", FLAGS)
def test_every_flag_builds_trains_and_caches(qk_norm, mlp, norm, tie):
    m = make(qk_norm=qk_norm, mlp=mlp, norm=norm, tie_embeddings=tie).train()
    x = torch.randint(0, V, (2, 12))
    loss = m(x, x.roll(-1, 1))
    loss.backward()
    assert math.isfinite(loss.item())
    assert all(p.grad is not None for p in m.parameters())
    muon, adamw = m.param_groups()
    assert len(muon) + len(adamw) == len(list(m.parameters()))
    m.eval()
    with torch.no_grad():
        cache = m.new_cache(2, 12)
        inc = torch.cat([m(x[:, :5], cache=cache)] + [m(x[:, t:t + 1], cache=cache) for t in range(5, 12)], 1)
        torch.testing.assert_close(inc, m(x), rtol=0, atol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert m(x).dtype == torch.float32


def test_flags_off_leave_no_trace_in_the_baseline():
    base = make()
    assert base.head is None and base.blocks[0].attn.q_norm is not None and base.blocks[0].mlp.gate is None
    names = {n for n, _ in base.named_parameters()}
    assert not any("head" in n or "gate" in n for n in names)
    assert make(qk_norm=False).num_params() == base.num_params() - 2 * 2 * 8
    assert make(mlp="swiglu").num_params() == base.num_params() + 2 * 32 * 64


def test_init_is_deterministic_and_follows_std():
    a, b, c = make(seed=3), make(seed=3), make(seed=4)
    for (n, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(p, q), n
    assert not torch.equal(a.embed.weight, c.embed.weight)
    torch.manual_seed(0)
    wide = GPT(small_cfg(d_model=128, n_heads=4, d_ff=256), 512)
    assert abs(wide.embed.weight.std().item() - 0.02) < 1e-3
    assert abs(wide.blocks[0].mlp.up.weight.std().item() - 0.02) < 1e-3
    assert torch.all(wide.blocks[0].norm1.weight == 1)


def test_tiny_model_overfits_a_fixed_batch():
    m = make().train()
    x = torch.randint(0, V, (4, 16))
    y = x.roll(-1, 1)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss = m(x, y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first

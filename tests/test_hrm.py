"""Causal HRM: shapes, causality, exact KV-cached decoding, fp64 gradcheck, truncated-gradient modes, counts."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from autoresearch.errors import ConfigError
from autoresearch.testbeds.codegen.param_match import hrm_param_count
from autoresearch.testbeds.common.hrm import HRM
from autoresearch.testbeds.common.hrm_config import HRM_PRESETS, HRMConfig, hrm_gpu

V = 37


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny models: per-op thread hand-off costs more than it saves (10x slower with 2 threads on a busy 2-core box).
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def small_cfg(**kw) -> HRMConfig:
    # init_std 0.2 (not 0.02) so attention is far from uniform and a leak or cache error shows in the logits.
    base = dict(d_model=32, n_heads=4, layers_per_stack=2, h_cycles=2, l_cycles=2, d_ff=48, seq_len=64, init_std=0.2)
    return HRMConfig(**{**base, **kw})


def model(seed: int = 0, **kw) -> HRM:
    torch.manual_seed(seed)
    return HRM(small_cfg(**kw), V)


def test_output_shape_and_loss():
    m = model()
    idx = torch.randint(0, V, (3, 11))
    logits = m(idx)
    assert logits.shape == (3, 11, V)
    targets = torch.full((3, 11), -100)
    targets[1, 4] = 5
    loss = m(idx, targets)
    assert loss.ndim == 0
    want = torch.nn.functional.cross_entropy(logits[1, 4][None], torch.tensor([5]))
    torch.testing.assert_close(loss, want)


def test_future_tokens_never_change_past_logits():
    m = model().eval()
    idx = torch.randint(0, V, (2, 24))
    cut = 9
    other = idx.clone()
    other[:, cut:] = (idx[:, cut:] + 1 + torch.randint(0, V - 1, (2, 24 - cut))) % V
    with torch.no_grad():
        a, b = m(idx), m(other)
    torch.testing.assert_close(a[:, :cut], b[:, :cut], atol=1e-6, rtol=0)
    assert (a[:, cut:] - b[:, cut:]).abs().max() > 1e-2  # the perturbation is visible where it may be


def test_past_tokens_do_change_later_logits():
    m = model().eval()
    idx = torch.randint(0, V, (1, 16))
    other = idx.clone()
    other[0, 0] = (idx[0, 0] + 1) % V
    with torch.no_grad():
        assert (m(idx)[0, -1] - m(other)[0, -1]).abs().max() > 1e-3  # the last position really attends back


@pytest.mark.parametrize("h_cycles,l_cycles,layers", [(2, 2, 2), (1, 3, 1), (3, 1, 2)])
def test_cached_decoding_matches_uncached(h_cycles, l_cycles, layers):
    m = model(h_cycles=h_cycles, l_cycles=l_cycles, layers_per_stack=layers).eval()
    idx = torch.randint(0, V, (3, 21))
    with torch.no_grad():
        full = m(idx)
        cache = m.new_cache(3, 21)
        parts = [m(idx[:, :6], cache=cache), m(idx[:, 6:10], cache=cache)]  # prefill, then a chunk after a prefix
        parts += [m(idx[:, t : t + 1], cache=cache) for t in range(10, 21)]  # one token at a time
    assert cache.pos == 21
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=0)


def test_cache_has_one_slot_per_module_call_and_layer_and_uses_all():
    cfg = small_cfg(layers_per_stack=3, h_cycles=2, l_cycles=3)
    torch.manual_seed(0)
    m = HRM(cfg, V).eval()
    cache = m.new_cache(2, 8)
    assert cache.k.shape[0] == 3 * 2 * (3 + 1) == cfg.cache_slots
    with torch.no_grad():
        m(torch.randint(0, V, (2, 5)), cache=cache)
    written = cache.k[:, :, :, :5].abs().flatten(1).amax(dim=1)
    assert bool((written > 0).all()), "every (module call, layer) slot must be written: no slot shared or unused"
    assert float(cache.k[:, :, :, 5:].abs().max()) == 0.0


def test_cache_overflow_and_batch_mismatch_raise():
    m = model().eval()
    cache = m.new_cache(2, 4)
    with torch.no_grad(), pytest.raises(ConfigError, match="new_cache"):
        m(torch.zeros(2, 5, dtype=torch.long), cache=cache)
    with torch.no_grad(), pytest.raises(ConfigError, match="batch"):
        m(torch.zeros(3, 1, dtype=torch.long), cache=cache)


def test_gradcheck_fp64_full_backprop():
    torch.manual_seed(0)
    cfg = HRMConfig(d_model=8, n_heads=2, layers_per_stack=1, h_cycles=2, l_cycles=2, d_ff=12, seq_len=8,
                    grad_mode="full", init_std=0.3)
    m = HRM(cfg, 7).double()
    idx = torch.randint(0, 7, (2, 4))
    names = ["embed.weight", "L_stack.layers.0.attn.q.weight", "L_stack.layers.0.mlp.down.weight",
             "H_stack.layers.0.attn.v.weight", "H_stack.layers.0.mlp.gate.weight"]
    params = dict(m.named_parameters())
    leaves = tuple(params[n].detach().clone().requires_grad_(True) for n in names)

    def f(*ws: torch.Tensor) -> torch.Tensor:
        return functional_call(m, {**params, **dict(zip(names, ws))}, (idx,))

    # fast_mode checks a random projection of the Jacobian (same maths, ~50x fewer forwards than the full matrix).
    assert torch.autograd.gradcheck(f, leaves, eps=1e-6, atol=1e-5, fast_mode=True)


def _grads(m: HRM, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    m.zero_grad(set_to_none=True)
    m(idx[:, :-1], idx[:, 1:]).backward()
    return {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("mode,k,want_grad_calls", [("one_step", 2, 2), ("last_k", 3, 3), ("last_k", 1, 1),
                                                    ("full", 2, 6)])
def test_grad_modes_route_gradients_through_last_calls(mode, k, want_grad_calls):
    m = model(grad_mode=mode, grad_last_k=k)
    calls: list[tuple[str, bool]] = []
    for name in ("L_stack", "H_stack"):
        getattr(m, name).register_forward_hook(lambda mod, inp, out, name=name: calls.append((name, out.requires_grad)))
    idx = torch.randint(0, V, (2, 10))
    grads = _grads(m, idx)
    assert [c[0][0] for c in calls] == list("LLHLLH")
    flags = [g for _, g in calls]
    assert flags == [False] * (6 - want_grad_calls) + [True] * want_grad_calls
    if mode == "one_step":
        assert calls[-2:] == [("L_stack", True), ("H_stack", True)]
    if want_grad_calls >= 2:  # the final L and H calls touch every weight: nothing is left without a gradient
        assert set(grads) == {n for n, _ in m.named_parameters()}
        assert all(float(g.abs().max()) > 0 for g in grads.values())


def test_truncated_gradient_differs_from_full_and_last_k_all_equals_full():
    idx = torch.randint(0, V, (2, 10))
    g_one = _grads(model(grad_mode="one_step"), idx)
    g_full = _grads(model(grad_mode="full"), idx)
    g_all = _grads(model(grad_mode="last_k", grad_last_k=6), idx)
    w = "L_stack.layers.0.attn.q.weight"
    assert not torch.allclose(g_one[w], g_full[w], atol=1e-6)
    for n in g_full:
        torch.testing.assert_close(g_all[n], g_full[n])


def test_param_count_and_groups():
    for tie in (True, False):
        cfg = small_cfg(tie_embeddings=tie)
        m = HRM(cfg, V)
        block = 4 * 32 * 32 + 3 * 32 * 48
        assert m.num_params() == 2 * 2 * block + V * 32 * (1 if tie else 2) == hrm_param_count(cfg, V)
        hidden, rest = m.param_groups()
        assert all(p.ndim == 2 for p in hidden) and len(hidden) == 2 * 2 * 7
        assert {id(p) for p in hidden}.isdisjoint({id(p) for p in rest})
        assert {id(p) for p in hidden} | {id(p) for p in rest} == {id(p) for p in m.parameters()}
        assert any(p is m.embed.weight for p in rest)


def test_presets_build_and_flops():
    for name, make in HRM_PRESETS.items():
        cfg = make()
        with torch.device("meta"):
            m = HRM(cfg, 4096)
        assert m.num_params() == hrm_param_count(cfg, 4096), name
        assert m.flops_per_token() > m.flops_per_token(training=False) > 0
    block_params = hrm_param_count(hrm_gpu(), 1) - 512
    assert 26e6 < block_params < 28.5e6  # the official HRM's ~27M params in the blocks (DESIGN.md §4)
    with torch.device("meta"):
        one = HRM(small_cfg(grad_mode="one_step"), V).flops_per_token()
        full = HRM(small_cfg(grad_mode="full"), V).flops_per_token()
    assert one < full


def test_tiny_preset_trains_a_step_in_bf16_autocast():
    torch.manual_seed(0)
    m = HRM(HRM_PRESETS["tiny"](), 300)
    idx = torch.randint(0, 300, (2, 33))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = m(idx[:, :-1], idx[:, 1:])
    loss.backward()
    assert torch.isfinite(loss) and m.embed.weight.grad is not None


def test_config_validation():
    with pytest.raises(ConfigError, match="grad_last_k"):
        HRMConfig(h_cycles=2, l_cycles=2, grad_mode="last_k", grad_last_k=7)
    with pytest.raises(ConfigError, match="head_dim"):
        HRMConfig(d_model=36, n_heads=4)
    with pytest.raises(ConfigError, match="n_heads"):
        HRMConfig(d_model=30, n_heads=4)

"""The causal-LM model protocol (testbeds/common/causal_lm.py): the GPT and the codegen HRM both implement it."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

from autoresearch.testbeds.common.causal_lm import CausalLM, KVCacheLike
from autoresearch.testbeds.common.config import ModelConfig
from autoresearch.testbeds.common.gpt import GPT
from autoresearch.testbeds.common.hrm import HRM
from autoresearch.testbeds.common.hrm_config import HRMConfig

V = 40


def _gpt() -> GPT:
    return GPT(ModelConfig(d_model=16, n_layers=2, n_heads=2, n_kv_heads=1, d_ff=32, seq_len=16), V)


def _hrm() -> HRM:
    return HRM(HRMConfig(d_model=16, n_heads=2, layers_per_stack=1, h_cycles=2, l_cycles=1, d_ff=32, seq_len=16), V)


@pytest.mark.parametrize("make", [_gpt, _hrm], ids=["gpt", "hrm"])
def test_model_implements_the_protocol(make):
    torch.manual_seed(0)
    model = make()
    assert isinstance(model, CausalLM)
    params = inspect.signature(model.forward).parameters
    assert list(params)[:2] == ["idx", "targets"] and params["cache"].kind is inspect.Parameter.KEYWORD_ONLY
    idx = torch.randint(0, V, (2, 6))
    logits = model(idx)
    assert logits.shape == (2, 6, V)
    loss = model(idx, idx)
    assert loss.ndim == 0 and torch.isfinite(loss)
    cache = model.new_cache(2, 8)
    assert isinstance(cache, KVCacheLike) and (cache.pos, cache.batch_size, cache.max_len) == (0, 2, 8)
    stepwise = torch.cat([model(idx[:, :4], cache=cache), model(idx[:, 4:], cache=cache)], dim=1)
    assert cache.pos == 6
    torch.testing.assert_close(stepwise, logits, rtol=1e-4, atol=1e-5)  # cached == full forward
    assert model.num_params() == sum(p.numel() for p in model.parameters())
    assert model.flops_per_token(16) > model.flops_per_token(8) > 0
    muon, adamw = model.param_groups()
    assert {id(p) for p in muon}.isdisjoint(id(p) for p in adamw)
    assert len(muon) + len(adamw) == len(list(model.parameters()))


def test_a_model_without_the_kv_cache_is_not_a_causal_lm():
    class Plain(nn.Module):
        def forward(self, idx, targets=None, *, cache=None):
            return idx

        def num_params(self):
            return 0

        def flops_per_token(self, seq_len=None):
            return 0.0

        def param_groups(self):
            return [], []

    assert not isinstance(Plain(), CausalLM)

"""Freeze utilities of the adversarial trainer: a frozen model gets no gradient and keeps its weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autoresearch.harness.tokenizer import ByteTokenizer
from autoresearch.testbeds.adversarial.freeze import freeze, frozen, is_frozen, reference_copy, unfreeze
from autoresearch.testbeds.adversarial.policy import LMPolicy
from autoresearch.testbeds.common.config import ModelConfig
from autoresearch.testbeds.common.gpt import GPT


def tiny_policy() -> LMPolicy:
    torch.manual_seed(0)
    tok = ByteTokenizer()
    model = GPT(ModelConfig(d_model=32, n_layers=2, n_heads=2, n_kv_heads=2, d_ff=64, seq_len=64), tok.vocab_size)
    return LMPolicy(model, tok, "cpu", max_new_tokens=8)


def loss_through_both(a: nn.Module, b: nn.Module) -> torch.Tensor:
    x = torch.randint(0, 256, (2, 8))
    return a(x).logsumexp(-1).mean() + b(x).logsumexp(-1).mean()


def test_frozen_model_gets_no_grad_and_keeps_its_weights():
    gen, disc = tiny_policy(), tiny_policy()
    # One optimizer over both models (the worst case): the frozen one must still not move.
    opt = torch.optim.AdamW(list(gen.model.parameters()) + list(disc.model.parameters()), lr=1e-2)
    before = {k: v.clone() for k, v in disc.state_dict().items()}
    g_before = {k: v.clone() for k, v in gen.state_dict().items()}
    freeze(disc)
    assert is_frozen(disc) and not is_frozen(gen)
    loss_through_both(gen.model, disc.model).backward()
    assert all(p.grad is None for p in disc.model.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in gen.model.parameters())
    opt.step()
    assert all(torch.equal(v, before[k]) for k, v in disc.state_dict().items())
    assert any(not torch.equal(v, g_before[k]) for k, v in gen.state_dict().items())


def test_freeze_drops_stale_grads():
    pol = tiny_policy()
    loss_through_both(pol.model, pol.model).backward()
    freeze(pol.model)
    opt = torch.optim.SGD(pol.model.parameters(), lr=1.0)
    before = {k: v.clone() for k, v in pol.state_dict().items()}
    opt.step()  # the grads computed before freezing must not be applied
    assert all(torch.equal(v, before[k]) for k, v in pol.state_dict().items())


def test_unfreeze_restores_the_previous_flags():
    m = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    m[0].weight.requires_grad_(False)  # e.g. a LoRA base weight
    freeze(m)
    freeze(m)  # freezing twice keeps the first saved flags
    assert is_frozen(m)
    unfreeze(m)
    assert [p.requires_grad for p in m.parameters()] == [False, True, True, True]
    unfreeze(m)  # never frozen now: everything trainable
    assert all(p.requires_grad for p in m.parameters())


def test_frozen_context_restores_also_on_error():
    pol = tiny_policy()
    with frozen(pol) as same:
        assert same is pol and is_frozen(pol)
        with frozen(pol.model):
            assert is_frozen(pol)
        assert is_frozen(pol)  # the inner block does not unfreeze what the outer one froze
    assert not is_frozen(pol)
    with pytest.raises(RuntimeError), frozen(pol):
        raise RuntimeError("boom")
    assert not is_frozen(pol)


def test_reference_copy_is_frozen_and_independent():
    pol = tiny_policy()
    ref = reference_copy(pol)
    assert is_frozen(ref) and not is_frozen(pol) and ref.model is not pol.model
    assert ref.tokenizer is pol.tokenizer and not ref.model.training
    with torch.no_grad():
        next(pol.model.parameters()).add_(1.0)
    assert not torch.equal(next(pol.model.parameters()), next(ref.model.parameters()))
    s = pol.sample(["ab"], 1)[0]
    lp, _ = ref.sequence_logprobs(s)
    assert not lp.requires_grad


def test_freeze_rejects_other_objects():
    with pytest.raises(TypeError, match="nn.Module"):
        freeze(object())

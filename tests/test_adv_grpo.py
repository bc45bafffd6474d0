"""GRPO pieces of the adversarial testbed: group advantages, the PPO-clip + KL loss, and one real update."""

from __future__ import annotations

import math

import pytest
import torch

from autoresearch.errors import ConfigError
from autoresearch.harness.tokenizer import ByteTokenizer
from autoresearch.testbeds.adversarial.config import RLConfig
from autoresearch.testbeds.adversarial.freeze import reference_copy
from autoresearch.testbeds.adversarial.grpo import group_advantages, grpo_loss, make_rl_optimizer, rl_step
from autoresearch.testbeds.adversarial.policy import LMPolicy, Sample
from autoresearch.testbeds.common.config import ModelConfig
from autoresearch.testbeds.common.gpt import GPT

NAN = math.nan


def tiny_policy(seed: int = 0) -> LMPolicy:
    torch.manual_seed(seed)
    tok = ByteTokenizer()
    model = GPT(ModelConfig(d_model=32, n_layers=2, n_heads=2, n_kv_heads=2, d_ff=64, seq_len=64), tok.vocab_size)
    return LMPolicy(model, tok, "cpu", max_new_tokens=16)


def hand_samples(policy: LMPolicy, answers: list[str], prompt: str = "def f(x):\n") -> list[Sample]:
    ids = policy.encode(prompt)
    return [Sample(prompt, ids, policy.encode(a) + [policy.eot_id], a, False) for a in answers]


def seq_logp(policy: LMPolicy, samples: list[Sample]) -> torch.Tensor:
    with torch.no_grad():
        lp, mask = policy.sequence_logprobs(samples)
    return (lp * mask).sum(dim=1)


# --- advantages ---------------------------------------------------------------------------------------------------


def test_zero_variance_groups_are_dropped():
    adv, keep = group_advantages(torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]))
    assert keep.tolist() == [False, False, True]
    assert torch.all(adv[:2] == 0)
    assert adv[2, 0] > 0 and torch.all(adv[2, 1:] < 0)
    assert abs(float(adv[2].sum())) < 1e-6


def test_nan_means_no_signal_not_zero():
    adv, keep = group_advantages(torch.tensor([[1.0, 0.0, NAN, NAN], [1.0, NAN, NAN, NAN], [NAN] * 4,
                                               [0.5, 0.5, NAN, 0.5]]))
    assert keep.tolist() == [True, False, False, False]
    # The NaN samples neither count in the mean nor get a push: a NaN read as reward 0 would give [+, -, -, -].
    assert adv[0, 2] == 0 and adv[0, 3] == 0
    assert adv[0, 0] > 0 > adv[0, 1]
    assert float(adv[0, 0]) == pytest.approx(-float(adv[0, 1]))
    assert torch.isfinite(adv).all()


def test_advantages_are_group_normalised():
    r = torch.tensor([[3.0, 1.0, 2.0, 2.0], [10.0, 30.0, 20.0, 20.0]])
    adv, keep = group_advantages(r)
    assert keep.all()
    # Per-group normalisation: scaling and shifting a group's rewards does not change its advantages.
    scaled, _ = group_advantages(r[:1] * 10 + 5)
    assert torch.allclose(adv[0], scaled[0], atol=1e-3)
    assert torch.allclose(adv[0].std(), torch.tensor(1.0), atol=1e-3)
    assert torch.allclose(adv[1], torch.tensor([-1.0, 1.0, 0.0, 0.0]) * adv[1, 1], atol=1e-5)


def test_advantages_reject_a_flat_vector():
    with pytest.raises(ConfigError, match="rewards"):
        group_advantages(torch.tensor([1.0, 0.0]))


# --- the loss -----------------------------------------------------------------------------------------------------


def test_loss_and_grads_are_nonzero_for_a_group_with_different_rewards():
    pol = tiny_policy()
    samples = hand_samples(pol, ["return x + 1", "return x - 1", "return 2", "pass"])
    adv, keep = group_advantages(torch.tensor([[1.0, 0.0, 0.0, 0.5]]))
    assert keep.all()
    old, _ = pol.sequence_logprobs(samples)
    logp, mask = pol.sequence_logprobs(samples)
    loss, stats = grpo_loss(logp, old.detach(), None, mask, adv[0], clip_eps=0.2, kl_beta=0.0)
    loss.backward()
    gn = torch.sqrt(sum(p.grad.pow(2).sum() for p in pol.model.parameters() if p.grad is not None))
    assert float(gn) > 1e-4
    # At ratio 1 the surrogate equals -mean(adv), which group normalisation makes 0: the loss VALUE is not the
    # evidence of learning, its gradient is. Off-policy (second PPO pass) the value moves off 0.
    assert abs(stats["loss"]) < 1e-6
    logp2 = logp.detach() + 0.1 * torch.randn_like(logp)
    loss2, _ = grpo_loss(logp2, old.detach(), None, mask, adv[0], clip_eps=0.2, kl_beta=0.0)
    assert abs(float(loss2)) > 1e-4


def test_one_update_raises_the_rewarded_sample_and_lowers_the_penalised_one():
    pol = tiny_policy()
    samples = hand_samples(pol, ["return x + 1", "return x * 7"])
    before = seq_logp(pol, samples)
    adv, keep = group_advantages(torch.tensor([[1.0, 0.0]]))
    rl = RLConfig(lr=1e-3, kl_beta=0.0, ppo_epochs=1)
    stats = rl_step(pol, None, make_rl_optimizer(pol, rl), samples, adv[0], rl)
    after = seq_logp(pol, samples)
    assert stats["updates"] == 1 and stats["skipped"] == 0 and stats["grad_norm"] > 0
    assert stats["ratio_mean"] == 1.0 and stats["clip_frac"] == 0.0  # the first pass is on-policy
    assert after[0] > before[0]
    assert after[1] < before[1]


def test_clip_zeroes_the_gradient_on_the_clipped_side():
    eps = 0.2
    old = torch.zeros(4, 1)
    # ratios 1.5, 0.5, 1.5, 0.5 for advantages +, +, -, -
    logp = torch.tensor([[math.log(1.5)], [math.log(0.5)], [math.log(1.5)], [math.log(0.5)]], requires_grad=True)
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    loss, stats = grpo_loss(logp, old, None, torch.ones(4, 1, dtype=torch.bool), adv, eps, 0.0)
    loss.backward()
    g = logp.grad[:, 0]
    assert g[0] == 0  # ratio above 1+eps, positive advantage: clipped
    assert g[1] != 0  # ratio below 1-eps, positive advantage: the unclipped term is the min
    assert g[2] != 0
    assert g[3] == 0  # ratio below 1-eps, negative advantage: clipped
    assert stats["clip_frac"] == pytest.approx(0.5)
    # Inside [1-eps, 1+eps] nothing is clipped.
    logp_in = torch.tensor([[math.log(1.1)], [math.log(0.9)]], requires_grad=True)
    loss_in, st_in = grpo_loss(logp_in, torch.zeros(2, 1), None, torch.ones(2, 1), torch.tensor([1.0, -1.0]), eps, 0.0)
    loss_in.backward()
    assert torch.all(logp_in.grad != 0) and st_in["clip_frac"] == 0


def test_masked_tokens_do_not_count():
    logp = torch.tensor([[-1.0, -50.0], [-2.0, -3.0]], requires_grad=True)
    mask = torch.tensor([[True, False], [True, True]])
    loss, _ = grpo_loss(logp, logp.detach() - 0.1, None, mask, torch.tensor([1.0, -1.0]), 0.2, 0.0)
    loss.backward()
    assert logp.grad[0, 1] == 0 and logp.grad[0, 0] != 0


def test_kl_is_zero_against_itself_and_positive_after_an_update():
    pol = tiny_policy()
    ref = reference_copy(pol)
    samples = hand_samples(pol, ["return x + 1", "return x * 7", "return 0", "pass"])
    logp, mask = pol.sequence_logprobs(samples)
    ref_lp, _ = ref.sequence_logprobs(samples)
    _, stats = grpo_loss(logp, logp.detach(), ref_lp, mask, torch.zeros(4), 0.2, 0.1)
    assert stats["kl"] == pytest.approx(0.0, abs=1e-7)
    adv, _ = group_advantages(torch.tensor([[1.0, 0.0, 0.0, 1.0]]))
    rl = RLConfig(lr=1e-2, kl_beta=0.1, ppo_epochs=2)
    st = rl_step(pol, ref, make_rl_optimizer(pol, rl), samples, adv[0], rl)
    assert st["updates"] == 2 and st["kl"] > 0  # the second pass sees the moved policy
    logp, mask = pol.sequence_logprobs(samples)
    _, stats = grpo_loss(logp, logp.detach(), ref.sequence_logprobs(samples)[0], mask, torch.zeros(4), 0.2, 0.1)
    assert stats["kl"] > 1e-6


def test_ppo_epochs_move_the_ratio_off_one():
    pol = tiny_policy()
    samples = hand_samples(pol, ["return x + 1", "return x * 7"])
    rl = RLConfig(lr=1e-2, kl_beta=0.0, ppo_epochs=3)
    st = rl_step(pol, None, make_rl_optimizer(pol, rl), samples, [1.0, -1.0], rl)
    assert st["updates"] == 3 and st["ratio_mean"] != pytest.approx(1.0, abs=1e-9)


def test_micro_batches_give_the_same_update():
    samples_adv = ["return x + 1", "return x * 7", "return 0", "pass"], [1.0, -1.0, 0.5, -0.5]
    states = []
    for mb in (0, 1):
        pol = tiny_policy()
        rl = RLConfig(lr=1e-3, kl_beta=0.0)
        torch.manual_seed(1)
        rl_step(pol, None, make_rl_optimizer(pol, rl), hand_samples(pol, samples_adv[0]), samples_adv[1], rl,
                micro_batch=mb)
        states.append(pol.state_dict())
    for k in states[0]:
        assert torch.allclose(states[0][k], states[1][k], atol=1e-6), k


# --- NaN guards ---------------------------------------------------------------------------------------------------


def test_nonfinite_loss_skips_the_step():
    pol = tiny_policy()
    before = {k: v.clone() for k, v in pol.state_dict().items()}
    rl = RLConfig(lr=1e-2, kl_beta=0.0, ppo_epochs=2)
    st = rl_step(pol, None, make_rl_optimizer(pol, rl), hand_samples(pol, ["a", "b"]), [NAN, 1.0], rl)
    assert st["updates"] == 0 and st["skipped"] == 2 and "loss" in st["skip_reasons"]
    for k, v in pol.state_dict().items():
        assert torch.equal(v, before[k])


def test_nonfinite_grad_skips_the_step():
    pol = tiny_policy()
    before = {k: v.clone() for k, v in pol.state_dict().items()}
    pol.model.embed.weight.register_hook(lambda g: g * math.inf)
    rl = RLConfig(lr=1e-2, kl_beta=0.0)
    st = rl_step(pol, None, make_rl_optimizer(pol, rl), hand_samples(pol, ["a", "b"]), [1.0, -1.0], rl)
    assert st["updates"] == 0 and st["skipped"] == 1 and st["skip_reasons"] == ["grad"]
    for k, v in pol.state_dict().items():
        assert torch.equal(v, before[k])


def test_rl_step_checks_its_inputs():
    pol = tiny_policy()
    rl = RLConfig()
    opt = make_rl_optimizer(pol, rl)
    with pytest.raises(ConfigError, match="advantages"):
        rl_step(pol, None, opt, hand_samples(pol, ["a", "b"]), [1.0], rl)
    with pytest.raises(ConfigError, match="no samples"):
        rl_step(pol, None, opt, [], [], rl)

"""The adversarial testbed's check hooks: the forward pass of both roles' models, `reward_sanity` (the sandbox rewards
order the obvious cases right on a real problem) and `rl_update_nonzero` (one GRPO step on the short run's generator
has a non-zero loss and gradient and changes its weights). The other checks are the contract's defaults
(`testbeds/checks.py`; short_training reads the generator SFT phase's loss, `check_loss_phase`)."""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING

import torch

from autoresearch.testbeds.adversarial.config import AdversarialConfig
from autoresearch.testbeds.checks import CheckFailed, ShortRun
from autoresearch.testbeds.checks import forward_pass as check_forward
from autoresearch.testbeds.common.device import resolve_device

if TYPE_CHECKING:
    from autoresearch.testbeds.adversarial.testbed import AdversarialTestbed

__all__ = ["forward_pass", "reward_sanity", "rl_update_nonzero", "CHECKS"]

CHECKS = ("forward_pass", "short_training", "checkpoint_roundtrip", "evaluation_pipeline", "reward_sanity",
          "rl_update_nonzero")


def forward_pass(cfg: AdversarialConfig) -> str:
    """One SFT batch of each role through a fresh model: logits shape, finite loss, gradients everywhere."""
    from autoresearch.testbeds.adversarial.policy import build_model
    from autoresearch.testbeds.adversarial.train import build_data

    if cfg.arch == "hf":
        return "arch=hf: the HF model's forward is the transformers library's (checked by its own tests)"
    device = resolve_device(cfg.train.device)
    data = build_data(cfg, None, validate=False)
    details = []
    for role, sft in (("generator", data.gen_sft), ("discriminator", data.disc_sft)):
        torch.manual_seed(cfg.train.seed)
        model = build_model(cfg, data.tokenizer.vocab_size).to(device)
        x, y = sft.batch(0, 2)
        details.append(check_forward(model, x.to(device), y.to(device), data.tokenizer.vocab_size, f"{role}: "))
    return "; ".join(details)


def reward_sanity(cfg: AdversarialConfig) -> str:
    """On real problems in the sandbox: the reference scores 1.0 on its own (valid) tests, a mutant that breaks a
    hidden test scores below 1, a test the reference fails is invalid and lowers the discriminator's reward, and
    an answer without tests earns 0."""
    from autoresearch.testbeds.adversarial.judge import Judge
    from autoresearch.testbeds.adversarial.mutants import mutants
    from autoresearch.testbeds.adversarial.problems import load_problems
    from autoresearch.testbeds.adversarial.rewards import generator_reward, run_programs, score_group

    with Judge(cfg.reward) as judge:
        problems = load_problems(cfg.data.source, split="heldout", n=min(cfg.eval.heldout_problems, 8),
                                 seed=cfg.data.suite_seed, path=cfg.data.path, validate_with=judge)
        for p in problems:
            muts = mutants(p, 4, seed=cfg.data.suite_seed)
            if not muts or not p.hidden_tests:
                continue
            codes = [p.reference, *muts]
            res = run_programs(judge, [(p, c, p.hidden_tests) for c in codes])
            ones = [True] * len(p.hidden_tests)
            scores = [generator_reward(r, ones) for r in res]
            broken = [m for m, s in zip(muts, scores[1:], strict=True) if s is not None and s < 1.0]
            if not broken:
                continue
            if scores[0] != 1.0:
                raise CheckFailed(f"problem {p.id}: the reference scores {scores[0]} on its own hidden tests, not 1.0")
            valid = p.hidden_tests[0]
            invalid = f"assert not ({valid.strip()[len('assert'):].strip()})"
            g = score_group(judge, p, [broken[0]], [valid, f"{valid}\n{invalid}", ""])
            d_valid, d_invalid, d_empty = g.discriminator_rewards
            if g.valid[1] != [True, False]:
                raise CheckFailed(f"problem {p.id}: validity of [valid, negated] tests is {g.valid[1]}, "
                                  "expected [True, False]")
            if not d_invalid < d_valid:
                raise CheckFailed(f"problem {p.id}: an invalid test did not lower the discriminator reward "
                                  f"({d_invalid:.3f} with it, {d_valid:.3f} without)")
            if d_empty != 0.0:
                raise CheckFailed(f"problem {p.id}: an answer without tests earned {d_empty}, not 0")
            return (f"{p.id} in the sandbox ({judge.level}): reference 1.0, mutant {min(s for s in scores[1:] if s is not None):.2f}; "
                    f"discriminator {d_valid:.3f} for a valid test, {d_invalid:.3f} with an invalid one added, "
                    f"{d_empty:.1f} for no test")
    raise CheckFailed(f"none of {len(problems)} held-out problems has a mutant that fails its hidden tests; "
                      "use more eval.heldout_problems")


def rl_update_nonzero(testbed: AdversarialTestbed, cfg: AdversarialConfig, run: ShortRun) -> str:
    """The short run's generator, one prompt, G samples with one rewarded: group advantages are non-zero, the GRPO
    loss is finite and its gradient non-zero, and the update changes the weights (the seed's update was identically
    zero). The loss value itself is ~0 on the first PPO pass by construction (ratio 1, advantages of mean 0), so the
    gradient is what is checked. Also reports the short run's own RL steps."""
    from autoresearch.testbeds.adversarial.freeze import reference_copy
    from autoresearch.testbeds.adversarial.grpo import group_advantages, make_rl_optimizer, rl_step
    from autoresearch.testbeds.adversarial.problems import load_problems
    from autoresearch.testbeds.adversarial.stages import generator_prompt
    from autoresearch.testbeds.adversarial.train import load_policies

    if run.exp is None or not run.healthy:
        raise CheckFailed("short_training produced no model to update")
    gen, _ = load_policies(cfg, run.exp)
    problem = load_problems(cfg.data.source, split="train", n=1, seed=cfg.data.suite_seed, path=cfg.data.path,
                            validate=False)[0]
    G = max(cfg.rl.group_size, 2)
    torch.manual_seed(cfg.train.seed)
    samples = gen.sample([generator_prompt(problem)], G, temperature=1.0, max_new_tokens=16)[0]
    rewards = torch.zeros((1, G))
    rewards[0, 0] = 1.0
    adv, keep = group_advantages(rewards)
    if not bool(keep[0]) or float(adv.abs().sum()) == 0.0:
        raise CheckFailed(f"a group with one rewarded sample gave advantages {adv.tolist()} (keep {keep.tolist()})")
    before = copy.deepcopy(gen.model.state_dict())
    ref = reference_copy(gen)
    stats = rl_step(gen, ref, make_rl_optimizer(gen, cfg.rl), samples, adv[0].tolist(), cfg.rl)
    if not (math.isfinite(stats["loss"]) and math.isfinite(stats["grad_norm"])) or stats["grad_norm"] == 0.0:
        raise CheckFailed(f"the RL step's loss {stats['loss']} / grad norm {stats['grad_norm']} is zero or not finite")
    changed = sum(int(not torch.equal(before[k], v)) for k, v in gen.model.state_dict().items())
    if not changed:
        raise CheckFailed("one RL step with a rewarded sample left every generator weight unchanged")
    rl_lines = [r for r in run.exp.read_log() if r.get("phase") == "rl"]
    updated = sum(1 for r in rl_lines if r.get("updates", 0) > 0)
    return (f"loss {stats['loss']:.4f}, grad norm {stats['grad_norm']:.4f}, {changed} weight tensors changed; the short "
            f"run's {len(rl_lines)} RL step(s) updated in {updated}")

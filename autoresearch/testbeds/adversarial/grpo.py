"""GRPO-style RL update (DESIGN.md §8): group-normalised advantages, per-token PPO-clip surrogate, k3 KL to the frozen
SFT policy, gradient clipping and NaN guards — a short readable loss instead of a trainer.

Why not TRL's `GRPOTrainer`: it owns generation (its own sampling loop or vLLM), the model class (a transformers
`PreTrainedModel`) and the reward call (a Python function of completions). Our policies are the kit's GPT/HRM (not HF
models), rewards come from the sandbox in batches with two models trained against each other in the N+N+K pattern,
and a step must resume bit-exactly from our checkpoints. The pieces of TRL that would fit are its loss arithmetic
(`GRPOTrainer._compute_loss`: per-token ratio, clipped surrogate, `per_token_kl = exp(ref - logp) - (ref - logp) - 1`,
"grpo" token-mean-per-sequence aggregation) and the group mean/std of `_generate_and_score_completions`; they are
private methods of the trainer, not a standalone API, so the same ~30 lines are written here (with TRL's defaults:
unbiased group std with eps 1e-4, k3 KL, dropout off in the policy).

The seed project's update was identically zero: one sample per prompt normalised to advantage 0. Here a group needs at
least two samples with a reward (NaN = no valid test = no signal) and non-zero variance, otherwise it is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from autoresearch.errors import ConfigError
from autoresearch.testbeds.adversarial.config import RLConfig
from autoresearch.testbeds.adversarial.policy import Policy, Sample

__all__ = ["group_advantages", "grpo_loss", "rl_step", "make_rl_optimizer", "STD_EPS"]

STD_EPS = 1e-4
"""Added to the group std (TRL's value); groups whose std is below 1e-6 count as zero-variance and are dropped."""
_MIN_STD = 1e-6


def group_advantages(rewards: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages [P, G], keep [P]) from rewards [P, G] (P prompts x G samples; NaN = no signal).

    Per group: the samples with a reward are normalised to (r - mean) / (std + eps) (unbiased std over those samples);
    NaN samples get advantage 0 and should be left out of the loss (use `keep[p] & isfinite(rewards[p, g])`).
    A group with fewer than 2 rewarded samples or zero variance is dropped: keep False, advantages 0.
    """
    if rewards.ndim != 2:
        raise ConfigError(f"group_advantages wants rewards [prompts, group], got shape {tuple(rewards.shape)}")
    r = rewards.double()
    valid = torch.isfinite(r)
    n = valid.sum(dim=1)
    safe = torch.where(valid, r, torch.zeros_like(r))
    mean = safe.sum(dim=1) / n.clamp(min=1)
    dev = torch.where(valid, r - mean[:, None], torch.zeros_like(r))
    std = (dev.pow(2).sum(dim=1) / (n - 1).clamp(min=1)).sqrt()
    keep = (n >= 2) & (std > _MIN_STD)
    adv = torch.where(valid & keep[:, None], dev / (std[:, None] + STD_EPS), torch.zeros_like(r))
    return adv.to(rewards.dtype if rewards.is_floating_point() else torch.float32), keep


def grpo_loss(logp: torch.Tensor, old_logp: torch.Tensor, ref_logp: torch.Tensor | None, mask: torch.Tensor,
              adv: torch.Tensor, clip_eps: float, kl_beta: float) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO-clip surrogate on per-token ratios exp(logp - old_logp) with sequence advantages adv [B], plus kl_beta x
    the k3 KL estimator to the reference; token mean per sequence, then mean over sequences.

    logp [B, T] carries gradients; old_logp and ref_logp [B, T] are constants (detached here). Stats: `clip_frac`
    (share of tokens whose clipped side is active, i.e. zero gradient), `kl` (mean k3), `ratio_mean`, `loss`.
    """
    if logp.shape != mask.shape or old_logp.shape != mask.shape:
        raise ConfigError(f"grpo_loss shapes differ: logp {tuple(logp.shape)}, old_logp {tuple(old_logp.shape)}, "
                          f"mask {tuple(mask.shape)}")
    m = mask.to(logp.dtype)
    a = adv.to(logp.dtype).detach()[:, None]
    ratio = torch.exp(logp - old_logp.detach())
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    per_token = -torch.minimum(ratio * a, clipped * a)
    kl = torch.zeros_like(logp)
    if ref_logp is not None:
        d = ref_logp.detach() - logp
        kl = torch.exp(d) - d - 1.0
        if kl_beta > 0:
            per_token = per_token + kl_beta * kl
    tokens = m.sum(dim=1).clamp(min=1.0)
    loss = ((per_token * m).sum(dim=1) / tokens).mean()
    with torch.no_grad():
        n_tok = m.sum().clamp(min=1.0)
        is_clipped = ((ratio > 1.0 + clip_eps) & (a > 0)) | ((ratio < 1.0 - clip_eps) & (a < 0))
        stats = {
            "loss": float(loss.detach()),
            "clip_frac": float((is_clipped.to(m.dtype) * m).sum() / n_tok),
            "kl": float(((kl * m).sum(dim=1) / tokens).mean()),
            "ratio_mean": float((ratio * m).sum() / n_tok),
        }
    return loss, stats


def make_rl_optimizer(policy: Policy, rl: RLConfig) -> torch.optim.Optimizer:
    """AdamW over the policy's trainable parameters (LoRA: the adapters only) at rl.lr / rl.weight_decay."""
    params = policy.trainable_parameters()
    if not params:
        raise ConfigError(f"the {policy.role} policy has no trainable parameters (frozen?); unfreeze it before RL")
    return torch.optim.AdamW(params, lr=rl.lr, weight_decay=rl.weight_decay)


def rl_step(policy: Policy, ref_policy: Policy | None, optimizer: torch.optim.Optimizer, samples: Sequence[Sample],
            advantages: torch.Tensor | Sequence[float], rl: RLConfig, *, micro_batch: int = 0) -> dict[str, Any]:
    """rl.ppo_epochs optimizer steps of `grpo_loss` on `samples` (one advantage each; pass only kept samples).

    The old log-probs are those of the first pass (ratio 1 there; the clip acts from the second pass), reference
    log-probs come from `ref_policy` (None or kl_beta 0: no KL term). Gradients accumulate over chunks
    of `micro_batch` samples (0 = all at once), weighted so the loss equals the whole batch's. Grad norm clipped to
    rl.max_grad_norm. A non-finite loss or grad norm skips that optimizer step (grads zeroed, weights untouched) and
    is counted in `skipped`; the caller decides whether to stop. Stats are means over the passes that ran.
    """
    if not samples:
        raise ConfigError("rl_step got no samples; drop the step or pass at least one sample")
    adv = torch.as_tensor(advantages, dtype=torch.float32, device=policy.device).reshape(-1)
    if adv.numel() != len(samples):
        raise ConfigError(f"rl_step got {len(samples)} samples but {adv.numel()} advantages; pass one per sample")
    B = len(samples)
    chunk = B if micro_batch <= 0 else micro_batch
    spans = [(i, min(i + chunk, B)) for i in range(0, B, chunk)]
    temp = rl.temperature
    with torch.no_grad():
        ref = ([ref_policy.sequence_logprobs(samples[i:j], temperature=temp)[0].detach() for i, j in spans]
               if ref_policy is not None and rl.kl_beta > 0 else None)
    # The old log-probs are the first pass's own (detached): the same forward on the same weights, so no extra
    # no-grad forward is needed (it cost ~1/4 of a step on CPU) and the first pass has ratio exactly 1.
    old: list[torch.Tensor] = []
    params = [p for g in optimizer.param_groups for p in g["params"]]
    totals: dict[str, float] = {"loss": 0.0, "clip_frac": 0.0, "kl": 0.0, "ratio_mean": 0.0, "grad_norm": 0.0}
    ran = skipped = 0
    reasons: list[str] = []
    tokens = sum(len(s.ids) for s in samples)
    for _ in range(rl.ppo_epochs):
        optimizer.zero_grad(set_to_none=True)
        pass_stats = dict.fromkeys(("loss", "clip_frac", "kl", "ratio_mean"), 0.0)
        finite = True
        for k, (i, j) in enumerate(spans):
            logp, mask = policy.sequence_logprobs(samples[i:j], temperature=temp)
            if len(old) <= k:
                old.append(logp.detach())
            loss, st = grpo_loss(logp, old[k], ref[k] if ref is not None else None, mask, adv[i:j], rl.clip_eps,
                                 rl.kl_beta)
            if not torch.isfinite(loss):
                finite = False
                reasons.append("loss")
                break
            (loss * ((j - i) / B)).backward()
            for key in pass_stats:
                pass_stats[key] += st[key] * (j - i) / B
        if finite:
            max_norm = rl.max_grad_norm if rl.max_grad_norm > 0 else math.inf
            gn = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
            if not math.isfinite(gn):
                finite = False
                reasons.append("grad")
        if not finite:
            optimizer.zero_grad(set_to_none=True)
            skipped += 1
            continue
        optimizer.step()
        ran += 1
        for key, v in pass_stats.items():
            totals[key] += v
        totals["grad_norm"] += gn
    optimizer.zero_grad(set_to_none=True)
    out: dict[str, Any] = {k: (v / ran if ran else math.nan) for k, v in totals.items()}
    out.update(updates=ran, skipped=skipped, skip_reasons=reasons, samples=B, tokens=tokens)
    return out

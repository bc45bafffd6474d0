"""Optimizers and LR schedules of the LM testbed.

Muon (`torch.optim.Muon`, torch >= 2.9) orthogonalises updates of 2-D hidden weight matrices only; it rejects other
shapes, so embeddings, the untied head and norm gains go to AdamW (the 5-dollar-llm recipe, DESIGN.md §3).
`optimizer=adamw` puts every parameter in AdamW — the canonical known-worse idea (6.10 vs 4.84 at 8M tokens).
"""

from __future__ import annotations

import math

import torch

from autoresearch.testbeds.lm.config import OptimConfig

__all__ = ["build_optimizers", "lr_multiplier", "set_lr"]


def build_optimizers(model: torch.nn.Module, cfg: OptimConfig) -> list[torch.optim.Optimizer]:
    """[Muon, AdamW] or [AdamW]; each param group remembers its peak LR as `peak_lr`."""
    muon_params, adamw_params = model.param_groups()  # type: ignore[operator]
    betas = (cfg.adamw_beta1, cfg.adamw_beta2)
    if cfg.optimizer == "adamw":
        opts: list[torch.optim.Optimizer] = [
            torch.optim.AdamW(muon_params + adamw_params, lr=cfg.adamw_lr, betas=betas,
                              weight_decay=cfg.adamw_weight_decay, eps=1e-8)
        ]
    else:
        opts = [
            torch.optim.Muon(muon_params, lr=cfg.muon_lr, momentum=cfg.muon_momentum, nesterov=cfg.muon_nesterov,
                             weight_decay=cfg.muon_weight_decay),
            torch.optim.AdamW(adamw_params, lr=cfg.adamw_lr, betas=betas, weight_decay=cfg.adamw_weight_decay,
                              eps=1e-8),
        ]
    for opt in opts:
        for group in opt.param_groups:
            group["peak_lr"] = group["lr"]
    return opts


def lr_multiplier(step: int, total_steps: int, cfg: OptimConfig) -> float:
    """Multiplier of the peak LR at `step` (0-based) for constant / cosine / warmup-stable-decay."""
    total = max(total_steps, 1)
    warmup = int(round(cfg.warmup_frac * total))
    if step < warmup:
        return (step + 1) / warmup
    if cfg.schedule == "constant":
        return 1.0
    floor = cfg.min_lr_frac
    if cfg.schedule == "cosine":
        progress = (step - warmup) / max(total - warmup - 1, 1)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    decay = int(round(cfg.decay_frac * total))
    decay_start = total - decay
    if step < decay_start or decay == 0:
        return 1.0
    progress = (step - decay_start) / decay
    return floor + (1 - floor) * max(0.0, 1 - progress)


def set_lr(opts: list[torch.optim.Optimizer], multiplier: float) -> float:
    """Apply the multiplier to every group; return the first group's LR (for logging)."""
    for opt in opts:
        for group in opt.param_groups:
            group["lr"] = group["peak_lr"] * multiplier
    return opts[0].param_groups[0]["lr"]

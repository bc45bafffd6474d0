"""Optimizers and LR schedules shared by the testbeds' training loops.

Muon (`torch.optim.Muon`'s math, torch >= 2.9, run by our batched subclass `testbeds/common/muon.py`: one
Newton–Schulz per matrix shape, fp32 where bf16 is emulated — ~19x faster per step on an AVX2 CPU, same results within
bf16 rounding noise) orthogonalises updates of 2-D hidden weight matrices only; it rejects other shapes, so
embeddings, the untied head and norm gains go to AdamW (the 5-dollar-llm recipe, DESIGN.md §3).
`optimizer=adamw` puts every parameter in AdamW — the canonical known-worse idea (6.10 vs 4.84 at 8M tokens).
"""

from __future__ import annotations

import math

import torch

from autoresearch.testbeds.common.config import OptimConfig
from autoresearch.testbeds.common.muon import Muon

__all__ = ["apply_precision", "build_optimizers", "lr_multiplier", "schedule_steps", "set_lr"]


def build_optimizers(model: torch.nn.Module, cfg: OptimConfig, *,
                     precision: str | None = None) -> list[torch.optim.Optimizer]:
    """[Muon, AdamW] or [AdamW]; each param group remembers its peak LR as `peak_lr`.

    `precision` is the run's resolved `train.precision` ("bf16" | "fp32"), resolved once per run and kept on resume:
    Muon's Newton–Schulz runs in that dtype, so a resumed run computes exactly as it began even on another machine.
    None: the device's native-bf16 rule (muon.ns_dtype_for)."""
    ns_dtype = None if precision is None else _ns_dtype(precision)
    muon_params, adamw_params = model.param_groups()  # type: ignore[operator]
    betas = (cfg.adamw_beta1, cfg.adamw_beta2)
    if cfg.optimizer == "adamw":
        opts: list[torch.optim.Optimizer] = [
            torch.optim.AdamW(muon_params + adamw_params, lr=cfg.adamw_lr, betas=betas,
                              weight_decay=cfg.adamw_weight_decay, eps=1e-8)
        ]
    else:
        opts = [
            Muon(muon_params, lr=cfg.muon_lr, momentum=cfg.muon_momentum, nesterov=cfg.muon_nesterov,
                 weight_decay=cfg.muon_weight_decay, ns_dtype=ns_dtype),
            torch.optim.AdamW(adamw_params, lr=cfg.adamw_lr, betas=betas, weight_decay=cfg.adamw_weight_decay,
                              eps=1e-8),
        ]
    for opt in opts:
        for group in opt.param_groups:
            group["peak_lr"] = group["lr"]
    return opts


def _ns_dtype(precision: str) -> torch.dtype:
    if precision not in ("bf16", "fp32"):
        raise ValueError(f"precision must be 'bf16' or 'fp32', got {precision!r}")
    return torch.bfloat16 if precision == "bf16" else torch.float32


def apply_precision(opts: list[torch.optim.Optimizer], precision: str) -> None:
    """Set the Newton–Schulz dtype of every Muon in `opts` to the run's precision (a resume restores the precision the
    run began with after the optimizers were built)."""
    for opt in opts:
        if isinstance(opt, Muon):
            opt.ns_dtype = _ns_dtype(precision)


def schedule_steps(total_steps: int, cfg: OptimConfig) -> tuple[int, int]:
    """(warm-up steps W, decay steps D) of a run of `total_steps` steps under `cfg`.

    W = round(warmup_frac * T); for cosine/wsd at most T - 1, so the last step is always a decay step. D (wsd only) =
    round(decay_frac * T), at least 1 (so a short run or decay_frac=0 still ends at min_lr_frac) and at most the
    T - W steps after the warm-up.
    """
    total = max(total_steps, 1)
    warmup = min(int(round(cfg.warmup_frac * total)), total if cfg.schedule == "constant" else total - 1)
    decay = min(max(int(round(cfg.decay_frac * total)), 1), total - warmup) if cfg.schedule == "wsd" else 0
    return warmup, decay


def lr_multiplier(step: int, total_steps: int, cfg: OptimConfig) -> float:
    """Multiplier of the peak LR at `step` (0-based) of `total_steps`, by definition:

    warm-up   steps 0..W-1 rise linearly: (s+1)/W, so step 0 gets 1/W and step W-1 the peak;
    constant  1.0 after the warm-up, up to and including the last step;
    cosine    half a cosine from the peak (step W) to min_lr_frac (the last step, T-1);
    wsd       1.0 until the decay, then linear over its D steps: step T-D gets 1 - 1/D of the way down
              from the peak and the last step exactly min_lr_frac.
    Steps past the end keep the last step's value.
    """
    total = max(total_steps, 1)
    step = min(max(step, 0), total - 1)
    warmup, decay = schedule_steps(total, cfg)
    if step < warmup:
        return (step + 1) / warmup
    if cfg.schedule == "constant":
        return 1.0
    floor = cfg.min_lr_frac
    if cfg.schedule == "cosine":
        span = total - 1 - warmup
        progress = (step - warmup) / span if span > 0 else 1.0
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    decay_start = total - decay
    if step < decay_start:
        return 1.0
    progress = (step - decay_start + 1) / decay
    return floor + (1 - floor) * (1 - progress)


def set_lr(opts: list[torch.optim.Optimizer], multiplier: float) -> float:
    """Apply the multiplier to every group; return the first group's LR (for logging)."""
    for opt in opts:
        for group in opt.param_groups:
            group["lr"] = group["peak_lr"] * multiplier
    return opts[0].param_groups[0]["lr"]

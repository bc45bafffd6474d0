"""Validation of the LM testbed: token-weighted mean cross-entropy over a pinned set of windows, and bits per byte."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from autoresearch.harness.metrics import bits_per_byte, perplexity
from autoresearch.harness.precision import autocast

__all__ = ["evaluate"]


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    token_bytes: np.ndarray,
    device: torch.device,
    precision: str,
) -> dict[str, float]:
    """val_loss (token-weighted mean CE, nats), perplexity and val_bpb over fixed `batches`.

    `precision` is the run's resolved precision (`fp32` | `bf16`, see `harness.precision.resolve_precision`).
    """
    was_training = model.training
    model.eval()
    tb = torch.as_tensor(np.asarray(token_bytes, dtype=np.int64), device=device)
    total_ce = 0.0
    total_tokens = 0
    total_bytes = 0
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        with autocast(device, precision):
            logits = model(x)
        ce = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum")
        total_ce += float(ce)
        total_tokens += y.numel()
        total_bytes += int(tb[y].sum())
    model.train(was_training)
    mean = total_ce / max(total_tokens, 1)
    return {
        "val_loss": mean,
        "val_bpb": bits_per_byte(total_ce, total_bytes),
        "perplexity": perplexity(mean) if math.isfinite(mean) else float("inf"),
        "val_tokens": total_tokens,
    }

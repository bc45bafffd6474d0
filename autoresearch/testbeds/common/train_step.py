"""The mechanics of one optimizer step, shared by the training loops: a micro-batch's forward and scaled backward
under autocast, then gradient clipping, the optimizers' step and zeroing the gradients."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from autoresearch.harness.precision import Precision, autocast

__all__ = ["micro_step", "optimizer_step"]


def micro_step(
    model: Callable[..., torch.Tensor], x: torch.Tensor, y: torch.Tensor, device: torch.device, precision: Precision,
    grad_accum: int,
) -> torch.Tensor:
    """Forward `model(x, y) -> loss` under the run's autocast, backward `loss / grad_accum`; the detached loss."""
    with autocast(device, precision):
        loss = model(x, y)
    (loss / grad_accum).backward()
    return loss.detach()


def optimizer_step(optimizers: Sequence[torch.optim.Optimizer], params: list[torch.nn.Parameter],
                   grad_clip: float) -> torch.Tensor:
    """Clip the global grad norm to `grad_clip` (0 = off), step every optimizer, zero the grads; the norm before
    clipping, as a tensor (reading it is a device sync, left to the step record)."""
    grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else math.inf)
    for opt in optimizers:
        opt.step()
    for opt in optimizers:
        opt.zero_grad(set_to_none=True)
    return grad_norm

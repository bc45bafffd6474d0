"""Muon with one batched Newton–Schulz per matrix shape: `torch.optim.Muon`'s math, a fraction of its CPU time.

`torch.optim.Muon` (torch 2.13) orthogonalises each 2-D update on its own, always in bf16. On a CPU without native bf16
(AVX2 only: no avx512_bf16/amx_bf16) every bf16 matmul is emulated — 25x slower than fp32 for a 128x128 product here —
and at the `tiny` preset (24 hidden matrices, fp32, 1 thread) its step took 925 ms against 560 ms for the forward and
backward passes: 96% of it in bf16 `addmm`/`mm` (torch.profiler; benchmarks/optimizer_step.py measures it).

This subclass keeps every number of the algorithm — momentum (lerp form), nesterov, the quintic Newton–Schulz
coefficients and step count, the Frobenius-norm pre-scaling with its eps clamp, decoupled weight decay, the
`adjust_lr_fn` LR scaling — and changes only how it is computed:
- matrices of one shape (a tall one counts as its transpose) are stacked and orthogonalised together with
  `torch.bmm`/`torch.baddbmm`, one Python iteration per shape instead of per parameter;
- momentum, nesterov and weight decay run as `torch._foreach_*` ops over the whole group;
- the Newton–Schulz runs in the run's precision (optim.build_optimizers passes the resolved `train.precision`,
  which a resume keeps): bf16 where `auto` finds native bf16 (CUDA with compute capability >= 8, a CPU with
  avx512_bf16/amx_bf16), else fp32; standalone, `ns_dtype=None` applies that rule to the parameters' device.
In bf16 the result equals torch's up to matmul accumulation order; in fp32 it differs from torch's bf16 iteration by
bf16 rounding noise only (measured by tests/test_optim.py and benchmarks/optimizer_step.py: after 20 steps of the
tiny model the largest parameter difference is ~1e-3 absolute on weights of size ~0.1 — the same size as the
difference between two bf16 Newton–Schulz runs whose inputs differ in one rounding).

The optimizer state (`momentum_buffer` per parameter) and the param-group keys are torch's own, so a checkpoint
written with `torch.optim.Muon` loads into this class and the other way round.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from autoresearch.harness.precision import resolve_precision

__all__ = ["Muon", "newton_schulz", "ns_dtype_for"]


def ns_dtype_for(device: torch.device) -> torch.dtype:
    """bf16 where `device` computes it natively (the `train.precision=auto` rule), else fp32."""
    return torch.bfloat16 if resolve_precision("auto", device).precision == "bf16" else torch.float32


def newton_schulz(g: Tensor, coefficients: tuple[float, float, float], steps: int, eps: float,
                  dtype: torch.dtype) -> Tensor:
    """`torch.optim._muon._zeropower_via_newtonschulz` over a stack (n, rows, cols) of same-shape matrices.

    Returns the orthogonalised stack in `dtype`; each matrix is scaled by its own Frobenius norm (clamped at eps),
    a tall matrix is iterated on its transpose, exactly as torch does one matrix at a time.
    """
    if steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if g.dim() != 3:
        raise ValueError(f"newton_schulz needs a stack of matrices (n, rows, cols), got shape {tuple(g.shape)}")
    a, b, c = coefficients
    x = g.to(dtype)
    tall = g.size(1) > g.size(2)
    if tall:
        x = x.mT
    x = x / torch.linalg.vector_norm(x, dim=(1, 2), keepdim=True).clamp(min=eps)
    for _ in range(steps):
        gram = torch.bmm(x, x.mT)
        gram_update = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)
        x = torch.baddbmm(x, gram_update, x, beta=a)
    return x.mT if tall else x


def _adjusted_lr(lr: float, adjust_lr_fn: str | None, shape: torch.Size) -> float:
    """`torch.optim._muon._adjust_lr`: the update's LR scale for a (rows, cols) matrix."""
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, rows / cols))
    elif adjust_lr_fn == "match_rms_adamw":
        ratio = 0.2 * math.sqrt(max(rows, cols))
    else:
        ratio = 1.0
    return lr * ratio


class Muon(torch.optim.Muon):
    """`torch.optim.Muon` with a batched Newton–Schulz (module docstring); same arguments, state and results.

    `ns_dtype` forces the Newton–Schulz dtype (torch.bfloat16 reproduces torch's own iteration); None picks it per
    device with `ns_dtype_for`. It is not a param-group key, so state dicts stay torch's.
    """

    def __init__(self, params: Any, *args: Any, ns_dtype: torch.dtype | None = None, **kwargs: Any) -> None:
        super().__init__(params, *args, **kwargs)
        self.ns_dtype = ns_dtype
        self._dtypes: dict[torch.device, torch.dtype] = {}

    def _ns_dtype(self, device: torch.device) -> torch.dtype:
        if self.ns_dtype is not None:
            return self.ns_dtype
        if device not in self._dtypes:
            self._dtypes[device] = ns_dtype_for(device)
        return self._dtypes[device]

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One Muon step over every param group (torch's `step`, batched)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params: list[Tensor] = []
            grads: list[Tensor] = []
            bufs: list[Tensor] = []
            self._init_group(group, params, grads, bufs)
            if params:
                self._update(group, params, grads, bufs)
        return loss

    def _update(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor], bufs: list[Tensor]) -> None:
        lr = float(group["lr"])
        momentum = group["momentum"]
        for grad in grads:
            if grad.ndim != 2:
                raise ValueError("Param gradient must be a 2D matrix")
        torch._foreach_lerp_(bufs, grads, 1 - momentum)
        updates = torch._foreach_lerp(grads, bufs, momentum) if group["nesterov"] else bufs
        # same-shape matrices share one batched Newton–Schulz; a tall matrix joins the stack of its transpose
        stacks: dict[tuple[torch.Size, torch.device, torch.dtype], list[int]] = {}
        for i, p in enumerate(params):
            rows, cols = p.shape
            key = (torch.Size((min(rows, cols), max(rows, cols))), p.device, p.dtype)
            stacks.setdefault(key, []).append(i)
        orthogonal: list[Tensor] = [updates[0]] * len(params)
        for (_, device, _), idx in stacks.items():
            wide = [updates[i] if updates[i].size(0) <= updates[i].size(1) else updates[i].mT for i in idx]
            x = newton_schulz(torch.stack(wide), group["ns_coefficients"], group["ns_steps"], group["eps"],
                              self._ns_dtype(device))
            for j, i in enumerate(idx):
                orthogonal[i] = x[j] if params[i].size(0) <= params[i].size(1) else x[j].mT
        if group["weight_decay"] != 0:
            torch._foreach_mul_(params, 1 - lr * group["weight_decay"])
        for p, o in zip(params, orthogonal):
            p.add_(o, alpha=-_adjusted_lr(lr, group["adjust_lr_fn"], p.shape))

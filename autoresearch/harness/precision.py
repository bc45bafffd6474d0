"""Training precision: resolve `train.precision` (auto | fp32 | bf16) once per run, and the autocast it selects.

`auto` picks bf16 only where the device computes it natively: CUDA with hardware bf16 (compute capability >= 8, or
ROCm), or an x86 CPU with AVX-512-BF16 or AMX (the `avx512_bf16` / `amx_bf16` flags of /proc/cpuinfo); everything else
gets fp32. Why: on a CPU without those instructions bf16 is emulated — one bf16 matmul forward+backward
(2048x128 @ 128x512) took 442 ms vs 25 ms in fp32 on a 2-core AMD EPYC with AVX2 (18x), and the tiny preset trained
at 173 vs 758 tokens/s with the same val_loss (5.112 vs 5.113) (issue 8 §1). An explicit choice is honoured; explicit
bf16 on such a CPU prints one warning line on stderr per process, never one per step.

The resolved precision and the reason travel with the run (`config.yaml` meta and `results.yaml`), so a result says
which arithmetic produced it. `autocast` only accepts a resolved precision, so `auto` can never reach torch.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch

from autoresearch.harness.provenance import read_cpuinfo  # the one reader of /proc/cpuinfo

__all__ = ["PRECISIONS", "Precision", "PrecisionChoice", "cpu_bf16_flags", "read_cpuinfo", "resolve_precision",
           "autocast"]

Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")

_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
_warned: set[str] = set()


@dataclass(frozen=True)
class PrecisionChoice:
    """What a run computes in (`fp32` | `bf16`), what was asked for, and why, in one sentence."""

    precision: Precision
    requested: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"precision": self.precision, "requested": self.requested, "reason": self.reason}


def cpu_bf16_flags(cpuinfo: str) -> list[str]:
    """The native-bf16 CPU flags (`avx512_bf16`, `amx_bf16`) present on the `flags` lines of a /proc/cpuinfo text."""
    present: set[str] = set()
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == "flags":
            present.update(f for f in _BF16_FLAGS if f in value.split())
    return [f for f in _BF16_FLAGS if f in present]


def _native(device: torch.device, cpuinfo: Callable[[], str | None]) -> tuple[bool, str]:
    """Whether `device` computes bf16 natively, and the evidence in a few words."""
    if device.type == "cuda":
        # including_emulation=False: pre-Ampere GPUs "support" bf16 only by emulation, which is slower than fp32
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return True, f"{device} has native bf16"
        return False, f"{device} lacks native bf16 (compute capability < 8.0)"
    if device.type != "cpu":
        return False, f"no native-bf16 detection for device type {device.type!r}"
    text = cpuinfo()
    if text is None:
        return False, "cannot read /proc/cpuinfo to detect avx512_bf16/amx_bf16"
    flags = cpu_bf16_flags(text)
    if flags:
        return True, f"CPU has {'/'.join(flags)}"
    return False, "CPU lacks avx512_bf16/amx_bf16"


def resolve_precision(
    requested: str, device: torch.device, cpuinfo: Callable[[], str | None] | None = None
) -> PrecisionChoice:
    """Resolve `train.precision` for `device` once per run (`cpuinfo` returns the /proc/cpuinfo text or None;
    default `read_cpuinfo`).

    `auto` -> bf16 where the device computes it natively, else fp32. `fp32` / `bf16` are honoured; `bf16` on a
    device without native bf16 warns once per process on stderr.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    if requested == "fp32":
        return PrecisionChoice("fp32", requested, "explicit fp32")
    native, why = _native(device, cpuinfo or read_cpuinfo)
    if requested == "auto":
        return PrecisionChoice("bf16" if native else "fp32", requested, f"auto: {why} -> {'bf16' if native else 'fp32'}")
    if native:
        return PrecisionChoice("bf16", requested, f"explicit bf16 ({why})")
    reason = f"explicit bf16 ({why}: emulated, typically many times slower than fp32)"
    if why not in _warned:
        _warned.add(why)
        print(f"warning: train.precision=bf16 but {why}; without native bf16 it is emulated, typically many times "
              f"slower than fp32 (18x per matmul on an AVX2-only CPU); use --set train.precision=auto or fp32",
              file=sys.stderr, flush=True)
    return PrecisionChoice("bf16", requested, reason)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CPU and GPU, or a no-op for fp32; `precision` must already be resolved (never `auto`)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if precision == "fp32":
        return contextlib.nullcontext()
    raise ValueError(f"autocast needs a resolved precision (fp32 or bf16), got {precision!r}; call resolve_precision")

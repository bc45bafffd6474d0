"""The performance and provenance part of a run's results: throughput, achieved TFLOP/s and MFU, peak memory,
training and wall time, device, precision (and why) and seed — the same keys for every testbed."""

from __future__ import annotations

import time
from typing import Any

import torch

from autoresearch.harness.metrics import gpu_peak_flops, mfu, peak_memory_bytes
from autoresearch.testbeds.common.run_state import RunState

__all__ = ["PERF_KEYS", "perf_summary"]

PERF_KEYS = ("tokens_per_s", "achieved_tflops", "mfu", "peak_memory_mb", "train_seconds", "wall_seconds", "device",
             "precision", "precision_reason", "seed")


def perf_summary(run: RunState, flops_per_token: float, device: torch.device, seed: int, t_wall: float
                 ) -> dict[str, Any]:
    """`PERF_KEYS` of a run that started at `t_wall` (time.perf_counter); MFU is None off CUDA or on an unknown GPU."""
    peak = gpu_peak_flops(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    return {
        "tokens_per_s": round(run.thr.tokens_per_s, 1),
        "achieved_tflops": round(flops_per_token * run.thr.tokens_per_s / 1e12, 4),
        "mfu": mfu(flops_per_token, run.thr.tokens_per_s, peak),
        "peak_memory_mb": round(peak_memory_bytes(device) / 2**20, 1),
        "train_seconds": round(run.train_seconds, 3),
        "wall_seconds": round(time.perf_counter() - t_wall, 3),
        "device": str(device),
        "precision": run.precision.precision,
        "precision_reason": run.precision.reason,
        "seed": seed,
    }

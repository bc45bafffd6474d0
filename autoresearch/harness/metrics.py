"""Training and evaluation metrics: bits per byte, perplexity, MFU, peak memory, throughput, divergence.

MFU follows the nanoGPT/PaLM convention (DESIGN.md §3): FLOPs/token ≈ 6·N_matmul + 12·L·H·Q·T, MFU = FLOPs/token ×
tokens/s ÷ peak. On CPU there is no meaningful vendor peak, so we report achieved FLOP/s and leave MFU empty.
"""

from __future__ import annotations

import math
import resource
import sys

import torch

__all__ = [
    "GPU_PEAK_FLOPS",
    "gpu_peak_flops",
    "mfu",
    "bits_per_byte",
    "perplexity",
    "peak_memory_bytes",
    "is_diverged",
    "Throughput",
]

# Dense bf16 tensor-core peaks (vendor datasheets, FLOP/s, no sparsity).
GPU_PEAK_FLOPS: dict[str, float] = {
    "H200": 989e12,
    "H100 SXM": 989e12,
    "H100 NVL": 835e12,
    "H100 PCIe": 756e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "RTX 4090": 165e12,
    "RTX 3090": 71e12,
    "A10G": 70e12,
    "A10": 125e12,
    "V100": 125e12,
    "T4": 65e12,
}


def gpu_peak_flops(name: str) -> float | None:
    """Peak bf16 FLOP/s for a CUDA device name (e.g. 'NVIDIA H100 80GB HBM3'); None if unknown."""
    upper = name.upper()
    if "H100" in upper:
        if "PCIE" in upper:
            return GPU_PEAK_FLOPS["H100 PCIe"]
        if "NVL" in upper:
            return GPU_PEAK_FLOPS["H100 NVL"]
        return GPU_PEAK_FLOPS["H100 SXM"]
    for key in sorted(GPU_PEAK_FLOPS, key=len, reverse=True):
        if key.upper() in upper:
            return GPU_PEAK_FLOPS[key]
    return None


def mfu(flops_per_token: float, tokens_per_s: float, peak_flops: float | None) -> float | None:
    """Model FLOPs utilisation in [0, 1], or None without a known peak."""
    if not peak_flops:
        return None
    return flops_per_token * tokens_per_s / peak_flops


def bits_per_byte(sum_ce_nats: float, n_bytes: int) -> float:
    """Vocabulary-independent loss: total cross-entropy in bits divided by the UTF-8 bytes it predicted."""
    return sum_ce_nats / math.log(2) / max(n_bytes, 1)


def perplexity(mean_ce_nats: float) -> float:
    return math.exp(min(mean_ce_nats, 700.0))


def peak_memory_bytes(device: torch.device) -> int:
    """CUDA max allocated on GPU; process peak RSS on CPU."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def is_diverged(loss: float, reference: float | None, factor: float) -> bool:
    """NaN/inf, or loss above `factor` × the first logged loss."""
    if not math.isfinite(loss):
        return True
    return reference is not None and factor > 0 and loss > factor * reference


class Throughput:
    """Tokens/s over training time only: evaluation, checkpointing and warm-up steps are excluded by the caller."""

    def __init__(self) -> None:
        self.tokens = 0
        self.seconds = 0.0

    def add(self, tokens: int, seconds: float) -> None:
        self.tokens += tokens
        self.seconds += seconds

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

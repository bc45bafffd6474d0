"""Metric formulas: bits per byte, MFU, GPU peak lookup, divergence."""

from __future__ import annotations

import math

import pytest

from autoresearch.harness.metrics import bits_per_byte, gpu_peak_flops, is_diverged, mfu, perplexity


def test_bits_per_byte():
    # 1000 tokens each with CE ln 2 (= 1 bit) over 4000 bytes -> 0.25 bits/byte
    assert bits_per_byte(1000 * math.log(2), 4000) == pytest.approx(0.25)


def test_mfu_and_peaks():
    assert gpu_peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert gpu_peak_flops("NVIDIA H100 PCIe") == 756e12
    assert gpu_peak_flops("NVIDIA GeForce RTX 4090") == 165e12
    assert gpu_peak_flops("Some CPU") is None
    assert mfu(6e8, 1e6, 989e12) == pytest.approx(6e14 / 989e12)
    assert mfu(6e8, 1e6, None) is None


def test_divergence():
    assert is_diverged(float("nan"), 5.0, 3.0)
    assert is_diverged(float("inf"), None, 3.0)
    assert is_diverged(16.0, 5.0, 3.0)
    assert not is_diverged(14.0, 5.0, 3.0)
    assert perplexity(0.0) == 1.0

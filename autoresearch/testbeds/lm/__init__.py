"""Small-LLM testbed: GPT + Muon on a cached token corpus (DESIGN.md §3)."""

from __future__ import annotations

from autoresearch.testbeds.lm.config import (
    PRESETS,
    DataConfig,
    EvalConfig,
    LMConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    lm_5dollar,
    lm_small,
    lm_tiny,
    preset,
)
from autoresearch.testbeds.lm.model import GPT, KVCache
from autoresearch.testbeds.lm.testbed import LMTestbed

__all__ = [
    "GPT",
    "KVCache",
    "LMTestbed",
    "LMConfig",
    "ModelConfig",
    "OptimConfig",
    "DataConfig",
    "TrainConfig",
    "EvalConfig",
    "PRESETS",
    "preset",
    "lm_tiny",
    "lm_small",
    "lm_5dollar",
]

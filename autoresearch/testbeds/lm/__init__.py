"""Small-LLM testbed: the shared GPT + Muon (testbeds/common/) on a cached token corpus (DESIGN.md §3)."""

from __future__ import annotations

from autoresearch.testbeds.lm.config import PRESETS, EvalConfig, LMConfig, lm_5dollar, lm_small, lm_tiny, preset
from autoresearch.testbeds.lm.testbed import LMTestbed

__all__ = [
    "LMTestbed",
    "LMConfig",
    "EvalConfig",
    "PRESETS",
    "preset",
    "lm_tiny",
    "lm_small",
    "lm_5dollar",
]

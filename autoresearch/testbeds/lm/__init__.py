"""Small-LLM testbed: GPT + Muon on a cached token corpus (DESIGN.md §3)."""

from __future__ import annotations

from autoresearch.testbeds.lm.model import GPT, KVCache

__all__ = ["GPT", "KVCache"]

"""The small-LLM pretraining testbed behind the `Testbed` interface (GPT + Muon, val_loss/bpb at a token budget)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autoresearch.harness.config import apply_overrides
from autoresearch.harness.registry import Experiment
from autoresearch.testbeds.base import CheckResult, Testbed
from autoresearch.testbeds.lm.config import LMConfig, preset

__all__ = ["LMTestbed"]


class LMTestbed(Testbed):
    """`autoresearch train lm` / `check lm` / studies with `testbed: lm`."""

    name = "lm"
    metrics = {"val_loss": "lower", "val_bpb": "lower", "perplexity": "lower", "tokens_per_s": "higher"}

    def make_config(self, preset_name: str, overrides: list[str] | dict[str, Any] | None = None) -> LMConfig:
        cfg = preset(preset_name)
        return apply_overrides(cfg, overrides) if overrides else cfg

    def train(self, cfg: LMConfig, exp: Experiment, *, resume: bool = False, progress: bool = False) -> dict[str, Any]:
        from autoresearch.testbeds.lm.train import train

        return train(cfg, exp, resume=resume, progress=progress)

    def checks(self, cfg: LMConfig, out_dir: Path) -> list[CheckResult]:
        from autoresearch.testbeds.lm.checks import run_checks

        return run_checks(cfg, out_dir)

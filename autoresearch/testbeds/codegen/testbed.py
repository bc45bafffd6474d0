"""The code-generation testbed behind the `Testbed` interface (HRM or parameter-matched GPT, pass@k on held-out
generated tasks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autoresearch.harness.config import apply_overrides
from autoresearch.harness.registry import Experiment
from autoresearch.testbeds.base import CheckResult, Testbed
from autoresearch.testbeds.codegen.config import CodegenConfig, codegen_preset

__all__ = ["CodegenTestbed"]


class CodegenTestbed(Testbed):
    """`autoresearch train codegen` / `check codegen` / studies with `testbed: codegen`."""

    name = "codegen"
    metrics = {"pass@1_greedy": "higher", "pass@1": "higher", "pass@10": "higher", "heldout_loss": "lower",
               "tokens_per_s": "higher"}

    def make_config(self, preset_name: str, overrides: list[str] | dict[str, Any] | None = None) -> CodegenConfig:
        cfg = codegen_preset(preset_name)
        return apply_overrides(cfg, overrides) if overrides else cfg

    def train(self, cfg: CodegenConfig, exp: Experiment, *, resume: bool = False,
              progress: bool = False) -> dict[str, Any]:
        from autoresearch.testbeds.codegen.train import train

        return train(cfg, exp, resume=resume, progress=progress)

    def checks(self, cfg: CodegenConfig, out_dir: Path) -> list[CheckResult]:
        from autoresearch.testbeds.codegen.checks import run_checks

        return run_checks(cfg, out_dir)

"""The codegen testbed's check hooks: the forward pass of its model (HRM or GPT), and `generate_and_score` (the short
run's model generates completions for held-out tasks and the sandbox scores them end to end). The other checks are
the contract's defaults (`testbeds/checks.py`)."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from autoresearch.testbeds.checks import CheckFailed, CheckResult, ShortRun
from autoresearch.testbeds.checks import forward_pass as check_forward
from autoresearch.testbeds.codegen.config import CodegenConfig
from autoresearch.testbeds.codegen.data import build_code_data
from autoresearch.testbeds.codegen.models import build_model
from autoresearch.testbeds.codegen.scoring import score_pass_at_k
from autoresearch.testbeds.common.device import resolve_device

if TYPE_CHECKING:
    from autoresearch.testbeds.codegen.testbed import CodegenTestbed

__all__ = ["run_checks", "forward_pass", "generate_and_score", "CHECKS"]

CHECKS = ("forward_pass", "short_training", "checkpoint_roundtrip", "evaluation_pipeline", "generate_and_score")


def forward_pass(cfg: CodegenConfig) -> str:
    """One training batch through a fresh model of `cfg.arch`: logits shape, finite loss, gradients everywhere."""
    device = resolve_device(cfg.train.device)
    data = build_code_data(cfg)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, data.tokenizer.vocab_size).to(device)
    x, y = data.train.batch(0, 2)
    return check_forward(model, x.to(device), y.to(device), data.tokenizer.vocab_size, f"{cfg.arch}: ")


def generate_and_score(testbed: CodegenTestbed, cfg: CodegenConfig, run: ShortRun, out: Path) -> str:
    """The short run's model, loaded back through `load_model`, samples 4 held-out tasks; the sandbox scores them."""
    if run.exp is None:
        raise CheckFailed("short_training produced no model to sample from")
    loaded = testbed.load_model(run.exp)
    data = build_code_data(cfg)
    c = copy.deepcopy(cfg)
    c.eval.n_samples, c.eval.k, c.eval.max_new_tokens = 2, [1, 2], 16
    res = score_pass_at_k(loaded.model, loaded.tokenizer, data.heldout_tasks[:4], c, out)
    need = ("pass@1_greedy", "pass@1", "pass@2", "syntax_valid_rate", "gen_tokens_per_s")
    bad = [k for k in need if not isinstance(res.get(k), (int, float)) or not 0 <= res[k] < math.inf]
    if bad:
        raise CheckFailed(f"scoring returned no valid {', '.join(bad)}: {res}")
    for f in ("greedy_samples.jsonl", "greedy_samples_results.jsonl", "sampled_summary.yaml"):
        if not (out / f).is_file():
            raise CheckFailed(f"scoring did not write {out / f}")
    return (f"4 held-out tasks x (1 greedy + 2 sampled) scored in the sandbox ({res['sandbox_level']}): pass@1 greedy "
            f"{res['pass@1_greedy']:.2f}, syntax-valid {res['syntax_valid_rate']:.2f}, "
            f"{res['gen_tokens_per_s']:.0f} tok/s decoding")


def run_checks(cfg: CodegenConfig, out_dir: str | Path, steps: int = 20) -> list[CheckResult]:
    """The codegen testbed's checks (`CodegenTestbed().checks`), in order."""
    from autoresearch.testbeds.codegen.testbed import CodegenTestbed

    return CodegenTestbed().checks(cfg, Path(out_dir), steps=steps)

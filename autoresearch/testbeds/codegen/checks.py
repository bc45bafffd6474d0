"""Integration checks of the codegen testbed: the four shared checks plus `generate_and_score` (a tiny model
generates completions for held-out tasks and the sandbox scores them end to end)."""

from __future__ import annotations

import copy
import math
import shutil
from pathlib import Path
from typing import Any

import torch

from autoresearch.testbeds.base import CheckResult
from autoresearch.testbeds.checks import (
    CheckFailed,
    checkpoint_roundtrip,
    evaluation_pipeline,
    forward_pass,
    run_check,
    scratch_experiment,
    short_training,
)
from autoresearch.testbeds.codegen.config import CodegenConfig
from autoresearch.testbeds.codegen.data import build_code_data
from autoresearch.testbeds.codegen.models import build_model
from autoresearch.testbeds.codegen.scoring import score_pass_at_k
from autoresearch.testbeds.codegen.train import train
from autoresearch.testbeds.lm.train import resolve_device

__all__ = ["run_checks", "CHECKS", "REQUIRED_RESULTS"]

CHECKS = ("forward_pass", "short_training", "checkpoint_roundtrip", "evaluation_pipeline", "generate_and_score")
REQUIRED_RESULTS = ("heldout_loss", "tokens_per_s", "train_seconds", "wall_seconds", "peak_memory_mb", "steps",
                    "tokens", "params")


def _short(cfg: CodegenConfig, steps: int) -> CodegenConfig:
    c = copy.deepcopy(cfg)
    c.train.train_tokens = steps * c.tokens_per_step
    c.train.log_every = 1
    c.train.checkpoint_every = steps // 2
    c.train.max_seconds = 0.0
    c.data.train_tasks = min(c.data.train_tasks, 2000)
    c.eval.heldout_tasks = min(c.eval.heldout_tasks, 8)
    c.eval.score = False
    return c


def _forward_pass(cfg: CodegenConfig) -> str:
    device = resolve_device(cfg.train.device)
    data = build_code_data(cfg)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, data.tokenizer.vocab_size).to(device)
    x, y = data.train.batch(0, 2)
    return forward_pass(model, x.to(device), y.to(device), data.tokenizer.vocab_size, f"{cfg.arch}: ")


def _generate_and_score(cfg: CodegenConfig, run: dict[str, Any], out: Path) -> str:
    if "exp" not in run:
        raise CheckFailed("short_training produced no model to sample from")
    from autoresearch.testbeds.codegen.checkpoint_model import load_experiment_model

    model, tokenizer, _ = load_experiment_model(run["exp"])
    data = build_code_data(cfg)
    c = copy.deepcopy(cfg)
    c.eval.n_samples, c.eval.k, c.eval.max_new_tokens = 2, [1, 2], 16
    res = score_pass_at_k(model, tokenizer, data.heldout_tasks[:4], c, out)
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
    work = Path(out_dir) / "check_runs"
    shutil.rmtree(work, ignore_errors=True)
    short = _short(cfg, steps)
    run: dict[str, Any] = {}
    return [
        run_check("forward_pass", lambda: _forward_pass(short)),
        run_check("short_training", lambda: short_training(train, short, scratch_experiment(work / "short"), run)),
        run_check("checkpoint_roundtrip",
                  lambda: checkpoint_roundtrip(train, short, short.train.checkpoint_every, work / "resumed", run)),
        run_check("evaluation_pipeline", lambda: evaluation_pipeline(run, REQUIRED_RESULTS)),
        run_check("generate_and_score", lambda: _generate_and_score(short, run, work / "scored")),
    ]

"""Integration checks of the LM testbed: forward_pass, short_training, checkpoint_roundtrip, evaluation_pipeline.

Each check exercises the real product path (the real loop writing a real experiment folder) at a short budget and
returns pass/fail with a detail a person can read, e.g. "loss from 8.31 to 6.02 over 30 steps".
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import torch

from autoresearch.harness.data import TrainStream, load_token_data
from autoresearch.testbeds.base import CheckResult
from autoresearch.testbeds.checks import (
    checkpoint_roundtrip,
    evaluation_pipeline,
    forward_pass,
    run_check,
    scratch_experiment,
    short_training,
    write_checks,
)
from autoresearch.testbeds.lm.config import LMConfig
from autoresearch.testbeds.lm.model import GPT
from autoresearch.testbeds.lm.train import resolve_device, train

__all__ = ["run_checks", "write_checks", "CHECKS", "REQUIRED_RESULTS"]

CHECKS = ("forward_pass", "short_training", "checkpoint_roundtrip", "evaluation_pipeline")
REQUIRED_RESULTS = ("val_loss", "val_bpb", "perplexity", "tokens_per_s", "train_seconds", "wall_seconds",
                    "peak_memory_mb", "steps", "tokens", "params", "achieved_tflops")


def _short(cfg: LMConfig, steps: int) -> LMConfig:
    c = copy.deepcopy(cfg)
    c.train.train_tokens = steps * c.tokens_per_step
    c.train.log_every = 1
    c.train.checkpoint_every = steps // 2
    c.train.max_seconds = 0.0
    c.eval.val_batches = min(c.eval.val_batches, 4)
    c.eval.every = 0
    return c


def _forward_pass(cfg: LMConfig) -> str:
    device = resolve_device(cfg.train.device)
    data = load_token_data(cfg.data)
    torch.manual_seed(cfg.train.seed)
    model = GPT(cfg.model, data.tokenizer.vocab_size).to(device)
    x, y = TrainStream(data.train, 2, cfg.model.seq_len, seed=cfg.train.seed).next_batch()
    return forward_pass(model, x.to(device), y.to(device), data.tokenizer.vocab_size)


def run_checks(cfg: LMConfig, out_dir: str | Path, steps: int = 30) -> list[CheckResult]:
    """Run the four checks in order; later checks reuse the short training run."""
    work = Path(out_dir) / "check_runs"
    shutil.rmtree(work, ignore_errors=True)
    short = _short(cfg, steps)
    run: dict[str, Any] = {}
    return [
        run_check("forward_pass", lambda: _forward_pass(cfg)),
        run_check("short_training", lambda: short_training(train, short, scratch_experiment(work / "short"), run)),
        run_check("checkpoint_roundtrip",
                  lambda: checkpoint_roundtrip(train, short, short.train.checkpoint_every, work / "resumed", run)),
        run_check("evaluation_pipeline", lambda: evaluation_pipeline(run, REQUIRED_RESULTS)),
    ]

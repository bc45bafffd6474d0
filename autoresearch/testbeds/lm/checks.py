"""The LM testbed's own check hook (the forward pass of its GPT on a real batch); the checks themselves are the
contract's defaults (`testbeds/checks.py`): forward_pass, short_training, checkpoint_roundtrip, evaluation_pipeline.
"""

from __future__ import annotations

from pathlib import Path

import torch

from autoresearch.harness.data import TrainStream, load_token_data
from autoresearch.testbeds.checks import CheckResult, write_checks
from autoresearch.testbeds.checks import forward_pass as check_forward
from autoresearch.testbeds.common.device import resolve_device
from autoresearch.testbeds.common.gpt import GPT
from autoresearch.testbeds.lm.config import LMConfig

__all__ = ["run_checks", "write_checks", "forward_pass", "CHECKS"]

CHECKS = ("forward_pass", "short_training", "checkpoint_roundtrip", "evaluation_pipeline")


def forward_pass(cfg: LMConfig) -> str:
    """One batch of the training stream through a fresh GPT: logits shape, finite loss, gradients everywhere."""
    device = resolve_device(cfg.train.device)
    data = load_token_data(cfg.data)
    torch.manual_seed(cfg.train.seed)
    model = GPT(cfg.model, data.tokenizer.vocab_size).to(device)
    x, y = TrainStream(data.train, 2, cfg.model.seq_len, seed=cfg.train.seed).next_batch()
    return check_forward(model, x.to(device), y.to(device), data.tokenizer.vocab_size)


def run_checks(cfg: LMConfig, out_dir: str | Path, steps: int = 30) -> list[CheckResult]:
    """The LM testbed's checks (`LMTestbed().checks`), in order; later checks reuse the short training run."""
    from autoresearch.testbeds.lm.testbed import LMTestbed

    return LMTestbed().checks(cfg, Path(out_dir), steps=steps)

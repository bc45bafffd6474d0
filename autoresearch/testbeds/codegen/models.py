"""Build the model of a codegen experiment: the causal HRM, or the LM testbed's GPT parameter-matched to it."""

from __future__ import annotations

from typing import Any

from torch import nn

from autoresearch.testbeds.codegen.config import CodegenConfig
from autoresearch.testbeds.codegen.param_match import match_gpt_config
from autoresearch.testbeds.common.gpt import GPT
from autoresearch.testbeds.common.hrm import HRM

__all__ = ["build_model", "gpt_config_for"]


def gpt_config_for(cfg: CodegenConfig, vocab_size: int) -> Any:
    """The GPT ModelConfig of `arch=gpt`: matched to the HRM's parameter count, or `cfg.gpt` as given."""
    return match_gpt_config(cfg.hrm, vocab_size, verbose=False) if cfg.match_params else cfg.gpt


def build_model(cfg: CodegenConfig, vocab_size: int) -> nn.Module:
    """A fresh model (init drawn from the current torch RNG)."""
    if cfg.arch == "hrm":
        return HRM(cfg.hrm, vocab_size)
    return GPT(gpt_config_for(cfg, vocab_size), vocab_size)

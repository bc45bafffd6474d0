"""The shared training kit of the testbeds: config sections, device setup, the GPT, optimizers and schedules,
generation, and the pieces both training loops call (run start, resume, checkpoint state, optimizer step, step record,
perf summary).

Testbeds import from here, never from each other; this package imports no testbed (tests/test_layers.py). Imports
are lazy (PEP 562) so that reading a config does not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autoresearch.testbeds.common.causal_lm import CausalLM, KVCacheLike
    from autoresearch.testbeds.common.checkpoint_state import checkpoint_state
    from autoresearch.testbeds.common.config import (
        MAX_SEQ_LEN,
        MAX_TOKENS,
        MAX_VOCAB,
        MAX_WIDTH,
        DataConfig,
        ModelConfig,
        OptimConfig,
        TrainConfig,
        check_whole_steps,
    )
    from autoresearch.testbeds.common.device import resolve_device, setup_device
    from autoresearch.testbeds.common.generate import (
        GenerationResult,
        ModelSampler,
        context_length,
        generate,
        sample_next,
    )
    from autoresearch.testbeds.common.gpt import GPT, KVCache
    from autoresearch.testbeds.common.optim import build_optimizers, lr_multiplier, schedule_steps, set_lr
    from autoresearch.testbeds.common.perf_summary import PERF_KEYS, perf_summary
    from autoresearch.testbeds.common.resume import resume_run
    from autoresearch.testbeds.common.run_start import start_run
    from autoresearch.testbeds.common.run_state import RunState
    from autoresearch.testbeds.common.step_record import STEP_KEYS, finish_step, step_record
    from autoresearch.testbeds.common.train_step import micro_step, optimizer_step

# public name -> module of this package; keep in step with the TYPE_CHECKING block
_EXPORTS = {
    "ModelConfig": "config", "OptimConfig": "config", "DataConfig": "config", "TrainConfig": "config",
    "MAX_WIDTH": "config", "MAX_SEQ_LEN": "config", "MAX_VOCAB": "config", "MAX_TOKENS": "config",
    "check_whole_steps": "config",
    "resolve_device": "device", "setup_device": "device",
    "GPT": "gpt", "KVCache": "gpt", "CausalLM": "causal_lm", "KVCacheLike": "causal_lm",
    "build_optimizers": "optim", "lr_multiplier": "optim", "schedule_steps": "optim", "set_lr": "optim",
    "GenerationResult": "generate", "ModelSampler": "generate", "generate": "generate", "sample_next": "generate",
    "context_length": "generate",
    "start_run": "run_start", "RunState": "run_state", "resume_run": "resume", "checkpoint_state": "checkpoint_state",
    "micro_step": "train_step", "optimizer_step": "train_step",
    "STEP_KEYS": "step_record", "step_record": "step_record", "finish_step": "step_record",
    "PERF_KEYS": "perf_summary", "perf_summary": "perf_summary",
}

__all__ = [
    "CausalLM", "DataConfig", "GPT", "GenerationResult", "KVCache", "KVCacheLike", "MAX_SEQ_LEN", "MAX_TOKENS",
    "MAX_VOCAB", "MAX_WIDTH", "ModelConfig", "ModelSampler", "OptimConfig", "PERF_KEYS", "RunState", "STEP_KEYS",
    "TrainConfig", "build_optimizers", "check_whole_steps", "checkpoint_state", "context_length", "finish_step",
    "generate", "lr_multiplier", "micro_step", "optimizer_step", "perf_summary", "resolve_device", "resume_run",
    "sample_next", "schedule_steps", "set_lr", "setup_device", "start_run", "step_record",
]
assert sorted(__all__) == sorted(_EXPORTS)  # one list of public names


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'autoresearch.testbeds.common' has no attribute {name!r}")
    return getattr(importlib.import_module(f"autoresearch.testbeds.common.{mod}"), name)


def __dir__() -> list[str]:
    return __all__

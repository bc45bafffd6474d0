"""What a resumable checkpoint holds: model, optimizers, data positions, every RNG, the run's counters and precision,
the config it was trained under, and the testbed's own extras (e.g. the initial evaluation)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from autoresearch.harness.checkpoint import rng_state
from autoresearch.harness.data import TrainStream
from autoresearch.testbeds.common.run_state import RunState

__all__ = ["checkpoint_state"]


def checkpoint_state(
    run: RunState, config: dict[str, Any], model: torch.nn.Module, optimizers: Sequence[torch.optim.Optimizer],
    streams: Mapping[str, TrainStream | None], **extra: Any,
) -> dict[str, Any]:
    """The state `save_checkpoint` writes and `resume_run` restores; `streams` maps a checkpoint key to each data
    stream (None for one this run does not use); `extra` holds the testbed's own keys."""
    return {
        "model": model.state_dict(),
        "optimizers": [o.state_dict() for o in optimizers],
        **{key: s.state_dict() if s is not None else None for key, s in streams.items()},
        "rng": rng_state(),
        "tokens": run.tokens,
        "first_loss": run.first_loss,
        "train_seconds": run.train_seconds,
        "thr_tokens": run.thr.tokens,
        "thr_seconds": run.thr.seconds,
        "precision": run.precision.as_dict(),
        "config": config,
        **extra,
    }

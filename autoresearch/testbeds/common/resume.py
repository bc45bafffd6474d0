"""The resume block of a training loop: load the newest verified checkpoint of the experiment, restore model,
optimizers, data streams, every RNG and the run's counters, and cut the log back to the checkpoint's step — so that a
resumed run reproduces the per-step losses of an uninterrupted one bit for bit on CPU."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from autoresearch.errors import CheckpointError
from autoresearch.harness.checkpoint import load_for_resume, set_rng_state
from autoresearch.harness.data import TrainStream
from autoresearch.harness.precision import PrecisionChoice
from autoresearch.harness.registry import Experiment
from autoresearch.testbeds.common import distributed
from autoresearch.testbeds.common.optim import apply_precision
from autoresearch.testbeds.common.run_state import RunState

__all__ = ["resume_run"]


def resume_run(
    exp: Experiment, config: dict[str, Any], run: RunState, *, testbed: str, device: torch.device,
    model: torch.nn.Module, optimizers: Sequence[torch.optim.Optimizer], streams: Mapping[str, TrainStream | None],
) -> dict[str, Any]:
    """Restore `exp`'s newest checkpoint (saved by `checkpoint_state` under `config`) into `run`, the model, the
    optimizers and `streams` (the same keys as when saved; None = unused); return the whole state for the testbed's
    own keys. A run that stopped before its first checkpoint is a CheckpointError naming the command to start anew.

    Several ranks: rank 0 (which holds the run's lock) picks and verifies the checkpoint first, removing stale temp
    files; then the others read the same newest checkpoint (nothing writes the folder until every rank has joined
    the first step's all-reduce); rank 0 alone cuts the log and rewrites results.yaml."""
    state = load_for_resume(exp.checkpoints_dir, config, exp.config_path, map_location=device) \
        if distributed.is_main() else None
    distributed.barrier()
    if not distributed.is_main():
        state = load_for_resume(exp.checkpoints_dir, config, exp.config_path, map_location=device)
    if state is None:
        raise CheckpointError(f"{exp.id} has no checkpoint to resume from (it stopped before the first one); "
                              f"start a new run: `autoresearch train {testbed} --config {exp.config_path}`")
    model.load_state_dict(state["model"])
    for opt, sd in zip(optimizers, state["optimizers"], strict=True):
        opt.load_state_dict(sd)
    for key, stream in streams.items():
        if stream is not None:
            stream.load_state_dict(state[key])
    set_rng_state(state["rng"])
    run.step, run.tokens, run.first_loss = state["step"], state["tokens"], state["first_loss"]
    run.train_seconds = state["train_seconds"]
    if state.get("precision"):
        run.precision = PrecisionChoice(**state["precision"])
        apply_precision(optimizers, run.precision.precision)
    run.thr.add(state["thr_tokens"], state["thr_seconds"])
    if distributed.is_main():
        exp.truncate_log(run.step)
        exp.write_results({"status": "running", "resumed_from_step": run.step})
    return state

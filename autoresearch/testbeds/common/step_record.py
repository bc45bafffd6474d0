"""The step record: the dict every logged step of a training loop carries (`STEP_KEYS`, which the research layer and
the regression traces read), and the end of a step that makes it — time it, count it, check divergence, log it."""

from __future__ import annotations

import time
from typing import Any

import torch

from autoresearch.harness.metrics import peak_memory_bytes
from autoresearch.harness.progress import TrainProgress
from autoresearch.harness.registry import Experiment
from autoresearch.testbeds.common import distributed
from autoresearch.testbeds.common.config import TrainConfig
from autoresearch.testbeds.common.run_state import RunState

__all__ = ["STEP_KEYS", "step_record", "finish_step"]

STEP_KEYS = ("step", "tokens", "loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s", "memory_mb")
"""Keys of every logged training step (log.jsonl); a testbed may add its own after them (codegen: `phase`)."""


def step_record(run: RunState, loss: float, lr: float, grad_norm: torch.Tensor | float, device: torch.device,
                **extra: Any) -> dict[str, Any]:
    """The record of the step `run` has just counted: `STEP_KEYS`, then `extra`."""
    return {
        "step": run.step,
        "tokens": run.tokens,
        "loss": loss,
        "lr": lr,
        "grad_norm": float(grad_norm),
        "tokens_per_s": round(run.thr.tokens_per_s, 1),
        "elapsed_s": round(run.train_seconds, 3),
        "memory_mb": round(peak_memory_bytes(device) / 2**20, 1),
        **extra,
    }


def finish_step(
    run: RunState, exp: Experiment, bar: TrainProgress, train_cfg: TrainConfig, *, t0: float, loss_sum: torch.Tensor,
    lr: float, grad_norm: torch.Tensor, tokens: int, total_steps: int, device: torch.device, **extra: Any,
) -> dict[str, Any]:
    """End the optimizer step that began at `t0`: its mean micro-batch loss, its time (after a device sync), the
    counters, divergence (marks `run`), the log line (every `log_every` steps, the last and a diverged one) and the
    progress bar. The first step of a compiled run is compilation, not training: it stays out of tokens/s.
    In a multi-process run the loss and the step time are the means over the ranks (identical on every rank, so all
    take the same divergence and time-budget decisions), `tokens` is the global batch's, and rank 0 alone logs."""
    loss = float(loss_sum) / train_cfg.grad_accum
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    dt = time.perf_counter() - t0
    loss, dt = distributed.mean_over_ranks(loss, dt)
    run.advance(loss, tokens, dt, timed=not (train_cfg.compile and run.step == 0))
    record = step_record(run, loss, lr, grad_norm, device, **extra)
    diverged = run.check_diverged(loss, train_cfg.diverge_loss)
    if (run.step % train_cfg.log_every == 0 or run.step == total_steps or diverged) and distributed.is_main():
        exp.log(record)
    bar.update(run.step, loss, run.thr.tokens_per_s)
    return record

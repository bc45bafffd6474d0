"""The LM testbed's training loop, top to bottom: config → data → model → optimizer → schedule → resume → loop → eval.

One linear function (STYLE.md §2). Shared pieces — device setup, run start, resume, checkpoint state, the optimizer
step, the step record, the perf summary (testbeds/common/) and checkpoints, metrics, the registry (harness/) — are
plain functions it calls.
On CPU a run is bit-for-bit deterministic for a given seed and thread count, and a resumed run reproduces the
per-step losses of an uninterrupted one exactly (model, optimizer, RNG and data position are all checkpointed).
Under torchrun (`train lm --nproc N`) each rank trains on its rows of the global batch in DistributedDataParallel
and rank 0 alone writes the experiment and evaluates (testbeds/common/distributed.py).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import torch

from autoresearch.harness.checkpoint import save_checkpoint
from autoresearch.harness.config import to_dict
from autoresearch.harness.data import TrainStream, load_token_data, val_windows
from autoresearch.harness.progress import StepHook, TrainProgress
from autoresearch.harness.registry import Experiment
from autoresearch.testbeds.common import distributed
from autoresearch.testbeds.common.checkpoint_state import checkpoint_state
from autoresearch.testbeds.common.device import setup_device
from autoresearch.testbeds.common.gpt import GPT
from autoresearch.testbeds.common.optim import build_optimizers, lr_multiplier, set_lr
from autoresearch.testbeds.common.perf_summary import perf_summary
from autoresearch.testbeds.common.resume import resume_run
from autoresearch.testbeds.common.run_start import start_run
from autoresearch.testbeds.common.step_record import finish_step
from autoresearch.testbeds.common.train_step import micro_step, optimizer_step
from autoresearch.testbeds.lm.config import LMConfig
from autoresearch.testbeds.lm.evaluate import evaluate

__all__ = ["train"]


def train(
    cfg: LMConfig,
    exp: Experiment,
    *,
    resume: bool = False,
    progress: bool = False,
    on_step: StepHook | None = None,
    testbed: str = "lm",
) -> dict[str, Any]:
    """Train `cfg` into experiment folder `exp` and return its results (also written to results.yaml); `testbed` is
    the name recorded as `meta.testbed` in config.yaml."""
    t_wall = time.perf_counter()
    # rank 0 holds the experiment's lock and records a crash; the other ranks of a torchrun launch never write it
    with exp.running(resume=resume) if distributed.is_main() else contextlib.nullcontext():
        return _train(cfg, exp, resume=resume, progress=progress, on_step=on_step, t_wall=t_wall, testbed=testbed)


def _train(
    cfg: LMConfig, exp: Experiment, *, resume: bool, progress: bool, on_step: StepHook | None, t_wall: float,
    testbed: str,
) -> dict[str, Any]:
    # --- config, device, seeds -------------------------------------------------------------------------------
    cfg.check_budget()
    config = to_dict(cfg)
    device = setup_device(cfg.train)
    total_steps = cfg.steps
    run = start_run(exp, config, cfg.train, device, testbed=testbed, resume=resume)

    # --- data ------------------------------------------------------------------------------------------------
    data = load_token_data(cfg.data)
    distributed.local_rows(cfg.train.batch_size)  # the global batch splits evenly over the ranks, or a ConfigError
    stream = TrainStream(data.train, cfg.train.batch_size, cfg.model.seq_len, seed=cfg.train.seed,
                         rank=distributed.rank(), world=distributed.world_size())
    valset = val_windows(data.val, cfg.eval.val_batches, cfg.eval.batch_size, cfg.model.seq_len)

    # --- model -----------------------------------------------------------------------------------------------
    model = GPT(cfg.model, data.tokenizer.vocab_size).to(device)
    flops_per_token = model.flops_per_token(cfg.model.seq_len)
    step_model = distributed.wrap(model, device)  # DDP over the ranks; the model itself in one process
    step_model = torch.compile(step_model) if cfg.train.compile else step_model

    # --- optimizer and schedule ------------------------------------------------------------------------------
    opts = build_optimizers(model, cfg.optim, precision=run.precision.precision)
    params = list(model.parameters())

    # --- resume or fresh start -------------------------------------------------------------------------------
    if resume:
        saved = resume_run(exp, config, run, testbed=testbed, device=device, model=model, optimizers=opts,
                           streams={"data": stream})
        init_eval = saved.get("init_eval", {})
    else:
        init_eval = (evaluate(model, valset.batches, data.token_bytes, device, run.precision.precision)
                     if distributed.is_main() else {})
    main = distributed.is_main()

    def save() -> None:
        if main:
            save_checkpoint(exp.checkpoints_dir, run.step,
                        checkpoint_state(run, config, model, opts, {"data": stream}, init_eval=init_eval))

    # --- loop ------------------------------------------------------------------------------------------------
    bar = TrainProgress(total_steps, enabled=progress)
    bar.advance(run.step)
    model.train()
    while run.step < total_steps and not run.out_of_time(cfg.train.max_seconds):
        t0 = time.perf_counter()
        lr = set_lr(opts, lr_multiplier(run.step, total_steps, cfg.optim))
        loss_sum = torch.zeros((), device=device)
        for micro in range(cfg.train.grad_accum):
            x, y = stream.next_batch()
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with distributed.accumulate(step_model, last=micro == cfg.train.grad_accum - 1):
                loss_sum += micro_step(step_model, x, y, device, run.precision.precision, cfg.train.grad_accum)
        grad_norm = optimizer_step(opts, params, cfg.optim.grad_clip)
        record = finish_step(run, exp, bar, cfg.train, t0=t0, loss_sum=loss_sum, lr=lr, grad_norm=grad_norm,
                             tokens=cfg.tokens_per_step, total_steps=total_steps, device=device)
        if run.status != "ok":
            break
        if cfg.eval.every and run.step % cfg.eval.every == 0 and run.step < total_steps and main:
            exp.log({"step": run.step, "tokens": run.tokens,
                     **evaluate(model, valset.batches, data.token_bytes, device, run.precision.precision)})
        if cfg.train.checkpoint_every and run.step % cfg.train.checkpoint_every == 0 and run.step < total_steps:
            save()
        if on_step is not None:
            on_step(run.step, record)
    bar.close()
    if not main:  # the evaluation, results and the last checkpoint are rank 0's
        return {"status": run.status, "steps": run.step, "tokens": run.tokens, "rank": distributed.rank()}

    # --- final evaluation and summary ------------------------------------------------------------------------
    if run.status == "ok":
        save()
        final = evaluate(model, valset.batches, data.token_bytes, device, run.precision.precision)
    else:
        final = {"val_loss": float("nan"), "val_bpb": float("nan"), "perplexity": float("nan")}
    results: dict[str, Any] = {
        "status": run.status,
        "val_loss": final["val_loss"],
        "val_bpb": final["val_bpb"],
        "perplexity": final["perplexity"],
        "val_loss_init": init_eval.get("val_loss"),
        **perf_summary(run, flops_per_token, device, cfg.train.seed, t_wall),
        "steps": run.step,
        "tokens": run.tokens,
        "params": model.num_params(),
        "flops_per_token": flops_per_token,
        "val_hash": valset.hash,
        "data": {k: v for k, v in data.meta.items() if isinstance(v, (int, float, str, bool))},
    }
    if run.error:
        results["error"] = run.error
    exp.write_results(results)
    return results

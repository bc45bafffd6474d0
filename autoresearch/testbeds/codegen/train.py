"""The code-generation testbed's training loop, top to bottom: config → tokenizer → data → model → optimizer →
resume → loop (optional pretraining steps on a Python corpus, then SFT) → held-out loss → pass@k in the sandbox.

The model (causal HRM or the parameter-matched GPT) learns the generated task suite's train templates with the loss
on the answer only; it is scored by executing its greedy and sampled completions of held-out tasks in the sandbox.
Device setup, run start, resume, checkpoint state, the optimizer step, the step record and the perf summary are the
shared training kit's (testbeds/common/), exactly as in the LM testbed, so a run resumes bit-for-bit on CPU.
Under torchrun (`train codegen --nproc N`) each rank trains on its rows of the global batch in DistributedDataParallel
and rank 0 alone writes the experiment and scores (testbeds/common/distributed.py). The answer-only loss is each
rank's mean over its own answer tokens, averaged equally over ranks (as micro-batches of `grad_accum` already are),
so it matches a single process closely but not to rounding as the LM testbed does.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import torch

from autoresearch.harness.checkpoint import save_checkpoint
from autoresearch.harness.config import to_dict
from autoresearch.harness.data import TrainStream
from autoresearch.harness.progress import StepHook, TrainProgress
from autoresearch.harness.registry import Experiment
from autoresearch.testbeds.codegen.config import CodegenConfig
from autoresearch.testbeds.codegen.data import build_code_data
from autoresearch.testbeds.codegen.models import build_model
from autoresearch.testbeds.codegen.scoring import heldout_loss, score_pass_at_k
from autoresearch.testbeds.common import distributed
from autoresearch.testbeds.common.checkpoint_state import checkpoint_state
from autoresearch.testbeds.common.device import setup_device
from autoresearch.testbeds.common.optim import build_optimizers, lr_multiplier, set_lr
from autoresearch.testbeds.common.perf_summary import perf_summary
from autoresearch.testbeds.common.resume import resume_run
from autoresearch.testbeds.common.run_start import start_run
from autoresearch.testbeds.common.step_record import finish_step
from autoresearch.testbeds.common.train_step import micro_step, optimizer_step

__all__ = ["train"]


def train(
    cfg: CodegenConfig,
    exp: Experiment,
    *,
    resume: bool = False,
    progress: bool = False,
    on_step: StepHook | None = None,
    testbed: str = "codegen",
) -> dict[str, Any]:
    """Train `cfg` into `exp`, score it, return the results (also written to results.yaml); `testbed` is the name
    recorded as `meta.testbed` in config.yaml."""
    t_wall = time.perf_counter()
    # rank 0 holds the experiment's lock and records a crash; the other ranks of a torchrun launch never write it
    with exp.running(resume=resume) if distributed.is_main() else contextlib.nullcontext():
        return _train(cfg, exp, resume=resume, progress=progress, on_step=on_step, t_wall=t_wall, testbed=testbed)


def _train(
    cfg: CodegenConfig, exp: Experiment, *, resume: bool, progress: bool, on_step: StepHook | None, t_wall: float,
    testbed: str,
) -> dict[str, Any]:
    # --- config, device, seeds -------------------------------------------------------------------------------
    cfg.check_budget()
    config = to_dict(cfg)
    device = setup_device(cfg.train)
    total_steps = cfg.steps
    run = start_run(exp, config, cfg.train, device, testbed=testbed, resume=resume)

    # --- tokenizer and data ----------------------------------------------------------------------------------
    data = build_code_data(cfg)
    B, accum = cfg.train.batch_size, cfg.train.grad_accum
    distributed.local_rows(B)  # the global batch splits evenly over the ranks, or a ConfigError
    pretrain = (TrainStream(data.pretrain, B, cfg.seq_len, seed=cfg.train.seed, rank=distributed.rank(),
                            world=distributed.world_size())
                if data.pretrain is not None and cfg.data.pretrain_steps > 0 else None)
    sft_start = cfg.data.pretrain_steps if pretrain is not None else 0

    # --- model -----------------------------------------------------------------------------------------------
    model = build_model(cfg, data.tokenizer.vocab_size).to(device)
    flops_per_token = model.flops_per_token(cfg.seq_len)
    step_model = distributed.wrap(model, device)  # DDP over the ranks; the model itself in one process
    step_model = torch.compile(step_model) if cfg.train.compile else step_model

    # --- optimizer and schedule ------------------------------------------------------------------------------
    opts = build_optimizers(model, cfg.optim, precision=run.precision.precision)
    params = list(model.parameters())

    # --- resume or fresh start -------------------------------------------------------------------------------
    if resume:
        saved = resume_run(exp, config, run, testbed=testbed, device=device, model=model, optimizers=opts,
                           streams={"pretrain": pretrain})
        answer_tokens, init_loss = saved["answer_tokens"], saved["init_loss"]
    else:
        answer_tokens, init_loss = 0, (heldout_loss(model, data.heldout, cfg, device, run.precision.precision)
                                       if distributed.is_main() else None)
    main = distributed.is_main()

    def save() -> None:
        if main:
            save_checkpoint(exp.checkpoints_dir, run.step, checkpoint_state(
                run, config, model, opts, {"pretrain": pretrain}, answer_tokens=answer_tokens, init_loss=init_loss))

    # --- loop: pretraining steps on the corpus (if any), then SFT on the tasks' answers ----------------------
    bar = TrainProgress(total_steps, enabled=progress)
    bar.advance(run.step)
    model.train()
    while run.step < total_steps and not run.out_of_time(cfg.train.max_seconds):
        t0 = time.perf_counter()
        lr = set_lr(opts, lr_multiplier(run.step, total_steps, cfg.optim))
        loss_sum = torch.zeros((), device=device)
        pretraining = pretrain is not None and run.step < cfg.data.pretrain_steps
        for micro in range(accum):
            if pretraining:  # this rank's rows already; a pretraining window has no masked labels
                x, y = pretrain.next_batch()
                answer_tokens += int((y != -100).sum()) * distributed.world_size()
            else:  # the global batch's answer tokens are counted, then this rank keeps its rows
                x, y = data.train.batch((run.step - sft_start) * accum + micro, B)
                answer_tokens += int((y != -100).sum())
                x, y = distributed.rows_of_rank(x), distributed.rows_of_rank(y)
            with distributed.accumulate(step_model, last=micro == accum - 1):
                loss_sum += micro_step(step_model, x.to(device), y.to(device), device, run.precision.precision, accum)
        grad_norm = optimizer_step(opts, params, cfg.optim.grad_clip)
        record = finish_step(run, exp, bar, cfg.train, t0=t0, loss_sum=loss_sum, lr=lr, grad_norm=grad_norm,
                             tokens=cfg.tokens_per_step, total_steps=total_steps, device=device,
                             phase="pretrain" if pretraining else "sft")
        if run.status != "ok":
            break
        if cfg.train.checkpoint_every and run.step % cfg.train.checkpoint_every == 0 and run.step < total_steps:
            save()
        if on_step is not None:
            on_step(run.step, record)
    bar.close()
    if not main:  # the held-out loss, pass@k, results and the last checkpoint are rank 0's
        return {"status": run.status, "steps": run.step, "tokens": run.tokens, "rank": distributed.rank()}

    # --- held-out loss and pass@k ----------------------------------------------------------------------------
    results: dict[str, Any] = {"status": run.status}
    if run.status == "ok":
        save()
        results["heldout_loss"] = heldout_loss(model, data.heldout, cfg, device, run.precision.precision)
        if cfg.eval.score:
            results.update(score_pass_at_k(model, data.tokenizer, data.heldout_tasks, cfg, exp.path / "eval"))
    results.update({
        "heldout_loss_init": init_loss,
        **perf_summary(run, flops_per_token, device, cfg.train.seed, t_wall),
        "steps": run.step,
        "tokens": run.tokens,
        "answer_tokens": answer_tokens,
        "params": model.num_params(),
        "arch": cfg.arch,
        "data": data.meta,
    })
    if run.error:
        results["error"] = run.error
    exp.write_results(results)
    return results

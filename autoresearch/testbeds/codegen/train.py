"""The code-generation testbed's training loop, top to bottom: config → tokenizer → data → model → optimizer →
resume → loop (optional pretraining steps on a Python corpus, then SFT) → held-out loss → pass@k in the sandbox.

The model (causal HRM or the parameter-matched GPT) learns the generated task suite's train templates with the loss
on the answer only; it is scored by executing its greedy and sampled completions of held-out tasks in the sandbox.
Checkpoints, metrics, logging and the registry are the harness's, exactly as in the LM testbed, so a run resumes
bit-for-bit on CPU.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from autoresearch.errors import CheckpointError
from autoresearch.harness.checkpoint import (
    load_for_resume,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from autoresearch.harness.config import to_dict
from autoresearch.harness.data import TrainStream
from autoresearch.harness.metrics import Throughput, gpu_peak_flops, is_diverged, mfu, peak_memory_bytes
from autoresearch.harness.precision import PrecisionChoice, autocast, resolve_precision
from autoresearch.harness.progress import StepHook, TrainProgress
from autoresearch.harness.provenance import run_metadata
from autoresearch.harness.registry import Experiment
from autoresearch.testbeds.codegen.config import CodegenConfig
from autoresearch.testbeds.codegen.data import build_code_data
from autoresearch.testbeds.codegen.models import build_model
from autoresearch.testbeds.codegen.scoring import heldout_loss, score_pass_at_k
from autoresearch.testbeds.lm.optim import build_optimizers, lr_multiplier, set_lr
from autoresearch.testbeds.lm.train import resolve_device

__all__ = ["train"]


def train(
    cfg: CodegenConfig,
    exp: Experiment,
    *,
    resume: bool = False,
    progress: bool = False,
    on_step: StepHook | None = None,
) -> dict[str, Any]:
    """Train `cfg` into `exp`, score it, return the results (also written to results.yaml)."""
    t_wall = time.perf_counter()
    with exp.running(resume=resume):  # holds the experiment's lock; a crash is recorded
        return _train(cfg, exp, resume=resume, progress=progress, on_step=on_step, t_wall=t_wall)


def _train(
    cfg: CodegenConfig, exp: Experiment, *, resume: bool, progress: bool, on_step: StepHook | None, t_wall: float
) -> dict[str, Any]:
    # --- config, device, seeds -------------------------------------------------------------------------------
    device = resolve_device(cfg.train.device)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    prec = resolve_precision(cfg.train.precision, device)  # once per run; a resumed run keeps its checkpoint's
    if not resume:
        exp.write_config(to_dict(cfg), {**run_metadata(cfg.train.seed, str(device)), "precision": prec.as_dict()})
        exp.write_results({"status": "running"})

    # --- tokenizer and data ----------------------------------------------------------------------------------
    data = build_code_data(cfg)
    tokenizer = data.tokenizer
    seq_len = cfg.seq_len
    B = cfg.train.batch_size
    tokens_per_step = B * cfg.train.grad_accum * seq_len
    total_steps = max(1, cfg.train.train_tokens // tokens_per_step)

    pretrain = (TrainStream(data.pretrain, B, seq_len, seed=cfg.train.seed)
                if data.pretrain is not None and cfg.data.pretrain_steps > 0 else None)

    # --- model -----------------------------------------------------------------------------------------------
    model = build_model(cfg, tokenizer.vocab_size).to(device)
    n_params = model.num_params()
    flops_per_token = model.flops_per_token(seq_len)

    # --- optimizer and schedule ------------------------------------------------------------------------------
    opts = build_optimizers(model, cfg.optim)
    params = list(model.parameters())

    # --- resume or fresh start -------------------------------------------------------------------------------
    step, tokens, first_loss, train_seconds, answer_tokens = 0, 0, None, 0.0, 0
    thr = Throughput()
    if resume:
        state = load_for_resume(exp.checkpoints_dir, to_dict(cfg), exp.config_path, map_location=device)
        if state is None:
            raise CheckpointError(f"{exp.id} has no checkpoint to resume from (it stopped before the first one); "
                                  f"start a new run: `autoresearch train codegen --config {exp.config_path}`")
        model.load_state_dict(state["model"])
        for opt, sd in zip(opts, state["optimizers"], strict=True):
            opt.load_state_dict(sd)
        set_rng_state(state["rng"])
        if pretrain is not None:
            pretrain.load_state_dict(state["pretrain"])
        step, tokens, first_loss = state["step"], state["tokens"], state["first_loss"]
        train_seconds, answer_tokens = state["train_seconds"], state["answer_tokens"]
        init_loss = state["init_loss"]
        if state.get("precision"):
            prec = PrecisionChoice(**state["precision"])
        thr.add(state["thr_tokens"], state["thr_seconds"])
        exp.truncate_log(step)
        exp.write_results({"status": "running", "resumed_from_step": step})
    else:
        init_loss = heldout_loss(model, data.heldout, cfg, device, prec.precision)

    def checkpoint_state() -> dict[str, Any]:
        return {
            "model": model.state_dict(),
            "optimizers": [o.state_dict() for o in opts],
            "rng": rng_state(),
            "pretrain": pretrain.state_dict() if pretrain is not None else None,
            "tokens": tokens,
            "answer_tokens": answer_tokens,
            "init_loss": init_loss,
            "first_loss": first_loss,
            "train_seconds": train_seconds,
            "thr_tokens": thr.tokens,
            "thr_seconds": thr.seconds,
            "precision": prec.as_dict(),
            "config": to_dict(cfg),
        }

    # --- loop ------------------------------------------------------------------------------------------------
    status, error = "ok", None
    bar = TrainProgress(total_steps, enabled=progress)
    bar.advance(step)
    model.train()
    while step < total_steps:
        if cfg.train.max_seconds and train_seconds >= cfg.train.max_seconds:
            break
        t0 = time.perf_counter()
        lr = set_lr(opts, lr_multiplier(step, total_steps, cfg.optim))
        loss_sum = torch.zeros((), device=device)
        pretraining = pretrain is not None and step < cfg.data.pretrain_steps
        for micro in range(cfg.train.grad_accum):
            if pretraining:
                x, y = pretrain.next_batch()
            else:
                sft_step = step - (cfg.data.pretrain_steps if pretrain is not None else 0)
                x, y = data.train.batch(sft_step * cfg.train.grad_accum + micro, B)
            answer_tokens += int((y != -100).sum())
            x, y = x.to(device), y.to(device)
            with autocast(device, prec.precision):
                loss = model(x, y)
            (loss / cfg.train.grad_accum).backward()
            loss_sum += loss.detach()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip if cfg.optim.grad_clip > 0 else math.inf)
        for opt in opts:
            opt.step()
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        step_loss = float(loss_sum) / cfg.train.grad_accum
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        dt = time.perf_counter() - t0
        step += 1
        tokens += tokens_per_step
        train_seconds += dt
        thr.add(tokens_per_step, dt)
        first_loss = step_loss if first_loss is None else first_loss
        record = {
            "step": step,
            "tokens": tokens,
            "loss": step_loss,
            "lr": lr,
            "grad_norm": float(grad_norm),
            "tokens_per_s": round(thr.tokens_per_s, 1),
            "elapsed_s": round(train_seconds, 3),
            "memory_mb": round(peak_memory_bytes(device) / 2**20, 1),
            "phase": "pretrain" if pretraining else "sft",
        }
        diverged = is_diverged(step_loss, first_loss, cfg.train.diverge_loss)
        if step % cfg.train.log_every == 0 or step == total_steps or diverged:
            exp.log(record)
        bar.update(step, step_loss, thr.tokens_per_s)
        if diverged:
            status = "diverged"
            error = f"loss {step_loss:.4g} at step {step} (first loss {first_loss:.4g}, limit x{cfg.train.diverge_loss})"
            break
        if cfg.train.checkpoint_every and step % cfg.train.checkpoint_every == 0 and step < total_steps:
            save_checkpoint(exp.checkpoints_dir, step, checkpoint_state())
        if on_step is not None:
            on_step(step, record)
    bar.close()

    # --- held-out loss and pass@k ----------------------------------------------------------------------------
    results: dict[str, Any] = {"status": status}
    if status == "ok":
        save_checkpoint(exp.checkpoints_dir, step, checkpoint_state())
        results["heldout_loss"] = heldout_loss(model, data.heldout, cfg, device, prec.precision)
        if cfg.eval.score:
            results.update(score_pass_at_k(model, tokenizer, data.heldout_tasks, cfg, exp.path / "eval"))
    peak = gpu_peak_flops(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    results.update({
        "heldout_loss_init": init_loss,
        "tokens_per_s": round(thr.tokens_per_s, 1),
        "achieved_tflops": round(flops_per_token * thr.tokens_per_s / 1e12, 4),
        "mfu": mfu(flops_per_token, thr.tokens_per_s, peak),
        "peak_memory_mb": round(peak_memory_bytes(device) / 2**20, 1),
        "train_seconds": round(train_seconds, 3),
        "wall_seconds": round(time.perf_counter() - t_wall, 3),
        "steps": step,
        "tokens": tokens,
        "answer_tokens": answer_tokens,
        "params": n_params,
        "arch": cfg.arch,
        "device": str(device),
        "precision": prec.precision,
        "precision_reason": prec.reason,
        "seed": cfg.train.seed,
        "data": data.meta,
    })
    if error:
        results["error"] = error
    exp.write_results(results)
    return results

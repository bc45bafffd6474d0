"""The LM testbed's training loop, top to bottom: config → data → model → optimizer → schedule → resume → loop → eval.

One linear function (STYLE.md §2). Shared pieces — checkpoints, metrics, the registry — are plain functions it calls.
On CPU a run is bit-for-bit deterministic for a given seed and thread count, and a resumed run reproduces the
per-step losses of an uninterrupted one exactly (model, optimizer, RNG and data position are all checkpointed).
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from autoresearch.errors import AutoresearchError, CheckpointError
from autoresearch.harness.checkpoint import (
    load_for_resume,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from autoresearch.harness.config import to_dict
from autoresearch.harness.data import TrainStream, load_token_data, val_windows
from autoresearch.harness.metrics import Throughput, gpu_peak_flops, is_diverged, mfu, peak_memory_bytes
from autoresearch.harness.precision import PrecisionChoice, autocast, resolve_precision
from autoresearch.harness.progress import StepHook, TrainProgress
from autoresearch.harness.provenance import run_metadata
from autoresearch.harness.registry import Experiment
from autoresearch.testbeds.lm.config import LMConfig
from autoresearch.testbeds.lm.evaluate import evaluate
from autoresearch.testbeds.lm.model import GPT
from autoresearch.testbeds.lm.optim import build_optimizers, lr_multiplier, set_lr

__all__ = ["train", "resolve_device"]

def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise AutoresearchError(f"`train.device` is {spec!r} but CUDA is not available; use --set train.device=cpu")
    return torch.device(spec)


def train(
    cfg: LMConfig,
    exp: Experiment,
    *,
    resume: bool = False,
    progress: bool = False,
    on_step: StepHook | None = None,
) -> dict[str, Any]:
    """Train `cfg` into experiment folder `exp` and return its results (also written to results.yaml)."""
    t_wall = time.perf_counter()
    with exp.running(resume=resume):  # holds the experiment's lock; a crash is recorded
        return _train(cfg, exp, resume=resume, progress=progress, on_step=on_step, t_wall=t_wall)


def _train(
    cfg: LMConfig, exp: Experiment, *, resume: bool, progress: bool, on_step: StepHook | None, t_wall: float
) -> dict[str, Any]:
    # --- config, device, seeds -------------------------------------------------------------------------------
    cfg.check_budget()
    device = resolve_device(cfg.train.device)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.cuda.reset_peak_memory_stats(device)
    total_steps = cfg.steps
    prec = resolve_precision(cfg.train.precision, device)  # once per run; a resumed run keeps its checkpoint's
    if not resume:
        exp.write_config(to_dict(cfg), {**run_metadata(cfg.train.seed, str(device)), "precision": prec.as_dict()})
        exp.write_results({"status": "running"})

    # --- data ------------------------------------------------------------------------------------------------
    data = load_token_data(cfg.data)
    vocab_size = data.tokenizer.vocab_size
    stream = TrainStream(data.train, cfg.train.batch_size, cfg.model.seq_len, seed=cfg.train.seed)
    valset = val_windows(data.val, cfg.eval.val_batches, cfg.eval.batch_size, cfg.model.seq_len)

    # --- model -----------------------------------------------------------------------------------------------
    model = GPT(cfg.model, vocab_size).to(device)
    n_params = model.num_params()
    flops_per_token = model.flops_per_token(cfg.model.seq_len)
    step_model: torch.nn.Module = torch.compile(model) if cfg.train.compile else model

    # --- optimizer and schedule ------------------------------------------------------------------------------
    opts = build_optimizers(model, cfg.optim)
    params = list(model.parameters())

    # --- resume or fresh start -------------------------------------------------------------------------------
    step, tokens, first_loss, train_seconds = 0, 0, None, 0.0
    thr = Throughput()
    init_eval: dict[str, float] = {}
    if resume:
        state = load_for_resume(exp.checkpoints_dir, to_dict(cfg), exp.config_path, map_location=device)
        if state is None:
            raise CheckpointError(f"{exp.id} has no checkpoint to resume from (it stopped before the first one); "
                                  f"start a new run: `autoresearch train lm --config {exp.config_path}`")
        model.load_state_dict(state["model"])
        for opt, sd in zip(opts, state["optimizers"], strict=True):
            opt.load_state_dict(sd)
        stream.load_state_dict(state["data"])
        set_rng_state(state["rng"])
        step, tokens, first_loss = state["step"], state["tokens"], state["first_loss"]
        train_seconds, init_eval = state["train_seconds"], state.get("init_eval", {})
        if state.get("precision"):
            prec = PrecisionChoice(**state["precision"])
        thr.add(state["thr_tokens"], state["thr_seconds"])
        exp.truncate_log(step)
        exp.write_results({"status": "running", "resumed_from_step": step})
    else:
        init_eval = evaluate(model, valset.batches, data.token_bytes, device, prec.precision)

    def checkpoint_state() -> dict[str, Any]:
        return {
            "model": model.state_dict(),
            "optimizers": [o.state_dict() for o in opts],
            "data": stream.state_dict(),
            "rng": rng_state(),
            "tokens": tokens,
            "first_loss": first_loss,
            "train_seconds": train_seconds,
            "thr_tokens": thr.tokens,
            "thr_seconds": thr.seconds,
            "init_eval": init_eval,
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
        for _ in range(cfg.train.grad_accum):
            x, y = stream.next_batch()
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with autocast(device, prec.precision):
                loss = step_model(x, y)
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
        tokens += cfg.tokens_per_step
        train_seconds += dt
        if not (cfg.train.compile and step == 1):  # the first compiled step is compilation, not training
            thr.add(cfg.tokens_per_step, dt)
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
        }
        diverged = is_diverged(step_loss, first_loss, cfg.train.diverge_loss)
        if step % cfg.train.log_every == 0 or step == total_steps or diverged:
            exp.log(record)
        bar.update(step, step_loss, thr.tokens_per_s)
        if diverged:
            status = "diverged"
            error = f"loss {step_loss:.4g} at step {step} (first loss {first_loss:.4g}, limit x{cfg.train.diverge_loss})"
            break
        if cfg.eval.every and step % cfg.eval.every == 0 and step < total_steps:
            exp.log({"step": step, "tokens": tokens,
                     **evaluate(model, valset.batches, data.token_bytes, device, prec.precision)})
        if cfg.train.checkpoint_every and step % cfg.train.checkpoint_every == 0 and step < total_steps:
            save_checkpoint(exp.checkpoints_dir, step, checkpoint_state())
        if on_step is not None:
            on_step(step, record)
    bar.close()

    # --- final evaluation and summary ------------------------------------------------------------------------
    if status == "ok":
        save_checkpoint(exp.checkpoints_dir, step, checkpoint_state())
        final = evaluate(model, valset.batches, data.token_bytes, device, prec.precision)
    else:
        final = {"val_loss": float("nan"), "val_bpb": float("nan"), "perplexity": float("nan")}
    peak = gpu_peak_flops(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    results: dict[str, Any] = {
        "status": status,
        "val_loss": final["val_loss"],
        "val_bpb": final["val_bpb"],
        "perplexity": final["perplexity"],
        "val_loss_init": init_eval.get("val_loss"),
        "tokens_per_s": round(thr.tokens_per_s, 1),
        "achieved_tflops": round(flops_per_token * thr.tokens_per_s / 1e12, 4),
        "mfu": mfu(flops_per_token, thr.tokens_per_s, peak),
        "peak_memory_mb": round(peak_memory_bytes(device) / 2**20, 1),
        "train_seconds": round(train_seconds, 3),
        "wall_seconds": round(time.perf_counter() - t_wall, 3),
        "steps": step,
        "tokens": tokens,
        "params": n_params,
        "flops_per_token": flops_per_token,
        "device": str(device),
        "precision": prec.precision,
        "precision_reason": prec.reason,
        "seed": cfg.train.seed,
        "val_hash": valset.hash,
        "data": {k: v for k, v in data.meta.items() if isinstance(v, (int, float, str, bool))},
    }
    if error:
        results["error"] = error
    exp.write_results(results)
    return results

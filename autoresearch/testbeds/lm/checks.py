"""Integration checks of the LM testbed: forward_pass, short_training, checkpoint_roundtrip, evaluation_pipeline.

Each check exercises the real product path (the real loop writing a real experiment folder) at a short budget and
returns pass/fail with a detail a person can read, e.g. "loss from 8.31 to 6.02 over 30 steps".
"""

from __future__ import annotations

import copy
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from autoresearch.harness.atomic import atomic_write_yaml
from autoresearch.harness.checkpoint import load_checkpoint, save_checkpoint
from autoresearch.harness.data import TrainStream, load_token_data
from autoresearch.harness.registry import STATUSES, Experiment
from autoresearch.testbeds.base import CheckResult
from autoresearch.testbeds.lm.config import LMConfig
from autoresearch.testbeds.lm.model import GPT
from autoresearch.testbeds.lm.train import resolve_device, train

__all__ = ["run_checks", "write_checks", "CHECKS", "REQUIRED_RESULTS"]

CHECKS = ("forward_pass", "short_training", "checkpoint_roundtrip", "evaluation_pipeline")
REQUIRED_RESULTS = ("val_loss", "val_bpb", "perplexity", "tokens_per_s", "train_seconds", "wall_seconds",
                    "peak_memory_mb", "steps", "tokens", "params", "achieved_tflops")


def _short(cfg: LMConfig, steps: int) -> LMConfig:
    c = copy.deepcopy(cfg)
    c.train.train_tokens = steps * c.tokens_per_step
    c.train.log_every = 1
    c.train.checkpoint_every = steps // 2
    c.train.max_seconds = 0.0
    c.eval.val_batches = min(c.eval.val_batches, 4)
    c.eval.every = 0
    return c


def _check(name: str, fn: Callable[[], str]) -> CheckResult:
    t0 = time.perf_counter()
    try:
        detail = fn()
        status = "pass"
    except _Fail as e:
        status, detail = "fail", str(e)
    except Exception as e:  # a crash inside a check is a failed check with its error, not a crashed command
        status, detail = "fail", f"{type(e).__name__}: {e}"
    return CheckResult(name=name, status=status, detail=detail, seconds=round(time.perf_counter() - t0, 2))


class _Fail(Exception):
    pass


def _forward_pass(cfg: LMConfig) -> str:
    device = resolve_device(cfg.train.device)
    data = load_token_data(cfg.data)
    torch.manual_seed(cfg.train.seed)
    model = GPT(cfg.model, data.tokenizer.vocab_size).to(device)
    x, y = TrainStream(data.train, 2, cfg.model.seq_len, seed=cfg.train.seed).next_batch()
    x, y = x.to(device), y.to(device)
    logits = model(x)
    want = (2, cfg.model.seq_len, data.tokenizer.vocab_size)
    if tuple(logits.shape) != want:
        raise _Fail(f"logits shape {tuple(logits.shape)}, expected {want}")
    loss = model(x, y)
    if not math.isfinite(float(loss.detach())):
        raise _Fail(f"initial loss is {float(loss)}")
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()
               or float(p.grad.abs().sum()) == 0.0]
    if missing:
        raise _Fail(f"no finite non-zero gradient reaches {len(missing)} parameters, e.g. {missing[:3]}")
    expected = math.log(data.tokenizer.vocab_size)
    n = sum(1 for _ in model.parameters())
    return f"logits {want}, initial loss {float(loss.detach()):.3f} (ln V = {expected:.3f}), gradients reach all {n} tensors"


def run_checks(cfg: LMConfig, out_dir: str | Path, steps: int = 30) -> list[CheckResult]:
    """Run the four checks in order; later checks reuse the short training run."""
    out = Path(out_dir)
    work = out / "check_runs"
    shutil.rmtree(work, ignore_errors=True)
    short = _short(cfg, steps)
    results: list[CheckResult] = [_check("forward_pass", lambda: _forward_pass(cfg))]
    run: dict[str, Any] = {}

    def short_training() -> str:
        exp = Experiment(work / "short")
        exp.checkpoints_dir.mkdir(parents=True)
        run["exp"], run["results"] = exp, train(short, exp)
        losses = [r["loss"] for r in exp.read_log() if "loss" in r]
        if run["results"]["status"] != "ok":
            raise _Fail(f"run ended with status {run['results']['status']}: {run['results'].get('error')}")
        k = max(1, len(losses) // 5)
        first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
        if not last < first:
            raise _Fail(f"loss did not decrease: from {first:.3f} to {last:.3f} over {len(losses)} steps")
        return f"loss from {first:.3f} to {last:.3f} over {len(losses)} steps (mean of first/last {k})"

    def checkpoint_roundtrip() -> str:
        if "exp" not in run or run["results"]["status"] != "ok":
            raise _Fail("short_training did not finish with status ok, so there is no healthy run to resume")
        src: Experiment = run["exp"]
        k = short.train.checkpoint_every
        state = load_checkpoint(src.checkpoints_dir / f"step-{k:07d}.pt")
        dst = Experiment(work / "resumed")
        dst.checkpoints_dir.mkdir(parents=True)
        shutil.copy(src.config_path, dst.config_path)
        shutil.copy(src.log_path, dst.log_path)
        save_checkpoint(dst.checkpoints_dir, k, {key: v for key, v in state.items() if key != "step"})
        train(short, dst, resume=True)
        a = [(r["step"], r["loss"]) for r in src.read_log() if "loss" in r and r["step"] > k]
        b = [(r["step"], r["loss"]) for r in dst.read_log() if "loss" in r and r["step"] > k]
        if a != b:
            diff = next(((sa, la, lb) for (sa, la), (_, lb) in zip(a, b) if la != lb), None)
            raise _Fail(f"resumed losses differ from the uninterrupted run (first difference: step, loss, resumed = {diff})")
        return f"saved at step {k}, reloaded, steps {k + 1}-{steps} reproduce the uninterrupted losses bit-for-bit"

    def evaluation_pipeline() -> str:
        res = run.get("results")
        if not res:
            raise _Fail("no results from short_training")
        if res.get("status") not in STATUSES:
            raise _Fail(f"status {res.get('status')!r} is not one of {STATUSES}")
        bad = [k for k in REQUIRED_RESULTS if not isinstance(res.get(k), (int, float)) or not math.isfinite(res[k])]
        if bad:
            raise _Fail(f"metrics missing or not finite: {', '.join(f'{k}={res.get(k)!r}' for k in bad)}")
        saved = run["exp"].read_results()
        if saved.get("val_loss") != res["val_loss"]:
            raise _Fail("results.yaml does not hold the returned metrics")
        return (f"val_loss {res['val_loss']:.3f}, val_bpb {res['val_bpb']:.3f}, ppl {res['perplexity']:.1f}, "
                f"{res['tokens_per_s']:.0f} tok/s, all {len(REQUIRED_RESULTS)} metrics finite")

    results.append(_check("short_training", short_training))
    results.append(_check("checkpoint_roundtrip", checkpoint_roundtrip))
    results.append(_check("evaluation_pipeline", evaluation_pipeline))
    return results


def write_checks(results: list[CheckResult], path: str | Path) -> None:
    """checks.yaml: a list of {name, status, detail, seconds}."""
    atomic_write_yaml(path, [{"name": r.name, "status": r.status, "detail": r.detail, "seconds": r.seconds}
                             for r in results])

"""Integration checks shared by every testbed: the check runner and the generic short-training, checkpoint-roundtrip
and evaluation-pipeline checks, each driving the testbed's real training function on a real experiment folder.

A testbed's own `checks.py` adds what only it can check (e.g. the forward pass of its model, or generate-and-score).
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from autoresearch.harness.atomic import atomic_write_yaml
from autoresearch.harness.checkpoint import load_checkpoint, save_checkpoint
from autoresearch.harness.registry import STATUSES, Experiment
from autoresearch.testbeds.base import CheckResult

__all__ = [
    "CheckFailed",
    "run_check",
    "forward_pass",
    "short_training",
    "checkpoint_roundtrip",
    "evaluation_pipeline",
    "write_checks",
    "scratch_experiment",
]

TrainFn = Callable[..., dict[str, Any]]


class CheckFailed(Exception):
    """Raised inside a check with the human-readable reason it failed."""


def run_check(name: str, fn: Callable[[], str]) -> CheckResult:
    """Run one check; a CheckFailed or any other exception becomes status fail with its message."""
    t0 = time.perf_counter()
    try:
        status, detail = "pass", fn()
    except CheckFailed as e:
        status, detail = "fail", str(e)
    except Exception as e:  # a crash inside a check is a failed check with its error, not a crashed command
        status, detail = "fail", f"{type(e).__name__}: {e}"
    return CheckResult(name=name, status=status, detail=detail, seconds=round(time.perf_counter() - t0, 2))


def scratch_experiment(path: Path) -> Experiment:
    shutil.rmtree(path, ignore_errors=True)
    exp = Experiment(path)
    exp.checkpoints_dir.mkdir(parents=True)
    return exp


def forward_pass(model: Any, x: Any, y: Any, vocab_size: int, what: str = "") -> str:
    """Logits have shape [B, T, V], the loss is finite, and a finite non-zero gradient reaches every parameter."""
    import torch

    logits = model(x)
    want = (x.shape[0], x.shape[1], vocab_size)
    if tuple(logits.shape) != want:
        raise CheckFailed(f"logits shape {tuple(logits.shape)}, expected {want}")
    loss = model(x, y)
    if not math.isfinite(float(loss.detach())):
        raise CheckFailed(f"initial loss is {float(loss.detach())}")
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()
               or float(p.grad.abs().sum()) == 0.0]
    if missing:
        raise CheckFailed(f"no finite non-zero gradient reaches {len(missing)} parameters, e.g. {missing[:3]}")
    n = sum(1 for _ in model.parameters())
    return f"{what}logits {want}, initial loss {float(loss.detach()):.3f}, gradients reach all {n} parameter tensors"


def short_training(train: TrainFn, cfg: Any, exp: Experiment, run: dict[str, Any]) -> str:
    """Train a few steps (log_every=1); pass if the mean loss of the last fifth is below that of the first fifth."""
    run["exp"], run["results"] = exp, train(cfg, exp)
    res = run["results"]
    if res["status"] != "ok":
        raise CheckFailed(f"run ended with status {res['status']}: {res.get('error')}")
    losses = [r["loss"] for r in exp.read_log() if "loss" in r]
    k = max(1, len(losses) // 5)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    if not last < first:
        raise CheckFailed(f"loss did not decrease: from {first:.3f} to {last:.3f} over {len(losses)} steps")
    return f"loss from {first:.3f} to {last:.3f} over {len(losses)} steps (mean of first/last {k})"


def checkpoint_roundtrip(train: TrainFn, cfg: Any, k: int, work: Path, run: dict[str, Any]) -> str:
    """Reload the short run's step-k checkpoint into a new folder, resume, and demand identical later losses."""
    if "exp" not in run or run["results"]["status"] != "ok":
        raise CheckFailed("short_training did not finish with status ok, so there is no healthy run to resume")
    src: Experiment = run["exp"]
    state = load_checkpoint(src.checkpoints_dir / f"step-{k:07d}.pt")
    dst = scratch_experiment(work)
    shutil.copy(src.config_path, dst.config_path)
    shutil.copy(src.log_path, dst.log_path)
    save_checkpoint(dst.checkpoints_dir, k, {key: v for key, v in state.items() if key != "step"})
    train(cfg, dst, resume=True)
    a = [(r["step"], r["loss"]) for r in src.read_log() if "loss" in r and r["step"] > k]
    b = [(r["step"], r["loss"]) for r in dst.read_log() if "loss" in r and r["step"] > k]
    if not a or a != b:
        diff = next(((sa, la, lb) for (sa, la), (_, lb) in zip(a, b) if la != lb), None)
        raise CheckFailed(f"resumed losses differ from the uninterrupted run (first difference: step, loss, "
                          f"resumed = {diff}; {len(a)} vs {len(b)} steps)")
    return f"saved at step {k}, reloaded, steps {k + 1}-{a[-1][0]} reproduce the uninterrupted losses bit-for-bit"


def evaluation_pipeline(run: dict[str, Any], required: Sequence[str]) -> str:
    """Every required metric present and finite, status valid, results.yaml equal to what train returned."""
    res = run.get("results")
    if not res:
        raise CheckFailed("no results from short_training")
    if res.get("status") not in STATUSES:
        raise CheckFailed(f"status {res.get('status')!r} is not one of {STATUSES}")
    bad = [k for k in required if not isinstance(res.get(k), (int, float)) or not math.isfinite(res[k])]
    if bad:
        raise CheckFailed(f"metrics missing or not finite: {', '.join(f'{k}={res.get(k)!r}' for k in bad)}")
    saved = run["exp"].read_results()
    if any(saved.get(k) != res[k] for k in required):
        raise CheckFailed("results.yaml does not hold the returned metrics")
    shown = ", ".join(f"{k} {res[k]:.4g}" for k in required[:4])
    return f"{shown}; all {len(required)} metrics finite and saved"


def write_checks(results: list[CheckResult], path: str | Path) -> None:
    """checks.yaml: a list of {name, status, detail, seconds}."""
    atomic_write_yaml(path, [{"name": r.name, "status": r.status, "detail": r.detail, "seconds": r.seconds}
                             for r in results])

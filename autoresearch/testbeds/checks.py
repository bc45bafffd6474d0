"""Integration checks of any testbed, built from the `Testbed` contract: the check runner, the result record, and the
generic forward-pass, short-training, checkpoint-roundtrip and evaluation-pipeline checks.

Each check drives the testbed's real `train` on a real experiment folder at a short budget
(`Testbed.short_run_overrides`) and returns a detail a person can read, e.g. "loss from 8.31 to 6.02 over 30 steps".
`Testbed.checks` strings them together (`run_checks`); a testbed supplies the forward pass of its model
(`Testbed.forward_pass`) and may add its own checks (`Testbed.extra_checks`, e.g. codegen's generate_and_score).
"""

from __future__ import annotations

import math
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoresearch.harness.atomic import atomic_write_yaml
from autoresearch.harness.registry import STATUSES, Experiment

if TYPE_CHECKING:
    from autoresearch.testbeds.base import Testbed

__all__ = [
    "CheckResult",
    "CheckFailed",
    "ShortRun",
    "run_check",
    "run_checks",
    "forward_pass",
    "short_training",
    "checkpoint_roundtrip",
    "evaluation_pipeline",
    "write_checks",
    "scratch_experiment",
]

TrainFn = Callable[..., dict[str, Any]]
Check = tuple[str, Callable[[], str]]
_CKPT = re.compile(r"^step-(\d{7,})\.pt$")


@dataclass
class CheckResult:
    """One integration check: name, pass|fail, a human-readable detail."""

    name: str
    status: str
    detail: str
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "pass"


@dataclass
class ShortRun:
    """The short training run the later checks reuse: its folder and the results `train` returned."""

    exp: Experiment | None = None
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.exp is not None and self.results.get("status") == "ok"


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


def run_checks(testbed: Testbed, cfg: Any, out_dir: Path, steps: int) -> list[CheckResult]:
    """The default checks of `testbed`, in order: forward_pass, short_training, checkpoint_roundtrip,
    evaluation_pipeline, then the testbed's `extra_checks`. Later checks reuse the short run of `steps` steps."""
    work = Path(out_dir) / "check_runs"
    shutil.rmtree(work, ignore_errors=True)
    short = testbed.with_overrides(cfg, testbed.short_run_overrides(steps, cfg))
    run = ShortRun()
    checks: list[Check] = [
        ("forward_pass", lambda: testbed.forward_pass(short)),
        ("short_training", lambda: short_training(testbed.train, short, scratch_experiment(work / "short"), run,
                                                  phase=getattr(testbed, "check_loss_phase", None))),
        ("checkpoint_roundtrip", lambda: checkpoint_roundtrip(testbed.train, short, work / "resumed", run)),
        ("evaluation_pipeline", lambda: evaluation_pipeline(run, testbed.required_results)),
        *testbed.extra_checks(short, work, run),
    ]
    return [run_check(name, fn) for name, fn in checks]


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


def short_training(train: TrainFn, cfg: Any, exp: Experiment, run: ShortRun, phase: str | None = None) -> str:
    """Train a few steps (log_every=1); pass if the mean loss of the last fifth is below that of the first fifth.

    `phase` (the testbed's `check_loss_phase`): only the log lines whose `phase` is this count, for a run whose
    phases log losses on different scales (adversarial: SFT cross-entropy, then RL surrogate losses near 0); at least
    two such lines are required."""
    run.exp, run.results = exp, train(cfg, exp)
    res = run.results
    if res["status"] != "ok":
        raise CheckFailed(f"run ended with status {res['status']}: {res.get('error')}")
    losses = [r["loss"] for r in exp.read_log() if "loss" in r and (phase is None or r.get("phase") == phase)]
    if phase is not None and len(losses) < 2:
        raise CheckFailed(f"the log has {len(losses)} step(s) of phase {phase!r}; a falling loss needs at least 2")
    k = max(1, len(losses) // 5)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    what = f" of phase {phase}" if phase is not None else ""
    if not last < first:
        raise CheckFailed(f"loss{what} did not decrease: from {first:.3f} to {last:.3f} over {len(losses)} steps")
    return f"loss{what} from {first:.3f} to {last:.3f} over {len(losses)} steps (mean of first/last {k})"


def _first_checkpoint_before(exp: Experiment, last_step: int) -> int | None:
    steps = sorted(int(m.group(1)) for p in exp.checkpoints_dir.glob("step-*.pt") if (m := _CKPT.match(p.name)))
    return next((s for s in steps if s < last_step), None)


def checkpoint_roundtrip(train: TrainFn, cfg: Any, work: Path, run: ShortRun) -> str:
    """Reload the short run's mid-run checkpoint into a new folder, resume, and demand identical later losses."""
    from autoresearch.harness.checkpoint import load_checkpoint, save_checkpoint

    if not run.healthy:
        raise CheckFailed("short_training did not finish with status ok, so there is no healthy run to resume")
    src = run.exp
    assert src is not None
    k = _first_checkpoint_before(src, int(run.results["steps"]))
    if k is None:
        raise CheckFailed(f"the short run left no checkpoint before its last step {run.results['steps']} in "
                          f"{src.checkpoints_dir}; its short_run_overrides must set a checkpoint interval")
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


def evaluation_pipeline(run: ShortRun, required: Sequence[str]) -> str:
    """Every required metric present and finite, status valid, results.yaml equal to what train returned."""
    res = run.results
    if not res or run.exp is None:
        raise CheckFailed("no results from short_training")
    if res.get("status") not in STATUSES:
        raise CheckFailed(f"status {res.get('status')!r} is not one of {STATUSES}")
    bad = [k for k in required if not isinstance(res.get(k), (int, float)) or not math.isfinite(res[k])]
    if bad:
        raise CheckFailed(f"metrics missing or not finite: {', '.join(f'{k}={res.get(k)!r}' for k in bad)}")
    saved = run.exp.read_results()
    if any(saved.get(k) != res[k] for k in required):
        raise CheckFailed("results.yaml does not hold the returned metrics")
    shown = ", ".join(f"{k} {res[k]:.4g}" for k in required[:4])
    return f"{shown}; all {len(required)} metrics finite and saved"


def write_checks(results: list[CheckResult], path: str | Path) -> None:
    """checks.yaml: a list of {name, status, detail, seconds}."""
    atomic_write_yaml(path, [{"name": r.name, "status": r.status, "detail": r.detail, "seconds": r.seconds}
                             for r in results])

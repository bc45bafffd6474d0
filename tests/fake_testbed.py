"""A fake testbed for research-layer tests: a metric = base + effect(idea flags) + seed noise, in milliseconds.

It follows the Testbed contract exactly (typed config, presets, overrides, experiment folder with config.yaml,
log.jsonl, results.yaml) so the study pipeline runs end to end without torch. Flags exercise every path:
`model.boost`/`model.hurt` shift the metric, `model.crash` raises, `model.nan` diverges, `model.infra_fail=N`
SIGKILLs the trial process on its first N attempts (an infrastructure failure), `model.fail_check` fails an
integration check, `model.noop` is an idea flag with no effect, `model.disk_full` raises ENOSPC (a full disk) in train and checks, and
`train.step_seconds` makes trials (and checks: 10 steps' worth) slow. Budgets must be whole steps of 1000 tokens
(`check_budget`, like the LM config).
With `train.checkpoint_every` > 0 it saves harness checkpoints (its RNG state: torch is imported only then) and
resumes from them bit for bit, so it passes the whole contract suite (tests/test_contract.py); its `checks` are
instant stand-ins (the research tests' flags) and it has no model to load (the contract's documented ConfigError).
Env `FAKE_TESTBED_BUG_STEP=k` perturbs the baseline loss at step k by one ulp — a simulated code change that alters
the baseline path, for the regression check; `FAKE_TESTBED_NONDET=1` adds run-to-run noise (a non-deterministic
run); `FAKE_TESTBED_FIXED=1` makes `model.crash` harmless (the user fixed the bug). Results carry `t_start`/`t_end` (epoch seconds) so tests can measure how many trials overlapped.
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autoresearch.errors import CheckpointError, ConfigError
from autoresearch.harness.config import check_ranges, param, to_dict
from autoresearch.harness.registry import Experiment
from autoresearch.testbeds.base import CheckResult, Testbed


@dataclass
class FakeModel:
    boost: float = param(0.0, "idea: lowers val_loss by this much")
    hurt: float = param(0.0, "idea: raises val_loss by this much")
    noop: bool = param(False, "idea flag without effect")
    crash: bool = param(False, "raise inside train()")
    nan: bool = param(False, "diverge (NaN loss)")
    infra_fail: int = param(0, "SIGKILL the trial process on its first N attempts")
    fail_check: bool = param(False, "fail an integration check")
    disk_full: bool = param(False, "raise ENOSPC (a full disk) in train() and in the checks")


@dataclass
class FakeTrain:
    seed: int = param(0, "seed", ge=0)
    train_tokens: int = param(20_000, "token budget")
    max_seconds: float = param(0.0, "seconds budget (unused)", ge=0)
    log_every: int = param(5, "log every N steps", ge=1)
    checkpoint_every: int = param(0, "save a resumable checkpoint every N steps (0 = never)", ge=0)
    step_seconds: float = param(0.0, "sleep per step (slow trials)", ge=0)
    noise: float = param(0.05, "seed noise shared by every arm with the same seed")
    idio: float = param(0.01, "noise specific to (seed, arm)")

    def __post_init__(self) -> None:
        check_ranges(self, "train")
        if self.train_tokens <= 0:
            raise ConfigError(f"`train.train_tokens` must be > 0, got {self.train_tokens}; use 20000")


@dataclass
class FakeConfig:
    model: FakeModel = param(FakeModel(), "model")
    train: FakeTrain = param(FakeTrain(), "train")

    @property
    def tokens_per_step(self) -> int:
        return 1000

    @property
    def steps(self) -> int:
        return self.train.train_tokens // self.tokens_per_step

    def check_budget(self, round_up: bool = False) -> FakeConfig:
        """Like LMConfig.check_budget: the testbed trains whole steps, so the budget must be a multiple of them."""
        per_step = self.tokens_per_step
        if self.train.train_tokens % per_step:
            fixed = -(-self.train.train_tokens // per_step) * per_step
            if not round_up:
                raise ConfigError(f"`train.train_tokens` must be a multiple of {per_step}, got "
                                  f"{self.train.train_tokens}; use {fixed} or pass --round-up")
            self.train.train_tokens = fixed
        return self


PRESETS = {"tiny": FakeConfig, "slow": lambda: FakeConfig(train=FakeTrain(step_seconds=0.02))}


class FakeTestbed(Testbed):
    name = "fake"
    metrics = {"val_loss": "lower", "val_bpb": "lower", "accuracy": "higher"}
    config_class = FakeConfig
    preset_factories = PRESETS
    required_results = ("val_loss", "val_bpb", "accuracy", "train_seconds", "steps", "tokens")
    summary_keys = ("status", "error", "val_loss", "accuracy", "steps", "tokens", "train_seconds")
    check_steps = 10

    def train(self, cfg: FakeConfig, exp: Experiment, *, resume: bool = False, progress: bool = False) -> dict:
        m, t = cfg.model, cfg.train
        attempt = int(os.environ.get("AUTORESEARCH_TRIAL_ATTEMPT", "1"))
        if m.infra_fail >= attempt:
            os.kill(os.getpid(), signal.SIGKILL)
        if not resume:
            exp.write_config(to_dict(cfg), {"seed": t.seed, "testbed": self.spec})
        cfg.check_budget()  # as the LM testbed does at the start of train()
        t0, t_start = time.perf_counter(), time.time()
        if m.disk_full:
            raise OSError(errno.ENOSPC, "No space left on device", str(exp.path / "checkpoints"))
        if m.crash and not os.environ.get("FAKE_TESTBED_FIXED"):
            raise RuntimeError("fake crash: boom")
        arm = hashlib.sha256(repr((m.boost, m.hurt, m.noop)).encode()).digest()
        seed_rng = np.random.default_rng(t.seed)
        arm_rng = np.random.default_rng([t.seed, int.from_bytes(arm[:4], "little")])
        z_seed, z_arm = float(seed_rng.standard_normal()), float(arm_rng.standard_normal())
        final = 3.0 - m.boost + m.hurt + t.noise * z_seed + t.idio * z_arm
        steps = t.train_tokens // cfg.tokens_per_step
        bug = int(os.environ.get("FAKE_TESTBED_BUG_STEP", "0"))
        flags_off = (m.boost, m.hurt, m.noop) == (0.0, 0.0, False)
        loss, first = math.nan, 1
        if resume:
            from autoresearch.harness.checkpoint import load_for_resume

            state = load_for_resume(exp.checkpoints_dir, to_dict(cfg), exp.config_path)
            if state is None:
                raise CheckpointError(f"{exp.id} has no checkpoint to resume from; start a new run")
            seed_rng.bit_generator.state = state["rng"]
            first = state["step"] + 1
            exp.truncate_log(state["step"])

        def stopped(status: str, error: str, step: int) -> dict:
            res = {"status": status, "error": error, "val_loss": math.nan, "val_bpb": math.nan, "accuracy": math.nan,
                   "steps": step, "tokens": step * cfg.tokens_per_step, "seed": t.seed,
                   "train_seconds": time.perf_counter() - t0}
            exp.write_results(res)
            return res

        for step in range(first, steps + 1):
            if t.step_seconds:
                time.sleep(t.step_seconds)
            loss = final + 2.0 * math.exp(-step / 10.0) + 0.01 * float(seed_rng.standard_normal())
            if m.nan and step >= steps // 2:
                loss = math.nan
            if bug == step and flags_off:
                loss = math.nextafter(loss, math.inf)
            if os.environ.get("FAKE_TESTBED_NONDET") and step == 2:
                loss += int.from_bytes(os.urandom(2), "little") * 1e-9
            if step % t.log_every == 0 or step == 1:
                exp.log({"step": step, "tokens": step * cfg.tokens_per_step, "loss": loss, "lr": 0.01,
                         "elapsed_s": time.perf_counter() - t0})
            if math.isnan(loss):
                return stopped("diverged", f"loss is NaN at step {step}", step)
            if t.checkpoint_every and (step % t.checkpoint_every == 0 or step == steps):
                from autoresearch.harness.checkpoint import save_checkpoint

                save_checkpoint(exp.checkpoints_dir, step, {"rng": seed_rng.bit_generator.state,
                                                            "config": to_dict(cfg)})
        secs = time.perf_counter() - t0
        res = {"status": "ok", "val_loss": final, "val_bpb": final / math.log(2) / 3.3,
               "accuracy": 1.0 - final / 10.0, "steps": steps, "tokens": steps * cfg.tokens_per_step, "seed": t.seed,
               "train_seconds": secs, "wall_seconds": secs, "tokens_per_s": steps * 1000 / max(secs, 1e-9),
               "t_start": t_start, "t_end": time.time(),
               "cuda_visible": int(os.environ.get("CUDA_VISIBLE_DEVICES", "-1") or -1)}
        exp.write_results(res)
        return res

    def checks(self, cfg: FakeConfig, out_dir: Path, *, steps: int | None = None) -> list[CheckResult]:
        """Instant stand-ins for the research tests (a subclass gets the real ones with `checks = Testbed.checks`)."""
        if cfg.model.disk_full:
            raise OSError(errno.ENOSPC, "No space left on device", str(out_dir))
        if cfg.train.step_seconds:
            time.sleep(cfg.train.step_seconds * 10)  # slow checks
        out = [CheckResult("forward_pass", "pass", "ok"), CheckResult("short_training", "pass", "ok")]
        out.append(CheckResult("evaluation_pipeline", "fail" if cfg.model.fail_check else "pass",
                               "metric differs between runs" if cfg.model.fail_check else "ok"))
        return out

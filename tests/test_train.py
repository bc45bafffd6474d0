"""The LM training loop: determinism, exact resume, divergence, crash status, budgets."""

from __future__ import annotations

import copy

import pytest

from autoresearch.errors import CheckpointError
from autoresearch.harness.registry import new_experiment
from autoresearch.testbeds.lm.train import train


def _losses(exp):
    return [(r["step"], r["loss"]) for r in exp.read_log() if "loss" in r]


def test_run_writes_complete_folder_and_learns(micro_cfg, tmp_path):
    micro_cfg.train.train_tokens = 4 * 32 * 30
    exp = new_experiment(tmp_path)
    res = train(micro_cfg, exp)
    assert res["status"] == "ok" and res["steps"] == 30 and res["tokens"] == 3840
    assert res["val_loss"] < res["val_loss_init"] - 0.3
    cfg = exp.read_config()
    assert cfg["model"]["d_model"] == 32 and cfg["meta"]["seed"] == 0 and "versions" in cfg["meta"]
    assert "commit" in cfg["meta"]["git"] and "hardware" in cfg["meta"]
    log = exp.read_log()
    assert len(log) == 30 and set(log[0]) >= {"step", "tokens", "loss", "lr", "grad_norm", "tokens_per_s", "memory_mb"}
    assert exp.read_results()["val_bpb"] == res["val_bpb"] > 0
    assert any(exp.checkpoints_dir.glob("step-*.pt"))


def test_deterministic_for_a_seed(micro_cfg, tmp_path):
    a = new_experiment(tmp_path)
    b = new_experiment(tmp_path)
    c = new_experiment(tmp_path)
    train(micro_cfg, a)
    train(copy.deepcopy(micro_cfg), b)
    other = copy.deepcopy(micro_cfg)
    other.train.seed = 1
    train(other, c)
    assert _losses(a) == _losses(b)
    assert _losses(a) != _losses(c)


class _Crash(RuntimeError):
    pass


def test_resume_reproduces_uninterrupted_losses_bit_for_bit(micro_cfg, tmp_path):
    micro_cfg.train.train_tokens = 4 * 32 * 12
    micro_cfg.train.checkpoint_every = 4
    full = new_experiment(tmp_path)
    train(micro_cfg, full)

    def crash_at_10(step, record):
        if step == 10:
            raise _Crash("simulated crash")

    broken = new_experiment(tmp_path)
    with pytest.raises(_Crash):
        from autoresearch.testbeds.lm import train as train_mod

        train_mod.train(micro_cfg, broken, on_step=crash_at_10)
    assert broken.read_results()["status"] == "crashed"
    assert "simulated crash" in broken.errors_path.read_text()
    res = train(micro_cfg, broken, resume=True)  # resumes from the step-8 checkpoint
    assert res["status"] == "ok"
    assert _losses(broken) == _losses(full)  # steps 9..12 recomputed, equal bit for bit; no duplicated lines
    assert res["val_loss"] == full.read_results()["val_loss"]


def test_resume_without_checkpoint_is_clear(micro_cfg, tmp_path):
    exp = new_experiment(tmp_path)
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        train(micro_cfg, exp, resume=True)


def test_divergence_stops_fast(micro_cfg, tmp_path):
    micro_cfg.train.train_tokens = 4 * 32 * 50
    micro_cfg.optim.optimizer = "adamw"
    micro_cfg.optim.adamw_lr = 50.0
    micro_cfg.optim.grad_clip = 0.0
    exp = new_experiment(tmp_path)
    res = train(micro_cfg, exp)
    assert res["status"] == "diverged", res
    assert res["steps"] < 50 and "at step" in res["error"]
    assert exp.read_results()["status"] == "diverged"


def test_grad_accum_and_time_budget(micro_cfg, tmp_path):
    micro_cfg.train.grad_accum = 2
    micro_cfg.train.train_tokens = 4 * 2 * 32 * 3
    res = train(micro_cfg, new_experiment(tmp_path))
    assert res["steps"] == 3 and res["tokens"] == 768
    micro_cfg.train.train_tokens = 4 * 2 * 32 * 10_000
    micro_cfg.train.max_seconds = 0.5
    res = train(micro_cfg, new_experiment(tmp_path))
    assert res["status"] == "ok" and 0 < res["steps"] < 10_000 and res["train_seconds"] >= 0.5


def test_adamw_only_and_flags_train(micro_cfg, tmp_path):
    for sets in ({"optimizer": "adamw"}, {"schedule": "cosine", "warmup_frac": 0.2}):
        cfg = copy.deepcopy(micro_cfg)
        for k, v in sets.items():
            setattr(cfg.optim, k, v)
        assert train(cfg, new_experiment(tmp_path))["status"] == "ok"


@pytest.mark.slow
def test_compiled_run_matches_eager(micro_cfg, tmp_path):
    micro_cfg.train.train_tokens = 4 * 32 * 6
    eager = new_experiment(tmp_path)
    train(micro_cfg, eager)
    compiled_cfg = copy.deepcopy(micro_cfg)
    compiled_cfg.train.compile = True
    compiled = new_experiment(tmp_path)
    res = train(compiled_cfg, compiled)
    assert res["status"] == "ok"
    for (s1, a), (s2, b) in zip(_losses(eager), _losses(compiled), strict=True):
        assert s1 == s2 and a == pytest.approx(b, rel=2e-2)

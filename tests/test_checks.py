"""Integration checks of the LM testbed: all four pass on a healthy config, and a broken one fails."""

from __future__ import annotations

import yaml

from autoresearch.testbeds.lm.checks import CHECKS, run_checks, write_checks


def test_all_checks_pass(micro_cfg, tmp_path):
    results = run_checks(micro_cfg, tmp_path, steps=20)
    assert [r.name for r in results] == list(CHECKS)
    assert all(r.ok for r in results), [(r.name, r.detail) for r in results]
    assert "loss from" in results[1].detail and "bit-for-bit" in results[2].detail
    write_checks(results, tmp_path / "checks.yaml")
    data = yaml.safe_load((tmp_path / "checks.yaml").read_text())
    assert [d["status"] for d in data] == ["pass"] * 4 and set(data[0]) >= {"name", "status", "detail"}


def test_checks_fail_on_a_diverging_config(micro_cfg, tmp_path):
    micro_cfg.optim.optimizer = "adamw"
    micro_cfg.optim.adamw_lr = 50.0
    micro_cfg.optim.grad_clip = 0.0
    results = {r.name: r for r in run_checks(micro_cfg, tmp_path, steps=20)}
    assert results["forward_pass"].ok
    assert not results["short_training"].ok and "diverged" in results["short_training"].detail
    assert not results["checkpoint_roundtrip"].ok and not results["evaluation_pipeline"].ok


def test_short_training_reads_only_the_phase_the_testbed_names(tmp_path):
    """A run whose SFT loss falls and whose RL lines log losses near 0 on another scale (adversarial): with the
    phase named, only the SFT lines count; a phase with fewer than two lines fails instead of passing vacuously."""
    import pytest

    from autoresearch.testbeds.checks import CheckFailed, ShortRun, scratch_experiment, short_training

    def train(lines):
        def fn(cfg, exp):
            for i, (phase, loss) in enumerate(lines, 1):
                exp.log({"step": i, "tokens": i, "loss": loss, "phase": phase})
            return {"status": "ok"}
        return fn

    rising_sft = [("sft", 2.0), ("sft", 2.5), ("sft", 3.0), ("rl", 0.0), ("rl", 0.01)]
    falling_sft = [("sft", 3.0), ("sft", 2.5), ("sft", 2.0), ("rl", -0.01), ("rl", 0.05)]
    # all lines together: the RL lines near 0 make any run "fall" — the phase filter is what makes the check bite
    assert "loss from" in short_training(train(rising_sft), None, scratch_experiment(tmp_path / "a"), ShortRun())
    with pytest.raises(CheckFailed, match="loss of phase sft did not decrease"):
        short_training(train(rising_sft), None, scratch_experiment(tmp_path / "b"), ShortRun(), phase="sft")
    detail = short_training(train(falling_sft), None, scratch_experiment(tmp_path / "c"), ShortRun(), phase="sft")
    assert "loss of phase sft from 3.000 to 2.000 over 3 steps" in detail
    with pytest.raises(CheckFailed, match="1 step\\(s\\) of phase 'sft'; a falling loss needs at least 2"):
        short_training(train([("sft", 1.0), ("rl", 0.0)]), None, scratch_experiment(tmp_path / "d"), ShortRun(),
                       phase="sft")

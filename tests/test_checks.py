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

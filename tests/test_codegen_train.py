"""The codegen testbed end to end on a micro config: training, exact resume, scoring in the sandbox, checks, CLI."""

from __future__ import annotations

import copy
import math
import os

import pytest
import yaml
from typer.testing import CliRunner

from autoresearch.cli.app import app
from autoresearch.harness.registry import new_experiment
from autoresearch.testbeds.base import get_testbed
from autoresearch.testbeds.codegen.checks import CHECKS, run_checks
from autoresearch.testbeds.codegen.models import build_model
from autoresearch.testbeds.codegen.train import train
from tests.conftest import codegen_micro_overrides


def _losses(exp):
    return [(r["step"], r["loss"]) for r in exp.read_log() if "loss" in r]


def test_train_scores_in_sandbox_and_writes_everything(codegen_micro_cfg, tmp_path):
    exp = new_experiment(tmp_path)
    res = train(codegen_micro_cfg, exp)
    assert res["status"] == "ok" and res["steps"] == 10
    assert res["heldout_loss"] < res["heldout_loss_init"]
    for k in ("pass@1_greedy", "pass@1", "pass@2", "syntax_valid_rate", "gen_tokens_per_s"):
        assert 0 <= res[k] < math.inf, k
    assert res["sandbox_level"] in ("strict", "reduced")
    rows = (exp.path / "eval" / "sampled_samples.jsonl").read_text().splitlines()
    assert len(rows) == 4 * 2  # 4 held-out tasks x 2 samples
    assert exp.read_config()["arch"] == "hrm" and exp.read_results()["status"] == "ok"


def test_resume_bit_for_bit(codegen_micro_cfg, tmp_path):
    cfg = copy.deepcopy(codegen_micro_cfg)
    cfg.eval.score = False
    cfg.train.checkpoint_every = 4
    full = new_experiment(tmp_path)
    train(cfg, full)

    class Crash(RuntimeError):
        pass

    def crash(step, record):
        if step == 6:
            raise Crash()

    broken = new_experiment(tmp_path)
    with pytest.raises(Crash):
        from autoresearch.testbeds.codegen import train as mod

        mod.train(cfg, broken, on_step=crash)
    train(cfg, broken, resume=True)
    assert _losses(broken) == _losses(full)


def test_gpt_is_parameter_matched(codegen_micro_cfg):
    hrm = build_model(codegen_micro_cfg, 300)
    cfg = copy.deepcopy(codegen_micro_cfg)
    cfg.arch = "gpt"
    gpt = build_model(cfg, 300)
    assert type(gpt).__name__ == "GPT"
    assert abs(gpt.num_params() - hrm.num_params()) / hrm.num_params() < 0.15


def test_checks_all_pass_for_both_models(codegen_micro_cfg, tmp_path):
    for arch in ("hrm", "gpt"):
        cfg = copy.deepcopy(codegen_micro_cfg)
        cfg.arch = arch
        results = run_checks(cfg, tmp_path / arch, steps=8)
        assert [r.name for r in results] == list(CHECKS)
        assert all(r.ok for r in results), [(r.name, r.detail) for r in results]


def test_testbed_interface():
    tb = get_testbed("codegen")
    cfg = tb.make_config("tiny", ["arch=gpt", "hrm.h_cycles=3"])
    assert cfg.arch == "gpt" and cfg.hrm.h_cycles == 3 and tb.metrics["pass@1"] == "higher"


def test_cli_train_then_eval_code_on_the_checkpoint(cache_dir, tmp_path, monkeypatch):
    runner = CliRunner(env={"COLUMNS": "200"})
    sets = [a for o in codegen_micro_overrides(cache_dir) for a in ("--set", o)]
    root = tmp_path / "experiments"
    r = runner.invoke(app, ["train", "codegen", "--model", "gpt", *sets, "--set", "eval.score=false",
                            "--root", str(root), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "arch: gpt" in r.output and "heldout_loss:" in r.output
    monkeypatch.setenv("AUTORESEARCH_EXPERIMENTS", str(root))
    r = runner.invoke(app, ["eval-code", "--benchmark", "suite", "--model", "exp-001", "--n", "2", "--k", "1,2",
                            "--limit", "3", "--max-tokens", "8", "--workers", "1", "--out", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    summary = yaml.safe_load((tmp_path / "ev" / "samples.jsonl_summary.yaml").read_text())
    assert summary["n_samples"] == 6 and summary["n_tasks"] == 3 and summary["model"] == "exp-001"
    assert os.path.exists(tmp_path / "ev" / "samples.jsonl_results.jsonl")


def test_pretraining_phase_then_sft_resumes_exactly(codegen_micro_cfg, tmp_path):
    cfg = copy.deepcopy(codegen_micro_cfg)
    cfg.data.pretrain_steps = 5
    cfg.data.corpus_mb = 2.0
    cfg.eval.score = False
    cfg.train.checkpoint_every = 3
    full = new_experiment(tmp_path)
    res = train(cfg, full)
    assert res["status"] == "ok" and res["data"]["pretrain_tokens_available"] > 0
    phases = [r["phase"] for r in full.read_log()]
    assert phases == ["pretrain"] * 5 + ["sft"] * 5

    class Crash(RuntimeError):
        pass

    def crash(step, record):
        if step == 4:
            raise Crash()

    broken = new_experiment(tmp_path)
    with pytest.raises(Crash):
        from autoresearch.testbeds.codegen import train as mod

        mod.train(cfg, broken, on_step=crash)
    train(cfg, broken, resume=True)  # resumes inside the pretraining phase from the step-3 checkpoint
    assert _losses(broken) == _losses(full)

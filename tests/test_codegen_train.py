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


# --- issue 9: the loop is the shared kit's, flags included --------------------------------------------------------

def test_compile_flag_compiles_the_step_model(codegen_micro_cfg, tmp_path, monkeypatch):
    """`train.compile` used to be silently ignored by codegen: the training forward now goes through torch.compile's
    module, and the first (compiling) step stays out of tokens/s. A real compile of HRM on CPU takes minutes
    (151 s for 3 micro steps measured on the 2-core CI machine), so torch.compile is recorded here instead."""
    import torch

    compiled, calls = [], []

    def fake_compile(model, *args, **kwargs):
        compiled.append(model)

        def forward(*a, **kw):
            calls.append(a[0].shape)
            return model(*a, **kw)
        return forward

    monkeypatch.setattr(torch, "compile", fake_compile)
    cfg = copy.deepcopy(codegen_micro_cfg)
    cfg.eval.score = False
    cfg.train.grad_accum = 2
    cfg.train.train_tokens = 3 * cfg.tokens_per_step  # 3 steps of 2 micro-batches
    eager = new_experiment(tmp_path)
    train(copy.deepcopy(cfg), eager)
    assert not compiled
    cfg.train.compile = True
    exp = new_experiment(tmp_path)
    res = train(cfg, exp)
    assert res["status"] == "ok" and len(compiled) == 1 and type(compiled[0]).__name__ == "HRM"
    assert len(calls) == 3 * 2  # every training micro-batch went through the compiled model
    log = exp.read_log()
    assert log[0]["tokens_per_s"] == 0.0 and log[1]["tokens_per_s"] > 0  # the compile step is not throughput
    assert _losses(exp) == _losses(eager)


def test_budget_of_partial_steps_is_refused_and_testbed_recorded(codegen_micro_cfg, tmp_path):
    """codegen used to floor `train_tokens // tokens_per_step`; like lm it now refuses a partial step."""
    from autoresearch.errors import ConfigError

    cfg = copy.deepcopy(codegen_micro_cfg)
    cfg.train.train_tokens += 1
    with pytest.raises(ConfigError, match=r"^`train.train_tokens` must be a multiple of .*=384, got 3841; use 3840"):
        train(cfg, new_experiment(tmp_path))
    cfg.train.train_tokens, cfg.eval.score = 384, False
    exp = new_experiment(tmp_path)
    train(cfg, exp, testbed="my/codegen.py:Mine")
    assert exp.read_config()["meta"]["testbed"] == "my/codegen.py:Mine"


@pytest.mark.slow
def test_compiled_hrm_run_really_traces_and_matches_eager(codegen_micro_cfg, tmp_path, monkeypatch):
    """A real torch.compile of the HRM training step: Dynamo traces the model (its no_grad cycles included); the
    `eager` backend skips Inductor's CPU code generation (minutes on 2 cores), so the losses equal eager exactly."""
    import functools

    import torch

    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    cfg = copy.deepcopy(codegen_micro_cfg)
    cfg.eval.score = False
    cfg.train.train_tokens = 3 * cfg.tokens_per_step
    eager = new_experiment(tmp_path)
    train(copy.deepcopy(cfg), eager)
    cfg.train.compile = True
    compiled = new_experiment(tmp_path)
    from torch._dynamo.utils import counters

    counters.clear()
    assert train(cfg, compiled)["status"] == "ok"
    assert counters["stats"]["unique_graphs"] >= 1  # Dynamo captured the training forward
    assert _losses(compiled) == _losses(eager)

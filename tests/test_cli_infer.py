"""`autoresearch infer adversarial`: each problem's chain, code and test outcome, a pass-rate summary, --json, and
one-line errors (exit 2) for every bad input, before any model is loaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autoresearch.cli.app import app
from autoresearch.errors import ConfigError, DataError, RegistryError
from autoresearch.harness.registry import new_experiment
from autoresearch.testbeds.adversarial.config import AdversarialConfig
from autoresearch.testbeds.adversarial.inference import InferenceEngine
from tests.test_adv_inference import PROB, REWARD, RIGHT, WRONG, ScriptedDiscriminator, ScriptedGenerator

runner = CliRunner(env={"COLUMNS": "200"})
pytestmark = [pytest.mark.timeout(300)]


def _problems_file(tmp_path: Path, extra: list[dict] | None = None) -> Path:
    d = PROB.to_dict()
    second = {**d, "id": "t/add3-train", "visible_tests": ["assert add3(2) == 5"]}
    p = tmp_path / "problems.json"
    p.write_text(json.dumps({"problems": [d, {**second, "split": "train"}, *(extra or [])]}))
    return p


def _kv(output: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in output.splitlines() if ": " in line and not line.startswith((" ", "#")))


@pytest.fixture
def scripted(monkeypatch):
    """`from_checkpoint` replaced by an engine over scripted policies (the CLI's wiring, not a model's quality)."""
    made: list[InferenceEngine] = []

    def fake(cls, exp, device="cpu", best=True, *, root=None):
        gen = ScriptedGenerator([[WRONG], [RIGHT]])
        disc = ScriptedDiscriminator(["assert add3(1) == 4\n"])
        eng = InferenceEngine(gen, disc, AdversarialConfig(reward=REWARD), source=f"{exp} best={best}")
        made.append(eng)
        return eng

    monkeypatch.setattr(InferenceEngine, "from_checkpoint", classmethod(fake))
    return made


def test_help_lists_the_documented_options():
    r = runner.invoke(app, ["infer", "--help"])
    assert r.exit_code == 0
    for opt in ("--model", "--problem", "--benchmark", "--limit", "--n", "--attempts", "--rank", "--json", "--device",
                "--root", "--latest"):
        assert opt in r.output, opt


def test_problem_file_prints_chain_code_outcome_and_summary(tmp_path, scripted):
    r = runner.invoke(app, ["infer", "adversarial", "--model", "exp-001", "--problem", str(_problems_file(tmp_path)),
                            "--attempts", "2"])
    assert r.exit_code == 0, r.output
    out = r.output
    assert "=== t/add3 (1/2) ===" in out and "=== t/add3-train (2/2) ===" in out  # every split of the file
    for tag in ("### informal", "### plan", "### pseudocode", "### constraints", "### code"):
        assert tag in out
    assert "--- attempt 2" in out and "# failed: assert add3(0) == 3 (wrong answer)" in out
    assert "visible tests: pass (1/1)" in out and "hidden tests: pass (3/3)" in out
    s = _kv(out)
    assert s["problems"] == "2" and s["pass_rate"] == "1" and s["pass_rate@attempt1"] == "0.5"
    assert s["pass_rate@attempt2"] == "1" and s["checkpoint"] == "exp-001 best=True"
    assert scripted[0]._judge is None  # the engine's sandbox was closed


def test_json_output_is_one_document(tmp_path, scripted):
    r = runner.invoke(app, ["infer", "adversarial", "--model", "exp-001", "--problem", str(_problems_file(tmp_path)),
                            "--n", "2", "--rank", "--json", "--latest", "--limit", "1"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["summary"]["problems"] == 1 and doc["summary"]["rank"] is True
    assert doc["summary"]["checkpoint"] == "exp-001 best=False"
    sol = doc["solutions"][0]
    assert sol["problem_id"] == "t/add3" and set(sol["chain"]) >= {"informal", "code"}
    assert sol["attempts"][0]["generated_tests"] == ["assert add3(1) == 4"]


def test_a_problem_whose_reference_fails_is_refused_with_its_id(tmp_path, scripted):
    bad = {**PROB.to_dict(), "id": "t/bad", "reference": "    return x\n"}
    r = runner.invoke(app, ["infer", "adversarial", "--model", "exp-001", "--problem",
                            str(_problems_file(tmp_path, [bad]))])
    assert isinstance(r.exception, DataError) and "t/bad" in str(r.exception)


@pytest.mark.parametrize("args, exc, needle", [
    (["infer", "lm", "--model", "exp-001", "--benchmark", "suite"], ConfigError, "supports the testbed"),
    (["infer", "adversarial", "--benchmark", "suite"], ConfigError, "--model is required"),
    (["infer", "adversarial", "--model", "exp-001"], ConfigError, "exactly one of --problem"),
    (["infer", "adversarial", "--model", "exp-001", "--problem", "p.json", "--benchmark", "suite"], ConfigError,
     "exactly one of --problem"),
    (["infer", "adversarial", "--model", "exp-001", "--benchmark", "apps"], ConfigError, "--benchmark must be one"),
    (["infer", "adversarial", "--model", "exp-001", "--problem", "nope.json"], DataError, "does not exist"),
    (["infer", "adversarial", "--model", "exp-001", "--benchmark", "suite", "--limit", "0"], ConfigError, "--limit"),
    (["infer", "adversarial", "--model", "exp-001", "--benchmark", "suite", "--n", "0"], ConfigError, "--n must"),
    (["infer", "adversarial", "--model", "exp-001", "--benchmark", "suite", "--attempts", "0"], ConfigError,
     "--attempts must"),
    (["infer", "adversarial", "--model", "exp-001", "--benchmark", "suite", "--rank"], ConfigError, "--n >= 2"),
    (["infer", "adversarial", "--model", "exp-001", "--benchmark", "suite", "--n", "2", "--temperature", "-1"],
     ConfigError, "--temperature"),
])
def test_bad_arguments_are_refused_before_loading(args, exc, needle, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("loaded a model for a bad command line")

    monkeypatch.setattr(InferenceEngine, "from_checkpoint", classmethod(boom))
    r = runner.invoke(app, args)
    assert isinstance(r.exception, exc), r.output
    assert needle in str(r.exception) and "\n" not in str(r.exception)


@pytest.mark.parametrize("device, needle", [("gpu", "--device must be"), ("cuda:99", "cuda")])
def test_bad_device_is_refused_before_loading(device, needle, monkeypatch):
    import torch

    if device.startswith("cuda") and torch.cuda.device_count() > 1:
        pytest.skip("a machine with many GPUs")

    def boom(*a, **k):
        raise AssertionError("loaded a model for a bad --device")

    monkeypatch.setattr(InferenceEngine, "from_checkpoint", classmethod(boom))
    r = runner.invoke(app, ["infer", "adversarial", "--model", "exp-001", "--benchmark", "suite", "--device", device])
    assert isinstance(r.exception, ConfigError), r.output
    assert needle in str(r.exception) and "\n" not in str(r.exception)


def test_missing_and_foreign_experiments_are_one_line_errors(tmp_path):
    root = tmp_path / "experiments"
    exp = new_experiment(root)
    exp.write_config({"model": {"d_model": 32}, "train": {"seed": 0}}, {"testbed": "lm", "seed": 0})
    for ref, needle in [("exp-001", "not an adversarial experiment"), ("exp-009", "exp-009")]:
        with pytest.raises(RegistryError) as e:
            InferenceEngine.from_checkpoint(ref, root=root)
        assert needle in str(e.value) and "\n" not in str(e.value)
    proc = subprocess.run([sys.executable, "-m", "autoresearch", "infer", "adversarial", "--model", "exp-001",
                           "--benchmark", "suite", "--root", str(root)], capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "not an adversarial experiment" in lines[0], proc.stderr


# --- a real micro experiment (trained here: SFT + 2 RL steps of two 25k-param GPTs, ~10 s) --------------------------
MICRO = ["gpt.d_model=32", "gpt.n_layers=2", "gpt.n_heads=2", "gpt.n_kv_heads=2", "gpt.d_ff=64", "gpt.seq_len=256",
         "train.batch_size=4", f"train.train_tokens={4 * 256 * 6}", "train.log_every=1", "train.threads=1",
         "train.device=cpu", "data.train_problems=40", "data.tokenizer=byte", "rl.n_steps=1", "rl.k_alternations=0",
         "rl.prompts_per_step=2", "rl.max_new_tokens=48", "rl.max_test_tokens=24", "stages=1", "rl.match_stages=false",
         "eval.heldout_problems=3", "eval.val_problems=2", "eval.n_samples=0", "eval.k=[1]", "eval.mutants=2",
         "eval.coherence_problems=0", "reward.workers=1"]


@pytest.fixture(scope="module")
def micro_exp(tmp_path_factory):
    """`autoresearch train adversarial` of a micro config (the testbed's own entry point)."""
    from autoresearch.harness.registry import open_experiment

    root = tmp_path_factory.mktemp("adv-infer") / "experiments"
    sets = [*MICRO, f"reward.allow_reduced={'true' if REWARD.allow_reduced else 'false'}"]
    r = runner.invoke(app, ["train", "adversarial", "--preset", "tiny", *[a for o in sets for a in ("--set", o)],
                            "--root", str(root), "--quiet"])
    assert r.exit_code == 0, r.output
    assert _kv(r.output)["status"] == "ok"
    return root, open_experiment("exp-001", root)


@pytest.mark.slow
def test_engine_from_a_trained_experiment_best_and_latest(micro_exp):
    root, exp = micro_exp
    with InferenceEngine.from_checkpoint(exp.id, root=root) as eng:
        assert eng.source.startswith(f"{exp.id} best step-")
        assert eng.cfg.stages == 1 and [s.name for s in eng.stages] == ["code"]
        chain = eng.get_reasoning_chain(PROB)
        assert list(chain) == ["code"] and chain == eng.get_reasoning_chain(PROB)  # greedy: deterministic
        sol = eng.solve_problem(PROB, n=2, attempts=2, rank=True, temperature=1.0)
        assert 1 <= len(sol.attempts) <= 2 and len(sol.attempts[0].candidates) == 2
        assert sol.passed in (True, False) and sol.hidden_passed in (True, False)
        assert all(c.score is not None for c in sol.attempts[0].candidates)
    with InferenceEngine.from_checkpoint(exp.path, best=False) as eng:  # a folder, latest checkpoint
        assert eng.source.startswith(f"{exp.id} latest step-")


@pytest.mark.slow
def test_cli_on_a_trained_experiment(micro_exp, tmp_path):
    root, exp = micro_exp
    args = ["infer", "adversarial", "--model", exp.id, "--root", str(root), "--problem", str(_problems_file(tmp_path)),
            "--limit", "1", "--json"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["summary"]["problems"] == 1 and doc["summary"]["checkpoint"].startswith(f"{exp.id} best")
    assert doc["solutions"][0]["problem_id"] == "t/add3" and "code" in doc["solutions"][0]["chain"]
    r = runner.invoke(app, ["infer", "adversarial", "--model", exp.id, "--root", str(root), "--benchmark", "suite",
                            "--limit", "2", "--latest"])
    assert r.exit_code == 0, r.output
    s = _kv(r.output)
    assert s["problems"] == "2" and 0.0 <= float(s["pass_rate"]) <= 1.0 and s["source"] == "suite"
    assert "=== suite-heldout/0 (1/2) ===" in r.output and "### code" in r.output


@pytest.mark.slow
def test_no_or_damaged_checkpoint_is_a_one_line_error(micro_exp, tmp_path):
    import shutil

    from autoresearch.errors import CheckpointError

    root, exp = micro_exp
    bare = tmp_path / "experiments" / "exp-001"
    bare.mkdir(parents=True)
    shutil.copy(exp.config_path, bare / "config.yaml")  # an adversarial run that never saved a checkpoint
    with pytest.raises(CheckpointError) as e:
        InferenceEngine.from_checkpoint("exp-001", root=tmp_path / "experiments")
    assert "no checkpoint" in str(e.value) and "\n" not in str(e.value)
    copy = tmp_path / "copy" / "exp-001"
    shutil.copytree(exp.path, copy)
    best = sorted((copy / "checkpoints" / "best").glob("step-*.pt"))[-1]
    best.write_bytes(best.read_bytes()[:-100])  # truncated
    with pytest.raises(CheckpointError) as e:
        InferenceEngine.from_checkpoint("exp-001", root=tmp_path / "copy")
    assert best.name in str(e.value) and "\n" not in str(e.value)

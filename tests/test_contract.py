"""The `Testbed` contract suite: every registered testbed and the fake one pass the same tests (a new testbed passes
it or is not done). Micro configs keep each case to seconds; `short_run_overrides` sets the short runs."""

from __future__ import annotations

import copy
import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from autoresearch.errors import CheckpointError, ConfigError, RegistryError
from autoresearch.harness.config import to_dict
from autoresearch.harness.registry import Experiment, new_experiment
from autoresearch.testbeds import TESTBEDS, LoadedModel, Testbed, get_testbed
from autoresearch.testbeds.checks import ShortRun, checkpoint_roundtrip
from tests.conftest import FAKE_TESTBED, adversarial_micro_overrides, codegen_micro_overrides, micro_overrides

REPO = Path(__file__).resolve().parents[1]
ALL = [*TESTBEDS, FAKE_TESTBED]
IDS = [*TESTBEDS, "fake"]
runner = CliRunner(env={"COLUMNS": "220"})


def _micro(ref: str, cache: Path) -> list[str]:
    return {"lm": micro_overrides, "codegen": codegen_micro_overrides,
            "adversarial": adversarial_micro_overrides}.get(ref, lambda c: [])(cache)


def _short(testbed: Testbed, ref: str, cache: Path, steps: int):
    cfg = testbed.make_config(testbed.default_preset, _micro(ref, cache))
    return testbed.with_overrides(cfg, testbed.short_run_overrides(steps, cfg))


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cache_dir):
    """One 3-step run per testbed, shared by the tests that read a finished run."""
    runs: dict[str, tuple[Testbed, object, object, dict]] = {}

    def get(ref: str):
        if ref not in runs:
            testbed = get_testbed(ref)
            cfg = _short(testbed, ref, cache_dir, 3)
            exp = new_experiment(tmp_path_factory.mktemp("contract") / "experiments")
            runs[ref] = (testbed, cfg, exp, testbed.train(cfg, exp))
        return runs[ref]

    return get


# --- identity: the spec resolves back, the declared surface exists -----------------------------------------------


@pytest.mark.parametrize("ref", ALL, ids=IDS)
def test_spec_resolves_back_and_the_surface_is_declared(ref):
    testbed = get_testbed(ref)
    again = get_testbed(testbed.spec)
    assert type(again).__qualname__ == type(testbed).__qualname__ and again.spec == testbed.spec
    assert testbed.spec == (ref if ref in TESTBEDS else f"{Path(ref.rsplit(':', 1)[0]).resolve()}:FakeTestbed")
    assert testbed.name and testbed.metrics and set(testbed.metrics.values()) <= {"lower", "higher"}
    assert dataclasses.is_dataclass(testbed.config_class)
    assert testbed.default_preset in testbed.presets and testbed.presets[0] == testbed.default_preset
    for preset in testbed.presets:
        assert isinstance(testbed.preset_config(preset), testbed.config_class)
    assert set(Testbed.RESULT_KEYS) == {"status", "steps", "tokens", "train_seconds", "seed"}
    assert set(Testbed.LOG_KEYS) == {"step", "loss", "tokens"}
    overrides = {**testbed.budget_overrides(tokens=1000, seconds=1.0), **testbed.seed_overrides(3)}
    assert overrides == {"train.train_tokens": 1000, "train.max_seconds": 1.0, "train.seed": 3}


def test_get_testbed_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'lm'") as e:
        get_testbed("lmm")
    _one_line(e)
    cases = {
        "missing.py:X": "does not exist",
        "broken.py:X": "cannot be loaded (SyntaxError",
        "plain.py:Nope": "has no 'Nope'",
        "plain.py:NotATestbed": "is not a subclass of autoresearch.testbeds.Testbed",
    }
    (tmp_path / "broken.py").write_text("def (:\n")
    (tmp_path / "plain.py").write_text("class NotATestbed:\n    pass\n")
    for ref, want in cases.items():
        with pytest.raises(ConfigError) as e:
            get_testbed(str(tmp_path / ref))
        assert want in _one_line(e), (ref, str(e.value))
    with pytest.raises(ConfigError, match="cannot import 'no_such_mod'"):
        get_testbed("no_such_mod:X")


# --- make_config: every validation, one line, nothing written ------------------------------------------------------


@pytest.mark.parametrize("ref", ALL, ids=IDS)
def test_make_config_refuses_bad_input_in_one_line_naming_the_field(ref, cache_dir, tmp_path):
    testbed = get_testbed(ref)
    micro = _micro(ref, cache_dir)
    good = testbed.make_config(testbed.default_preset, micro)
    assert isinstance(good, testbed.config_class)
    per_step = good.tokens_per_step
    cases = [
        (["train.seedd=1"], "train.seedd", "did you mean"),
        (["train.seed=-1"], "train.seed", "-1"),
        (["train.log_every=abc"], "train.log_every", "abc"),
        ([f"train.train_tokens={3 * per_step + 1}"], "train.train_tokens", str(4 * per_step)),  # budget: whole steps
    ]
    for overrides, field, value in cases:
        with pytest.raises(ConfigError) as e:
            testbed.make_config(testbed.default_preset, [*micro, *overrides])
        msg = _one_line(e)
        assert field in msg and value in msg, (overrides, msg)
    with pytest.raises(ConfigError, match="unknown preset 'tinyy'.*did you mean 'tiny'"):
        testbed.make_config("tinyy")
    rounded = testbed.make_config(testbed.default_preset, [*micro, f"train.train_tokens={3 * per_step + 1}"],
                                  round_up=True)
    assert rounded.train.train_tokens == 4 * per_step
    # a YAML file is laid over the preset, then the overrides
    part = tmp_path / "part.yaml"
    part.write_text("train:\n  seed: 7\n  log_every: 3\n")
    cfg = testbed.make_config(testbed.default_preset, [*micro, "train.log_every=2"], config_file=part)
    assert (cfg.train.seed, cfg.train.log_every) == (7, 2)
    assert not list(tmp_path.glob("exp-*"))


@pytest.mark.parametrize("ref", ALL, ids=IDS)
def test_check_config_is_what_a_study_validates_with(ref, cache_dir):
    testbed = get_testbed(ref)
    cfg = testbed.make_config(testbed.default_preset, _micro(ref, cache_dir))
    testbed.check_config(cfg)
    cfg.train.train_tokens = cfg.tokens_per_step * 2 + 1
    with pytest.raises(ConfigError, match="train.train_tokens"):
        testbed.check_config(cfg)


# --- a short train: log keys, result keys, config.yaml records the testbed -----------------------------------------


@pytest.mark.parametrize("ref", ALL, ids=IDS)
def test_three_step_train_carries_the_contract_keys(ref, trained):
    testbed, cfg, exp, res = trained(ref)
    assert res["status"] == "ok" and res["steps"] == 3 and res["tokens"] == 3 * cfg.tokens_per_step
    missing = [k for k in (*Testbed.RESULT_KEYS, *testbed.required_results) if k not in res]
    assert not missing, missing
    assert all(math.isfinite(res[k]) for k in testbed.required_results)
    assert res["seed"] == cfg.train.seed
    saved = exp.read_results()
    assert {k: saved[k] for k in Testbed.RESULT_KEYS} == {k: res[k] for k in Testbed.RESULT_KEYS}
    log = exp.read_log()
    steps = [r for r in log if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3]  # short_run_overrides logs every step
    assert all(set(Testbed.LOG_KEYS) <= set(r) for r in steps)
    assert all({"step", "tokens"} <= set(r) for r in log)
    meta = exp.read_config()["meta"]
    assert meta["testbed"] == testbed.spec == exp.testbed()
    assert type(get_testbed(exp.testbed())).__qualname__ == type(testbed).__qualname__
    assert to_dict(testbed.load_config(exp)) == to_dict(cfg)
    summary = testbed.summary(cfg, res)
    assert summary["status"] == "ok" and set(summary) <= set(res)
    assert all(k in summary for k in (*testbed.required_results, *testbed.metrics) if k in res)  # metrics shown


@pytest.mark.parametrize("ref", ALL, ids=IDS)
def test_load_config_refuses_another_testbeds_folder(ref, trained):
    testbed = trained(ref)[0]
    other_ref = "codegen" if ref == "lm" else "lm"
    exp = trained(other_ref)[2]
    with pytest.raises(RegistryError) as e:
        testbed.load_config(exp)
    assert f"not of testbed {testbed.spec}" in _one_line(e)


# --- resume: interrupted + resumed == uninterrupted ----------------------------------------------------------------


@pytest.mark.parametrize("ref", ALL, ids=IDS)
def test_resumed_run_reproduces_the_uninterrupted_losses(ref, cache_dir, tmp_path):
    testbed = get_testbed(ref)
    cfg = _short(testbed, ref, cache_dir, 6)  # a checkpoint at step 3, the run ends at step 6
    full = new_experiment(tmp_path / "experiments")
    run = ShortRun(full, testbed.train(cfg, full))
    detail = checkpoint_roundtrip(testbed.train, cfg, tmp_path / "resumed", run)  # raises CheckFailed otherwise
    assert "saved at step 3" in detail and "steps 4-6" in detail
    resumed = Experiment(tmp_path / "resumed")
    a = [(r["step"], r["loss"]) for r in full.read_log() if "loss" in r]
    b = [(r["step"], r["loss"]) for r in resumed.read_log() if "loss" in r]
    assert a == b and len(a) == 6
    assert all(resumed.read_results()[k] == run.results[k] for k in testbed.required_results
               if k not in ("train_seconds", "wall_seconds", "tokens_per_s", "achieved_tflops", "peak_memory_mb"))


# --- load_model: the trained weights come back, with their tokenizer and config ------------------------------------


@pytest.mark.parametrize("ref", ALL, ids=IDS)
def test_load_model_round_trip(ref, trained):
    testbed, cfg, exp, res = trained(ref)
    if ref == FAKE_TESTBED:
        with pytest.raises(ConfigError) as e:
            testbed.load_model(exp)
        assert "has no model to load" in _one_line(e)
        return
    import torch

    from autoresearch.harness.checkpoint import latest_checkpoint, load_checkpoint

    loaded = testbed.load_model(exp)
    assert isinstance(loaded, LoadedModel) and not loaded.model.training
    assert to_dict(loaded.config) == to_dict(cfg)
    final = load_checkpoint(latest_checkpoint(exp.checkpoints_dir))
    assert final["step"] == res["steps"]
    # the loaded model computes what the trained weights compute: same logits as a model given the saved state
    text = "def add(a, b):\n    return a + b\n"
    ids = loaded.tokenizer.encode(text)
    assert loaded.tokenizer.decode(ids) == text
    x = torch.tensor([ids[:16]])
    with torch.no_grad():
        logits = loaded.model(x)
    assert logits.shape == (1, x.shape[1], loaded.tokenizer.vocab_size)
    other = copy.deepcopy(loaded.model)
    with torch.no_grad():
        for p in other.parameters():
            p.normal_(0.0, 0.02, generator=torch.Generator().manual_seed(0))
        assert not torch.equal(other(x), logits)  # other weights give other logits: the test can fail
        other.load_state_dict(final["model"])
        assert torch.equal(other(x), logits)


def test_load_model_of_a_run_without_checkpoint_says_so(tmp_path):
    testbed = get_testbed("lm")
    exp = new_experiment(tmp_path)
    exp.write_config({"model": {}}, {"testbed": "lm"})
    exp.write_results({"status": "crashed"})
    with pytest.raises(CheckpointError) as e:
        testbed.load_model(exp)
    assert "has no checkpoint (status: crashed)" in _one_line(e)


# --- checks: the default hooks (and codegen's generate_and_score) pass on a healthy config -------------------------


@pytest.mark.parametrize("ref", [pytest.param(r, marks=pytest.mark.slow) if r in ("codegen", "adversarial") else r
                                 for r in ALL], ids=IDS)
def test_checks_pass(ref, cache_dir, tmp_path):
    testbed = get_testbed(ref)
    cfg = testbed.make_config(testbed.default_preset, _micro(ref, cache_dir))
    results = testbed.checks(cfg, tmp_path, steps=6)
    assert all(r.ok for r in results), [(r.name, r.detail) for r in results]
    names = [r.name for r in results]
    if ref != FAKE_TESTBED:  # the fake's checks are instant stand-ins for the research tests
        assert names[:4] == ["forward_pass", "short_training", "checkpoint_roundtrip", "evaluation_pipeline"]
    assert ("generate_and_score" in names) == (ref == "codegen")


# --- a user testbed given as path/to/file.py:Class, through the CLI -------------------------------------------------


def _user_testbed(tmp_path: Path) -> str:
    path = tmp_path / "user_testbed" / "mine.py"
    path.parent.mkdir()
    path.write_text(
        "from autoresearch.testbeds import Testbed, get_testbed\n\n"
        f"Fake = type(get_testbed({FAKE_TESTBED!r}))\n\n\n"
        "class Mine(Fake):\n"
        "    name = 'mine'\n"
        "    checks = Testbed.checks  # the contract's default checks, not the fake's stand-ins\n"
    )
    return f"{path}:Mine"


_NO_CHECKPOINTS = """from __future__ import annotations
import random
from dataclasses import dataclass, field
from autoresearch.harness.config import param, to_dict
from autoresearch.testbeds.base import Testbed

@dataclass
class Model:
    lr: float = param(0.1, "step size", gt=0, le=1)
    momentum: bool = param(False, "idea: heavy-ball momentum 0.9")

@dataclass
class Train:
    seed: int = param(0, "seed", ge=0)
    train_tokens: int = param(50, "steps", ge=1)
    log_every: int = param(5, "log every N steps", ge=1)

@dataclass
class QuadraticConfig:
    model: Model = field(default_factory=Model)
    train: Train = field(default_factory=Train)
    tokens_per_step = 1

class Quadratic(Testbed):
    name = "quadratic"
    metrics = {"val_loss": "lower"}
    config_class = QuadraticConfig
    preset_factories = {"tiny": QuadraticConfig}
    required_results = ("val_loss",)

    def train(self, cfg, exp, *, resume=False, progress=False):
        with exp.running(resume=resume):
            exp.write_config(to_dict(cfg), {"testbed": self.spec, "seed": cfg.train.seed})
            rng, x, v = random.Random(cfg.train.seed), 5.0, 0.0
            for step in range(1, cfg.train.train_tokens + 1):
                g = 2 * x + rng.gauss(0, 0.1)
                v = 0.9 * v + g if cfg.model.momentum else g
                x -= cfg.model.lr * v
                if step % cfg.train.log_every == 0 or step == cfg.train.train_tokens:
                    exp.log({"step": step, "tokens": step, "loss": x * x})
            res = {"status": "ok", "val_loss": x * x, "steps": step, "tokens": step, "train_seconds": 0.0, "seed": cfg.train.seed}
            exp.write_results(res)
            return res
"""


def test_a_testbed_without_checkpoints_fails_only_the_roundtrip_check(tmp_path):
    """The default short run leaves out keys the config lacks (no `train.checkpoint_every`): `check` reports the
    missing resume as a failed check instead of refusing the whole command on an unknown key."""
    f = tmp_path / "quad.py"
    f.write_text(_NO_CHECKPOINTS)
    tb = get_testbed(f"{f}:Quadratic")
    assert "train.checkpoint_every" not in tb.short_run_overrides(6)
    results = {r.name: r for r in tb.checks(tb.make_config("tiny"), tmp_path / "checks", steps=6)}
    assert not results["checkpoint_roundtrip"].ok and "checkpoint" in results["checkpoint_roundtrip"].detail
    assert results["short_training"].ok and results["evaluation_pipeline"].ok


@pytest.mark.slow
def test_user_testbed_file_trains_resumes_and_checks_through_the_cli(tmp_path, monkeypatch):
    from autoresearch.cli.app import app

    ref = _user_testbed(tmp_path)
    root = tmp_path / "experiments"
    cmd = [sys.executable, "-m", "autoresearch", "train", ref, "--set", "train.checkpoint_every=2",
           "--train-tokens", "6000", "--root", str(root), "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    summary = dict(ln.split(": ", 1) for ln in r.stdout.splitlines() if ": " in ln)
    assert summary["experiment"] == "exp-001" and summary["status"] == "ok" and summary["steps"] == "6"
    assert {"val_loss", "accuracy", "tokens", "train_seconds"} <= set(summary)
    exp = Experiment(root / "exp-001")
    assert exp.testbed() == ref and exp.read_config()["meta"]["testbed"] == ref
    # killed after step 5: the recorded spec, given as a relative path too, resumes it from step 4
    before = exp.read_results()
    exp.write_results({"status": "running"})
    (exp.checkpoints_dir / "step-0000006.pt").unlink()
    monkeypatch.chdir(tmp_path)
    rel = ref.replace(f"{tmp_path}/", "")
    r = runner.invoke(app, ["train", rel, "--resume", "exp-001", "--root", str(root), "--quiet"])
    assert r.exit_code == 0, r.output
    after = exp.read_results()
    assert after["status"] == "ok" and after["val_loss"] == before["val_loss"]
    assert [x["step"] for x in exp.read_log()] == [1, 5]
    r = runner.invoke(app, ["train", "lm", "--resume", "exp-001", "--root", str(root)])
    assert isinstance(r.exception, RegistryError) and f"is a `train {ref}` run" in str(r.exception)
    r = runner.invoke(app, ["check", ref, "--steps", "6", "--out", str(tmp_path / "chk")])
    assert r.exit_code == 0, r.output
    data = yaml.safe_load((tmp_path / "chk" / "checks.yaml").read_text())
    assert [d["name"] for d in data] == ["forward_pass", "short_training", "checkpoint_roundtrip",
                                         "evaluation_pipeline"]
    assert all(d["status"] == "pass" for d in data) and "4/4 passed" in r.output
    r = runner.invoke(app, ["train", ref, "--list-flags"])
    assert r.exit_code == 0 and "model.boost" in r.output and "tiny" in r.output


@pytest.mark.slow  # two torch imports (codegen), ~11 s on 2 cores
def test_cli_shorthands_and_unknown_options_are_one_line(tmp_path):
    from autoresearch.cli.app import app

    for args, want in [
        (["train", "codegen", "--model", "rnn"], "--model must be hrm or gpt, got 'rnn'; use --model hrm"),
        (["train", "codegen", "--modle", "gpt"], "no option --modle for testbed codegen; did you mean --model?"),
        (["check", "lm", "--model", "gpt"], "no option --model for testbed lm;"),
        (["train", "nope"], "unknown testbed 'nope'; use a registered name (lm, codegen, adversarial)"),
        (["train", FAKE_TESTBED, "--train-tokens", "5500"], "`train.train_tokens` must be a multiple of 1000, got "
                                                           "5500; use 6000 or pass --round-up"),
    ]:
        r = runner.invoke(app, [*args, "--root", str(tmp_path)] if args[0] == "train" else args)
        assert isinstance(r.exception, ConfigError) and str(r.exception).startswith(want), (args, r.exception)
    assert not list(tmp_path.iterdir())
    r = subprocess.run([sys.executable, "-m", "autoresearch", "train", "codegen", "--model", "rnn"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr == "error: --model must be hrm or gpt, got 'rnn'; use --model hrm\n"

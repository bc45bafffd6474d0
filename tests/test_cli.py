"""The CLI surface: verbs documented in the README exist, a tiny run end to end, one-line errors with exit 2."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from autoresearch.cli.app import app
from tests.conftest import micro_overrides

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner(env={"COLUMNS": "220"})


def _sets(cache):
    return [a for o in micro_overrides(cache) for a in ("--set", o)]


def test_readme_commands_exist():
    readme = (REPO / "README.md").read_text()
    verbs = set(re.findall(r"^\s*autoresearch ([a-z][a-z-]*(?: [a-z]+)?)", readme, flags=re.M))
    required = {"train lm", "train codegen", "check lm", "check codegen", "ls", "show exp", "eval-code", "study run",
                "study status", "study resume", "study report"}
    assert required <= verbs, required - verbs
    for verb in verbs:
        parts = [p for p in verb.split() if not p.startswith("exp")]
        result = runner.invoke(app, [*parts, "--help"])
        assert result.exit_code == 0, f"`autoresearch {verb} --help` failed: {result.output}"


def test_train_ls_show_end_to_end(cache_dir, tmp_path):
    root = tmp_path / "experiments"
    r = runner.invoke(app, ["train", "lm", "--preset", "tiny", *_sets(cache_dir), "--root", str(root), "--quiet"])
    assert r.exit_code == 0, r.output
    summary = dict(line.split(": ", 1) for line in r.output.splitlines() if ": " in line and not line.startswith("exp"))
    assert summary["status"] == "ok" and float(summary["val_loss"]) < float(summary["val_loss_init"])
    assert {"val_bpb", "tokens_per_s", "peak_memory_mb", "mfu", "wall_seconds"} <= set(summary)
    assert (root / "exp-001" / "results.yaml").exists() and (root / "exp-001" / "log.jsonl").exists()
    r = runner.invoke(app, ["ls", "--root", str(root)])
    assert r.exit_code == 0 and "exp-001" in r.output and "ok" in r.output
    r = runner.invoke(app, ["show", "exp-001", "--root", str(root)])
    assert r.exit_code == 0 and "val_loss" in r.output and "model.d_model" in r.output


def test_resume_cli_refuses_new_overrides(tmp_path):
    r = subprocess.run([sys.executable, "-m", "autoresearch", "train", "lm", "--resume", "exp-001", "--seed", "3",
                        "--root", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--resume continues a run" in r.stderr


def test_bad_override_is_one_line_exit_2(tmp_path):
    r = subprocess.run([sys.executable, "-m", "autoresearch", "train", "lm", "--set", "model.n_layer=3",
                        "--root", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip() == "error: unknown config key `model.n_layer`; did you mean `model.n_layers`?"
    assert not (tmp_path / "exp-001").exists()


def test_check_writes_checks_yaml(cache_dir, tmp_path):
    r = runner.invoke(app, ["check", "lm", "--preset", "tiny", *_sets(cache_dir), "--steps", "12", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    data = yaml.safe_load((tmp_path / "checks.yaml").read_text())
    assert [d["name"] for d in data] == ["forward_pass", "short_training", "checkpoint_roundtrip", "evaluation_pipeline"]
    assert "4/4 passed" in r.output


def test_check_exit_code_nonzero_on_failure(cache_dir, tmp_path):
    bad = ["--set", "optim.optimizer=adamw", "--set", "optim.adamw_lr=50", "--set", "optim.grad_clip=0"]
    r = runner.invoke(app, ["check", "lm", *_sets(cache_dir), *bad, "--steps", "12", "--out", str(tmp_path)])
    assert r.exit_code == 1
    assert "fail" in yaml.safe_dump(yaml.safe_load((tmp_path / "checks.yaml").read_text()))


def test_list_flags():
    r = runner.invoke(app, ["train", "lm", "--list-flags"])
    assert r.exit_code == 0 and "model.n_layers" in r.output


@pytest.mark.slow
def test_kill_9_then_resume_matches_uninterrupted(cache_dir, tmp_path):
    """A run SIGKILLed mid-training and resumed from the CLI reproduces an uninterrupted run's losses exactly."""
    import json
    import os
    import signal
    import time

    args = [*_sets(cache_dir), "--set", "train.train_tokens=76800", "--set", "train.checkpoint_every=20", "--quiet"]
    env = {**os.environ, "AUTORESEARCH_CACHE": str(cache_dir)}
    full = subprocess.run([sys.executable, "-m", "autoresearch", "train", "lm", *args, "--root", str(tmp_path / "a")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert full.returncode == 0, full.stderr
    root = tmp_path / "b"
    proc = subprocess.Popen([sys.executable, "-m", "autoresearch", "train", "lm", *args, "--root", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    manifest = root / "exp-001" / "checkpoints" / "manifest.json"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if manifest.exists() and json.loads(manifest.read_text())["checkpoints"][-1]["step"] >= 40:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "run finished before it could be killed; raise train_tokens"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    from autoresearch.harness.registry import open_experiment

    killed = open_experiment("exp-001", root)
    assert killed.read_results()["status"] == "running"  # kill -9 leaves no chance to write anything else
    r = subprocess.run([sys.executable, "-m", "autoresearch", "train", "lm", "--resume", "exp-001", "--root", str(root),
                        "--quiet"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    a = [(x["step"], x["loss"]) for x in open_experiment("exp-001", tmp_path / "a").read_log()]
    b = [(x["step"], x["loss"]) for x in killed.read_log()]
    assert len(a) == 600 and a == b


# --- issue 8: --resume refuses what it cannot continue; the lock; the manifest ---------------------------------------

def _trained(cache_dir, root, *extra):
    r = runner.invoke(app, ["train", "lm", *_sets(cache_dir), "--set", "train.checkpoint_every=2", *extra,
                            "--root", str(root), "--quiet"])
    assert r.exit_code == 0, r.output
    from autoresearch.harness.registry import list_experiments

    return list_experiments(root)[-1]


@pytest.mark.parametrize("ref", ["", " "])
def test_resume_empty_is_an_error_not_a_fresh_run(tmp_path, ref):
    from autoresearch.errors import ConfigError

    r = runner.invoke(app, ["train", "lm", "--resume", ref, "--root", str(tmp_path)])
    assert isinstance(r.exception, ConfigError) and "--resume needs an experiment" in str(r.exception)
    r = runner.invoke(app, ["train", "codegen", "--resume", ref, "--root", str(tmp_path)])
    assert isinstance(r.exception, ConfigError)
    assert not list(tmp_path.iterdir())


def test_resume_refuses_finished_eval_code_and_other_testbed(cache_dir, tmp_path):
    from autoresearch.errors import ConfigError, RegistryError

    exp = _trained(cache_dir, tmp_path)
    before = exp.results_path.read_bytes()
    r = runner.invoke(app, ["train", "lm", "--resume", exp.id, "--root", str(tmp_path)])
    assert isinstance(r.exception, RegistryError)
    assert re.search(r"finished with status ok; --resume only continues .*--config .*exp-001/config.yaml",
                     str(r.exception))
    assert exp.results_path.read_bytes() == before
    r = runner.invoke(app, ["train", "codegen", "--resume", exp.id, "--root", str(tmp_path)])
    assert "is a `train lm` run, not a training run of the codegen testbed" in str(r.exception)
    r = runner.invoke(app, ["train", "lm", "--rebuild-manifest", "--root", str(tmp_path)])
    assert isinstance(r.exception, ConfigError) and "use it with --resume" in str(r.exception)
    # an eval-code experiment
    from autoresearch.harness.registry import new_experiment

    ev = new_experiment(tmp_path)
    ev.write_config({"command": "eval-code", "samples": "s.jsonl"}, {"created": "x"})
    ev.write_results({"status": "ok", "pass@1": 0.5})
    r = runner.invoke(app, ["train", "lm", "--resume", ev.id, "--root", str(tmp_path)])
    assert isinstance(r.exception, RegistryError)
    assert "exp-002 is an eval-code experiment (`command: eval-code`), not a training run of the lm testbed; it has " \
           "no training to resume" in str(r.exception)


def test_killed_run_with_lost_manifest_and_damaged_files_recovers_as_advised(cache_dir, tmp_path):
    """Follow each error's advice: it must lead back to a finished run with the same result."""
    from autoresearch.errors import CheckpointError, RegistryError

    exp = _trained(cache_dir, tmp_path)
    val_loss = exp.read_results()["val_loss"]
    exp.write_results({"status": "running"})  # as a kill -9 leaves it
    r = runner.invoke(app, ["ls", "--root", str(tmp_path)])
    assert "killed" in r.output and "--resume exp-001" in r.output
    (exp.checkpoints_dir / "manifest.json").unlink()
    r = runner.invoke(app, ["train", "lm", "--resume", exp.id, "--root", str(tmp_path), "--quiet"])
    assert isinstance(r.exception, CheckpointError) and "manifest.json is missing" in str(r.exception)
    assert "--rebuild-manifest" in str(r.exception)
    r = runner.invoke(app, ["train", "lm", "--resume", exp.id, "--rebuild-manifest", "--root", str(tmp_path),
                            "--quiet"])
    assert r.exit_code == 0, r.output
    assert "rebuilt" in r.output and exp.read_results()["val_loss"] == val_loss
    # a damaged results.yaml: `ls` says so, and its advice (delete it and resume) rewrites it
    exp.results_path.write_text("- a\n")
    r = runner.invoke(app, ["ls", "--root", str(tmp_path)])
    assert r.exit_code == 0 and "damaged" in r.output and "delete it and resume" in r.output
    r = runner.invoke(app, ["train", "lm", "--resume", exp.id, "--root", str(tmp_path), "--quiet"])
    assert isinstance(r.exception, RegistryError) and "results.yaml holds a list" in str(r.exception)
    exp.results_path.unlink()
    r = runner.invoke(app, ["train", "lm", "--resume", exp.id, "--root", str(tmp_path), "--quiet"])
    assert r.exit_code == 0, r.output
    assert exp.read_results()["val_loss"] == val_loss
    # a config.yaml emptied: one line, before any training
    exp.write_results({"status": "crashed"})
    exp.config_path.write_text("{}")
    r = runner.invoke(app, ["train", "lm", "--resume", exp.id, "--root", str(tmp_path)])
    assert isinstance(r.exception, RegistryError) and "config.yaml is empty" in str(r.exception)
    exp.config_path.write_text("meta: {}\nmodel: {d_model: 32}\n")
    r = runner.invoke(app, ["train", "lm", "--resume", exp.id, "--root", str(tmp_path)])
    assert isinstance(r.exception, RegistryError) and "lacks the section(s)" in str(r.exception)


@pytest.mark.slow
def test_two_resumes_at_once_one_runs_the_other_is_refused(micro_cfg, tmp_path):
    """Two real `train lm --resume exp-001` processes: one trains, the other exits 2 naming the pid holding it."""
    import os

    from autoresearch.harness.registry import new_experiment
    from autoresearch.testbeds.lm.train import train

    class Stop(Exception):
        pass

    def stop(step, record):
        if step == 2:
            raise Stop

    micro_cfg.train.train_tokens = 4 * 32 * 120
    micro_cfg.train.checkpoint_every = 2
    exp = new_experiment(tmp_path)
    with pytest.raises(Stop):
        train(micro_cfg, exp, on_step=stop)
    cmd = [sys.executable, "-m", "autoresearch", "train", "lm", "--resume", "exp-001", "--root", str(tmp_path),
           "--quiet"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)
             for _ in range(2)]
    outs = [(p.pid, *p.communicate(timeout=300), p.returncode) for p in procs]
    rcs = sorted(o[3] for o in outs)
    assert rcs == [0, 2], outs
    winner = next(o for o in outs if o[3] == 0)
    loser = next(o for o in outs if o[3] == 2)
    assert loser[2].count("\n") == 1
    assert f"exp-001 is already being trained by pid {winner[0]}" in loser[2], loser[2]
    steps = [r["step"] for r in exp.read_log() if "loss" in r]
    assert steps == list(range(1, 121))  # every step logged once


def test_rebuild_manifest_of_a_finished_run_only_repairs(cache_dir, tmp_path):
    from autoresearch.harness.checkpoint import latest_checkpoint

    exp = _trained(cache_dir, tmp_path)
    before = exp.results_path.read_bytes()
    (exp.checkpoints_dir / "manifest.json").write_text("{}")
    r = runner.invoke(app, ["train", "lm", "--resume", exp.id, "--rebuild-manifest", "--root", str(tmp_path)])
    assert r.exit_code == 0 and "nothing to resume" in r.output, r.output
    assert latest_checkpoint(exp.checkpoints_dir).name == "step-0000008.pt"
    assert exp.results_path.read_bytes() == before


# --- bad input found by a new-user pass: refused before a folder exists, or one line ---------------------------------


def test_unusable_device_is_refused_before_a_folder_exists(tmp_path):
    if __import__("torch").cuda.is_available():
        pytest.skip("CUDA is available here")
    for testbed in ("lm", "codegen"):
        r = subprocess.run([sys.executable, "-m", "autoresearch", "train", testbed, "--set", "train.device=cuda",
                            "--root", str(tmp_path)], capture_output=True, text=True)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "train.device=cpu" in r.stderr, r.stderr
    assert not tmp_path.exists() or not list(tmp_path.iterdir())


def test_uncreatable_token_cache_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "autoresearch", "train", "lm", "--preset", "tiny", "--set",
                        "train.train_tokens=8192", "--set", "data.cache_dir=/proc/no-such-dir", "--root",
                        str(tmp_path), "--quiet"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "token cache: cannot use /proc/no-such-dir" in r.stderr and "writable folder" in r.stderr


def test_config_file_is_laid_over_the_preset(cache_dir, tmp_path):
    part = tmp_path / "part.yaml"
    part.write_text("model:\n  n_layers: 1\n")
    r = runner.invoke(app, ["train", "lm", "--preset", "tiny", "--config", str(part), *_sets(cache_dir),
                            "--set", "model.n_layers=1", "--root", str(tmp_path / "r"), "--quiet"])
    assert r.exit_code == 0, r.output
    saved = yaml.safe_load((tmp_path / "r" / "exp-001" / "config.yaml").read_text())
    assert saved["model"]["n_layers"] == 1 and saved["model"]["d_model"] == 32  # the rest from preset + --set
    from autoresearch.cli.train import config_from_cli
    from autoresearch.testbeds import get_testbed
    from autoresearch.testbeds.lm.config import preset

    cfg = config_from_cli(get_testbed("lm"), "tiny", part, [])
    assert cfg.model.n_layers == 1 and cfg.model.d_model == preset("tiny").model.d_model  # not the 5dollar default
    assert cfg.train.train_tokens == preset("tiny").train.train_tokens


def test_show_of_an_empty_or_early_crashed_folder_is_one_line(tmp_path):
    (tmp_path / "exp-001").mkdir()
    r = runner.invoke(app, ["show", "exp-001", "--root", str(tmp_path)])
    assert r.exit_code == 0 and "exp-001: empty, no config.yaml (the run never started)" in r.output
    (tmp_path / "exp-002").mkdir()
    (tmp_path / "exp-002" / "results.yaml").write_text("status: crashed\nerror: 'no such device'\n")
    r = runner.invoke(app, ["ls", "--root", str(tmp_path)])
    assert r.exit_code == 0 and "damaged" not in r.output and "crashed" in r.output
    r = runner.invoke(app, ["show", "exp-002", "--root", str(tmp_path)])
    assert r.exit_code == 0 and "crashed, no config.yaml; error: no such device" in r.output


def test_piped_ls_keeps_whole_ids(tmp_path):
    (tmp_path / "exp-001").mkdir()
    r = subprocess.run([sys.executable, "-m", "autoresearch", "ls", "--root", str(tmp_path)], capture_output=True,
                       text=True, env={**__import__("os").environ, "COLUMNS": "80"})
    assert r.returncode == 0 and "exp-001" in r.stdout

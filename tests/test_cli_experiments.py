"""`autoresearch ls` / `show`: every folder listed whatever its state; damaged ones explained in one line (issue 8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from autoresearch.cli.app import app
from autoresearch.errors import RegistryError
from autoresearch.harness.registry import new_experiment

runner = CliRunner(env={"COLUMNS": "250"})
RANDOM = bytes(range(256))[::-7] * 3


def _exp(root, status="ok", **results):
    exp = new_experiment(root)
    exp.write_config({"model": {"d_model": 32}, "train": {"seed": 0}}, {"seed": 0, "created": "2025-01-02T03:04:05"})
    exp.write_results({"status": status, "val_loss": 1.25, **results})
    exp.log({"step": 1, "loss": 3.0})
    exp.log({"step": 2, "loss": 2.0})
    return exp


@pytest.fixture
def registry(tmp_path):
    root = tmp_path / "experiments"
    _exp(root)                                              # exp-001 ok
    _exp(root).results_path.write_text("- a\n")              # exp-002 results is a list
    _exp(root).config_path.write_bytes(RANDOM)               # exp-003 config random bytes
    _exp(root, status="running")                             # exp-004 killed: running, nobody holds the lock
    new_experiment(root)                                     # exp-005 allocated, nothing written yet
    _exp(root).results_path.write_text("{}")                 # exp-006 results without status
    e = _exp(root)                                           # exp-007 garbled log line
    e.log_path.write_text('{"step": 1}\n\x00\x01garbage\n{"step": 2}\n')
    return root


def test_ls_lists_every_folder_and_explains_damaged_ones(registry):
    r = runner.invoke(app, ["ls", "--root", str(registry)])
    assert r.exit_code == 0, r.output
    rows = {line.split("│")[1].strip(): line for line in r.output.splitlines() if line.startswith("│ exp-")}
    assert sorted(rows) == [f"exp-{i:03d}" for i in range(1, 8)]
    status = {k: v.split("│")[3].strip() for k, v in rows.items()}
    assert status == {"exp-001": "ok", "exp-002": "damaged", "exp-003": "damaged", "exp-004": "killed",
                      "exp-005": "empty", "exp-006": "damaged", "exp-007": "ok"}
    notes = [line for line in r.output.splitlines() if line.startswith("exp-")]
    assert any(n.startswith("exp-002 damaged: ") and "results.yaml holds a list" in n for n in notes)
    assert any(n.startswith("exp-003 damaged: ") and "config.yaml" in n for n in notes)
    assert any(n.startswith("exp-004 killed: ") and "--resume exp-004" in n for n in notes)
    assert any(n.startswith("exp-006 damaged: ") and "no `status`" in n for n in notes)


@pytest.mark.parametrize("n,what", [(2, "results.yaml holds a list"), (3, "config.yaml"), (6, "no `status`")])
def test_show_damaged_is_one_line_naming_file_and_fix(registry, n, what):
    r = runner.invoke(app, ["show", f"exp-{n:03d}", "--root", str(registry)])
    assert isinstance(r.exception, RegistryError), r.output
    msg = str(r.exception)
    assert what in msg and "\n" not in msg and ("restore it" in msg or "delete it and resume" in msg)


def test_show_damaged_from_the_shell_exits_2_with_one_line(registry):
    r = subprocess.run([sys.executable, "-m", "autoresearch", "show", "exp-002", "--root", str(registry)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and not r.stdout


def test_show_killed_and_garbled_log(registry):
    (registry / "exp-004" / "run.lock").write_text(json.dumps({"pid": os.getpid(), "host": "h1", "started": "t0"}))
    r = runner.invoke(app, ["show", "exp-004", "--root", str(registry)])
    assert r.exit_code == 0, r.output
    assert f"killed: pid {os.getpid()} on h1 is gone" in r.output and "owner: pid" in r.output
    r = runner.invoke(app, ["show", "exp-007", "--root", str(registry)])
    assert r.exit_code == 0, r.output
    assert "warning: " in r.output and "log.jsonl line 2 is not a JSON object" in r.output


def test_ls_on_a_file_or_an_empty_root(tmp_path):
    (tmp_path / "file").write_text("x")
    r = runner.invoke(app, ["ls", "--root", str(tmp_path / "file")])
    assert isinstance(r.exception, RegistryError) and "cannot list" in str(r.exception)
    r = runner.invoke(app, ["ls", "--root", str(tmp_path / "none")])
    assert r.exit_code == 0 and "no experiments" in r.output

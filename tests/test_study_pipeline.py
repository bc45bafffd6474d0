"""The study pipeline end to end on the fake testbed (trials are real subprocesses, each well under a second):
verdicts, parallel trials, crash/NaN/timeout -> CRASH, infrastructure retries, resume after a real SIGKILL of the
study process, baseline reproduction and accept-baseline, regression-trace mismatch, two studies at once."""

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
from typer.testing import CliRunner

from autoresearch.errors import StudyError
from autoresearch.research.ledger import Ledger
from autoresearch.research.lock import runner_lock
from autoresearch.research.runner import StudyRunner
from autoresearch.research.state import StudyState
from autoresearch.research.study_dir import accept_baseline, open_study, prepare_study
from tests.conftest import fake_study_file as _file

REPO = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, path: Path, workers: int = 2, **kw):
    resolved, sdir = prepare_study(path, tmp_path / "studies")
    return StudyRunner(resolved, sdir, registry=tmp_path / "experiments", workers=workers, **kw).run()


def _verdicts(result) -> dict[str, object]:
    return {v.idea: v for v in result.verdicts}


@pytest.mark.slow
def test_verdicts_crashes_and_infra_retries(tmp_path):
    path = _file(tmp_path, "mix", seeds={"initial": 2, "max": 2}, control={}, checks=True,
                 ideas=[{"name": "good", "overrides": {"model.boost": 0.2}},
                        {"name": "bad", "overrides": {"model.hurt": 0.3}},
                        {"name": "crashy", "overrides": {"model.crash": True}},
                        {"name": "nan", "overrides": {"model.nan": True}},
                        {"name": "flaky", "overrides": {"model.infra_fail": 1, "model.boost": 0.2}},
                        {"name": "dead", "overrides": {"model.infra_fail": 99}}],
                 resources={"retries": 1})
    res = _run(tmp_path, path)
    v = _verdicts(res)
    assert v["good"].verdict == "KEEP" and v["good"].n == 2 and v["good"].mean > 0.15
    assert v["bad"].verdict == "DISCARD" and v["bad"].code == "worse"
    assert v["crashy"].verdict == "CRASH" and "RuntimeError: fake crash: boom" in v["crashy"].error
    assert v["nan"].verdict == "CRASH" and "NaN" in v["nan"].error
    assert v["flaky"].verdict == "KEEP"  # one SIGKILL, retried, then fine
    assert v["dead"].verdict == "CRASH"
    assert "infrastructure failure after 2 attempts" in v["dead"].error and "SIGKILL" in v["dead"].error
    assert v["aa_control"].verdict != "KEEP"

    sdir = tmp_path / "studies" / "mix"
    state = StudyState.load(sdir / "state.json")
    assert state.done and state.stage_done("checks") and state.stage_done("report")
    assert state.trial("flaky-s0").attempts == 2 and (sdir / "trials/flaky-s0/attempt-2/result.json").exists()
    assert state.trial("dead-s0").attempts == 2
    ledger = Ledger(sdir, "val_loss")
    trial_keys = [r["key"] for r in ledger.records("trial")]
    assert len(trial_keys) == len(set(trial_keys)) == len(state.trials)
    assert (sdir / "idea_log.md").exists() and (sdir / "report.html").exists()
    # every experiment folder says which study and trial it belongs to
    for t in state.trials.values():
        if t.exp:
            meta = yaml.safe_load((Path(t.exp) / "study_trial.yaml").read_text())
            assert meta["study"] == "mix" and meta["trial"] == t.trial


@pytest.mark.slow
def test_trials_run_in_parallel_up_to_workers(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    path = _file(tmp_path, "par", overrides={"train.step_seconds": 0.2})  # 2 s of "training" per trial
    _run(tmp_path, path, workers=2)
    state = StudyState.load(tmp_path / "studies/par/state.json")
    spans = [(t.metrics["t_start"], t.metrics["t_end"]) for t in state.trials.values()]
    assert len(spans) == 4
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    live = peak = 0
    for _, d in events:
        live += d
        peak = max(peak, live)
    assert peak == 2
    # two visible GPUs: each worker slot is pinned to one, so overlapping trials never share a device
    devices = {t.trial: t.metrics["cuda_visible"] for t in state.trials.values()}
    assert set(devices.values()) == {3, 5}
    by_time = sorted(state.trials.values(), key=lambda t: t.metrics["t_start"])
    assert by_time[0].metrics["cuda_visible"] != by_time[1].metrics["cuda_visible"]


@pytest.mark.slow
def test_timeout_is_a_crash_not_a_retry(tmp_path):
    # the timeout covers the whole subprocess (interpreter start included), so leave room for a loaded machine
    path = _file(tmp_path, "slow", seeds={"initial": 2, "max": 2}, resources={"timeout_s": 8},
                 ideas=[{"name": "sleepy", "overrides": {"train.step_seconds": 3.0}}])
    res = _run(tmp_path, path)
    v = _verdicts(res)["sleepy"]
    assert v.verdict == "CRASH" and "timed out after 8s" in v.error
    state = StudyState.load(tmp_path / "studies/slow/state.json")
    assert state.trial("sleepy-s0").attempts == 1


@pytest.mark.slow
def test_retest_adds_paired_seeds_up_to_max(tmp_path):
    path = _file(tmp_path, "rt", seeds={"initial": 2, "max": 4},
                 ideas=[{"name": "tiny", "overrides": {"model.boost": 0.004}}])
    res = _run(tmp_path, path)
    v = _verdicts(res)["tiny"]
    assert v.n == 4 and v.verdict in ("DISCARD", "KEEP")
    state = StudyState.load(tmp_path / "studies/rt/state.json")
    assert {f"baseline-s{i}" for i in range(4)} <= set(state.trials)
    rounds = [r for r in Ledger(tmp_path / "studies/rt", "val_loss").records("verdict")]
    assert [r["verdict"] for r in rounds][:2] == ["RETEST", "RETEST"] and [r["n"] for r in rounds] == [2, 3, 4]


def test_baseline_not_reproduced_stops_then_accept_baseline_continues(tmp_path):
    path = _file(tmp_path, "bl", baseline={"value": 4.0, "source": "paper"})
    with pytest.raises(StudyError) as e:
        _run(tmp_path, path)
    msg = str(e.value)
    assert "baseline not reproduced" in msg and "recorded 4.0000" in msg and "from 'paper'" in msg
    assert "over 2 seeds" in msg and "accept-baseline bl" in msg and "\n" not in msg
    state = StudyState.load(tmp_path / "studies/bl/state.json")
    measured = state.baseline.measured
    assert not (tmp_path / "studies/bl/trials/good-s0").exists()  # no idea trial ran
    acc = accept_baseline("bl", tmp_path / "studies")
    assert acc.value == pytest.approx(measured) and acc.previous == 4.0
    resolved, sdir = open_study("bl", tmp_path / "studies")
    res = StudyRunner(resolved, sdir, registry=tmp_path / "experiments", workers=2).run()
    assert _verdicts(res)["good"].verdict == "KEEP"
    # the baseline trials were not run again
    assert len(list((sdir / "trials/baseline-s0").glob("attempt-*"))) == 1


@pytest.mark.slow
def test_regression_trace_mismatch_names_the_first_differing_step(tmp_path, monkeypatch):
    store = {"enabled": True, "steps": 6, "store": str(tmp_path / "traces")}
    first = _file(tmp_path, "rec", regression=store)
    _run(tmp_path, first)
    st = StudyState.load(tmp_path / "studies/rec/state.json")
    assert st.stages["regression"].result == "recorded"
    assert len(list((tmp_path / "traces").glob("*.json"))) == 1
    trace = json.loads((tmp_path / "studies/rec/regression_trace.json").read_text())
    assert trace["steps"] == [1, 2, 3, 4, 5, 6] and len(trace["losses_hex"]) == 6

    # same study again, unchanged code: reproduced bit for bit (other ideas, so other flags set explicitly off)
    again = _file(tmp_path, "again", regression=store, ideas=[{"name": "h", "overrides": {"model.hurt": 0.1}}])
    _run(tmp_path, again)
    st = StudyState.load(tmp_path / "studies/again/state.json")
    assert st.stages["regression"].result == "reproduced"

    # now "edit the code" so the baseline path changes by one ulp at step 4
    monkeypatch.setenv("FAKE_TESTBED_BUG_STEP", "4")
    second = _file(tmp_path, "bug", regression=store, baseline={"value": None})
    with pytest.raises(StudyError) as e:
        _run(tmp_path, second)
    msg = str(e.value)
    assert "first differing step 4" in msg and "every idea flag off" in msg and "\n" not in msg
    st = StudyState.load(tmp_path / "studies/bug/state.json")
    assert st.stages["regression"].status == "failed"
    assert not (tmp_path / "studies/bug/trials/good-s0").exists()


def test_nondeterministic_short_run_is_refused_when_recording(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_TESTBED_NONDET", "1")
    path = _file(tmp_path, "nd", regression={"enabled": True, "steps": 4, "store": str(tmp_path / "traces")},
                 baseline={"value": None})
    with pytest.raises(StudyError, match="not deterministic .* first differing step 2"):
        _run(tmp_path, path)
    assert not list((tmp_path / "traces").glob("*.json"))  # nothing recorded


def test_resume_retry_crashed_reruns_only_crashed_trials(tmp_path, monkeypatch):
    path = _file(tmp_path, "retry", ideas=[{"name": "fixme", "overrides": {"model.crash": True, "model.boost": 0.2}}])
    assert _verdicts(_run(tmp_path, path))["fixme"].verdict == "CRASH"
    monkeypatch.setenv("FAKE_TESTBED_FIXED", "1")  # the user fixes the bug
    resolved, sdir = open_study("retry", tmp_path / "studies")
    res = StudyRunner(resolved, sdir, registry=tmp_path / "experiments", retry_crashed=True).run()
    assert _verdicts(res)["fixme"].verdict == "KEEP"
    assert len(list((sdir / "trials/fixme-s0").glob("attempt-*"))) == 2
    assert len(list((sdir / "trials/baseline-s0").glob("attempt-*"))) == 1  # ok trials are not re-run
    ledger = Ledger(sdir, "val_loss")
    assert [r["status"] for r in ledger.records("trial") if r["trial"] == "fixme-s0"] == ["crashed", "ok"]
    assert [r["verdict"] for r in ledger.records("verdict")] == ["CRASH", "KEEP"]


def test_failing_integration_check_stops_the_study_before_any_idea(tmp_path):
    path = _file(tmp_path, "chk", checks=True, overrides={"model.fail_check": True})
    for attempt in (1, 2):  # resume runs the checks again (a new generation), they fail again
        with pytest.raises(StudyError, match="integration checks failed .*evaluation_pipeline: metric differs"):
            if attempt == 1:
                _run(tmp_path, path)
            else:
                resolved, sdir = open_study("chk", tmp_path / "studies")
                StudyRunner(resolved, sdir, registry=tmp_path / "experiments").run()
    sdir = tmp_path / "studies/chk"
    assert (sdir / "trials/checks-g1").is_dir() and (sdir / "trials/checks-g2").is_dir()
    assert not (sdir / "trials/good-s0").exists()
    assert StudyState.load(sdir / "state.json").stages["checks"].status == "failed"


def test_same_name_with_another_definition_is_refused_then_restart_starts_over(tmp_path):
    _run(tmp_path, _file(tmp_path, "dup"))
    changed = _file(tmp_path, "dup", decision={"alpha": 0.01})
    with pytest.raises(StudyError, match=r"already exists .* another definition \(decision.alpha 0.05 -> 0.01\).*"
                                         r"--restart"):
        prepare_study(changed, tmp_path / "studies")
    # the advised recovery works: the old folder is kept aside, the edited file runs afresh
    res = _run_restart(tmp_path, changed)
    assert _verdicts(res)["good"].verdict == "KEEP"
    old = [p for p in (tmp_path / "studies").iterdir() if p.name.startswith("dup.old-")]
    assert len(old) == 1 and StudyState.load(old[0] / "state.json").done
    assert yaml.safe_load((tmp_path / "studies/dup/study.yaml").read_text())["decision"]["alpha"] == 0.01


def _run_restart(tmp_path: Path, path: Path):
    resolved, sdir = prepare_study(path, tmp_path / "studies", restart=True)
    return StudyRunner(resolved, sdir, registry=tmp_path / "experiments", workers=2).run()


def test_one_runner_per_study(tmp_path):
    resolved, sdir = prepare_study(_file(tmp_path, "lock"), tmp_path / "studies")
    with runner_lock(sdir):
        with pytest.raises(StudyError, match="already running"):
            StudyRunner(resolved, sdir, registry=tmp_path / "experiments").run()


def _cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autoresearch", "study", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finished_on_disk(sdir: Path) -> dict[str, int]:
    """trial id -> number of attempt folders, for trials with a final result.json."""
    out = {}
    for tdir in (sdir / "trials").iterdir():
        attempts = sorted(tdir.glob("attempt-*"))
        if any((a / "result.json").exists() and not json.loads((a / "result.json").read_text()).get("infra")
               for a in attempts):
            out[tdir.name] = len(attempts)
    return out


@pytest.mark.slow
def test_resume_after_sigkill_of_the_study_process(tmp_path):
    path = _file(tmp_path, "kill", preset="slow", seeds={"initial": 3, "max": 3}, control={},
                 ideas=[{"name": "good", "overrides": {"model.boost": 0.2}},
                        {"name": "bad", "overrides": {"model.hurt": 0.2}}])
    args = ["--root", str(tmp_path / "studies"), "--registry", str(tmp_path / "experiments"), "--workers", "2", "-q"]
    proc = _cli("run", str(path), *args, cwd=tmp_path)
    sdir = tmp_path / "studies" / "kill"
    ledger = sdir / "ledger.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        n = sum(1 for ln in ledger.read_text().splitlines() if '"kind": "trial"' in ln) if ledger.exists() else 0
        if n >= 5:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # really kill the study process, mid-run
    proc.wait(timeout=10)
    proc.stdout.close()
    time.sleep(1.0)  # orphaned trials notice their parent is gone within 0.5 s and exit
    before = _finished_on_disk(sdir)
    state = StudyState.load(sdir / "state.json")
    assert not state.done and 5 <= len(before) < 12

    res = _cli("resume", "kill", *args, cwd=tmp_path)
    out, _ = res.communicate(timeout=120)
    assert res.returncode == 0, out
    assert "Verdicts" in out and "aa_control" in out
    after = _finished_on_disk(sdir)
    for tid, n_attempts in before.items():
        assert after[tid] == n_attempts, f"finished trial {tid} was run again"
    assert len(after) == 12  # 3 baseline + 3 x (good, bad, control)
    state = StudyState.load(sdir / "state.json")
    assert state.done and len(state.runs) == 2
    keys = [r["trial"] for r in Ledger(sdir, "val_loss").records("trial")]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == 12  # each trial exactly once in the ledger
    v = {k: x.verdict for k, x in state.verdicts.items()}
    assert v["good"] == "KEEP" and v["bad"] == "DISCARD" and v["aa_control"] != "KEEP"


@pytest.mark.slow
def test_two_studies_at_once_share_the_registry_safely(tmp_path):
    procs = []
    for name in ("one", "two"):
        path = _file(tmp_path, name, seeds={"initial": 3, "max": 3},
                     ideas=[{"name": "good", "overrides": {"model.boost": 0.2}},
                            {"name": "bad", "overrides": {"model.hurt": 0.2}}])
        procs.append(_cli("run", str(path), "--root", str(tmp_path / "studies"), "--registry",
                          str(tmp_path / "experiments"), "--workers", "2", "-q", cwd=tmp_path))
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out
    exps: dict[str, str] = {}
    for name in ("one", "two"):
        state = StudyState.load(tmp_path / "studies" / name / "state.json")
        assert state.done and len(state.trials) == 9
        for t in state.trials.values():
            assert t.exp not in exps, "two trials share an experiment folder"
            exps[t.exp] = name
            meta = yaml.safe_load((Path(t.exp) / "study_trial.yaml").read_text())
            assert meta["study"] == name
            assert yaml.safe_load((Path(t.exp) / "results.yaml").read_text())["status"] == "ok"
    assert len(list((tmp_path / "experiments").iterdir())) == 18


def test_cli_status_report_and_accept_baseline(tmp_path, monkeypatch):
    from autoresearch.cli.app import app

    monkeypatch.chdir(tmp_path)
    path = _file(tmp_path, "cli", baseline={"value": 9.0})
    runner = CliRunner()
    r = runner.invoke(app, ["study", "run", str(path), "--workers", "2"])
    assert r.exit_code != 0 and "baseline not reproduced" in str(r.exception)
    r = runner.invoke(app, ["study", "accept-baseline", "cli"])
    assert r.exit_code == 0 and "accepted baseline" in r.output
    r = runner.invoke(app, ["study", "resume", "cli"])
    assert r.exit_code == 0, r.output
    assert "KEEP" in r.output and "Decision rule" in r.output and "wall_s:" in r.output
    assert (tmp_path / "experiments").is_dir()  # default registry under cwd
    r = runner.invoke(app, ["study", "status", "cli"])
    assert r.exit_code == 0 and "good" in r.output and "KEEP" in r.output and "done" in r.output
    (tmp_path / "studies/cli/report.html").unlink()
    r = runner.invoke(app, ["study", "report", "cli"])
    assert r.exit_code == 0 and (tmp_path / "studies/cli/report.html").exists()
    r = runner.invoke(app, ["study", "list"])
    assert r.exit_code == 0 and "cli" in r.output
    r = runner.invoke(app, ["study", "status", "nosuch"])
    assert r.exit_code != 0


@pytest.mark.slow
def test_real_lm_micro_study(tmp_path, cache_dir):
    """The real LM testbed through the whole pipeline on a micro GPT: checks, baseline, a bit-for-bit regression
    trace (two fresh runs must agree), an idea, an A/A control, verdicts and report."""
    from tests.conftest import micro_overrides

    overrides = [o for o in micro_overrides(cache_dir) if not o.startswith("train.train_tokens")]  # key=value list
    data = {"name": "lm_micro", "testbed": "lm", "preset": "tiny", "overrides": overrides,
            "budget": {"tokens": 2048}, "baseline": {"value": None}, "seeds": {"initial": 2, "max": 2},
            "control": {}, "checks": False,
            "regression": {"enabled": True, "steps": 4, "store": str(tmp_path / "traces")},
            "ideas": [{"name": "adamw_only", "overrides": {"optim.optimizer": "adamw"}}]}
    path = tmp_path / "lm_micro.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    res = _run(tmp_path, path)
    v = _verdicts(res)
    assert v["adamw_only"].verdict != "CRASH" and v["adamw_only"].n == 2
    assert v["aa_control"].verdict != "KEEP"
    state = StudyState.load(tmp_path / "studies/lm_micro/state.json")
    assert state.stages["regression"].result == "recorded"
    trace = json.loads((tmp_path / "studies/lm_micro/regression_trace.json").read_text())
    assert trace["steps"] == [1, 2, 3, 4]
    assert (tmp_path / "studies/lm_micro/report.html").stat().st_size > 10_000


def _in_memory_study(tmp_path: Path, name: str = "mem"):
    from autoresearch.research import Idea, Study
    from autoresearch.research.study import BaselineRecord, Budget, Regression, SeedPlan
    from autoresearch.research.verdicts import DecisionRule
    from tests.conftest import FAKE_TESTBED

    return Study(name=name, testbed=FAKE_TESTBED, preset="tiny", budget=Budget(tokens=10_000),
                 baseline=BaselineRecord(value=3.0, tolerance=0.05, source="fake"), seeds=SeedPlan(initial=2, max=2),
                 decision=DecisionRule(alpha=0.05, min_effect=0.01),
                 regression=Regression(enabled=False, store=str(tmp_path / "traces")), checks=False,
                 ideas=[Idea(name="good", overrides={"model.boost": 0.2})])


def test_run_study_from_an_in_memory_study(tmp_path):
    """Issue 9: a study starts from a `Study` built in Python, not only from a YAML path; the same definition in a
    file then continues that study (nothing is trained again)."""
    from autoresearch.research import run_study

    events: list[str] = []
    res = run_study(_in_memory_study(tmp_path), tmp_path / "studies", registry=tmp_path / "experiments", workers=2,
                    emit=lambda kind, d: events.append(kind))
    assert _verdicts(res)["good"].verdict == "KEEP" and res.trials == 4 and res.study_dir == tmp_path / "studies/mem"
    assert res.report_html is not None and res.report_html.exists() and "trial_done" in events
    path = _file(tmp_path, "mem")  # the equivalent study file
    again = run_study(path, tmp_path / "studies", registry=tmp_path / "experiments")
    assert _verdicts(again)["good"].verdict == "KEEP" and len(list((tmp_path / "experiments").glob("exp-*"))) == 4


def test_an_invalid_in_memory_study_is_one_line(tmp_path):
    from autoresearch.research import Idea, run_study

    study = _in_memory_study(tmp_path, name="bad name!")
    with pytest.raises(StudyError, match=r"study file <Study 'bad name!'>: `name` must be letters") as e:
        run_study(study, tmp_path / "studies")
    assert "\n" not in str(e.value)
    study = _in_memory_study(tmp_path)
    study.ideas.append(Idea(name="typo", overrides={"model.bost": 0.1}))
    with pytest.raises(StudyError, match="model.bost"):
        run_study(study, tmp_path / "studies")
    with pytest.raises(StudyError, match="expected a Study or the path of a study file, got dict"):
        run_study({"name": "x"}, tmp_path / "studies")  # type: ignore[arg-type]
    assert not (tmp_path / "studies").exists()

"""Studies under faults (issue 8 §1, §4-§6), on the fake testbed: kill -9 of the runner (trials die with it, an
immediate resume trains nothing twice), damaged or deleted study files (one line naming the file, what is wrong and
the fix, and the fix works), edited definitions, a full or read-only disk, and slow stages (timeouts say which limit
to raise and how; progress lines while stages run)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from autoresearch.errors import StudyError
from autoresearch.research import scheduler as scheduler_mod
from autoresearch.research.ledger import Ledger
from autoresearch.research.lock import runner_lock
from autoresearch.research.runner import StudyRunner
from autoresearch.research.state import StudyState
from autoresearch.research.study_dir import open_study, prepare_study
from autoresearch.research.trial import read_outcome
from tests.conftest import FAKE_TESTBED as FAKE
from tests.conftest import fake_study_file as _file
from tests.conftest import trained_trials

REPO = Path(__file__).resolve().parents[1]


def _runner(tmp_path: Path, name: str, **kw) -> StudyRunner:
    resolved, sdir = open_study(name, tmp_path / "studies")
    return StudyRunner(resolved, sdir, registry=tmp_path / "experiments", workers=2, **kw)


def _run(tmp_path: Path, path: Path, **kw):
    resolved, sdir = prepare_study(path, tmp_path / "studies")
    return StudyRunner(resolved, sdir, registry=tmp_path / "experiments", workers=2, **kw).run()


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def _cli(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autoresearch", "study", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _trial_pids(sdir: Path) -> list[int]:
    """Live trial processes of the study in `sdir`: their stdout is an attempt's output.log under sdir/trials (true
    of a fresh subprocess and of a child forked by a warm worker, whose command line is the worker's)."""
    marker = str(sdir / "trials")
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stdout = os.readlink(p / "fd" / "1")
            state = (p / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if stdout.startswith(marker) and stdout.endswith("/output.log") and state != "Z":
            out.append(int(p.name))
    return out


# --- kill -9 of the runner -------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux")
def test_kill9_trials_die_within_a_second_and_an_immediate_resume_trains_nothing_twice(tmp_path):
    path = _file(tmp_path, "k9", overrides={"train.step_seconds": 0.25}, control={},  # 2.5 s per trial
                 seeds={"initial": 2, "max": 2})
    sdir = tmp_path / "studies/k9"
    args = ["--root", str(tmp_path / "studies"), "--registry", str(tmp_path / "experiments"), "--workers", "2", "-q"]
    for round_ in range(2):  # kill twice: mid-trial in the first batch, then again after a resume
        proc = _cli("run" if round_ == 0 else "resume", str(path) if round_ == 0 else "k9", *args, cwd=tmp_path)
        deadline = time.monotonic() + 90
        want = 1 + 2 * round_
        while time.monotonic() < deadline:  # some trials finished and two are mid-training
            done = len(trained_trials(tmp_path / "experiments"))
            if done >= want and len(_trial_pids(sdir)) == 2:
                break
            time.sleep(0.05)
        pids = _trial_pids(sdir)
        assert pids, "no trial running at the kill"
        os.kill(proc.pid, signal.SIGKILL)
        t_kill = time.monotonic()
        while _trial_pids(sdir) and time.monotonic() - t_kill < 10:
            time.sleep(0.02)
        gone_after = time.monotonic() - t_kill
        proc.wait(timeout=10)
        proc.stdout.close()
        assert gone_after < 1.0, f"trial processes outlived the runner by {gone_after:.2f}s"
    res = _cli("resume", "k9", *args, cwd=tmp_path)  # immediately
    out, _ = res.communicate(timeout=180)
    assert res.returncode == 0, out
    trained = trained_trials(tmp_path / "experiments")
    assert len(trained) == 6 and set(trained.values()) == {1}, f"trained twice: {trained}"
    state = StudyState.load(sdir / "state.json")
    assert state.done and state.verdicts["good"].verdict == "KEEP"


def test_a_run_killed_after_training_but_before_its_result_is_adopted_not_trained_again(tmp_path, monkeypatch):
    """The runner's kill takes the trial with it (PDEATHSIG) in the gap between results.yaml and result.json."""
    from autoresearch.research import trial as trial_mod

    exp = tmp_path / "experiments" / "exp-001"
    exp.mkdir(parents=True)
    (exp / "results.yaml").write_text("status: ok\nval_loss: 2.5\ntrain_seconds: 3.0\n")
    tdir = tmp_path / "trials" / "good-s0"
    (tdir / "attempt-1").mkdir(parents=True)
    (tdir / "attempt-1" / trial_mod.EXP_FILE).write_text(str(exp))
    spec = trial_mod.TrialSpec(study="s", trial_id="good-s0", arm="good", seed=0, kind="train", testbed=FAKE,
                               preset="tiny", overrides={}, registry=str(tmp_path / "experiments"))

    def no_training(*a, **kw):
        raise AssertionError("the trial was started again")

    monkeypatch.setattr(trial_mod.subprocess, "Popen", no_training)
    out = trial_mod.run_trial(spec, tdir)
    assert out.ok and out.metrics["val_loss"] == 2.5
    assert json.loads((tdir / "attempt-1" / "result.json").read_text())["adopted"] is True
    # a run that had not finished training is not adopted: the trial runs again (here: the monkeypatched start)
    (tdir / "attempt-1" / "result.json").unlink()
    (exp / "results.yaml").write_text("status: running\n")
    with pytest.raises(AssertionError, match="started again"):
        trial_mod.run_trial(spec, tdir)


def test_the_runner_lock_is_held_while_a_trial_of_a_killed_runner_lives(tmp_path):
    """A trial inherits the lock: the kernel frees it only when the runner and its trials are all gone."""
    sdir = tmp_path / "s"
    sdir.mkdir()
    code = (f"import os, subprocess, sys; from pathlib import Path; from autoresearch.research.lock import runner_lock\n"
            f"with runner_lock(Path({str(sdir)!r})) as fd:\n"
            f"    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(2.5)'], pass_fds=(fd,))\n"
            f"    os._exit(0)  # the runner dies; its trial lives on\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=30)
    with pytest.raises(StudyError) as e:
        with runner_lock(sdir, wait_s=0.3):
            pass
    assert "trial processes it started are still alive" in _one_line(e)
    with runner_lock(sdir, wait_s=10):  # waits for the orphan to finish, then runs
        pass


def test_a_trial_with_a_result_is_never_run_again(tmp_path):
    """The runner lost its state record (killed before saving): the result on disk is adopted, not retrained."""
    path = _file(tmp_path, "adopt")
    _run(tmp_path, path)
    sdir = tmp_path / "studies/adopt"
    state = StudyState.load(sdir / "state.json")
    state.trials.pop("good-s1")
    state.stages.pop("trials")
    state.stages.pop("report")
    state.done = False
    state.save()
    before = trained_trials(tmp_path / "experiments")
    _runner(tmp_path, "adopt").run()
    assert trained_trials(tmp_path / "experiments") == before
    assert len(list((sdir / "trials/good-s1").glob("attempt-*"))) == 1


# --- budgets the testbed cannot run ----------------------------------------------------------------------------


@pytest.mark.parametrize("testbed, tokens, key, fix", [
    ("fake", 5500, "budget.tokens", "`budget.tokens: 6000`"),
    ("fake", 100, "budget.tokens", "`budget.tokens: 1000`"),
    ("lm", 100, "budget.tokens", "`budget.tokens: 2048`"),
    ("lm", 5000, "budget.tokens", "`budget.tokens: 6144`"),
])
def test_a_budget_the_testbed_cannot_run_is_refused_before_anything_is_created(tmp_path, testbed, tokens, key, fix):
    kw = {"testbed": "lm", "ideas": [{"name": "sw", "overrides": {"model.mlp": "swiglu"}}]} if testbed == "lm" else {}
    path = _file(tmp_path, "bud", budget={"tokens": tokens}, **kw)
    with pytest.raises(StudyError) as e:
        prepare_study(path, tmp_path / "studies")
    msg = _one_line(e)
    assert fix in msg and "whole steps" in msg
    assert not (tmp_path / "studies").exists()


def test_regression_tokens_the_testbed_cannot_run_are_refused(tmp_path):
    path = _file(tmp_path, "regtok", regression={"enabled": True, "tokens": 1500})
    with pytest.raises(StudyError) as e:
        prepare_study(path, tmp_path / "studies")
    assert "`regression.tokens: 2000`" in _one_line(e)


def test_a_study_whose_definition_no_longer_validates_says_how_to_start_over(tmp_path):
    """An old folder with an unrunnable budget (as older versions created): resume names the cause and the
    recovery, and that recovery (`run FIXED --restart`) works."""
    path = _file(tmp_path, "old")
    resolved, sdir = prepare_study(path, tmp_path / "studies")
    text = (sdir / "study.yaml").read_text().replace("10000", "10500")  # budget.tokens and the arms' train_tokens
    (sdir / "study.yaml").write_text(text)
    with pytest.raises(StudyError) as e:
        open_study("old", tmp_path / "studies")
    msg = _one_line(e)
    assert "`budget.tokens: 11000`" in msg and "--restart" in msg
    resolved, sdir = prepare_study(path, tmp_path / "studies", restart=True)
    res = StudyRunner(resolved, sdir, registry=tmp_path / "experiments", workers=2).run()
    assert {v.idea: v.verdict for v in res.verdicts}["good"] == "KEEP"


# --- damaged and edited study files ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def _finished_study(tmp_path_factory):
    base = tmp_path_factory.mktemp("finished")
    path = _file(base, "dmg", control={})
    _run(base, path)
    return base


@pytest.fixture
def done_study(tmp_path, _finished_study):
    """A finished study (baseline, good, A/A control; 2 seeds), copied for each test (run once per module)."""
    for part in ("studies", "experiments"):
        shutil.copytree(_finished_study / part, tmp_path / part)
    shutil.copy(_finished_study / "dmg.yaml", tmp_path / "dmg.yaml")
    return tmp_path / "dmg.yaml", tmp_path / "studies/dmg"


@pytest.mark.parametrize("content, what", [
    (b"\x8f\x00\xffrandom bytes\x01", "not JSON"),
    (b"{}", "missing `version`"),
    (b"[1, 2]", "expected a JSON object, got list"),
    (b'{"version": 1}', "missing `name`"),
])
def test_damaged_state_json_names_the_file_and_the_fix_works(tmp_path, done_study, content, what):
    path, sdir = done_study
    (sdir / "state.json").write_bytes(content)
    with pytest.raises(StudyError) as e:
        open_study("dmg", tmp_path / "studies")
    msg = _one_line(e)
    assert str(sdir / "state.json") in msg and what in msg and "mv " in msg and "resume dmg" in msg
    before = trained_trials(tmp_path / "experiments")
    os.rename(sdir / "state.json", sdir / "state.json.bad")  # the advised fix
    res = _runner(tmp_path, "dmg").run()
    assert {v.idea: v.verdict for v in res.verdicts}["good"] == "KEEP"
    assert trained_trials(tmp_path / "experiments") == before  # rebuilt from result files: nothing trained again


@pytest.mark.parametrize("content, what", [
    (b"\x8f\x00\xff: [random", "is not UTF-8 text (byte 0x8f at offset 0"),
    (b"name: dmg\x00", "is not valid YAML (non-printable character #x0000"),
    (b"name: dmg\nideas: [1,\n  b: c\n", "is not valid YAML (line 4:1:"),
    (b"{}", "damaged: expected the resolved study"),
    (None, "is missing"),
    ("folder", "is a folder, not a YAML file"),
])
def test_damaged_or_deleted_study_yaml_names_the_file_and_run_restores_it(tmp_path, done_study, content, what):
    path, sdir = done_study
    (sdir / "study.yaml").unlink()
    if content == "folder":
        (sdir / "study.yaml").mkdir()
    elif content is not None:
        (sdir / "study.yaml").write_bytes(content)
    for call in (lambda: open_study("dmg", tmp_path / "studies"), lambda: _status(tmp_path)):
        with pytest.raises(StudyError) as e:
            call()
        msg = _one_line(e)
        assert str(sdir / "study.yaml") in msg and what in msg and "study run FILE" in msg
    listed = _list(tmp_path)  # `study list` shows it damaged with the reason, not as a finished study
    assert "dmg" in listed and "damaged:" in listed and what.split(" (")[0].split(":")[0] in listed, listed
    if content == "folder":
        with pytest.raises(StudyError, match="is a folder.*mv "):
            prepare_study(path, tmp_path / "studies")
        (sdir / "study.yaml").rmdir()
    prepare_study(path, tmp_path / "studies")  # the advised fix: the original file restores study.yaml
    resolved, _ = open_study("dmg", tmp_path / "studies")
    assert resolved.name == "dmg" and len(StudyState.load(sdir / "state.json").trials) == 6


def _list(tmp_path: Path) -> str:
    from typer.testing import CliRunner

    from autoresearch.cli.app import app

    r = CliRunner().invoke(app, ["study", "list", "--root", str(tmp_path / "studies")])
    assert r.exit_code == 0, r.output
    return " ".join(r.output.replace("│", " ").split())


def test_unknown_stage_in_state_json_is_refused_everywhere(tmp_path, done_study):
    """QA: `"stage": "bogus"` resumed with exit 0 and was listed as stage bogus."""
    path, sdir = done_study
    data = json.loads((sdir / "state.json").read_text())
    data["stage"] = "bogus"
    (sdir / "state.json").write_text(json.dumps(data))
    for call in (lambda: open_study("dmg", tmp_path / "studies"), lambda: _runner(tmp_path, "dmg").run(),
                 lambda: _status(tmp_path)):
        with pytest.raises(StudyError) as e:
            call()
        msg = _one_line(e)
        assert str(sdir / "state.json") in msg and '`stage` is "bogus"' in msg and "report" in msg and "mv " in msg
    listed = _list(tmp_path)
    assert "damaged:" in listed and "bogus" in listed
    data["stage"], data["stages"]["nonsense"] = "report", {"status": "done"}
    (sdir / "state.json").write_text(json.dumps(data))
    with pytest.raises(StudyError, match="`stages` holds \"nonsense\""):
        open_study("dmg", tmp_path / "studies")


def test_a_copied_study_folder_reports_paths_under_its_new_place(tmp_path, done_study):
    """QA: resume of a copied folder printed the report path of the original root, stored in state.json."""
    path, sdir = done_study
    shutil.copytree(tmp_path / "studies", tmp_path / "elsewhere")
    shutil.rmtree(tmp_path / "studies")
    resolved, new_dir = open_study("dmg", tmp_path / "elsewhere")
    res = StudyRunner(resolved, new_dir, registry=tmp_path / "experiments", workers=2).run()
    assert res.report_html == new_dir / "report.html" and res.report_md == new_dir / "report.md"
    assert res.report_html.is_file() and "studies" not in str(res.report_html.relative_to(tmp_path))


def _status(tmp_path: Path) -> None:
    from autoresearch.cli.study import _status_table

    _status_table(tmp_path / "studies/dmg")


@pytest.mark.parametrize("content, what", [(b"\x00\xffgarbage", "not JSON"), (b"{}", "missing `trial_id`"),
                                           (b'{"trial_id": "x", "status": "great"}', "`status` must be one of")])
def test_damaged_result_json_names_the_file_and_the_fix_works(tmp_path, done_study, content, what):
    path, sdir = done_study
    state = StudyState.load(sdir / "state.json")
    state.trials.pop("good-s1")  # as if the runner died before recording it
    state.stages.pop("trials")
    state.done = False
    state.save()
    adir = sdir / "trials/good-s1/attempt-1"
    (adir / "result.json").write_bytes(content)
    with pytest.raises(StudyError) as e:
        _runner(tmp_path, "dmg").run()
    msg = _one_line(e)
    assert str(adir / "result.json") in msg and what in msg and f"rm -r {adir}" in msg
    with pytest.raises(StudyError):
        read_outcome(sdir / "trials/good-s1")
    subprocess.run(["rm", "-r", str(adir)], check=True)  # the advised fix
    res = _runner(tmp_path, "dmg").run()
    assert {v.idea: v.verdict for v in res.verdicts}["good"] == "KEEP"


def test_an_edited_study_yaml_is_refused_on_resume_naming_the_change(tmp_path, done_study):
    path, sdir = done_study
    data = yaml.safe_load((sdir / "study.yaml").read_text())
    data["budget"]["tokens"] = 20_000
    for arm in data["resolved"]["arms"].values():
        arm["train.train_tokens"] = 20_000
    (sdir / "study.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(StudyError) as e:
        open_study("dmg", tmp_path / "studies")
    msg = _one_line(e)
    assert "edited after the study started" in msg and "budget.tokens 10000 -> 20000" in msg and "--restart" in msg


def test_a_changed_resources_section_keeps_the_study(tmp_path, done_study):
    path, sdir = done_study
    data = yaml.safe_load(path.read_text())
    data["resources"] = {"timeout_s": 1234, "workers": 1}
    path.write_text(yaml.safe_dump(data))
    resolved, _ = prepare_study(path, tmp_path / "studies")  # same study: only scheduling changed
    assert yaml.safe_load((sdir / "study.yaml").read_text())["resources"]["timeout_s"] == 1234
    assert open_study("dmg", tmp_path / "studies")[0].study.resources.timeout_s == 1234


def test_ledger_damage_is_repaired_or_reported_and_results_tsv_is_rebuilt(tmp_path, done_study):
    path, sdir = done_study
    ledger = Ledger(sdir, "val_loss", direction="lower")
    tsv = (sdir / "results.tsv").read_text()
    lines = ledger.jsonl.read_text().splitlines(keepends=True)
    # garble a trial line in the middle and tear the last line; delete results.tsv
    victim = next(i for i, ln in enumerate(lines) if '"kind": "trial"' in ln and i < len(lines) - 2)
    victim_key = json.loads(lines[victim])["key"]
    lines[victim] = "#garbled#" + lines[victim][20:]
    ledger.jsonl.write_text("".join(lines) + '{"key": "verdict:torn", "ki')
    (sdir / "results.tsv").unlink()
    events: list[tuple[str, dict]] = []
    _runner(tmp_path, "dmg", emit=lambda k, d: events.append((k, d))).run()
    warn = [d["message"] for k, d in events if k == "warning"]
    assert warn and f"line {victim + 1} is not a JSON object" in warn[0]
    keys = [r["key"] for r in ledger.records()]
    assert victim_key in keys  # the garbled trial came back from the state
    raw = ledger.jsonl.read_text()
    assert '"ki\n' in raw  # the torn line was terminated, not glued onto the next record
    rows = (sdir / "results.tsv").read_text().splitlines()
    assert len(rows) == 1 + len(ledger.records())
    assert set(tsv.splitlines()[1:]) <= set(rows[1:])  # every row that existed is back
    (sdir / "results.tsv").write_text(tsv[: len(tsv) // 2])  # torn results.tsv
    from typer.testing import CliRunner

    from autoresearch.cli.app import app

    r = CliRunner().invoke(app, ["study", "report", "dmg", "--root", str(tmp_path / "studies")])
    assert r.exit_code == 0, r.output
    assert len((sdir / "results.tsv").read_text().splitlines()) == len(rows)
    assert "Ledger damage" in (sdir / "report.md").read_text()


# --- full and read-only disks ----------------------------------------------------------------------------------


def test_a_full_disk_in_a_trial_stops_the_study_with_the_path_and_is_not_a_crash(tmp_path):
    path = _file(tmp_path, "full", ideas=[{"name": "good", "overrides": {"model.boost": 0.2}},
                                          {"name": "filler", "overrides": {"model.disk_full": True}}])
    with pytest.raises(StudyError) as e:
        _run(tmp_path, path)
    msg = _one_line(e)
    assert "No space left on device" in msg and "checkpoints" in msg and "resume full" in msg
    assert "fix the testbed" not in msg
    state = StudyState.load(tmp_path / "studies/full/state.json")
    assert not any(t.arm == "filler" for t in state.trials.values())  # not recorded as a CRASH
    assert "filler" not in state.verdicts


def test_a_full_disk_during_the_checks_does_not_blame_the_testbed(tmp_path):
    path = _file(tmp_path, "fullchk", checks=True, overrides={"model.disk_full": True})
    with pytest.raises(StudyError) as e:
        _run(tmp_path, path)
    msg = _one_line(e)
    assert "No space left on device" in msg and "fix the testbed" not in msg and "resume fullchk" in msg


@pytest.mark.parametrize("err, what", [(errno.ENOSPC, "no space left on device (ENOSPC)"),
                                       (errno.EROFS, "read-only file system (EROFS)"),
                                       (errno.EACCES, "permission denied (EACCES)")])
def test_a_full_or_read_only_study_root_while_running(tmp_path, monkeypatch, err, what):
    path = _file(tmp_path, "rofs")
    resolved, sdir = prepare_study(path, tmp_path / "studies")
    from autoresearch.research import state as state_mod

    def refuse(p, text):
        raise OSError(err, os.strerror(err), str(p))

    monkeypatch.setattr(state_mod, "atomic_write_text", refuse)
    with pytest.raises(StudyError) as e:
        StudyRunner(resolved, sdir, registry=tmp_path / "experiments", workers=2).run()
    msg = _one_line(e)
    assert f"cannot write {sdir / 'state.json'}: {what}" in msg and "--root DIR" in msg and "resume rofs" in msg
    assert "testbed" not in msg


@pytest.mark.parametrize("err", [errno.EROFS, errno.ENOSPC])
def test_a_read_only_or_full_study_root_before_the_first_trial(tmp_path, monkeypatch, err):
    path = _file(tmp_path, "ro")

    def refuse(self, *a, **kw):
        raise OSError(err, os.strerror(err), str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(StudyError) as e:
        prepare_study(path, tmp_path / "studies")
    msg = _one_line(e)
    assert f"cannot write {tmp_path / 'studies/ro'}" in msg and "--root DIR" in msg and "testbed" not in msg


def test_a_really_read_only_study_root(tmp_path):
    """A real read-only root: a read-only tmpfs as root (root ignores chmod), a chmod 555 folder otherwise."""
    root = tmp_path / "studies"
    root.mkdir()
    if os.geteuid() == 0:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(root)], capture_output=True)
        if r.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({r.stderr.decode().strip()[:80]})")
        expected = "read-only file system (EROFS)"
    else:
        root.chmod(0o555)
        expected = "permission denied (EACCES)"
    try:
        with pytest.raises(StudyError) as e:
            prepare_study(_file(tmp_path, "ro2"), root)
        msg = _one_line(e)
        assert expected in msg and str(root) in msg and "testbed" not in msg
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(root)], check=False)
        else:
            root.chmod(0o755)


# --- slow stages: timeouts and progress ------------------------------------------------------------------------


@pytest.mark.slow
def test_slow_checks_time_out_with_the_limit_to_raise_and_resume_with_a_new_limit(tmp_path, monkeypatch):
    path = _file(tmp_path, "slowchk", checks=True, overrides={"train.step_seconds": 1.0},  # checks sleep 10 s,
                 budget={"tokens": 2000}, resources={"timeout_s": 6})  # trials 2 s (+ start-up)
    with pytest.raises(StudyError) as e:
        _run(tmp_path, path)
    msg = _one_line(e)
    assert "integration checks timed out after 6s (resources.timeout_s: 6)" in msg
    assert "`resources.timeout_s`" in msg and "--timeout SECONDS" in msg and "fix the testbed" not in msg
    # the advised fix: resume with a larger (here: no) limit; progress lines arrive while the stages run
    monkeypatch.setattr(scheduler_mod, "HEARTBEAT_S", 1.0)
    events: list[tuple[str, dict]] = []
    res = _runner(tmp_path, "slowchk", timeout_s=0, retry_crashed=True, emit=lambda k, d: events.append((k, d))).run()
    assert {v.idea: v.verdict for v in res.verdicts}["good"] == "KEEP"
    kinds = [k for k, _ in events]
    assert "heartbeat" in kinds and "checks" in kinds
    assert any(k == "trial_start" and d["kind"] == "checks" for k, d in events)
    done = [d for k, d in events if k == "trial_done"]
    assert done and all({"arm", "seed", "metric", "wall_s", "done", "total"} <= set(d) for d in done)


def test_progress_lines_when_stdout_is_not_a_terminal(tmp_path):
    path = _file(tmp_path, "prog", checks=True, regression={"enabled": True, "steps": 3})
    proc = _cli("run", str(path), "--root", str(tmp_path / "studies"), "--registry", str(tmp_path / "experiments"),
                "--workers", "2", cwd=tmp_path)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out
    assert "integration checks started" in out and "integration checks finished" in out
    assert "regression run regression-g1-1 started" in out and "baseline-path regression" in out
    line = next(ln for ln in out.splitlines() if "good-s1" in ln and "arm good" in ln)
    assert "seed 1" in line and "val_loss" in line and "wall" in line and "/" in line


def test_builtin_studies_have_no_trial_timeout():
    for name in ("lm_quickstart", "codegen_hrm_vs_gpt"):
        data = yaml.safe_load((REPO / "studies" / f"{name}.yaml").read_text())
        assert data["resources"]["timeout_s"] == 0, name


# --- command-line numbers --------------------------------------------------------------------------------------


@pytest.mark.parametrize("verb, extra, expect", [
    ("run", ["--workers", "-1"], "`--workers` must be in [0, 1024]"),
    ("run", ["--workers", "5000"], "`--workers` must be in [0, 1024]"),
    ("run", ["--timeout", "-5"], "`--timeout` must be in [0,"),
    ("run", ["--timeout", "nan"], "`--timeout` must be in [0,"),
    ("resume", ["--workers", "-3"], "`--workers` must be in [0, 1024]"),
    ("status", ["--interval", "0"], "`--interval` must be in [0.1, 3600]"),
])
def test_cli_numbers_are_checked_before_anything_is_created(tmp_path, verb, extra, expect):
    from typer.testing import CliRunner

    from autoresearch.cli.app import app

    target = str(_file(tmp_path, "cli")) if verb == "run" else "cli"
    r = CliRunner().invoke(app, ["study", verb, target, "--root", str(tmp_path / "studies"), *extra])
    assert r.exit_code != 0 and isinstance(r.exception, StudyError) and expect in str(r.exception)
    assert not (tmp_path / "studies").exists()


def test_cli_prints_a_bad_number_on_one_line_with_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "autoresearch", "study", "run", str(_file(tmp_path, "cli")),
                           "--root", str(tmp_path / "studies"), "--workers", "-1"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "`--workers` must be in" in proc.stderr
    assert not (tmp_path / "studies").exists()

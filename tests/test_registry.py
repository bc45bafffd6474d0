"""Experiment registry: atomic allocation under concurrency, atomic writes, lookups."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from autoresearch.errors import RegistryError
from autoresearch.harness.atomic import append_jsonl, atomic_write_text, read_jsonl
from autoresearch.harness.registry import list_experiments, new_experiment, open_experiment


def _alloc(root, n, q):
    q.put([new_experiment(root).id for _ in range(n)])


def test_concurrent_allocation_never_collides(tmp_path):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_alloc, args=(tmp_path, 10, q)) for _ in range(6)]
    for p in procs:
        p.start()
    ids = [i for _ in procs for i in q.get(timeout=60)]
    for p in procs:
        p.join(timeout=60)
    assert len(ids) == 60 and len(set(ids)) == 60
    assert [e.id for e in list_experiments(tmp_path)] == [f"exp-{i:03d}" for i in range(1, 61)]


def test_folder_layout_and_roundtrip(tmp_path):
    exp = new_experiment(tmp_path)
    assert exp.id == "exp-001" and exp.checkpoints_dir.is_dir()
    exp.write_config({"model": {"d": 1}}, {"seed": 3})
    exp.log({"step": 1, "loss": 2.5})
    exp.log({"step": 2, "loss": 2.25})
    exp.write_results({"status": "ok", "val_loss": 1.5})
    again = open_experiment("exp-001", tmp_path)
    assert again.read_config()["meta"]["seed"] == 3
    assert [r["loss"] for r in again.read_log()] == [2.5, 2.25]
    assert again.status == "ok"
    assert open_experiment("1", tmp_path).path == exp.path
    exp.truncate_log(1)
    assert [r["step"] for r in exp.read_log()] == [1]


def test_missing_experiment_error(tmp_path):
    new_experiment(tmp_path)
    with pytest.raises(RegistryError, match=r"no experiment 'exp-009'.*latest: exp-001.*autoresearch ls"):
        open_experiment("exp-009", tmp_path)


def test_atomic_write_keeps_old_content_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "results.yaml"
    atomic_write_text(target, "status: ok\n")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "status: half")
    assert target.read_text() == "status: ok\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.yaml"]  # no temp file left behind


def test_torn_jsonl_line_is_ignored(tmp_path):
    p = tmp_path / "log.jsonl"
    append_jsonl(p, {"step": 1})
    with open(p, "a") as f:
        f.write('{"step": 2, "lo')
    assert read_jsonl(p) == [{"step": 1}]


# --- issue 8: every file validated when read, the run lock, killed runs ------------------------------------------------

RANDOM = bytes(range(256))[::-7] * 3


def _finished(root, n=1, status="ok"):
    exp = new_experiment(root)
    exp.write_config({"model": {"d_model": 32}, "train": {"seed": 0}}, {"seed": 0, "created": "2025-01-01T00:00:00"})
    exp.write_results({"status": status, "val_loss": 1.5})
    return exp


@pytest.mark.parametrize("content,what", [
    (RANDOM, "not UTF-8|not valid YAML|not a mapping"), (b"{}", "no `status`"), (b"- a\n", "holds a list"),
    (b"", "is empty"), (b"status: maybe\n", "status 'maybe'"), (b"status: ok\nval_loss: [1]\n", "`val_loss`"),
    (b"status: [ok\n", "not valid YAML"),
])
def test_damaged_results_yaml_is_one_line_with_the_fix(tmp_path, content, what):
    exp = _finished(tmp_path)
    exp.results_path.write_bytes(content)
    with pytest.raises(RegistryError, match=what) as e:
        exp.read_results()
    msg = str(e.value)
    assert "\n" not in msg and str(exp.results_path) in msg
    assert "delete it and resume the run with `autoresearch train lm --resume exp-001" in msg
    assert exp.state() == ("damaged", msg)


@pytest.mark.parametrize("content,what", [
    (RANDOM, "not UTF-8|not valid YAML|not a mapping"), (b"{}", "is empty"), (b"- a\n", "holds a list"),
    (b"", "is empty"), (b"model: {}\nmeta: 3\n", "`meta` that is not a mapping"),
])
def test_damaged_config_yaml_is_one_line_with_the_fix(tmp_path, content, what):
    exp = _finished(tmp_path)
    exp.config_path.write_bytes(content)
    with pytest.raises(RegistryError, match=what) as e:
        exp.read_config()
    assert "\n" not in str(e.value) and str(exp.config_path) in str(e.value) and "restore it" in str(e.value)
    assert exp.state()[0] == "damaged"


def test_missing_config_and_empty_reference(tmp_path):
    exp = _finished(tmp_path)
    exp.config_path.unlink()
    with pytest.raises(RegistryError, match="config.yaml does not exist"):
        exp.read_config()
    for ref in ("", "  "):
        with pytest.raises(RegistryError, match="an experiment is required"):
            open_experiment(ref, tmp_path)


def test_garbled_log_line_is_reported_never_dropped(tmp_path):
    exp = new_experiment(tmp_path)
    for s in (1, 2, 3):
        exp.log({"step": s, "loss": 1.0})
    lines = exp.log_path.read_text().splitlines()
    lines[1] = '{"step": 2, "lo\x00ss'
    exp.log_path.write_text("\n".join(lines) + "\n")
    before = exp.log_path.read_bytes()
    with pytest.raises(RegistryError, match=r"log.jsonl line 2 is not a JSON object .*repair or delete that line"):
        exp.truncate_log(3)
    assert exp.log_path.read_bytes() == before  # nothing rewritten
    assert [r["step"] for r in exp.read_log()] == [1, 3]
    assert exp.scan_log().bad == [(2, lines[1])]


def test_torn_last_log_line_is_not_damage(tmp_path):
    exp = new_experiment(tmp_path)
    exp.log({"step": 1})
    with open(exp.log_path, "a") as f:
        f.write('{"step": 2, "lo')
    scan = exp.scan_log()
    assert scan.records == [{"step": 1}] and scan.bad == [] and scan.torn_tail
    exp.truncate_log(5)
    assert exp.log_path.read_text() == '{"step": 1}\n'


def test_lock_refuses_a_second_runner_naming_the_pid(tmp_path):
    import os

    exp = new_experiment(tmp_path)
    with exp.running():
        assert exp.is_alive() and exp.owner()["pid"] == os.getpid()
        with pytest.raises(RegistryError, match=rf"exp-001 is already being trained by pid {os.getpid()} on .*kill"):
            with open_experiment("exp-001", tmp_path).running():
                pass
    assert not exp.is_alive()
    with exp.running():  # released: the next run may take it
        pass


def test_running_without_a_live_owner_shows_killed_even_when_the_pid_is_reused(tmp_path):
    import json
    import os

    exp = new_experiment(tmp_path)
    exp.write_config({"model": {}}, {})
    exp.write_results({"status": "running"})
    assert exp.state()[0] == "killed"  # no lock file at all (e.g. killed before this version)
    # the recorded pid is alive (it is ours) but does not hold the lock: a reused pid never looks like the owner
    exp.lock_path.write_text(json.dumps({"pid": os.getpid(), "host": "h", "started": "t"}))
    status, note = exp.state()
    assert status == "killed" and f"pid {os.getpid()} on h is gone" in note and "--resume exp-001" in note
    with exp.running():
        assert exp.state() == ("running", "")


def test_resume_refuses_finished_experiments(tmp_path):
    for status in ("ok", "diverged"):
        exp = _finished(tmp_path, status=status)
        with pytest.raises(RegistryError, match=rf"finished with status {status}; --resume only continues .*"
                                                r"start a new run instead.*--config .*config.yaml"):
            exp.check_resumable()
        with pytest.raises(RegistryError, match="finished"):
            with exp.running(resume=True):
                pass
        assert exp.status == status  # not marked crashed by the refusal
    for status in ("running", "crashed"):
        _finished(tmp_path, status=status).check_resumable()


def test_killed_process_holding_the_lock_is_detected(tmp_path):
    """A real second process holds the lock: `running` while it lives, `killed` after kill -9."""
    import signal
    import subprocess
    import sys

    exp = new_experiment(tmp_path)
    exp.write_config({"model": {}}, {})
    code = ("import sys, time; from autoresearch.harness.registry import open_experiment as o\n"
            "e = o(sys.argv[1])\nwith e.running():\n    e.write_results({'status': 'running'}); print('go', flush=True)"
            "; time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(exp.path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "go"
        assert exp.state() == ("running", "")
        with pytest.raises(RegistryError, match=f"already being trained by pid {proc.pid}"):
            with exp.running(resume=True):
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    status, note = exp.state()
    assert status == "killed" and f"pid {proc.pid}" in note
    with exp.running(resume=True):  # the dead owner's lock is free
        pass


def test_stale_temp_files_are_removed_when_a_run_starts(tmp_path):
    exp = new_experiment(tmp_path)
    (exp.path / ".results.yaml.abc.tmp").write_text("status: ha")
    with exp.running():
        assert not list(exp.path.glob(".*.tmp"))


def test_a_crash_is_recorded_even_over_damaged_results(tmp_path):
    exp = _finished(tmp_path, status="running")
    exp.results_path.write_text("- a\n")
    with pytest.raises(ValueError), exp.running(resume=False):
        raise ValueError("boom")
    assert exp.read_results()["status"] == "crashed" and "boom" in exp.errors_path.read_text()


def test_root_that_is_a_file_and_garbage_lock_file(tmp_path):
    (tmp_path / "f").write_text("x")
    for root in (tmp_path / "f", tmp_path / "f" / "sub"):
        with pytest.raises(RegistryError, match="is not a folder"):
            new_experiment(root)
    exp = _finished(tmp_path / "r", status="running")
    exp.lock_path.write_bytes(RANDOM)
    assert exp.owner() is None and exp.state() == (
        "killed", f"its process is gone; continue it with `autoresearch train lm --resume exp-001 --root {tmp_path}/r`")


def test_persisted_files_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    """Atomic writes go through mkstemp (0600); the files a person shares (config, results) must read like any file."""
    import os
    import stat

    from autoresearch.harness.atomic import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.yaml", "x: 1\n")
        os.umask(0o077)
        atomic_write_text(tmp_path / "b.yaml", "x: 1\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.yaml").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.yaml").stat().st_mode) == 0o600

"""Warm trial workers (research/warm_pool.py, the `local` executor): what a subprocess per trial gave still holds —
same seed twice through one worker gives bit-identical losses (and equals a fresh interpreter's), a trial killed by a
signal is an infrastructure failure retried while the worker lives on, a dead worker is an infrastructure failure
and a new one takes the retry, timeout and stop kill the trial's whole process group, the runner lock is held by the
worker and its trials, `kill -9` of the runner takes the worker and its trials down, edited code starts a new worker,
and without fork the executor falls back to a subprocess, saying so."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from autoresearch.research import warm_pool
from autoresearch.research.executors import make_launcher
from autoresearch.research.lock import runner_lock
from autoresearch.research.trial import AttemptLauncher, TrialInterrupted, TrialSpec, run_trial
from autoresearch.research.warm_pool import WarmLauncher
from tests.conftest import FAKE_TESTBED, micro_overrides

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not warm_pool.fork_available(), reason="warm workers need fork (Linux)")


def _spec(tmp_path: Path, tid: str, *, testbed: str = FAKE_TESTBED, overrides: dict | None = None, seed: int = 0,
          timeout_s: float = 0.0, retries: int = 3) -> TrialSpec:
    return TrialSpec(study="w", trial_id=tid, arm="base", seed=seed, kind="train", testbed=testbed, preset="tiny",
                     overrides=overrides or {}, registry=str(tmp_path / "experiments"), timeout_s=timeout_s,
                     retries=retries)


@pytest.fixture
def launcher():
    w = WarmLauncher()
    yield w
    w.close()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pids: list[int], within: float) -> float:
    t0 = time.monotonic()
    while any(_alive(p) for p in pids) and time.monotonic() - t0 < within:
        time.sleep(0.02)
    return time.monotonic() - t0


def test_the_local_executor_is_warm_and_falls_back_to_a_subprocess_without_fork(monkeypatch, caplog):
    w = make_launcher("local")
    assert isinstance(w, WarmLauncher) and w.name == "local"
    w.close()
    monkeypatch.setattr(warm_pool, "fork_available", lambda: False)
    with caplog.at_level(logging.WARNING):
        plain = make_launcher("local")
    assert type(plain) is AttemptLauncher
    assert "fresh subprocess" in caplog.text


def test_trials_run_in_forks_of_one_single_threaded_worker_holding_the_lock(tmp_path, launcher):
    sdir = tmp_path / "s"
    sdir.mkdir()
    with runner_lock(sdir) as fd:
        outs = [run_trial(_spec(tmp_path, f"t{i}", seed=i, overrides={"train.seed": i}), tmp_path / "trials" / f"t{i}", lock_fd=fd,
                          launcher=launcher) for i in range(2)]
        z = launcher._zygote
        assert z is not None and z.alive() and z.threads == 1
        assert str(sdir / ".runner.lock") in {os.readlink(f"/proc/{z.pid}/fd/{f}") for f in
                                              os.listdir(f"/proc/{z.pid}/fd")}
    assert [o.status for o in outs] == ["ok", "ok"] and launcher.zygotes_started == 1
    assert outs[0].metrics["val_loss"] != outs[1].metrics["val_loss"]  # different seeds, different noise
    spec = json.loads((tmp_path / "trials/t1/attempt-1/spec.json").read_text())
    assert spec["seed"] == 1 and (tmp_path / "trials/t1/attempt-1/output.log").exists()
    launcher.close()
    assert not _alive(z.pid)


def test_a_trial_killed_by_a_signal_is_retried_and_the_worker_lives_on(tmp_path, launcher):
    out = run_trial(_spec(tmp_path, "k", overrides={"model.infra_fail": 1}), tmp_path / "trials/k", launcher=launcher)
    assert out.ok and out.attempts == 2, out.error  # attempt 1 SIGKILLed itself: infrastructure, retried
    assert launcher.zygotes_started == 1 and launcher._zygote.alive()
    out = run_trial(_spec(tmp_path, "c", overrides={"model.crash": True}), tmp_path / "trials/c", launcher=launcher)
    assert out.status == "crashed" and "boom" in out.error and out.attempts == 1  # the trial's own failure: final


def test_a_dead_worker_is_an_infrastructure_failure_and_a_new_worker_takes_the_retry(tmp_path, launcher):
    spec = _spec(tmp_path, "z", overrides={"train.step_seconds": 0.2})  # 20 steps: 4 s
    result: list = []
    t = threading.Thread(target=lambda: result.append(run_trial(spec, tmp_path / "trials/z", launcher=launcher)))
    t.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (tmp_path / "trials/z/attempt-1/experiment.txt").exists():
        time.sleep(0.05)
    first = launcher._zygote
    os.kill(first.pid, signal.SIGKILL)
    t.join(120)
    out = result[0]
    assert out.ok and out.attempts == 2 and launcher.zygotes_started == 2
    assert "warm worker" in (tmp_path / "trials/z/attempt-1/output.log").read_text()


_SPAWNER = """
import subprocess, sys, time
sys.path.insert(0, {repo!r})
from tests.fake_testbed import FakeTestbed

class Spawner(FakeTestbed):
    def train(self, cfg, exp, **kw):
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        (exp.path / "grandchild.pid").write_text(str(p.pid))
        time.sleep(120)
"""


def _spawner(tmp_path: Path) -> str:
    path = tmp_path / "spawner.py"
    path.write_text(_SPAWNER.format(repo=str(REPO)))
    return f"{path}:Spawner"


def _grandchild(tmp_path: Path) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = list((tmp_path / "experiments").glob("*/grandchild.pid"))
        if found and found[0].read_text():
            return int(found[0].read_text())
        time.sleep(0.05)
    raise AssertionError("the trial never started its grandchild")


def test_timeout_kills_the_whole_process_group(tmp_path, launcher):
    spec = _spec(tmp_path, "t", testbed=_spawner(tmp_path), timeout_s=4.0)
    out = run_trial(spec, tmp_path / "trials/t", launcher=launcher)
    assert out.status == "crashed" and "timed out after 4s" in out.error
    assert _wait_gone([_grandchild(tmp_path)], 5) < 5, "the trial's own child outlived the timeout"


def test_stop_kills_the_whole_process_group_and_interrupts(tmp_path, launcher):
    stop = threading.Event()
    spec = _spec(tmp_path, "s", testbed=_spawner(tmp_path))
    raised: list = []

    def go() -> None:
        try:
            run_trial(spec, tmp_path / "trials/s", launcher=launcher, stop=stop)
        except TrialInterrupted:
            raised.append(True)

    t = threading.Thread(target=go)
    t.start()
    gc = _grandchild(tmp_path)
    stop.set()
    t.join(30)
    assert raised == [True]
    assert _wait_gone([gc], 5) < 5


def test_edited_code_starts_a_new_worker_so_the_next_trial_runs_it(tmp_path, launcher):
    src = (REPO / "tests" / "fake_testbed.py").read_text()
    path = tmp_path / "mybed.py"
    path.write_text(src)
    ref = f"{path}:FakeTestbed"
    one = run_trial(_spec(tmp_path, "a", testbed=ref), tmp_path / "trials/a", launcher=launcher)
    started = launcher.zygotes_started
    path.write_text(src.replace("fake crash: boom", "fake crash: edited"))
    two = run_trial(_spec(tmp_path, "b", testbed=ref, overrides={"model.crash": True}), tmp_path / "trials/b",
                    launcher=launcher)
    assert one.ok and launcher.zygotes_started > started
    assert "edited" in two.error  # the new code ran, not the worker's old copy


_RUNNER = """
import sys, threading, time
from pathlib import Path
from autoresearch.research.lock import runner_lock
from autoresearch.research.trial import TrialSpec, run_trial
from autoresearch.research.warm_pool import WarmLauncher
tmp = Path(sys.argv[1])
w = WarmLauncher()
with runner_lock(tmp / "s") as fd:
    spec = TrialSpec(study="w", trial_id="t", arm="a", seed=0, kind="train", testbed=sys.argv[2], preset="tiny",
                     overrides={{"train.step_seconds": 5.0}}, registry=str(tmp / "experiments"))
    threading.Thread(target=run_trial, args=(spec, tmp / "trials/t"), kwargs={{"lock_fd": fd, "launcher": w}},
                     daemon=True).start()
    while w._zygote is None:
        time.sleep(0.05)
    print(w._zygote.pid, flush=True)
    time.sleep(120)
"""


@pytest.mark.slow
def test_kill9_of_the_runner_takes_the_worker_and_its_trials_and_frees_the_lock(tmp_path):
    (tmp_path / "s").mkdir()
    proc = subprocess.Popen([sys.executable, "-c", _RUNNER.format(), str(tmp_path), FAKE_TESTBED], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    zpid = int(proc.stdout.readline())
    deadline = time.monotonic() + 60
    trial_pid = 0
    while time.monotonic() < deadline and not trial_pid:  # the forked trial: the zygote's child
        kids = Path(f"/proc/{zpid}/task/{zpid}/children").read_text().split()
        trial_pid = int(kids[0]) if kids else 0
        time.sleep(0.05)
    assert trial_pid and _alive(trial_pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    assert _wait_gone([zpid, trial_pid], 10) < 1.0, "the warm worker or its trial outlived the runner"
    with runner_lock(tmp_path / "s", wait_s=2):
        pass


def _losses(exp: str) -> list[float]:
    rows = [json.loads(ln) for ln in (Path(exp) / "log.jsonl").read_text().splitlines() if ln.strip()]
    return [r["loss"] for r in rows if "loss" in r and "step" in r]


@pytest.mark.slow
def test_same_seed_twice_through_one_worker_gives_bit_identical_losses(tmp_path, cache_dir, launcher):
    """The real tiny LM (micro sizes): two trials of seed 0 through one warm worker and one fresh interpreter."""
    overrides = {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in micro_overrides(cache_dir))}
    overrides["train.train_tokens"] = 2048
    outs = [run_trial(_spec(tmp_path, f"w{i}", testbed="lm", overrides=overrides), tmp_path / "trials" / f"w{i}",
                      launcher=launcher) for i in range(2)]
    fresh = run_trial(_spec(tmp_path, "f", testbed="lm", overrides=overrides), tmp_path / "trials/f",
                      launcher=AttemptLauncher())
    assert all(o.ok for o in [*outs, fresh]), [o.error for o in [*outs, fresh]]
    a, b, c = (_losses(o.exp) for o in [*outs, fresh])
    assert len(a) >= 4 and a == b == c  # bit-identical: no state leaks between seeds, and the fork == a fresh run
    z = launcher._zygote
    assert launcher.zygotes_started == 1 and len(os.listdir(f"/proc/{z.pid}/task")) == 1  # still fork-safe

"""The Ray executor (ray_executor.py, issue 13 §2): studies on a local Ray instance give the same verdicts and the
same per-trial metrics as the local executor (fake testbed and the real micro LM); a lost Ray worker is an
infrastructure failure, retried; timeout and stop kill the trial; a driver killed mid-study leaves a study that
`resume` completes without training any finished trial twice; a missing ray says how to install it; resources a
cluster can never fit are refused in one line; a worker that does not share the study folder sends result.json and
the log back.

One module-scoped Ray instance (`ray.init(num_cpus=2)`, ~5-15 s to start) serves every test that needs one; the
driver-kill test starts one more inside the killed CLI process (that is what it tests)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from autoresearch.errors import StudyError
from autoresearch.research.executors import make_launcher
from autoresearch.research.runner import StudyRunner
from autoresearch.research.state import StudyState
from autoresearch.research.study_dir import prepare_study
from autoresearch.research.trial import TrialInterrupted, TrialSpec, read_outcome, run_trial
from tests.conftest import FAKE_TESTBED, trained_trials
from tests.conftest import fake_study_file as _file

# --- without Ray ------------------------------------------------------------------------------------------------


def test_a_missing_ray_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(StudyError) as e:
        make_launcher("ray")
    msg = str(e.value)
    assert "\n" not in msg and "pip install 'autoresearch[scale]'" in msg


def test_an_unreachable_address_is_one_line_at_once_not_a_hang():
    """`--address` where nothing listens: refused before ray.init, which would retry for minutes while the study
    looked busy (fresh-user finding)."""
    pytest.importorskip("ray")
    from autoresearch.research.ray_executor import _unreachable

    assert _unreachable("auto") is None and _unreachable("ray://") is None
    launcher = make_launcher("ray", address="127.0.0.1:1")
    t0 = time.monotonic()
    with pytest.raises(StudyError) as e:
        launcher._start(1)
    msg = str(e.value)
    assert time.monotonic() - t0 < 10 and "\n" not in msg
    assert msg.startswith("cannot reach the Ray cluster at 127.0.0.1:1: ") and "drop --address" in msg


def test_a_missing_ray_is_one_line_with_exit_2_on_the_cli(tmp_path):
    path = _file(tmp_path, "noray")
    code = ("import sys; sys.modules['ray'] = None; from autoresearch.cli.app import main; "
            "sys.argv = ['autoresearch'] + sys.argv[1:]; main()")
    proc = subprocess.run([sys.executable, "-c", code, "study", "run", str(path), "--executor", "ray",
                           "--root", str(tmp_path / "studies"), "--registry", str(tmp_path / "exp")],
                          capture_output=True, text=True, timeout=120)
    out = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 2, out
    assert "autoresearch[scale]" in out and "Traceback" not in out and len(out.splitlines()) == 1


@pytest.mark.parametrize("value", [-1, float("nan"), 65])
def test_gpus_per_trial_out_of_range_is_refused(tmp_path, value):
    path = _file(tmp_path, "gp", resources={"gpus_per_trial": value})
    with pytest.raises(StudyError, match=r"resources\.gpus_per_trial"):
        prepare_study(path, tmp_path / "studies")


def test_gpus_per_trial_reaches_the_spec_and_leaves_the_definition_hash_alone(tmp_path):
    from autoresearch.research.trial_specs import TrialSpecs

    r0, _ = prepare_study(_file(tmp_path, "h0"), tmp_path / "s0")
    r1, _ = prepare_study(_file(tmp_path, "h0", resources={"gpus_per_trial": 0.5}), tmp_path / "s1")
    assert r0.definition_hash == r1.definition_hash  # how trials are placed does not change what they measure
    # studies from before resources left the hash stored sha256(definition) with the four resources of that time
    before = json.loads(json.dumps(r0.definition, default=str))
    assert before["resources"]["gpus_per_trial"] == 0.0
    before["resources"] = {k: before["resources"][k] for k in ("threads_per_trial", "workers", "timeout_s", "retries")}
    old = hashlib.sha256(json.dumps(before, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert r0.legacy_definition_hash == old
    spec = TrialSpecs(r1, str(tmp_path / "reg"), 0.0).arm("baseline", 0)
    assert spec.gpus == 0.5 and spec.threads == 1


def test_the_attempt_environment_sent_to_a_worker_is_a_delta():
    from autoresearch.research.ray_executor import _env_delta
    from autoresearch.research.trial import ATTEMPT_ENV, PARENT_ENV

    env = {**os.environ, "OMP_NUM_THREADS": "2", ATTEMPT_ENV: "1", PARENT_ENV: "123", "CUDA_VISIBLE_DEVICES": "3",
           "AUTORESEARCH_CACHE": os.environ.get("AUTORESEARCH_CACHE", "/c"), "WORKTREE": "/w"}
    delta = _env_delta(env)
    assert delta["OMP_NUM_THREADS"] == "2" and delta[ATTEMPT_ENV] == "1" and delta["WORKTREE"] == "/w"
    assert "AUTORESEARCH_CACHE" in delta  # settings always travel, even when the driver has them too
    assert PARENT_ENV not in delta and "CUDA_VISIBLE_DEVICES" not in delta  # the worker's pid; Ray's GPUs
    assert "PATH" not in delta  # a remote node keeps its own


def _fake_spec(tmp_path: Path, tid: str = "t-s0", **overrides) -> TrialSpec:
    return TrialSpec(study="r", trial_id=tid, arm="baseline", seed=0, kind="train", testbed=FAKE_TESTBED,
                     preset="tiny", overrides={"train.train_tokens": 10_000, "train.seed": 0, **overrides},
                     registry=str(tmp_path / "experiments"), retries=1)


def test_a_worker_without_the_study_folder_sends_the_result_and_log_back(tmp_path):
    """No shared filesystem: the worker runs the attempt in a temporary folder, the driver writes what came back."""
    from autoresearch.research.ray_executor import RayLauncher, run_remote_attempt

    spec = _fake_spec(tmp_path)
    ended = run_remote_attempt(json.dumps(asdict(spec)), str(tmp_path / "elsewhere/attempt-1"),
                               {"OMP_NUM_THREADS": "1"}, 0.0, str(Path.cwd()))
    assert ended["shared"] is False and ended["returncode"] == 0 and not ended["timed_out"]
    assert not (tmp_path / "elsewhere").exists()
    adir = tmp_path / "trials/t-s0/attempt-1"
    adir.mkdir(parents=True)
    RayLauncher._copy_back(adir, ended)
    out = read_outcome(adir.parent)
    assert out is not None and out.ok and out.metrics["val_loss"] > 0
    assert "ran on Ray node" in (adir / "output.log").read_text()


def test_a_worker_sharing_the_study_folder_writes_in_place(tmp_path):
    from autoresearch.research.ray_executor import run_remote_attempt

    spec = _fake_spec(tmp_path)
    adir = tmp_path / "trials/t-s0/attempt-1"
    adir.mkdir(parents=True)
    text = json.dumps(asdict(spec))
    (adir / "spec.json").write_text(text)
    ended = run_remote_attempt(text, str(adir), {}, 0.0, str(Path.cwd()))
    assert ended["shared"] is True and ended["returncode"] == 0 and "result" not in ended
    assert read_outcome(adir.parent).ok


# --- on a local Ray instance ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def _trial_pids(marker: Path) -> list[int]:
    """Live trial processes whose command line names a spec under `marker`."""
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes()
            state = (p / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"autoresearch.research.trial" in cmd and str(marker).encode() in cmd and state != "Z":
            out.append(int(p.name))
    return out


def _wait_for(cond, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def _run(tmp_path: Path, path: Path, root: str, executor: str, **kw):
    resolved, sdir = prepare_study(path, tmp_path / root)
    return StudyRunner(resolved, sdir, registry=tmp_path / f"{root}-experiments", workers=2, executor=executor,
                       **kw).run()


def _nan_safe(x: object) -> object:
    """A crashed idea's mean is NaN, which never equals itself."""
    return "nan" if isinstance(x, float) and math.isnan(x) else x


def _compare(tmp_path: Path, path: Path) -> tuple[dict, dict]:
    """Verdicts and per-trial metrics of one study run by the local executor and by Ray."""
    runs = {}
    for executor in ("local", "ray"):
        res = _run(tmp_path, path, executor, executor)
        state = StudyState.load(tmp_path / executor / path.stem / "state.json")
        runs[executor] = ({v.idea: (v.verdict, v.n, _nan_safe(v.mean), v.code) for v in res.verdicts},
                          {t.trial: (t.status, t.metrics.get("val_loss")) for t in state.trials.values()})
    return runs["local"], runs["ray"]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Ray's local instance and /proc are Linux here")
def test_a_fake_study_on_ray_gives_the_local_executors_verdicts(tmp_path, ray_local):
    path = _file(tmp_path, "fk", resources={"retries": 1},
                 ideas=[{"name": "good", "overrides": {"model.boost": 0.2}},
                        {"name": "bad", "overrides": {"model.hurt": 0.3}},
                        {"name": "crashy", "overrides": {"model.crash": True}},
                        {"name": "flaky", "overrides": {"model.infra_fail": 1, "model.boost": 0.2}}])
    local, on_ray = _compare(tmp_path, path)
    assert on_ray == local
    assert local[0]["good"][0] == "KEEP" and local[0]["bad"][0] == "DISCARD" and local[0]["crashy"][0] == "CRASH"
    state = StudyState.load(tmp_path / "ray/fk/state.json")
    assert state.done and state.trial("flaky-s0").attempts == 2  # a SIGKILLed trial on a worker is retried


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Ray's local instance is Linux here")
def test_the_real_micro_lm_on_ray_matches_the_local_executor_bit_for_bit(tmp_path, ray_local, cache_dir):
    from tests.conftest import micro_overrides

    overrides = [o for o in micro_overrides(cache_dir) if not o.startswith("train.train_tokens")]
    data = {"name": "lm_ray", "testbed": "lm", "preset": "tiny", "overrides": overrides,
            "budget": {"tokens": 2048}, "baseline": {"value": None}, "seeds": {"initial": 2, "max": 2},
            "checks": False, "regression": {"enabled": False, "store": str(tmp_path / "traces")},
            "ideas": [{"name": "adamw_only", "overrides": {"optim.optimizer": "adamw"}}]}
    path = tmp_path / "lm_ray.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    local, on_ray = _compare(tmp_path, path)
    assert on_ray == local  # same seeds, same code, one thread each: identical val_loss per trial
    assert all(status == "ok" and loss is not None for status, loss in local[1].values())


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux")
def test_a_lost_ray_worker_is_an_infrastructure_failure_and_is_retried(tmp_path, ray_local):
    launcher = make_launcher("ray")
    spec = _fake_spec(tmp_path, **{"train.step_seconds": 0.5})  # 5 s of "training"
    trial_dir = tmp_path / "trials/t-s0"
    killed: list[int] = []

    def kill_first_worker() -> None:
        if _wait_for(lambda: _trial_pids(trial_dir / "attempt-1"), 60):
            pid = _trial_pids(trial_dir / "attempt-1")[0]
            worker = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            os.kill(worker, signal.SIGKILL)  # the Ray worker process, as when its node goes away
            killed.append(pid)

    killer = threading.Thread(target=kill_first_worker)
    killer.start()
    out = run_trial(spec, trial_dir, launcher=launcher)
    killer.join()
    assert killed, "the first attempt never started"
    assert out.ok and out.attempts == 2 and out.attempt == 2
    assert "worker was lost" in (trial_dir / "attempt-1/output.log").read_text()
    assert _wait_for(lambda: not _trial_pids(trial_dir / "attempt-1"), 5)  # the trial died with its worker


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux")
def test_timeout_and_stop_kill_the_trial_on_its_worker(tmp_path, ray_local):
    launcher = make_launcher("ray")
    spec = _fake_spec(tmp_path, **{"train.step_seconds": 3.0})  # 30 s
    spec.timeout_s = 4.0
    out = run_trial(spec, tmp_path / "trials/slow", launcher=launcher)
    assert out.status == "crashed" and "timed out after 4s" in out.error and out.attempts == 1
    assert not _trial_pids(tmp_path / "trials/slow")

    spec = _fake_spec(tmp_path, tid="stopped", **{"train.step_seconds": 3.0})
    stop = threading.Event()
    threading.Thread(target=lambda: _wait_for(lambda: _trial_pids(tmp_path / "trials/stopped"), 60) and stop.set(),
                     daemon=True).start()
    t0 = time.monotonic()
    with pytest.raises(TrialInterrupted):
        run_trial(spec, tmp_path / "trials/stopped", launcher=launcher, stop=stop)
    assert time.monotonic() - t0 < 25
    assert _wait_for(lambda: not _trial_pids(tmp_path / "trials/stopped"), 5)
    assert not (tmp_path / "trials/stopped/attempt-1/result.json").exists()


@pytest.mark.slow
def test_resources_the_cluster_can_never_fit_are_refused_in_one_line(tmp_path, ray_local):
    spec = _fake_spec(tmp_path)
    spec.gpus = 1.0
    with pytest.raises(StudyError) as e:
        run_trial(spec, tmp_path / "trials/gpu", launcher=make_launcher("ray"))
    msg = str(e.value)
    assert "\n" not in msg and "resources.gpus_per_trial" in msg and "0 GPU" in msg


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux")
def test_a_killed_ray_driver_leaves_a_study_that_resume_completes(tmp_path, ray_local):
    """`study run --executor ray` (its own local Ray instance) is SIGKILLed mid-study: its trials die with it (Ray's
    processes share the driver's fate), and `study resume --executor ray --address ADDR` (an existing cluster: the
    module's instance) finishes the study without training any finished trial again."""
    path = _file(tmp_path, "k9", overrides={"train.step_seconds": 0.4}, control={},  # 4 s per trial
                 seeds={"initial": 2, "max": 2})
    sdir = tmp_path / "studies/k9"
    args = ["--root", str(tmp_path / "studies"), "--registry", str(tmp_path / "experiments"), "--workers", "2", "-q"]
    proc = subprocess.Popen([sys.executable, "-m", "autoresearch", "study", "run", str(path), "--executor", "ray",
                             *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        started = _wait_for(lambda: len(trained_trials(tmp_path / "experiments")) >= 1 and _trial_pids(sdir), 150)
        assert started, "no trial finished and none running before the deadline"
        os.kill(proc.pid, signal.SIGKILL)
        t_kill = time.monotonic()
        gone = _wait_for(lambda: not _trial_pids(sdir), 30)
        gone_after = time.monotonic() - t_kill
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    assert gone, f"trial processes outlived the killed driver by more than {gone_after:.1f}s"
    before = trained_trials(tmp_path / "experiments")
    address = ray_local.get_runtime_context().gcs_address
    res = subprocess.run([sys.executable, "-m", "autoresearch", "study", "resume", "k9", "--executor", "ray",
                          "--address", address, *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    trained = trained_trials(tmp_path / "experiments")
    assert len(trained) == 6 and set(trained.values()) == {1}, f"trained twice: {trained} (before resume: {before})"
    state = StudyState.load(sdir / "state.json")
    assert state.done and state.verdicts["good"].verdict == "KEEP"

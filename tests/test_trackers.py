"""Experiment trackers (harness/trackers): what an experiment writes to log.jsonl, results.yaml and config.yaml is read
back, offline, from TensorBoard event files, an MLflow sqlite store and a W&B offline run; a failing tracker never
stops training; unknown names and missing packages are one-line errors; a study's trials are tagged."""

from __future__ import annotations

import importlib.util
import json
import math
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from autoresearch.errors import ConfigError, StudyError
from autoresearch.harness import trackers as trackers_mod
from autoresearch.harness.registry import Experiment, new_experiment
from autoresearch.harness.trackers import check_trackers
from tests.conftest import fake_study_file, micro_overrides

runner = CliRunner(env={"COLUMNS": "220"})

CONFIG = {"model": {"n_layers": 2, "d_model": 32}, "train": {"lr": 0.01, "betas": [0.9, 0.95]}}
META = {"seed": 3, "testbed": "lm", "git": {"commit": "abc123", "dirty": False}}
RECORDS = [
    {"step": 1, "tokens": 128, "loss": 6.0, "lr": 0.01, "grad_norm": 1.5, "phase": "train"},
    {"step": 2, "tokens": 256, "loss": 5.5, "lr": 0.01, "grad_norm": 1.25},
    {"step": 2, "tokens": 256, "val_loss": 5.75, "val_bpb": 4.0},
    {"step": 3, "tokens": 384, "loss": 5.25, "lr": 0.005, "grad_norm": 1.0},
    {"step": 3, "tokens": 384, "val_loss": 5.5},  # an eval at the last step: the final summary must still win
]
RESULTS = {"status": "ok", "val_loss": 5.125, "steps": 3, "params": 30944, "data": {"source": "stdlib", "bytes": 1000},
           "note": None}
TAGS = {"study": "s1", "arm": "baseline", "seed": 3, "trial": "baseline-s3"}


def _mirror_run(exp: Experiment, results: dict[str, Any] = RESULTS) -> None:
    """What a training loop writes, in its order: config, running, steps, final results."""
    exp.write_config(CONFIG, META)
    exp.write_results({"status": "running"})
    for r in RECORDS:
        exp.log(r)
    exp.write_results(results)


def _series(key: str) -> list[tuple[int, float]]:
    return [(r["step"], r[key]) for r in RECORDS if key in r]


# --- names and packages -------------------------------------------------------------------------------------------


def test_unknown_tracker_is_one_line_config_error():
    with pytest.raises(ConfigError, match=r"unknown tracker 'tensorbord'; use one of tensorboard, mlflow, wandb"):
        check_trackers(["tensorbord"])
    assert check_trackers(["TensorBoard", "tensorboard"], installed=False) == ["tensorboard"]


def test_missing_package_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'autoresearch\[wandb\]'"):
        check_trackers(["wandb"])


def test_cli_unknown_tracker_exits_2_with_one_line_and_no_folder(tmp_path):
    r = subprocess.run([sys.executable, "-m", "autoresearch", "train", "lm", "--tracker", "nope", "--root",
                        str(tmp_path / "exps")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "unknown tracker 'nope'" in r.stderr
    assert not (tmp_path / "exps").exists()


def test_study_file_unknown_tracker_is_refused(tmp_path):
    from autoresearch.research.study import load_study

    path = fake_study_file(tmp_path, "badtrk", resources={"trackers": ["tensorflow"]})
    with pytest.raises(StudyError, match=r"resources.trackers.*tensorboard, mlflow, wandb"):
        load_study(path)


# --- a failing tracker ----------------------------------------------------------------------------------------------


class _Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.metrics: list[tuple[int | None, dict[str, float]]] = []
        self.summary: dict[str, Any] = {}
        self.config: dict[str, Any] = {}
        self.tags: dict[str, str] = {}
        self.closed = 0

    def log_metrics(self, step, metrics):
        self.metrics.append((step, metrics))

    def log_summary(self, summary):
        self.summary = dict(summary)

    def log_config(self, config):
        self.config = dict(config)

    def set_tags(self, tags):
        self.tags.update(tags)

    def close(self):
        self.closed += 1


class _Broken(_Recorder):
    name = "broken"

    def log_metrics(self, step, metrics):
        raise ConnectionError("tracking server unreachable\nsecond line of a long message")


def test_failing_tracker_never_stops_training(micro_cfg, tmp_path, monkeypatch, capsys):
    """A real LM run with a tracker that raises on every step: the run ends ok, one warning, the other tracker got
    every logged number."""
    from autoresearch.testbeds import get_testbed

    made: dict[str, _Recorder] = {}

    def fake_make(name, **kw):
        made[name] = _Broken() if name == "tensorboard" else _Recorder()
        return made[name]

    monkeypatch.setattr(trackers_mod, "_make", fake_make)
    exp = new_experiment(tmp_path / "exps").with_trackers(["tensorboard", "mlflow"], {"study": "s"})
    res = get_testbed("lm").train(micro_cfg, exp, progress=False)
    assert res["status"] == "ok" and exp.read_results()["status"] == "ok"
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if "warning: tracker" in ln]
    assert len(warnings) == 1
    assert "tracker broken failed in log_metrics (ConnectionError: tracking server unreachable)" in warnings[0]
    rec = made["mlflow"]
    logged = [(r["step"], r["loss"]) for r in exp.read_log() if "loss" in r]
    assert [(s, m["loss"]) for s, m in rec.metrics if "loss" in m] == logged and len(logged) == 8
    assert rec.summary["status"] == "ok" and rec.summary["val_loss"] == res["val_loss"]
    assert rec.config["model.n_layers"] == 2 and rec.tags["study"] == "s" and rec.tags["testbed"] == "lm"
    assert rec.closed == 1 and made["tensorboard"].closed == 1  # the broken one is closed when dropped


@pytest.mark.slow  # importing MLflow and creating its sqlite store take ~10 s on 2 busy cores
def test_tracker_that_fails_to_start_is_a_warning(tmp_path, monkeypatch, capsys):
    pytest.importorskip("mlflow")
    (tmp_path / "a_file").write_text("not a folder")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/a_file/mlflow.db")  # cannot be created
    exp = new_experiment(tmp_path / "exps").with_trackers(["mlflow"])
    _mirror_run(exp)
    exp.close_trackers()
    assert exp.trackers is not None and exp.trackers.trackers == [] and "mlflow" in exp.trackers.failed
    err = capsys.readouterr().err
    assert err.count("warning: tracker mlflow failed in start") == 1
    assert yaml.safe_load(exp.results_path.read_text())["status"] == "ok"


# --- round trips -----------------------------------------------------------------------------------------------------


def test_tensorboard_event_files_read_back(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    exp = new_experiment(tmp_path / "exps").with_trackers(["tensorboard"], TAGS)
    _mirror_run(exp)
    exp.close_trackers()
    acc = EventAccumulator(str(exp.path / "trackers" / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    for key in ("loss", "lr", "grad_norm", "tokens", "val_loss", "val_bpb"):
        got = [(e.step, e.value) for e in acc.Scalars(key)]
        assert got == [(s, pytest.approx(v, rel=1e-6)) for s, v in _series(key)], key
    assert [(e.step, e.value) for e in acc.Scalars("summary/val_loss")] == [(3, 5.125)]
    assert acc.Scalars("summary/data.bytes")[0].value == 1000
    text = {t: acc.Tensors(t)[-1].tensor_proto.string_val[0].decode() for t in acc.Tags()["tensors"]}
    assert text["summary/status/text_summary"] == "ok" and text["summary/data.source/text_summary"] == "stdlib"
    for row in ("| study | s1 |", "| arm | baseline |", "| seed | 3 |", "| trial | baseline-s3 |",
                f"| experiment | {exp.id} |", "| git_commit | abc123 |"):
        assert row in text["tags/text_summary"], row
    assert "| model.n_layers | 2 |" in text["config/text_summary"]
    assert "phase" not in acc.Tags()["scalars"]


def _mlflow_run(exp: Experiment, uri: str):
    from mlflow.tracking import MlflowClient

    state = json.loads((exp.path / "trackers" / "mlflow.json").read_text())
    client = MlflowClient(tracking_uri=uri)
    return client, client.get_run(state["run_id"])


@pytest.mark.slow  # importing MLflow and creating its sqlite store take ~10 s on 2 busy cores
def test_mlflow_sqlite_store_read_back_and_resume_continues_the_run(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    exp = new_experiment(tmp_path / "exps").with_trackers(["mlflow"], TAGS, run_name="s1/baseline-s3")
    _mirror_run(exp)
    exp.close_trackers()
    client, run = _mlflow_run(exp, uri)
    assert run.info.run_name == "s1/baseline-s3" and run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "s1"  # a trial's MLflow experiment is its study
    for key in ("loss", "lr", "grad_norm", "val_loss"):
        hist = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
        want = sorted(_series(key) + ([(3, 5.125)] if key == "val_loss" else []))
        assert hist == want, key
    assert run.data.metrics["val_loss"] == 5.125 and run.data.metrics["data.bytes"] == 1000
    assert run.data.params["model.n_layers"] == "2" and run.data.params["train.betas"] == "[0.9, 0.95]"
    tags = run.data.tags
    assert {k: tags[k] for k in ("study", "arm", "seed", "trial", "status", "testbed", "git_commit")} == {
        "study": "s1", "arm": "baseline", "seed": "3", "trial": "baseline-s3", "status": "ok", "testbed": "lm",
        "git_commit": "abc123"}
    assert tags["experiment"] == exp.id and tags["data.source"] == "stdlib"

    # resume: the same experiment folder continues the same MLflow run; a crash ends it FAILED
    again = Experiment(exp.path).with_trackers(["mlflow"], TAGS)
    again.log({"step": 4, "loss": 5.0})
    again.write_results({"status": "crashed", "error": "RuntimeError: boom"})
    again.close_trackers()
    client, run2 = _mlflow_run(again, uri)
    assert run2.info.run_id == run.info.run_id and run2.info.status == "FAILED"
    assert (4, 5.0) in [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss")]
    assert run2.data.tags["error"] == "RuntimeError: boom"
    assert len(client.search_runs([run.info.experiment_id])) == 1


_BLOCK = 32768  # the W&B transaction log is LevelDB's log format: 32 KiB blocks of (crc32, length, type) records


def _wandb_records(path: Path) -> list[Any]:
    """Every protobuf Record of a `run-*.wandb` file (W&B ships no reader of its own in this version)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    out, i, buf = [], 7, b""
    while i + 7 <= len(data):
        left = _BLOCK - i % _BLOCK
        if left < 7:
            i += left
            continue
        _crc, n, kind = struct.unpack("<IHB", data[i:i + 7])
        i += 7
        if kind == 0 and n == 0:
            i += left - 7
            continue
        chunk, i = data[i:i + n], i + n
        if kind in (1, 4):  # full / last
            rec = pb.Record()
            rec.ParseFromString(buf + chunk if kind == 4 else chunk)
            out.append(rec)
            buf = b""
        else:  # first / middle
            buf += chunk
    return out


def test_wandb_offline_run_read_back(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    for var, sub in (("WANDB_CONFIG_DIR", "cfg"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    exp = new_experiment(tmp_path / "exps").with_trackers(["wandb"], TAGS, run_name="s1/baseline-s3")
    _mirror_run(exp)
    exp.close_trackers()
    run_id = json.loads((exp.path / "trackers" / "wandb.json").read_text())["id"]
    files = list((exp.path / "trackers" / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
    assert len(files) == 1
    history: dict[str, list[tuple[int, float]]] = {}
    summary: dict[str, Any] = {}
    config: dict[str, Any] = {}
    run = None
    deadline = time.monotonic() + 30  # W&B's service process may still be writing the file when finish() returns
    while not any(r.WhichOneof("record_type") == "exit" for r in _wandb_records(files[0])):
        assert time.monotonic() < deadline, "the W&B run file never got its exit record"
        time.sleep(0.2)
    for rec in _wandb_records(files[0]):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            run = rec.run
            config.update({c.key: json.loads(c.value_json) for c in rec.run.config.update})
        elif kind == "config":
            config.update({c.key: json.loads(c.value_json) for c in rec.config.update})
        elif kind == "history":
            items = {i.key or ".".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item}
            for k, v in items.items():
                if not k.startswith("_"):
                    history.setdefault(k, []).append((items["_step"], v))
        elif kind == "summary":
            summary.update({u.key or ".".join(u.nested_key): json.loads(u.value_json) for u in rec.summary.update})
    assert run is not None and run.display_name == "s1/baseline-s3" and run.project == "autoresearch"
    assert run.run_group == "s1" and run.job_type == "baseline"
    assert {"study:s1", "arm:baseline", "seed:3", "trial:baseline-s3"} <= set(run.tags)
    for key in ("loss", "lr", "grad_norm", "val_loss"):
        assert history[key] == _series(key), key
    # the final summary survives W&B's copying of each history row into the summary (the last row included)
    assert summary["val_loss"] == 5.125 and summary["status"] == "ok" and summary["data.source"] == "stdlib"
    assert config["model.n_layers"] == 2 and config["autoresearch"]["arm"] == "baseline"
    assert config["autoresearch"]["git_commit"] == "abc123"

    # resume: the same experiment folder continues the same W&B run id (offline: a second run folder of that id)
    again = Experiment(exp.path).with_trackers(["wandb"], TAGS)
    again.log({"step": 5, "loss": 4.0})
    again.close_trackers()
    assert again.trackers is not None and again.trackers.failed == {}
    def step5(path: Path) -> bool:
        return any(rec.WhichOneof("record_type") == "history" and 5 in [json.loads(i.value_json)
                   for i in rec.history.item if (i.key or ".".join(i.nested_key)) == "_step"]
                   for rec in _wandb_records(path))

    deadline = time.monotonic() + 30
    while not any(step5(p) for p in (exp.path / "trackers" / "wandb").glob(f"offline-run-*-{run_id}/run-*.wandb")):
        assert time.monotonic() < deadline, "the resumed W&B run never got step 5 under the same run id"
        time.sleep(0.2)


# --- command line and studies --------------------------------------------------------------------------------------


def test_cli_train_tracker_tensorboard_mirrors_log_jsonl(cache_dir, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from autoresearch.cli.app import app

    root = tmp_path / "exps"
    sets = [a for o in micro_overrides(cache_dir) for a in ("--set", o)]
    r = runner.invoke(app, ["train", "lm", "--preset", "tiny", *sets, "--root", str(root), "--quiet",
                            "--tracker", "tensorboard"])
    assert r.exit_code == 0, r.output
    exp = Experiment(root / "exp-001")
    acc = EventAccumulator(str(exp.path / "trackers" / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    logged = [(rec["step"], rec["loss"]) for rec in exp.read_log() if "loss" in rec]
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(s, pytest.approx(v, rel=1e-6)) for s, v in logged]
    final = exp.read_results()["val_loss"]
    assert math.isclose(acc.Scalars("summary/val_loss")[-1].value, final, rel_tol=1e-6)


def test_trial_specs_carry_the_study_file_and_command_line_trackers(tmp_path):
    from autoresearch.research.study import load_study, resolve_study
    from autoresearch.research.trial_specs import TrialSpecs

    resolved = resolve_study(load_study(fake_study_file(tmp_path, "trk", resources={"trackers": ["mlflow"]})))
    spec = TrialSpecs(resolved, str(tmp_path / "exps"), 0.0, ("tensorboard", "mlflow")).arm("good", 1)
    assert spec.trackers == ["mlflow", "tensorboard"] and (spec.arm, spec.seed, spec.trial_id) == ("good", 1, "good-s1")
    assert TrialSpecs(resolved, str(tmp_path / "exps"), 0.0).arm("baseline", 0).trackers == ["mlflow"]


@pytest.mark.slow
def test_study_trials_are_tagged_with_study_arm_seed_and_trial(tmp_path, monkeypatch):
    """`study run --tracker tensorboard`: every trial's experiment mirrors into TensorBoard, tagged with its study,
    arm, seed and trial id."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from autoresearch.cli.app import app

    monkeypatch.chdir(tmp_path)
    path = fake_study_file(tmp_path, "trk")
    r = runner.invoke(app, ["study", "run", str(path), "--workers", "2", "--registry", str(tmp_path / "exps"),
                            "--tracker", "tensorboard"])
    assert r.exit_code == 0, r.output
    trials = {}
    for exp_dir in sorted((tmp_path / "exps").iterdir()):
        trial = yaml.safe_load((exp_dir / "study_trial.yaml").read_text())
        acc = EventAccumulator(str(exp_dir / "trackers" / "tensorboard"), size_guidance={"tensors": 0})
        acc.Reload()
        tags = acc.Tensors("tags/text_summary")[-1].tensor_proto.string_val[0].decode()
        for k in ("study", "arm", "seed", "trial"):
            assert f"| {k} | {trial[k]} |" in tags, (k, tags)
        assert f"| run | trk/{trial['trial']} |" in tags
        status = acc.Tensors("summary/status/text_summary")[-1].tensor_proto.string_val[0].decode()
        assert status == "ok"
        trials[trial["trial"]] = trial["arm"]
    assert sorted(trials.items()) == [("baseline-s0", "baseline"), ("baseline-s1", "baseline"),
                                      ("good-s0", "good"), ("good-s1", "good")]

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

"""The trial scheduler (research/scheduler.py), used without a study: specs in, outcomes through a callback, one
subprocess per trial on N workers; a failing callback stops the batch before the queued trials start."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from autoresearch.errors import StudyError
from autoresearch.research.scheduler import TrialScheduler
from autoresearch.research.trial import TrialOutcome, TrialSpec
from tests.conftest import FAKE_TESTBED


def _spec(tmp_path: Path, tid: str, seed: int, **overrides) -> TrialSpec:
    return TrialSpec(study="none", trial_id=tid, arm="a", seed=seed, kind="train", testbed=FAKE_TESTBED,
                     preset="tiny", overrides={"train.train_tokens": 2000, "train.seed": seed, **overrides},
                     registry=str(tmp_path / "experiments"), retries=0)


def test_specs_run_in_parallel_and_every_outcome_reaches_the_callback(tmp_path):
    events: list[tuple[str, dict]] = []
    sched = TrialScheduler(tmp_path / "trials", 2, emit=lambda kind, d: events.append((kind, d)))
    got: dict[str, TrialOutcome] = {}
    started: list[str] = []
    lock = threading.Lock()

    def on_done(spec: TrialSpec, out: TrialOutcome) -> None:
        with lock:
            got[spec.trial_id] = out
        sched.tick()

    specs = [_spec(tmp_path, f"t{i}", i) for i in range(3)]
    sched.run(specs, on_done, on_start=lambda spec: started.append(spec.trial_id))
    assert sorted(got) == sorted(started) == ["t0", "t1", "t2"] and sched.done == sched.total == 3
    assert all(o.ok and o.metrics["val_loss"] > 0 and Path(o.exp).is_dir() for o in got.values())
    assert len({o.exp for o in got.values()}) == 3  # one experiment folder per trial
    assert [k for k, _ in events].count("trial_start") == 3 and events[0] == ("batch", {"trials": ["t0", "t1", "t2"],
                                                                                        "workers": 2})
    assert all((tmp_path / "trials" / t / "attempt-1" / "result.json").exists() for t in got)


def test_an_error_in_the_callback_stops_the_batch(tmp_path):
    sched = TrialScheduler(tmp_path / "trials", 1)

    def on_done(spec: TrialSpec, out: TrialOutcome) -> None:
        raise StudyError(f"stop after {spec.trial_id}")

    with pytest.raises(StudyError, match="stop after t0"):
        sched.run([_spec(tmp_path, f"t{i}", i) for i in range(3)], on_done)
    assert sched.stop.is_set()
    assert not (tmp_path / "trials" / "t1").exists() and not (tmp_path / "trials" / "t2").exists()


def test_an_empty_batch_does_nothing(tmp_path):
    events: list[str] = []
    TrialScheduler(tmp_path / "trials", 2, emit=lambda kind, d: events.append(kind)).run([], lambda s, o: None)
    assert events == [] and not (tmp_path / "trials").exists()

"""The typed study state (research/state.py): written and read back field for field, files of the earlier untyped
layout open unchanged, and a field of the wrong type is refused on load with one line naming the field."""

from __future__ import annotations

import json

import pytest

from autoresearch.errors import StudyError
from autoresearch.research.state import (
    AcceptedBaseline,
    BaselineState,
    RegressionPlan,
    RunSession,
    StageStatus,
    StudyState,
    TrialRecord,
)
from autoresearch.research.verdicts import Verdict

# a state.json as the untyped runner wrote it (fields it had no use for yet are missing: registry, commit, running,
# generations, and most of a trial record in a hand-built one)
OLD = {
    "version": 1, "name": "old", "definition_hash": "abc", "created_at": "2026-01-01T00:00:00", "stage": "report",
    "stages": {"checks": {"status": "done", "at": "t", "checks": [{"name": "c", "status": "pass"}], "seconds": 1.5},
               "baseline": {"status": "done", "at": "t", "mean": 3.0, "recorded": 3.01, "rel": 0.003},
               "regression": {"status": "done", "at": "t", "result": "recorded", "steps": 8, "store": "/x.json"},
               "trials": {"status": "done", "at": "t", "rounds": 1},
               "report": {"status": "done", "at": "t", "markdown": "/s/report.md", "html": "/s/report.html"}},
    "trials": {"baseline-s0": {"trial": "baseline-s0", "arm": "baseline", "seed": 0, "index": 0, "status": "ok",
                               "metric": 3.0, "metrics": {"val_loss": 3.0}, "exp": "/e/exp-001"},
               "good-s0": {"status": "crashed", "error": "boom"}},
    "planned": {"good": 2}, "round": 0,
    "verdicts": {"good": {"idea": "good", "verdict": "CRASH", "code": "crashed", "reason": "trial failed: boom",
                          "n": 0, "mean": None, "lo": None, "hi": None, "p": None, "idea_mean": None,
                          "baseline_mean": None, "conf": 0.95, "error": "boom"}},
    "baseline": {"measured": 3.0, "values": [3.0], "recorded": 3.01,
                 "accepted": {"value": 3.0, "at": "t", "previous": 3.01, "values": [3.0]}},
    "regression": {"gen": 1, "key": "k", "store": "/x.json", "runs": 2, "fingerprint": {"cpu": "x"}},
    "runs": [{"pid": 1, "started": 100.0, "ended": 130.0, "last_progress": 129.0, "workers": 2}],
    "environment": {"cpu": "x"}, "done": True, "definition": {"name": "old"},
}


def _write(tmp_path, data) -> StudyState:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(data))
    return StudyState.load(path)


def test_an_old_state_file_loads_typed_and_is_written_back_compatible(tmp_path):
    st = _write(tmp_path, OLD)
    assert st.stage_done("report") and st.stages["regression"] == StageStatus("done", "t", result="recorded",
                                                                                 steps=8, store="/x.json")
    assert st.stages["checks"].seconds == 1.5 and st.stages["baseline"].rel == pytest.approx(0.003)
    base = st.trial("baseline-s0")
    assert isinstance(base, TrialRecord) and base.ok and base.metric == 3.0 and base.exp == "/e/exp-001"
    crashed = st.trials["good-s0"]  # the id fills in a missing `trial`; missing numbers take their defaults
    assert (crashed.trial, crashed.ok, crashed.error, crashed.attempts, crashed.metric) == ("good-s0", False, "boom",
                                                                                         1, None)
    v = st.verdicts["good"]
    assert isinstance(v, Verdict) and v.verdict == "CRASH" and v.mean != v.mean  # null -> NaN, as Verdict holds it
    assert st.baseline.accepted == AcceptedBaseline(3.0, "t", 3.01, [3.0])
    assert st.regression == RegressionPlan(1, "k", "/x.json", 2, {"cpu": "x"})
    assert st.runs == [RunSession(1, 100.0, 130.0, 129.0, 2)] and st.wall_seconds() == pytest.approx(30.0)
    assert (st.registry, st.commit, st.running, st.generations) == ("", "", {}, {})
    assert st.generation("regression") == 1

    st.save()
    written = json.loads((tmp_path / "state.json").read_text())
    for key in ("stages", "planned", "verdicts", "baseline", "regression", "runs", "environment", "definition"):
        assert written[key] == OLD[key], key  # the layout an earlier version reads
    assert written["trials"]["baseline-s0"].items() >= OLD["trials"]["baseline-s0"].items()
    assert StudyState.load(tmp_path / "state.json") == st


def test_a_new_state_round_trips(tmp_path):
    st = StudyState.create(tmp_path / "state.json", "new", "h", {"name": "new"})
    assert st.regression is None and st.baseline == BaselineState() and st.stage == "checks"
    assert json.loads((tmp_path / "state.json").read_text())["regression"] == {}  # as before: an empty object
    st.start_run(3)
    st.record_trial(TrialRecord("good-s1", "good", "ok", seed=1, index=1, metric=2.5, exp="/e"))
    st.set_stage("checks", "failed", error="x: broken")
    st.bump_generation("checks")
    st.mark_running("good-s2", True)
    st.end_run()
    back = StudyState.load(tmp_path / "state.json")
    assert back == st and back.generation("checks") == 2 and back.running.keys() == {"good-s2"}
    assert back.stages["checks"].to_dict().keys() == {"status", "at", "error"}  # unset findings stay out of the file
    assert back.runs[0].workers == 3 and back.runs[0].ended is not None


@pytest.mark.parametrize("edit, expect", [
    (lambda d: d["trials"]["baseline-s0"].update(metric="3.0"), "`trials.baseline-s0.metric` must be a number or null"),
    (lambda d: d["trials"]["baseline-s0"].update(index=1.5), "`trials.baseline-s0.index` must be an integer or null"),
    (lambda d: d["trials"]["baseline-s0"].pop("status"), "trial record 'baseline-s0' has no `status`"),
    (lambda d: d["planned"].update(good="2"), "`planned.good` must be an integer, got \"2\""),
    (lambda d: d["verdicts"]["good"].pop("verdict"), "`verdicts.good` has no `verdict`"),
    (lambda d: d["verdicts"].update(good=[1]), "`verdicts.good` must be an object"),
    (lambda d: d["stages"]["report"].update(html=5), "`stages.report.html` must be a string, got 5"),
    (lambda d: d["runs"][0].pop("pid"), "`runs[0]` has no `pid`"),
    (lambda d: d["baseline"].update(values="3.0"), "`baseline.values` must be a list"),
    (lambda d: d["baseline"]["accepted"].pop("value"), "`baseline.accepted` has no `value`"),
    (lambda d: d.update(round=True), "`round` must be an integer, got true"),
    (lambda d: d.update(done="yes"), "`done` must be true or false"),
    (lambda d: d.update(registry=7), "`registry` must be a string"),
])
def test_a_field_of_the_wrong_type_is_refused_naming_it(tmp_path, edit, expect):
    data = json.loads(json.dumps(OLD))
    edit(data)
    with pytest.raises(StudyError) as e:
        _write(tmp_path, data)
    msg = str(e.value)
    assert "\n" not in msg and expect in msg and str(tmp_path / "state.json") in msg and "mv " in msg, msg


def test_unknown_fields_of_a_newer_file_are_ignored(tmp_path):
    data = json.loads(json.dumps(OLD))
    data["future"] = {"x": 1}
    data["trials"]["baseline-s0"]["future"] = 1
    st = _write(tmp_path, data)
    assert st.trial("baseline-s0").metric == 3.0

"""The status of a study (research/status.py): typed rows computed from the study folder, rendered by the CLI."""

from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

from autoresearch.cli.app import app
from autoresearch.errors import StudyError
from autoresearch.research.lock import runner_lock
from autoresearch.research.state import StudyState, TrialRecord
from autoresearch.research.status import ArmStatus, study_status
from autoresearch.research.study_dir import prepare_study
from autoresearch.research.verdicts import DecisionRule, decide
from tests.conftest import fake_study_file


@pytest.fixture
def study(tmp_path):
    """A prepared fake study (baseline, good, A/A control; 3 seeds planned) with trials recorded by hand."""
    path = fake_study_file(tmp_path, "st", control={}, seeds={"initial": 3, "max": 3})
    resolved, sdir = prepare_study(path, tmp_path / "studies")
    state = StudyState.load(sdir / "state.json")
    metrics = {"baseline": [3.0, 3.1, 2.9], "good": [2.8, 2.85, 2.7], "aa_control": [3.05]}
    for arm, values in metrics.items():
        for i, m in enumerate(values):
            seed = resolved.seed(arm, i)
            state.trials[f"{arm}-s{seed}"] = TrialRecord(f"{arm}-s{seed}", arm, "ok", seed=seed, index=i, metric=m)
    state.trials["aa_control-s1001"] = TrialRecord("aa_control-s1001", "aa_control", "crashed", seed=1001, index=1)
    state.planned = {"good": 3, "aa_control": 3}
    state.stage = "trials"
    state.running = {"aa_control-s1002": "t"}
    state.verdicts = {"good": decide("good", metrics["good"], metrics["baseline"], direction="lower",
                                     rule=DecisionRule(), max_seeds=3)}
    state.save()
    return sdir


def test_rows_per_arm(study):
    st = study_status(study)
    assert (st.name, st.stage, st.metric, st.state, st.trials) == ("st", "trials", "val_loss", "stopped", 8)
    rows = {a.arm: a for a in st.arms}
    assert list(rows) == ["baseline", "good", "aa_control"]
    assert rows["baseline"] == ArmStatus("baseline", 3, 3, 0, 0, pytest.approx(3.0))
    good = rows["good"]
    assert (good.done, good.planned, good.running, good.crashed, good.verdict) == (3, 3, 0, 0, "KEEP")
    assert good.delta == pytest.approx(3.0 - 2.7833, abs=1e-4) and good.lo > 0 and 0 < good.p < 0.05
    aa = rows["aa_control"]
    assert (aa.done, aa.crashed, aa.running, aa.verdict, aa.delta) == (1, 1, 0, "", None)  # one pair: no Δ yet
    assert math.isclose(aa.mean, 3.05)


def test_running_trials_count_only_while_a_runner_holds_the_lock(study):
    with runner_lock(study):
        st = study_status(study)
    assert st.state == "running" and {a.arm: a.running for a in st.arms}["aa_control"] == 1
    state = StudyState.load(study / "state.json")
    state.done = True
    state.save()
    assert study_status(study).state == "done"


def test_the_cli_renders_the_rows(study):
    r = CliRunner().invoke(app, ["study", "status", "st", "--root", str(study.parent)])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.replace("│", " ").split())
    assert "study st — stage trials" in out and "stopped (resume to continue)" in out and "8 trials recorded" in out
    assert "good 3 3 0 0 2.7833 +0.2167" in out and "KEEP" in out
    assert "aa_control 1 3 0 1 3.0500 - - - …" in out


def test_a_damaged_study_yaml_is_one_line(study):
    (study / "study.yaml").write_text("{}")
    with pytest.raises(StudyError, match="study.yaml is damaged"):
        study_status(study)

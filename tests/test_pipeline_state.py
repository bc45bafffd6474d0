"""The pipeline state file (pipeline/state.py): typed round trip, one-line errors for a damaged file, atomic writes."""

from __future__ import annotations

import os

import pytest
import yaml

from autoresearch.errors import PipelineError
from autoresearch.pipeline.state import (
    STAGES,
    Attempt,
    GateDecision,
    PipelineState,
    VersionRecord,
    find_version,
    load_state,
    new_state,
    record,
    save_state,
    state_exists,
)
from autoresearch.research.study import BaselineRecord


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


def _full() -> PipelineState:
    st = new_state("scale the attention logits", base_commit="abc123", integrity_hash="f" * 64,
                   options={"coder": "patch:good.diff", "gates": {"design": "human"}})
    v = VersionRecord(name="attn-temp", k=1, branch="idea/attn-temp/v1", worktree="/ws/.autoresearch/worktrees/x",
                      status="escalated", task={"name": "attn-temp", "flags": [{"key": "model.attn_temp",
                                                                                "off": 1.0, "on": 0.8}]},
                      attempts=[Attempt(kind="regression", n=1, error_head="first differing step 3",
                                        diff_path="logs/attempts/attn-temp-v1-1.diff", at="2026-01-01T00:00:00+00:00")],
                      metrics={"baseline_mean": 3.5, "idea_mean": 3.4, "delta": 0.1, "ci": [0.01, 0.2]},
                      analysis={"kind": "noise", "summary": "CI straddles 0"}, verdict="RETEST-exhausted")
    st.versions.append(v)
    st.gates.append(GateDecision(stage="design", version=v.label, mode="human", decision="revise", note="smaller",
                                 by="human", at="2026-01-01T00:00:01+00:00"))
    st.baseline = BaselineRecord(value=3.5, tolerance=0.05, source="studies/attn-temp-v1")
    st.stage, st.status, st.waiting_for = "implementation", "waiting", "implementation:attn-temp/v1"
    st.budget_used.versions, st.budget_used.trials, st.budget_used.seconds = 1, 4, 12.5
    record(st, "design", "gate", "design of attn-temp/v1 revised")
    return st


def test_round_trip_keeps_every_field(tmp_path):
    path = tmp_path / ".autoresearch" / "pipeline.yaml"
    assert not state_exists(path)
    st = _full()
    save_state(path, st)
    assert state_exists(path)
    back = load_state(path)
    assert back == st and back.versions[0].attempts[0].kind == "regression"
    assert isinstance(back.baseline, BaselineRecord) and back.baseline.value == 3.5
    assert find_version(back, "attn-temp", 1) is back.versions[0] and find_version(back, "attn-temp", 2) is None
    assert back.history[-1].event == "gate" and back.history[-1].at and back.updated_at
    assert back.versions[0].label == "attn-temp/v1" and STAGES[-1] == "done"
    save_state(path, back)  # a second save of the read state is again the same state
    assert load_state(path) == back


def test_state_accepts_a_workspace(tmp_path):
    class Ws:  # anything with `state_file`, as a Workspace has
        state_file = tmp_path / "s" / "pipeline.yaml"

    save_state(Ws(), new_state())  # type: ignore[arg-type]
    assert load_state(Ws()).stage == "ideation" and state_exists(Ws())  # type: ignore[arg-type]


@pytest.mark.parametrize("text, expect", [
    ("", "empty file"),
    ("[1, 2]\n", "must hold a mapping"),
    ("stage: [\n", "not valid YAML (line"),
    ("stage: desing\n", "`stage` must be one of"),
    ("status: paused\n", "`status` must be one of"),
    ("colour: red\n", "unknown config key `colour`"),
    ("version: 2\n", "`version` must be 1"),
    ("versions: [{name: a, k: 1, status: half-done}]\n", "`versions[0].status`"),
    ("versions: [{name: a, k: zero}]\n", "`versions[0].k` must be an integer"),
    ("versions: [{name: a, attempts: [{kind: x, n: one}]}]\n", "`versions[0].attempts[0].n`"),
    ("versions: [{name: a, k: 0}]\n", "`versions[0].k` must be >= 1"),
    ("versions: [{name: a, attempts: [{n: 0}]}]\n", "`versions[0].attempts[0].n` must be >= 1"),
    ("gates: [{stage: design, decision: maybe}]\n", "`gates[0].decision`"),
    ("budget_used: {trials: -1}\n", "budget_used.trials"),
    ("baseline: {value: .nan}\n", "baseline.value"),
])
def test_damaged_state_is_one_line_naming_the_field(tmp_path, text, expect):
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    with pytest.raises(PipelineError) as e:
        load_state(path)
    msg = _one_line(e)
    assert str(path) in msg and expect in msg, msg
    assert path.read_text() == text  # never overwritten


def test_missing_and_unreadable_state_are_one_line(tmp_path):
    with pytest.raises(PipelineError) as e:
        load_state(tmp_path / "pipeline.yaml")
    assert "research run" in _one_line(e)
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(PipelineError) as e:
        load_state(tmp_path / "bin.yaml")
    assert "cannot read" in _one_line(e)


def test_save_is_atomic_a_crash_leaves_the_old_state(tmp_path, monkeypatch):
    path = tmp_path / "pipeline.yaml"
    old = _full()
    save_state(path, old)
    before = path.read_bytes()
    new = _full()
    new.stage = "training"

    def crash(*a, **k):
        raise KeyboardInterrupt  # a kill between the temp write and the rename

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        save_state(path, new)
    monkeypatch.undo()
    assert path.read_bytes() == before and load_state(path).stage == "implementation"
    assert load_state(path) == old


def test_saved_file_is_plain_readable_yaml(tmp_path):
    path = save_state(tmp_path / "pipeline.yaml", _full())
    data = yaml.safe_load(path.read_text())
    assert data["stage"] == "implementation" and data["versions"][0]["branch"] == "idea/attn-temp/v1"
    assert data["gates"][0]["decision"] == "revise" and data["budget_used"]["trials"] == 4

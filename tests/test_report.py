"""Report and idea log of a study, rendered from a hand-built state (no trials run): Markdown + one self-contained
HTML file with inline PNGs, verdict table, plots, environment and budget; idea-log statuses."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
import yaml

from autoresearch.harness.atomic import append_jsonl
from autoresearch.research.idea_log import write_idea_log
from autoresearch.research.ledger import Ledger
from autoresearch.research.report import timing, write_report
from autoresearch.research.state import BaselineState, RunSession, StageStatus, StudyState, TrialRecord
from autoresearch.research.study import load_study, resolve_study
from autoresearch.research.verdicts import DecisionRule, decide

FAKE = f"{Path(__file__).resolve().parent / 'fake_testbed.py'}:FakeTestbed"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    spec = {"name": "rep", "description": "Does <b>boost</b> help?", "testbed": FAKE, "preset": "tiny",
            "budget": {"tokens": 10_000}, "seeds": {"initial": 3, "max": 3}, "control": {},
            "baseline": {"value": 3.0, "source": "fake run"},
            "ideas": [{"name": "good", "description": "boost <script>alert(1)</script>",
                       "overrides": {"model.boost": 0.1}},
                      {"name": "bad", "overrides": {"model.hurt": 0.1}},
                      {"name": "crashy", "overrides": {"model.crash": True}}]}
    path = tmp / "rep.yaml"
    path.write_text(yaml.safe_dump(spec))
    resolved = resolve_study(load_study(path))
    sdir = tmp / "studies" / "rep"
    sdir.mkdir(parents=True)
    state = StudyState.create(sdir / "state.json", "rep", resolved.definition_hash)
    ledger = Ledger(sdir, "val_loss")
    effect = {"baseline": 0.0, "good": -0.1, "bad": 0.1, "aa_control": 0.0}
    noise = [0.01, -0.02, 0.015]
    values: dict[str, list[float]] = {}
    for arm, eff in effect.items():
        for i in range(3):
            exp = tmp / "experiments" / f"{arm}-{i}"
            exp.mkdir(parents=True)
            final = 3.0 + eff + noise[i] * (2 if arm == "aa_control" else 1) + (0.003 * i if arm != "baseline" else 0)
            for step in range(1, 11):
                append_jsonl(exp / "log.jsonl", {"step": step, "tokens": step * 1000, "loss": final + 2 / step})
            seed = resolved.seed(arm, i)
            rec = {"trial": f"{arm}-s{seed}", "arm": arm, "seed": seed, "index": i, "status": "ok", "metric": final,
                   "metrics": {"val_loss": final}, "exp": str(exp), "error": "", "attempts": 1, "attempt": 1,
                   "train_wall_s": 2.0, "wall_s": 3.0, "memory_gb": 0.1, "finished_at": "2026-01-02T03:04:05"}
            state.trials[rec["trial"]] = TrialRecord(**rec)
            ledger.append({"key": f"trial:{rec['trial']}", "kind": "trial", **rec})
            values.setdefault(arm, []).append(final)
    state.trials["crashy-s0"] = TrialRecord(trial="crashy-s0", arm="crashy", seed=0, index=0, status="crashed",
                                            metric=None, error="RuntimeError: boom",
                                            finished_at="2026-01-02T03:04:06", train_wall_s=0.1, wall_s=1.0)
    rule = DecisionRule(alpha=0.05, min_effect=0.01)
    verdicts = {a: decide(a, values[a], values["baseline"], direction="lower", rule=rule, max_seeds=3)
                for a in ("good", "bad", "aa_control")}
    verdicts["crashy"] = decide("crashy", [], [], direction="lower", rule=rule, max_seeds=3,
                                error="crashy-s0 crashed: RuntimeError: boom")
    state.verdicts = dict(verdicts)
    state.baseline = BaselineState(measured=sum(values["baseline"]) / 3, values=values["baseline"], recorded=3.0)
    state.stages["regression"] = StageStatus("done", result="reproduced", steps=8, store="/x/t.json")
    state.environment = {"python": "3.11", "torch": "2.13", "cpu": "test cpu", "workers": 2}
    state.runs = [RunSession(pid=1, started=100.0, ended=130.0, workers=2)]
    state.save()
    state = StudyState.load(state.path)  # rendered from what was written, as `study report` does
    md, html = write_report(sdir, resolved, state, ledger)
    log = write_idea_log(sdir, resolved, state)
    return {"dir": sdir, "md": md, "html": html, "log": log, "verdicts": verdicts, "state": state}


def test_verdicts_cover_every_outcome(study):
    v = study["verdicts"]
    assert (v["good"].verdict, v["bad"].verdict, v["crashy"].verdict) == ("KEEP", "DISCARD", "CRASH")
    assert v["aa_control"].verdict != "KEEP"


def test_html_is_one_self_contained_file(study):
    page = study["html"].read_text()
    imgs = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(imgs) == 3
    for data in imgs:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r"(src|href)=['\"]?(https?:|//|file:)", page)  # opens offline
    assert "<script" not in page and "&lt;script&gt;" in page  # user text is escaped
    for word in ("good", "bad", "crashy", "aa_control", "KEEP", "DISCARD", "CRASH", "RuntimeError: boom",
                 "Decision rule", "Baseline reproduction", "Budget and timing", "Environment", "test cpu",
                 "reproduced"):
        assert word in page, word


def test_markdown_report_and_plot_files(study):
    md = study["md"].read_text()
    assert "| idea | verdict | Δ (>0 better) |" in md
    for name in ("loss_curves", "forest", "running_best"):
        assert f"](plots/{name}.png)" in md
        assert (study["dir"] / "plots" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    good = next(ln for ln in md.splitlines() if ln.startswith("| good |"))
    v = study["verdicts"]["good"]
    assert f"{v.mean:+.4f}" in good and f"{v.lo:+.4f}" in good and "| 3 |" in good
    assert "study wall time | 30.0 s" in md


def test_idea_log_groups_by_status_with_numbers_and_date(study):
    text = study["log"].read_text()
    sections = {m.group(1): m.start() for m in re.finditer(r"^## (\w+) \(\d+\)", text, flags=re.M)}
    assert list(sections) == ["Validated", "Rejected", "Inconclusive", "Crashed"]

    def section_of(idea: str) -> str:
        pos = text.index(f"**{idea}**")
        return max((s for s, p in sections.items() if p < pos), key=lambda s: sections[s])

    assert section_of("good") == "Validated" and section_of("bad") == "Rejected"
    assert section_of("crashy") == "Crashed" and section_of("aa_control") in ("Rejected", "Inconclusive")
    good = next(ln for ln in text.splitlines() if "**good**" in ln)
    assert "2026-01-02" in good and "p = " in good and "n = 3" in good and "Δ = +0.09" in good


def test_timing_figures(study):
    t = timing(study["state"])
    assert t["wall_s"] == pytest.approx(30.0)
    assert t["train_s"] == pytest.approx(12 * 2.0 + 0.1)
    assert t["utilisation"] == pytest.approx(24.1 / 60.0)

"""The LLM roles (planner, judge, analyzer, reviser) on scripted answers: happy paths, every re-ask path, the judge's
majority and isolation, prompt templates and their per-workspace overrides, the study's loss curves."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import pytest

from autoresearch.agents.analyzer_rules import RulesAnalyzer
from autoresearch.agents.llm.backend import LLMRequest
from autoresearch.agents.llm.scripted import ScriptedBackend
from autoresearch.agents.llm.session import AgentEnv, LLMSession
from autoresearch.agents.llm.templates import (
    PACKAGED_DIR,
    Template,
    load_template,
    prompt_messages,
    render,
    template_fields,
    to_messages,
)
from autoresearch.agents.llm_analyzer import LLMAnalyzer
from autoresearch.agents.llm_judge import LLMJudge
from autoresearch.agents.llm_planner import LLMPlanner
from autoresearch.agents.llm_reviser import LLMReviser
from autoresearch.agents.roles import Analysis, Evidence, Flag, PlanContext, StudySummary, TaskSpec
from autoresearch.errors import ConfigError, StructuredOutputError
from autoresearch.testbeds.flags import config_flags

# --- a small config and its flag space ------------------------------------------------------------------------------


@dataclass
class _Model:
    qk_norm: bool = False
    norm: Literal["rms", "layer"] = "rms"
    lr_scale: float = 1.0
    n_heads: int = 4


@dataclass
class _Train:
    steps: int = 100


@dataclass
class _Cfg:
    model: _Model = field(default_factory=_Model)
    train: _Train = field(default_factory=_Train)


CODER_SECRET = "CODER-CONVERSATION-MARKER-7731"


def _ctx(idea: str = "normalise queries and keys", *, tried: list[TaskSpec] | None = None,
         coder_edits: bool = False, user_flags: dict[str, str] | None = None) -> PlanContext:
    cfg = _Cfg()
    space = config_flags(cfg, ["model"], {"model.lr_scale": (0.1, 10.0, "log")})
    testbed = SimpleNamespace(spec="fake", name="fake", metrics={"val_loss": "lower"})
    return PlanContext(idea=idea, testbed=testbed, base_config=cfg, flag_space=space, tried=tried or [],
                       metric="val_loss", coder_edits=coder_edits, user_flags=user_flags or {})


def _flag(key: str, type_: str, off: Any, on: Any) -> dict[str, Any]:
    return {"key": key, "type": type_, "off": off, "on": on}


def _task_out(name: str, flags: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {"name": name, "description": f"{name} in words", "flags": flags, "files": kw.pop("files", []),
            "expected_effect": "lower val_loss", "effect_size": 0.01, "needs_code": kw.pop("needs_code", False), **kw}


def _plan(*tasks: dict[str, Any]) -> dict[str, Any]:
    return {"json": {"plan_md": "# Hypothesis\n\nNormalised q/k keep attention logits bounded.", "tasks": list(tasks),
                     "metrics": {"primary": "val_loss", "direction": "lower"}}}


def _env(tmp_path: Path, **kw: Any) -> AgentEnv:
    return AgentEnv.standalone(root=kw.pop("root", None), editable=kw.pop("editable", ["surface/**"]), **kw)


def _text(request: LLMRequest) -> str:
    return "\n".join(m["content"] for m in request.messages)


def _last_user(request: LLMRequest) -> str:
    return [m for m in request.messages if m["role"] == "user"][-1]["content"]


# --- templates ------------------------------------------------------------------------------------------------------


def test_render_fills_placeholders_once_and_drops_only_the_templates_comments() -> None:
    out = render("<!-- {{note}} for editors -->\nIdea: {{ idea }}, diff {{diff}}", idea="x",
                 diff="a {{idea}} b <!-- kept -->")
    assert out == "Idea: x, diff a {{idea}} b <!-- kept -->"  # a value is never scanned again, nor cut


def test_a_value_holding_the_user_marker_does_not_move_the_split() -> None:
    msgs = to_messages(render("Sys {{a}}\n<!-- user -->\nUser {{b}}", a="1", b="x\n<!-- user -->\ny"))
    assert msgs == [{"role": "system", "content": "Sys 1"}, {"role": "user", "content": "User x\n<!-- user -->\ny"}]


def test_render_missing_field_names_template_and_field() -> None:
    with pytest.raises(ConfigError, match=r"packaged judge.md.*'diff'"):
        render(Template("Diff: {{diff}}", "packaged judge.md"), task="t")


def test_user_override_with_unknown_placeholder_is_one_line(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "judge.md").write_text("Review {{task}} and {{colour}}\n")
    env = _env(tmp_path, templates_dir=prompts)
    with pytest.raises(ConfigError) as e:
        prompt_messages("judge", env, task="t", diff="d", evidence="e")
    msg = str(e.value)
    assert "\n" not in msg and "{{colour}}" in msg and str(prompts / "judge.md") in msg and "{{diff}}" in msg


def test_empty_override_is_refused(tmp_path: Path) -> None:
    (tmp_path / "planner.md").write_text("  \n")
    with pytest.raises(ConfigError, match="empty"):
        load_template("planner", _env(tmp_path, templates_dir=tmp_path))


def test_to_messages_splits_system_and_user_and_drops_comments() -> None:
    msgs = to_messages(render("<!-- a note\nfor editors -->\nYou are X.\n<!-- user -->\n# Input\n\nhello\n"))
    assert msgs == [{"role": "system", "content": "You are X."}, {"role": "user", "content": "# Input\n\nhello"}]
    assert to_messages("just one message") == [{"role": "user", "content": "just one message"}]


@pytest.mark.parametrize("role", ["planner", "judge", "analyzer", "reviser"])
def test_packaged_templates_are_split_and_documented(role: str) -> None:
    text = load_template(role)
    assert text.source == f"packaged {role}.md" and not text.user
    fields = template_fields(text)
    assert fields, role
    for name in fields:  # the header comment names every placeholder the template uses
        assert "{{" + name + "}}" in text.split("-->", 1)[0], (role, name)
    msgs = to_messages(render(text, **{k: f"<{k}>" for k in fields}))
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert "never" in msgs[0]["content"].lower() and "JSON" in msgs[0]["content"]
    assert "<!--" not in msgs[0]["content"] + msgs[1]["content"]
    assert (PACKAGED_DIR / f"{role}.md").is_file()


# --- planner --------------------------------------------------------------------------------------------------------


def test_planner_happy_path_sends_the_context_and_returns_tasks(tmp_path: Path) -> None:
    surface = tmp_path / "surface"
    surface.mkdir()
    (surface / "config.py").write_text("QK_NORM_DEFAULT = False  # config file\n")
    (surface / "attention.py").write_text("def attend(q, k): ...  # attention file\n")
    (tmp_path / "outside.py").write_text("SECRET_OUTSIDE = 1\n")
    backend = ScriptedBackend([_plan(_task_out("qk-norm", [_flag("model.qk_norm", "bool", False, True)]))])
    env = _env(tmp_path, root=tmp_path, idea_log=lambda: "v1 of old-idea: rejected (theory)")
    tried = [TaskSpec("old", "old-idea", "d", flags=[Flag("model.norm", "choice", "rms", "layer", ["rms", "layer"])])]
    planner = LLMPlanner("scripted:x", env=env, backend=backend)
    tasks = planner.propose(_ctx("normalise queries and keys in attention", tried=tried))
    assert len(tasks) == 1 and len(backend.requests) == 1
    t = tasks[0]
    assert t.name == "qk-norm" and t.idea == "normalise queries and keys in attention" and t.metric == "val_loss"
    assert t.flags == [Flag("model.qk_norm", "bool", False, True)] and not t.needs_code
    sent = _text(backend.requests[0])
    for needle in ("normalise queries and keys in attention", "`model.qk_norm` (bool): default false",
                   "`model.lr_scale` (float): default 1.0; sensible range 0.1..10 (log scale)",
                   "QK_NORM_DEFAULT", "attention file", "- old-idea: model.norm='layer'", "v1 of old-idea: rejected",
                   "val_loss` (lower is better)", "use ONLY keys from the flag space"):
        assert needle in sent, needle
    assert "SECRET_OUTSIDE" not in sent  # not an editable file
    assert backend.requests[0].role == "planner"
    design = planner.design(_ctx(), tasks)
    assert design.plan_md.startswith("# Hypothesis") and "`model.qk_norm` (bool): off `False` -> on `True`" in \
        design.plan_md
    assert design.metrics["primary"] == "val_loss" and design.tasks == tasks


def test_planner_files_are_cut_to_the_token_budget(tmp_path: Path) -> None:
    surface = tmp_path / "surface"
    surface.mkdir()
    (surface / "config.py").write_text("# config\n" + "x = 1\n" * 10)
    (surface / "big.py").write_text("BIG_FILE = 1\n" + "y = 2\n" * 2000)
    backend = ScriptedBackend([_plan(_task_out("qk", [_flag("model.qk_norm", "bool", False, True)]))])
    LLMPlanner("s", env=_env(tmp_path, root=tmp_path, context_tokens=200), backend=backend).propose(_ctx())
    sent = _text(backend.requests[0])
    assert "x = 1" in sent and "BIG_FILE" not in sent and "surface/big.py" in sent and "(not shown)" in sent


@pytest.mark.parametrize(("bad", "expect"), [
    (_task_out("a", [_flag("model.qk_norm", "bool", True, False)]), "off must be the config default false"),
    (_task_out("a", [_flag("model.norm", "choice", "rms", "layer")]), "already tried as old"),
    (_task_out("a", [_flag("model.rope_scale", "float", 1.0, 2.0)]), "choose from the flag space"),
    (_task_out("a", [_flag("model.qk_norm", "bool", False, True)], files=["harness/eval.py"]),
     "outside the editable paths"),
    (_task_out("a", [_flag("train.steps", "int", 100, 200)]), "is infrastructure"),
    (_task_out("a", [_flag("model.n_heads", "int", 4, 4)]), "equals off"),
    (_task_out("a", [_flag("model.n_heads", "float", 4, 2.5)]), "on must be an int value"),
    (_task_out("a", []), "has no flags"),
])
def test_planner_reasks_with_the_problem(tmp_path: Path, bad: dict[str, Any], expect: str) -> None:
    good = _task_out("lr", [_flag("model.lr_scale", "float", 1.0, 2.0)])
    backend = ScriptedBackend([_plan(bad), _plan(good)])
    tried = [TaskSpec("old", "old", "d", flags=[Flag("model.norm", "choice", "rms", "layer", ["rms", "layer"])])]
    tasks = LLMPlanner("s", env=_env(tmp_path), backend=backend).propose(_ctx(tried=tried))
    assert [t.name for t in tasks] == ["lr"] and tasks[0].flags[0].on == 2.0
    assert len(backend.requests) == 2
    assert expect in _last_user(backend.requests[1])


def test_planner_new_key_needs_a_coder_that_edits(tmp_path: Path) -> None:
    answer = _plan(_task_out("rope", [_flag("model.rope_scale", "float", 1.0, 2.0)], files=["surface/model.py"]))
    backend = ScriptedBackend([answer])
    tasks = LLMPlanner("s", env=_env(tmp_path), backend=backend).propose(_ctx(coder_edits=True))
    assert tasks[0].needs_code and tasks[0].files == ["surface/model.py"]  # repaired: a new key needs code
    assert "you may add NEW config keys" in _text(backend.requests[0])


def test_planner_coerces_types_from_the_config(tmp_path: Path) -> None:
    backend = ScriptedBackend([_plan(_task_out("heads", [_flag("model.lr_scale", "int", 1, 3)]))])
    task = LLMPlanner("s", env=_env(tmp_path), backend=backend).propose(_ctx())[0]
    f = task.flags[0]
    assert (f.type, f.off, f.on, f.low, f.high, f.log) == ("float", 1.0, 3.0, 0.1, 10.0, True)
    assert isinstance(f.on, float)


def test_planner_user_flags_must_be_used(tmp_path: Path) -> None:
    backend = ScriptedBackend([_plan(_task_out("a", [_flag("model.qk_norm", "bool", False, True)])),
                               _plan(_task_out("b", [_flag("model.lr_scale", "float", 1.0, 0.5)]))])
    tasks = LLMPlanner("s", env=_env(tmp_path), backend=backend).propose(_ctx(user_flags={"model.lr_scale": "0.5"}))
    assert tasks[0].name == "b"
    assert "user fixed flag model.lr_scale=0.5" in _last_user(backend.requests[1])
    assert "`model.lr_scale` (float): off 1.0 (baseline) -> on 0.5" in _text(backend.requests[0])


def test_planner_three_invalid_answers_fail_with_the_raw_answers_saved(tmp_path: Path) -> None:
    bad = _plan(_task_out("a", [_flag("model.qk_norm", "bool", True, False)]))
    backend = ScriptedBackend([bad, bad, bad])
    env = _env(tmp_path, failed_dir=tmp_path / "failed")
    with pytest.raises(StructuredOutputError, match="planner"):
        LLMPlanner("s", env=env, backend=backend).propose(_ctx())
    assert len(backend.requests) == 3
    assert any((tmp_path / "failed").iterdir())


def test_planner_only_checks_the_tasks_it_was_asked_for(tmp_path: Path) -> None:
    backend = ScriptedBackend([_plan(_task_out("a", [_flag("model.qk_norm", "bool", False, True)]),
                                     _task_out("b", [_flag("model.qk_norm", "bool", True, False)]))])
    tasks = LLMPlanner("s", env=_env(tmp_path), backend=backend).propose(_ctx(), n=1)
    assert [t.name for t in tasks] == ["a"] and len(backend.requests) == 1


def test_planner_design_without_a_proposal_is_the_default(tmp_path: Path) -> None:
    planner = LLMPlanner("s", env=_env(tmp_path), backend=ScriptedBackend([]))
    task = TaskSpec("i", "qk", "d", flags=[Flag("model.qk_norm", "bool", False, True)])
    assert planner.design(_ctx(), [task]).plan_md.startswith("# Plan:")


# --- judge ----------------------------------------------------------------------------------------------------------

_TASK = TaskSpec("normalise q and k", "qk-norm", "RMS-normalise q and k before the dot product",
                 flags=[Flag("model.qk_norm", "bool", False, True)], files=["surface/model.py"], needs_code=True)
_DIFF = "--- a/surface/model.py\n+++ b/surface/model.py\n@@\n+        if self.cfg.qk_norm:\n+            q = norm(q)\n"


def _evidence(**kw: Any) -> Evidence:
    ok = {k: True for k in ("editable_ok", "compile_ok", "lint_ok", "checks_ok", "regression_ok")}
    return Evidence(**{"diff": _DIFF, "changed_paths": ["surface/model.py"], **ok, **kw})


def _verdict(decision: str, *issues: str) -> dict[str, Any]:
    return {"json": {"decision": decision, "blocking_issues": list(issues), "summary": f"{decision} it"}}


def test_judge_rules_failure_never_calls_the_model(tmp_path: Path) -> None:
    backend = ScriptedBackend([_verdict("approve")])
    v = LLMJudge("s", env=_env(tmp_path), backend=backend).review(_TASK, _evidence(regression_ok=False), samples=3)
    assert v.decision == "revise" and any("bit for bit" in r for r in v.reasons)
    assert backend.requests == []


def test_judge_empty_diff_is_approved_without_a_call(tmp_path: Path) -> None:
    """Coder none: the code is the base commit's own; a model has nothing to review (measured: SmolLM2 copied the
    template's example issue into an approve and failed three times on an empty diff)."""
    backend = ScriptedBackend([_verdict("revise", "nothing was changed")])
    v = LLMJudge("s", env=_env(tmp_path), backend=backend).review(_TASK, _evidence(diff="  \n"), samples=3)
    assert v.decision == "approve" and backend.requests == []


@pytest.mark.parametrize(("answers", "decision", "reasons"), [
    ([_verdict("approve"), _verdict("revise", "q is normalised twice"), _verdict("approve")], "approve", []),
    ([_verdict("revise", "k is not normalised"), _verdict("approve"), _verdict("revise", "k is not normalised",
                                                                               "dead code")],
     "revise", ["k is not normalised", "dead code"]),
    ([_verdict("reject", "changes the evaluation"), _verdict("reject", "edits evaluate()"), _verdict("approve")],
     "reject", ["changes the evaluation", "edits evaluate()"]),
    ([_verdict("approve"), _verdict("revise", "x"), _verdict("reject", "y")], "revise",
     ["the reviews split (approve 1, reject 1, revise 1): revise", "x", "y"]),
])
def test_judge_majority(tmp_path: Path, answers: list[dict[str, Any]], decision: str, reasons: list[str]) -> None:
    backend = ScriptedBackend(answers)
    v = LLMJudge("s", env=_env(tmp_path), backend=backend).review(_TASK, _evidence(), samples=3)
    assert (v.decision, v.reasons) == (decision, reasons)
    assert len(backend.requests) == 3
    assert all(r.temperature > 0 for r in backend.requests)  # identical greedy samples would make the vote moot


def test_judge_one_sample_is_greedy(tmp_path: Path) -> None:
    backend = ScriptedBackend([_verdict("approve")])
    assert LLMJudge("s", env=_env(tmp_path), backend=backend).review(_TASK, _evidence()).decision == "approve"
    assert len(backend.requests) == 1 and backend.requests[0].temperature == 0.0


def test_judge_sees_no_coder_text_and_fresh_conversations(tmp_path: Path) -> None:
    backend = ScriptedBackend({"coder": ["ok"], "judge": [_verdict("approve")] * 3})
    env = _env(tmp_path)
    coder = LLMSession(env, "coder", backend)  # a coder conversation on the same backend and env, before the judge
    coder.ask(LLMRequest([{"role": "user", "content": f"implement it {CODER_SECRET}"}]))
    judge = LLMJudge("s", env=env, backend=backend)
    judge.review(_TASK, _evidence(), samples=3)
    judge_requests = [r for r in backend.requests if r.role == "judge"]
    assert len(judge_requests) == 3
    for r in judge_requests:
        text = _text(r)
        assert CODER_SECRET not in text and "implement it" not in text
        assert [m["role"] for m in r.messages] == ["system", "user"]  # built from scratch each time
        assert _DIFF.strip() in text and "RMS-normalise q and k" in text and "regression" in text
    assert judge_requests[0].messages == judge_requests[2].messages


def test_judge_diff_is_capped(tmp_path: Path) -> None:
    backend = ScriptedBackend([_verdict("approve")])
    big = "+" + "x" * 50_000
    LLMJudge("s", env=_env(tmp_path), backend=backend).review(_TASK, _evidence(diff=big))
    text = _text(backend.requests[0])
    assert len(text) < 20_000 and "characters left out" in text


@pytest.mark.parametrize(("bad", "expect"), [
    (_verdict("revise"), "must list at least one blocking issue"),
    (_verdict("approve", "a problem"), "must have no blocking issues"),
])
def test_judge_reasks_an_inconsistent_verdict(tmp_path: Path, bad: dict[str, Any], expect: str) -> None:
    backend = ScriptedBackend([bad, _verdict("revise", "fix it")])
    v = LLMJudge("s", env=_env(tmp_path), backend=backend).review(_TASK, _evidence())
    assert (v.decision, v.reasons) == ("revise", ["fix it"])
    assert expect in _last_user(backend.requests[1])


# --- analyzer -------------------------------------------------------------------------------------------------------


def _study(verdict: str = "DISCARD", **kw: Any) -> StudySummary:
    base = dict(verdict=verdict, metric="val_loss", direction="lower", baseline_mean=3.2, idea_mean=3.21,
                delta=-0.01, ci_low=-0.03, ci_high=0.01, p_value=0.31, n_seeds=3, baseline_tokens_per_s=1000.0,
                idea_tokens_per_s=990.0, baseline_memory=500.0, idea_memory=505.0,
                statuses={"baseline": ["ok"] * 3, "idea": ["ok"] * 3},
                curves={"baseline": [[0.0, 10.5], [50.0, 4.25], [100.0, 3.5]],
                        "idea": [[0.0, 10.5], [50.0, 4.5], [100.0, 3.75]]})
    return StudySummary(**{**base, **kw})


def _analysis_out(kind: str, summary: str = "noise: CI -0.03..0.01 straddles 0") -> dict[str, Any]:
    return {"json": {"kind": kind, "summary": summary, "reasoning_md": "## Why\n\nThe CI straddles 0.",
                     "evidence_cited": ["Δ -0.01, CI -0.03..0.01"]}}


def test_analyzer_happy_path(tmp_path: Path) -> None:
    backend = ScriptedBackend([_analysis_out("noise")])
    a = LLMAnalyzer("s", env=_env(tmp_path), backend=backend).analyze(_TASK, _study())
    assert a.kind == "noise" and a.summary == "noise: CI -0.03..0.01 straddles 0"
    assert a.text == "## Why\n\nThe CI straddles 0."
    assert a.evidence["cited"] == ["Δ -0.01, CI -0.03..0.01"] and a.evidence["delta"] == -0.01
    assert a.evidence["rules"]["kind"] == "noise"
    assert Analysis(**a.to_dict()).text == a.text  # the orchestrator stores and rebuilds it
    sent = _text(backend.requests[0])
    for needle in ("Δ (positive = better): -0.01, CI -0.03..0.01, p = 0.31, n = 3", "| step | baseline | idea |",
                   "| 50 | 4.25 | 4.5 | 0.25 |", "tokens/s: baseline 1000, idea 990", "Rule-based reading",
                   "noise: the CI straddles 0", "RMS-normalise q and k"):
        assert needle in sent, needle


@pytest.mark.parametrize(("study", "first", "expect"), [
    (_study("KEEP", delta=0.05, ci_low=0.02, ci_high=0.08, p_value=0.01), "noise", "must be win"),
    (_study("DISCARD"), "win", "kind win needs the verdict KEEP"),
    (_study("CRASH", statuses={"baseline": ["ok"], "idea": ["crashed"]}, error="boom"), "theory", "must be bug"),
])
def test_analyzer_reasks_when_the_kind_contradicts_the_verdict(tmp_path: Path, study: StudySummary, first: str,
                                                                expect: str) -> None:
    right = {"KEEP": "win", "DISCARD": "noise", "CRASH": "bug"}[study.verdict]
    backend = ScriptedBackend([_analysis_out(first), _analysis_out(right)])
    a = LLMAnalyzer("s", env=_env(tmp_path), backend=backend).analyze(_TASK, study)
    assert a.kind == right and len(backend.requests) == 2
    assert expect in _last_user(backend.requests[1])


def test_analyzer_model_that_never_validates_leaves_the_rules_reading(tmp_path: Path) -> None:
    """The verdict is the study's; a model that cannot explain it must not throw a KEEP away (measured: SmolLM2
    copied the template's example summary three times)."""
    study = _study("KEEP", delta=0.05, ci_low=0.02, ci_high=0.08, p_value=0.01)
    backend = ScriptedBackend([_analysis_out("noise")] * 3)
    a = LLMAnalyzer("s", env=_env(tmp_path), backend=backend).analyze(_TASK, study)
    rules = RulesAnalyzer().analyze(_TASK, study)
    assert (a.kind, a.summary) == (rules.kind, rules.summary) == ("win", rules.summary)
    assert "no valid AnalysisOut after 3 tries" in a.evidence["llm_error"] and "rule-based" in a.text
    assert len(backend.requests) == 3


def test_analyzer_summary_is_one_short_line(tmp_path: Path) -> None:
    backend = ScriptedBackend([_analysis_out("noise", "noise\n" + "word " * 200)])
    a = LLMAnalyzer("s", env=_env(tmp_path), backend=backend).analyze(_TASK, _study())
    assert "\n" not in a.summary and len(a.summary) <= 300


# --- reviser --------------------------------------------------------------------------------------------------------

_LR = TaskSpec("scale the learning rate", "lr", "lr x2", flags=[Flag("model.lr_scale", "float", 1.0, 2.0, low=0.1,
                                                                      high=10.0, log=True)], metric="val_loss")
_NOISE = Analysis("noise", "noise: CI straddles 0", {"delta": 0.001, "ci_low": -0.01, "ci_high": 0.012},
                  text="The effect is below the noise; a stronger scale may show it.")


def _revision(stop: bool, flags: list[dict[str, Any]] | None = None, **kw: Any) -> dict[str, Any]:
    task = None if flags is None else _task_out("lr-4", flags, **kw)
    return {"json": {"stop": stop, "reason": "try a stronger scale" if not stop else "exhausted", "task": task}}


def test_reviser_happy_path_keeps_the_idea(tmp_path: Path) -> None:
    backend = ScriptedBackend([_revision(False, [_flag("model.lr_scale", "float", 1.0, 4.0)])])
    env = _env(tmp_path, idea_log=lambda: "lr v1: inconclusive", tried=lambda: [_LR])
    reviser = LLMReviser("s", env=env, backend=backend)
    new = reviser.revise(_LR, _NOISE, [])
    assert new is not None and new.name == "lr" and new.idea == _LR.idea and new.metric == "val_loss"
    f = new.flags[0]
    assert (f.key, f.off, f.on, f.low, f.high, f.log) == ("model.lr_scale", 1.0, 4.0, 0.1, 10.0, True)
    assert reviser.last_reason == "try a stronger scale"
    sent = _text(backend.requests[0])
    for needle in ("lr v1: inconclusive", "a stronger scale may show it", "Kind: noise", "- lr: model.lr_scale=2.0"):
        assert needle in sent, needle


def test_reviser_model_that_never_validates_leaves_the_decision_to_the_rules(tmp_path: Path) -> None:
    from autoresearch.agents.reviser_none import NoneReviser

    backend = ScriptedBackend(["no json here"] * 3)
    r = LLMReviser("s", env=_env(tmp_path), backend=backend)
    analysis = Analysis("theory", "worse", {"delta": -0.01})
    got = r.revise(_LR, analysis, [])
    want = NoneReviser().revise(_LR, analysis, [])
    assert (got.to_dict() if got else None) == (want.to_dict() if want else None)
    assert "rule-based reviser decided" in r.last_reason and len(backend.requests) == 3


def test_reviser_stop_is_none(tmp_path: Path) -> None:
    backend = ScriptedBackend([_revision(True)])
    assert LLMReviser("s", env=_env(tmp_path), backend=backend).revise(_LR, _NOISE, []) is None
    assert len(backend.requests) == 1


def test_reviser_never_revises_a_win(tmp_path: Path) -> None:
    backend = ScriptedBackend([])
    assert LLMReviser("s", env=_env(tmp_path), backend=backend).revise(_LR, Analysis("win", "win"), []) is None
    assert backend.requests == []


@pytest.mark.parametrize(("bad", "expect"), [
    ([_flag("model.lr_scale", "float", 1.0, 2.0)], "already tried as lr"),
    ([_flag("model.lr_scale", "float", 0.5, 4.0)], "off must be its off value in the earlier version 1.0"),
])
def test_reviser_reasks(tmp_path: Path, bad: list[dict[str, Any]], expect: str) -> None:
    backend = ScriptedBackend([_revision(False, bad), _revision(False, [_flag("model.lr_scale", "float", 1.0, 3.0)])])
    new = LLMReviser("s", env=_env(tmp_path), backend=backend).revise(_LR, _NOISE, [])
    assert new is not None and new.flags[0].on == 3.0
    assert expect in _last_user(backend.requests[1])


def test_reviser_sees_history_and_inherits_code(tmp_path: Path) -> None:
    coded = TaskSpec("gate", "gate", "d", flags=[Flag("model.gate", "bool", False, True)], files=["surface/m.py"],
                     needs_code=True)
    v1 = TaskSpec("gate", "gate", "d", flags=[Flag("model.gate_init", "float", 0.0, 1.0)], needs_code=True)
    backend = ScriptedBackend([_revision(False, [_flag("model.gate", "bool", False, True),
                                                 _flag("model.gate_init", "float", 0.0, 0.5)])])
    new = LLMReviser("s", env=_env(tmp_path), backend=backend).revise(
        coded, Analysis("theory", "theory: worse"), [(v1, Analysis("bug", "bug: crashed"))])
    assert new is not None and new.needs_code and new.files == ["surface/m.py"]
    assert "## v1" in _text(backend.requests[0]) and "bug: crashed" in _text(backend.requests[0])


# --- template override ----------------------------------------------------------------------------------------------


def test_template_override_from_the_workspace(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "judge.md").write_text("MY HOUSE RULES: be strict.\n<!-- user -->\nTask:\n{{task}}\n\nDiff:\n{{diff}}\n")
    backend = ScriptedBackend([_verdict("approve")])
    LLMJudge("s", env=_env(tmp_path, templates_dir=prompts), backend=backend).review(_TASK, _evidence())
    msgs = backend.requests[0].messages
    assert msgs[0] == {"role": "system", "content": "MY HOUSE RULES: be strict."}
    assert msgs[1]["content"].startswith("Task:\nName: qk-norm") and "You are the Judge" not in _text(
        backend.requests[0])


# --- the study's loss curves ----------------------------------------------------------------------------------------


def _log(exp: Path, losses: dict[int, float]) -> str:
    exp.mkdir(parents=True)
    lines = [json.dumps({"step": s, "tokens": s * 10, "loss": v}) for s, v in losses.items()]
    lines.insert(1, json.dumps({"step": 1, "val_loss": 9.0}))  # an evaluation line: not a training loss
    (exp / "log.jsonl").write_text("\n".join(lines) + "\n")
    return str(exp)


def test_loss_curves_mean_over_seeds_and_thinned(tmp_path: Path) -> None:
    from autoresearch.pipeline.version_study import loss_curves

    a = _log(tmp_path / "a", {s: 10.0 - s / 100 for s in range(0, 100)})
    b = _log(tmp_path / "b", {s: 12.0 - s / 100 for s in range(0, 100)})
    pts = loss_curves([a, b])
    assert len(pts) == 20 and pts[0] == [0.0, 11.0] and pts[-1][0] == 99.0
    assert math.isclose(pts[-1][1], 11.0 - 0.99)
    assert [p[0] for p in pts] == sorted(p[0] for p in pts)
    assert loss_curves([str(tmp_path / "missing")]) == []
    short = loss_curves([_log(tmp_path / "c", {0: 5.0, 10: 4.0})])
    assert short == [[0.0, 5.0], [10.0, 4.0]]


def test_study_summary_curves_round_trip() -> None:
    s = _study()
    assert StudySummary.from_dict(s.to_dict()).curves == s.curves
    assert StudySummary("KEEP", "val_loss", "lower").curves == {}


def test_summarize_fills_the_curves_of_ok_trials(tmp_path: Path) -> None:
    from autoresearch.pipeline.version_study import summarize
    from autoresearch.research.state import StudyState, TrialRecord

    study = tmp_path / "study"
    study.mkdir()
    state = StudyState.create(study / "state.json", "s", "h", {"metric": {"name": "val_loss"}})
    for arm, i, loss, status in (("baseline", 0, 4.0, "ok"), ("baseline", 1, 6.0, "ok"), ("idea", 0, 3.0, "ok"),
                                 ("idea", 1, 99.0, "crashed")):
        exp = _log(tmp_path / f"{arm}{i}", {0: 10.0, 10: loss})
        state.record_trial(TrialRecord(f"{arm}-s{i}", arm, status, seed=i, index=i, exp=exp,
                                       metrics={"val_loss": loss}))
    s = summarize(study)
    assert s.curves == {"baseline": [[0.0, 10.0], [10.0, 5.0]], "idea": [[0.0, 10.0], [10.0, 3.0]]}


def test_reviser_may_add_a_key_the_idea_never_used(tmp_path: Path) -> None:
    backend = ScriptedBackend([_revision(False, [_flag("model.lr_scale", "float", 1.0, 2.0),
                                                 _flag("model.warm", "bool", False, True)], needs_code=True,
                                         files=["surface/optim.py"])])
    new = LLMReviser("s", env=_env(tmp_path), backend=backend).revise(_LR, _NOISE, [])
    assert new is not None and [f.key for f in new.flags] == ["model.lr_scale", "model.warm"]
    assert new.needs_code and new.files == ["surface/optim.py"]


def test_roles_work_in_prompted_json_mode_with_a_chatty_answer(tmp_path: Path) -> None:
    chatty = ("Sure! Here is my analysis.\n\n```json\n" + json.dumps(_analysis_out("noise")["json"], indent=2)
              + "\n```\n\nLet me know if you need more.")
    backend = ScriptedBackend([chatty], supports_schema=False, supports_tools=False)
    a = LLMAnalyzer("s", env=_env(tmp_path), backend=backend).analyze(_TASK, _study())
    assert a.kind == "noise" and len(backend.requests) == 1
    assert backend.requests[0].schema is None and "JSON schema" in _last_user(backend.requests[0])

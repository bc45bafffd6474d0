"""The research pipeline with language-model roles (issue 11): the wiring of role specs, `--agent`, workspace.yaml
`agents:`, budgets, LLM failures, transcripts and the report, and one idea end to end on scripted answers.

The end-to-end run is the real thing on the FAKE testbed (tests/fake_testbed.py used in place as a user's testbed, so
trials take milliseconds): `python -m autoresearch research run/resume/status` subprocesses, a git workspace,
worktrees, the baseline-path regression, studies in their own processes. Scripted answers
(tests/data/agents_pipeline/*.yaml) play every role: the planner proposes a new flag, the coder adds it with
SEARCH/REPLACE blocks, the judge approves (3 fresh samples at the auto-judge gate), the analyzer reads the study, the
reviser flips the flag's sign, and the second version is KEPT. No network anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autoresearch.errors import ConfigError
from autoresearch.pipeline.workspace import Workspace, init_workspace, load

REPO = Path(__file__).resolve().parents[1]
FAKE = REPO / "tests" / "fake_testbed.py"
DATA = REPO / "tests" / "data" / "agents_pipeline"
SECRET = "sk-test-H6-do-not-leak-0123456789abcdef"


def _env(**extra: str) -> dict[str, str]:
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def _cli(*args: str, cwd: Path, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autoresearch", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=_env(**env))


def _summary(out: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line and not line.startswith(" "))


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True)


def _fake_workspace(tmp_path: Path, agents: dict | None = None) -> Workspace:
    """A user's repository holding the fake testbed (bench/tb.py, editable in place), made a workspace with 2 seeds
    per arm; `agents` goes into workspace.yaml, committed."""
    root = tmp_path / "ws"
    (root / "bench").mkdir(parents=True)
    (root / "bench" / "tb.py").write_text(FAKE.read_text())
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "fake testbed")
    init_workspace(root, "bench/tb.py:FakeTestbed")
    data = yaml.safe_load((root / "workspace.yaml").read_text())
    data["study"]["seeds"] = {"initial": 2, "max": 2}
    data["study"]["workers"] = 2
    if agents:
        data["agents"] = {**data["agents"], **agents}
    (root / "workspace.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    _git(root, "commit", "-qam", "study settings")
    return load(root)


def _records(ws: Path) -> list[dict]:
    path = ws / ".autoresearch" / "transcripts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def _state(ws: Path) -> dict:
    return yaml.safe_load((ws / ".autoresearch" / "pipeline.yaml").read_text())


# --- fast: workspace.yaml `agents:`, role specs, gates, the transcript's Markdown ---------------------------------


def test_agents_section_is_typed_and_every_bad_value_is_one_line():
    from autoresearch.harness.config import from_dict
    from autoresearch.pipeline.workspace import WorkspaceFile

    def wf(agents: dict) -> WorkspaceFile:
        return from_dict(WorkspaceFile, {"testbed": "bench/tb.py:X", "agents": agents})

    a = wf({"budgets": {"run": {"dollars": 2.5, "calls": 40}, "idea": {"tokens": 50000},
                        "roles": {"judge": {"calls": 9}}},
            "prices": {"my-model": {"input": 0.15, "output": 0.6}}, "judge_samples": 5, "context_tokens": 3000,
            "settings": {"coder": {"whole_file": True}}}).agents
    assert (a.budgets.run.dollars, a.budgets.run.calls, a.budgets.run.tokens) == (2.5, 40, None)
    assert a.budgets.idea.tokens == 50000 and a.budgets.roles["judge"].calls == 9
    assert (a.prices["my-model"].input, a.prices["my-model"].output) == (0.15, 0.6)
    assert (a.judge_samples, a.context_tokens, a.settings) == (5, 3000, {"coder": {"whole_file": True}})
    default = wf({}).agents
    assert default.judge_samples == 3 and default.budgets.run.dollars is None and default.prices == {}
    bad = [
        ({"budgets": {"run": {"dollars": -1}}}, "agents.budgets.run.dollars"),
        ({"budgets": {"idea": {"tokenz": 5}}}, "agents.budgets.idea.tokenz"),
        ({"budgets": {"roles": {"judgee": {"calls": 1}}}}, "did you mean `judge`"),
        ({"budgets": {"roles": {"coder": {"calls": -3}}}}, "agents.budgets.roles.coder.calls"),
        ({"prices": {"m": {"input": "cheap"}}}, "agents.prices.m.input"),
        ({"prices": {"m": 3}}, "agents.prices.m"),
        ({"judge_samples": 2}, "must be odd"),
        ({"judge_samples": 11}, "agents.judge_samples"),
        ({"context_tokens": 10}, "agents.context_tokens"),
        ({"settings": {"writer": {}}}, "agents.settings.writer"),
        ({"budget": {}}, "did you mean `agents.budgets`"),
    ]
    for agents, word in bad:
        with pytest.raises(ConfigError) as e:
            wf(agents)
        assert word in str(e.value) and "\n" not in str(e.value), (agents, str(e.value))


def test_agent_fills_every_role_not_given_and_own_specs_win():
    from autoresearch.agents.role_specs import DEFAULT_SPECS, resolve_specs

    assert resolve_specs({}) == DEFAULT_SPECS
    specs = resolve_specs({"coder": "patch:x.diff", "judge": "anthropic:claude-x", "planner": ""},
                          "openai:m@http://127.0.0.1:8080/v1")
    assert specs == {"planner": "openai:m@http://127.0.0.1:8080/v1", "coder": "patch:x.diff",
                     "judge": "anthropic:claude-x", "analyzer": "openai:m@http://127.0.0.1:8080/v1",
                     "reviser": "openai:m@http://127.0.0.1:8080/v1"}
    with pytest.raises(ConfigError, match="not a language-model spec"):
        resolve_specs({}, "claude")


def test_llm_specs_are_registered_for_every_role_and_only_they_get_the_env(tmp_path):
    from autoresearch.agents.llm.session import AgentEnv
    from autoresearch.agents.role_specs import ROLES, make_role, role_forms

    for role in ROLES:
        forms = role_forms(role)
        for form in ("openai:MODEL[@URL]", "anthropic:MODEL", "litellm:MODEL", "replay:FILE", "scripted:FILE"):
            assert form in forms, (role, forms)
    answers = tmp_path / "a.yaml"
    answers.write_text("default: [hello]\n")
    env = AgentEnv.standalone(judge_samples=5)
    classes = {"planner": "LLMPlanner", "coder": "LLMCoder", "judge": "LLMJudge", "analyzer": "LLMAnalyzer",
               "reviser": "LLMReviser"}
    for role, cls in classes.items():
        obj = make_role(role, f"scripted:{answers}", env=env)
        assert type(obj).__name__ == cls and obj.env is env and obj.spec == f"scripted:{answers}"
    rules = make_role("judge", "rules", env=env)  # a rule-based role never sees the env (its factory takes none)
    assert type(rules).__name__ == "RulesJudge"
    with pytest.raises(ConfigError) as e:
        make_role("coder", "scripted:")
    assert "scripted:FILE" in str(e.value) and "\n" not in str(e.value)


def test_auto_judge_gate_samples_a_judge_that_takes_samples():
    from autoresearch.agents.roles import Evidence, Judge, TaskSpec, Verdict
    from autoresearch.pipeline import gates
    from autoresearch.pipeline.state import new_state

    class Sampled(Judge):
        def __init__(self) -> None:
            self.calls: list[int] = []

        def review(self, task, evidence, samples: int = 1):
            self.calls.append(samples)
            return Verdict("approve")

    class Plain(Judge):
        def __init__(self) -> None:
            self.calls = 0

        def review(self, task, evidence):
            self.calls += 1
            return Verdict("revise", ["no"])

    task, ev = TaskSpec(idea="x", name="x", description="x"), Evidence()
    sampled, plain = Sampled(), Plain()
    st = new_state("x")
    r = gates.pass_gate(st, "implementation", "x/v1", "auto-judge", judge=sampled, task=task, evidence=ev, samples=3)
    assert r.decision == "approve" and sampled.calls == [3]
    r = gates.pass_gate(st, "implementation", "x/v2", "auto-judge", judge=plain, task=task, evidence=ev, samples=3)
    assert (r.decision, r.note, plain.calls) == ("revise", "no", 1)


def test_transcript_markdown_shows_messages_answers_tool_calls_and_errors(tmp_path):
    from autoresearch.pipeline.transcript_md import render_transcript, spend_rows, write_transcripts

    base = {"at": "2026-01-01T00:00:00", "run": 1, "backend": "scripted:x", "model": "m", "retries": 0, "try": 1,
            "latency_s": 0.5}
    recs = [
        {**base, "role": "coder", "version": "a/v1", "cost_usd": 0.001, "usage": {"prompt": 10, "completion": 5},
         "request": {"messages": [{"role": "user", "content": "edit ```x``` please"}], "schema_name": ""},
         "response": {"text": "f.py\n```\n<<<<<<< SEARCH\n", "finish_reason": "stop", "tool_calls": []},
         "error": None},
        {**base, "role": "judge", "version": "a/v1", "cost_usd": None, "usage": None, "try": 2,
         "request": {"messages": [{"role": "system", "content": "judge"}], "schema_name": "VerdictOut"},
         "response": {"text": "", "finish_reason": "tool_calls",
                      "tool_calls": [{"name": "VerdictOut", "arguments": '{"decision": "approve"}', "id": "1"}]},
         "error": None},
        {**base, "role": "planner", "version": "", "cost_usd": None, "usage": None, "response": None,
         "request": {"messages": [{"role": "user", "content": "plan"}]}, "error": "LLMAuthError: 401 bad key"},
    ]
    md = render_transcript("a/v1", recs[:2])
    assert "# Transcript of a/v1" in md and "## 1. coder" in md and "## 2. judge" in md and "try 2" in md
    assert "````\nedit ```x``` please\n````" in md  # a fence longer than the backticks inside
    assert "Tool call `VerdictOut`" in md and '"decision": "approve"' in md and "schema `VerdictOut`" in md
    assert "some costs unknown" in md
    files = write_transcripts(tmp_path / "ideas", recs)
    assert files["a/v1"] == tmp_path / "ideas" / "a" / "v1.transcript.md"
    assert "401 bad key" in files[""].read_text() and files[""].name == "ideation.transcript.md"
    rows = spend_rows(recs)
    assert [r[0] for r in rows] == ["coder", "judge", "planner", "total"]
    assert rows[-1][1] == "3" and rows[0][4] == "$0.0010" and "unpriced" in rows[1][4]


# --- the orchestrator: LLM failures and budgets, in process (no training) -----------------------------------------


def _run(ws: Workspace, answers: Path, **options):
    from autoresearch.pipeline.orchestrator import RunOptions, run_pipeline

    events: list[tuple[str, dict]] = []
    spec = f"scripted:{answers}"
    opts = RunOptions(idea="shift the loss", agent=spec, **{r: spec for r in ("planner", "coder", "judge",
                                                                            "analyzer", "reviser")})
    for k, v in options.items():
        setattr(opts, k, v)
    st = run_pipeline(ws, opts, emit=lambda kind, data: events.append((kind, data)))
    return st, events


def test_planner_model_failure_escalates_the_run_in_one_line(tmp_path):
    ws = _fake_workspace(tmp_path)
    answers = tmp_path / "answers.yaml"
    answers.write_text("planner: [{error: 401, message: invalid api key}]\n")
    st, events = _run(ws, answers)
    assert st.status == "escalated" and st.versions == []
    last = st.history[-1]
    assert (last.stage, last.event) == ("ideation", "escalated") and "\n" not in last.detail
    assert "invalid api key" in last.detail and "resume" in last.detail
    recs = _records(ws.root)
    assert [r["role"] for r in recs] == ["planner"] and recs[0]["error"]  # the failed call is in the transcript
    assert any(k == "llm" for k, _ in events)  # a live spend line per call


def test_planner_answers_that_never_validate_save_the_raw_answers_and_escalate(tmp_path):
    ws = _fake_workspace(tmp_path)
    answers = tmp_path / "answers.yaml"
    answers.write_text("planner: ['no JSON here', '{\"plan_md\": \"x\"}', 'I cannot help with that.']\n")
    st, _ = _run(ws, answers)
    assert st.status == "escalated" and st.versions == []
    assert "no valid PlanOut after 3 tries" in st.history[-1].detail and "failed/planner-" in st.history[-1].detail
    assert len(_records(ws.root)) == 3  # every try is charged and recorded
    failed = list((ws.root / ".autoresearch" / "failed").iterdir())
    assert len(failed) == 1 and "I cannot help with that." in failed[0].read_text()


def test_coder_model_failure_escalates_the_version_and_logs_it(tmp_path):
    ws = _fake_workspace(tmp_path)
    plan = yaml.safe_load((DATA / "fake_shift.yaml").read_text())["planner"]
    answers = tmp_path / "answers.yaml"
    answers.write_text(yaml.safe_dump({"planner": plan, "coder": [{"error": "context", "message": "too long"}]}))
    st, _ = _run(ws, answers)
    assert st.status == "escalated"
    v = st.versions[0]
    assert v.status == "escalated" and "language model failed" in v.lesson and "too long" in v.lesson
    assert not (ws.root / ".autoresearch" / "worktrees" / "shift-v1").exists()
    log = (ws.root / "logs" / "errors.log").read_text()
    assert "kind llm" in log and "too long" in log and "transcripts.jsonl" in log
    assert [r["role"] for r in _records(ws.root)] == ["planner", "coder"]


def test_role_budget_stops_the_run_before_the_call_that_would_pass_it(tmp_path):
    # 100 tokens: less than the planner's first call could use (its prompt alone); 0 would mean no limit
    ws = _fake_workspace(tmp_path, {"budgets": {"roles": {"planner": {"tokens": 100}}}})
    answers = tmp_path / "answers.yaml"
    answers.write_text((DATA / "fake_shift.yaml").read_text())
    st, _ = _run(ws, answers)
    assert st.status == "stopped" and st.versions == []
    last = st.history[-1]
    assert last.event == "budget" and "role planner" in last.detail and "tokens" in last.detail
    assert _records(ws.root) == []  # the call was never made
    assert "stopped" in (ws.root / "report.md").read_text()


def test_dollar_budget_on_a_model_of_unknown_price_is_refused_at_start(tmp_path):
    ws = _fake_workspace(tmp_path)
    r = _cli("research", "run", "x", "--workspace", str(ws.root), "--agent",
             "openai:no-such-model-h6@https://llm.example.invalid/v1", "--budget-dollars", "1", cwd=tmp_path,
             OPENAI_API_KEY=SECRET)
    assert r.returncode == 2, (r.stdout, r.stderr)
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "price" in err and "agents.prices" in err and "--budget-tokens" in err
    assert SECRET not in r.stdout + r.stderr
    assert not (ws.root / ".autoresearch" / "pipeline.yaml").exists()  # nothing ran
    r = _cli("research", "run", "x", "--workspace", str(ws.root), "--budget-calls", "-1", cwd=tmp_path)
    assert r.returncode == 2 and "--budget-calls" in r.stderr


def test_run_help_lists_the_llm_forms_and_budgets():
    r = _cli("research", "run", "--help", cwd=REPO, COLUMNS="200")
    assert r.returncode == 0
    for word in ("--agent", "--budget-dollars", "--budget-tokens", "--budget-calls", "openai:MODEL@URL",
                 "anthropic:MODEL", "scripted:FILE"):
        assert word in r.stdout, word


# --- slow: one idea end to end --------------------------------------------------------------------------------


@pytest.mark.slow
def test_scripted_agents_take_one_idea_end_to_end_on_the_fake_testbed(tmp_path):
    """plan -> SEARCH/REPLACE edit -> checks -> regression -> judge -> study -> analysis -> revision -> second version
    -> KEEP; first stopped by a call budget before the judge's first call, then resumed with the budget raised."""
    ws = _fake_workspace(tmp_path).root
    spec = f"scripted:{DATA / 'fake_shift.yaml'}"
    keys = {"OPENAI_API_KEY": SECRET, "ANTHROPIC_API_KEY": SECRET + "-anthropic"}
    r = _cli("research", "run", "shift the loss", "--workspace", str(ws), "--agent", spec,
             "--gate", "implementation=auto-judge", "--budget-calls", "2", cwd=tmp_path, **keys)
    assert r.returncode == 0, r.stderr[-3000:]
    s = _summary(r.stdout)
    assert s["status"] == "stopped" and "calls" in s["stopped_by"] and "judge" in s["stopped_by"]
    assert "--budget-calls" in s["next"] and s["llm_calls"] == "2"
    assert [x["role"] for x in _records(ws)] == ["planner", "coder"]  # the judge's call was never made
    st = _state(ws)
    assert st["status"] == "stopped" and st["versions"][0]["status"] == "implementing"
    assert "llm planner" in r.stdout and "llm coder shift/v1" in r.stdout  # live spend lines

    r = _cli("research", "resume", "--workspace", str(ws), "--budget-calls", "0", cwd=tmp_path, **keys)
    assert r.returncode == 0, r.stderr[-3000:]
    s = _summary(r.stdout)
    assert (s["status"], s["kept"], s["versions"]) == ("done", "shift/v2", "2"), r.stdout[-3000:]
    st = _state(ws)
    v1, v2 = st["versions"]
    assert (v1["status"], v1["verdict"], v1["analysis"]["kind"]) == ("rejected", "DISCARD", "theory")
    assert (v2["status"], v2["verdict"], v2["analysis"]["kind"]) == ("kept", "KEEP", "win")
    assert v2["task"]["flags"][0]["on"] == 0.5 and "- m.shift" in (ws / "ideas" / "shift" / "v2.diff").read_text()
    assert st["options"]["budget_calls"] == 0 and st["options"]["agent"] == spec

    recs = _records(ws)
    roles = [x["role"] for x in recs]
    # the coder ran again after the stop (the interrupted implementation starts over), then once for v2; the judge
    # reviewed each version once in the implementation stage and 3 times at the auto-judge gate
    assert {r_: roles.count(r_) for r_ in set(roles)} == {"planner": 1, "coder": 3, "judge": 8, "analyzer": 2,
                                                          "reviser": 1}
    assert {x["version"] for x in recs if x["role"] == "judge"} == {"shift/v1", "shift/v2"}
    # the judge never receives the coder's conversation: no coder message, answer or edit block in any judge request
    coder_texts = [m["content"] for x in recs if x["role"] == "coder" for m in x["request"]["messages"]]
    coder_texts += [x["response"]["text"] for x in recs if x["role"] == "coder"]
    for x in recs:
        if x["role"] != "judge":
            continue
        seen = "\n".join(m["content"] for m in x["request"]["messages"])
        assert "<<<<<<< SEARCH" not in seen and ">>>>>>> REPLACE" not in seen
        assert not any(t.strip() and t.strip() in seen for t in coder_texts)
        assert len(x["request"]["messages"]) <= 2  # a fresh conversation: the template and this review only

    report = (ws / "report.md").read_text()
    assert "Language-model spend" in report and "| judge | 8 |" in report
    for k in (1, 2):
        link = f"ideas/shift/v{k}.transcript.md"
        assert link in report and "<<<<<<< SEARCH" in (ws / link).read_text()
    assert (ws / "ideas" / "ideation.transcript.md").is_file()
    assert "SHIFT-REASONING-MARK" in (ws / "studies" / "shift-v2" / "analysis.md").read_text()
    assert "Hypothesis" in (ws / "design" / "shift-v1.md").read_text()

    r = _cli("research", "status", "--workspace", str(ws), cwd=tmp_path)
    assert r.returncode == 0
    judge_line = next(line for line in r.stdout.splitlines() if line.startswith("judge "))
    assert judge_line.split()[1] == "8" and _summary(r.stdout)["llm_calls"] == "15"

    # no key in any file the run wrote (the transcript, the state, logs, reports, experiments, git objects)
    for path in ws.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert SECRET.encode() not in data, path
    assert oct((ws / ".autoresearch" / "transcripts.jsonl").stat().st_mode & 0o777) == "0o600"


@pytest.mark.slow
def test_scripted_agents_edit_the_lm_workspace_through_the_regression(tmp_path, cache_dir):
    """The micro-LM workspace: the coder's SEARCH/REPLACE blocks add `model.attn_temperature` to the copied surface;
    the edit passes compile, lint, checks and the bit-identical regression; one version reaches a verdict."""
    from autoresearch.harness.config import parse_override
    from tests.conftest import micro_overrides

    ws = init_workspace(tmp_path / "lmws", "lm").root
    data = yaml.safe_load((ws / "workspace.yaml").read_text())
    over = dict(parse_override(o) for o in micro_overrides(cache_dir) if not o.startswith("train.train_tokens"))
    data["study"].update(overrides={**over, "train.device": "cpu"}, budget={"tokens": 1024},
                         seeds={"initial": 2, "max": 2}, workers=2)
    (ws / "workspace.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    _git(ws, "commit", "-qam", "micro study")
    spec = f"scripted:{DATA / 'lm_attn_temperature.yaml'}"
    r = _cli("research", "run", "attention temperature", "--workspace", str(ws), "--agent", spec,
             "--analyzer", "rules", "--reviser", "none", "--budget-versions", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    st = _state(ws)
    v = st["versions"][0]
    assert v["status"] in ("kept", "rejected", "inconclusive"), (v["status"], v["lesson"], r.stdout[-3000:])
    assert v["attempts"] == [] and v["verdict"] in ("KEEP", "DISCARD", "RETEST")
    diff = (ws / "ideas" / "attn-temperature" / "v1.diff").read_text()
    assert "attn_temperature" in diff and "q_scale" in diff
    assert [x["role"] for x in _records(ws)] == ["planner", "coder", "judge"]


def test_zero_means_no_limit_in_workspace_yaml_as_on_the_command_line(tmp_path):
    from autoresearch.pipeline.agent_env import build_agent_env

    ws = _fake_workspace(tmp_path, {"budgets": {"run": {"calls": 0, "tokens": 500}, "roles": {"judge": {"calls": 0}}}})
    book = build_agent_env(ws).book
    assert (book.run_limits.calls, book.run_limits.tokens, book.role_limits["judge"].calls) == (None, 500, None)
    assert build_agent_env(ws, tokens=0).book.run_limits.tokens is None  # --budget-tokens 0 lifts the file's limit
    assert build_agent_env(ws, calls=7).book.run_limits.calls == 7


def test_a_key_pasted_into_the_idea_is_redacted_before_anything_stores_it(tmp_path):
    ws = _fake_workspace(tmp_path)
    proc = _cli("research", "run", f"try the boost flag; my key is {SECRET}", "--workspace", str(ws.root),
                "--budget-versions", "1", cwd=tmp_path, OPENAI_API_KEY=SECRET)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[REDACTED]" in _state(ws.root)["idea"]
    leaked = [p for p in ws.root.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert leaked == [] and SECRET not in proc.stdout


def test_analysis_evidence_is_written_readably():
    """analysis.md's evidence lines (a fresh user saw raw dicts with 15-digit floats)."""
    from autoresearch.pipeline.orchestrator import _readable

    assert _readable(-0.012345678901234) == "-0.01235" and _readable(float("nan")) == "n/a"
    assert _readable({"kind": "noise", "delta": 0.123456789}) == "kind: noise; delta: 0.1235"
    assert _readable(["Δ -0.01", 2]) == "Δ -0.01, 2" and _readable([]) == "-" and _readable(3) == "3"

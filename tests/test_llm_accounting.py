"""Accounting of LLM calls: redaction, transcripts, budgets checked before each call, and the session that ties them."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from autoresearch.agents.llm.backend import LLMReply, LLMRequest, Price, Tool, Usage
from autoresearch.agents.llm.budget import BudgetBook, Limits, Spend, check_prices, estimate, idea_of
from autoresearch.agents.llm.redact import REDACTED, redact, redact_text, secret_values
from autoresearch.agents.llm.scripted import ScriptedBackend
from autoresearch.agents.llm.session import AgentEnv, LLMSession
from autoresearch.agents.llm.transcript import RECORD_KEYS, Transcript, make_record, read_transcript, spend_by
from autoresearch.errors import BudgetError, ConfigError, LLMAuthError, LLMError

KEY = "sk-test-0123456789abcdefABCDEF"


def msg(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def env_with(tmp_path: Path, **limits: Limits | dict[str, Limits]) -> AgentEnv:
    book = BudgetBook(run=limits.get("run"), idea=limits.get("idea"), roles=limits.get("roles"))  # type: ignore[arg-type]
    return AgentEnv(root=tmp_path, transcript=Transcript(tmp_path / ".autoresearch" / "transcripts.jsonl"), book=book,
                    version="idea-a/v1")


# --- redact
def test_secret_values_picks_secret_names_and_skips_short_values() -> None:
    env = {"OPENAI_API_KEY": KEY, "HF_TOKEN": "hf_abcdefgh12", "DB_PASSWORD": "hunter2!!",
           "MY_SECRET": "short", "PATH": "/usr/bin:/bin", "api_key_lower": "lowercase-secret-1"}
    vals = secret_values(env)
    assert set(vals) == {KEY, "hf_abcdefgh12", "hunter2!!", "lowercase-secret-1"}
    assert vals == sorted(vals, key=len, reverse=True)


def test_redact_deep_copy_env_values_and_key_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "plainvalue-without-shape-42")
    obj = {"messages": [{"content": "my key is plainvalue-without-shape-42, ok"}],
           "headers": ("Authorization: Bearer abcdEFGH1234.xyz", "x-api-key: zzzzzzzz9999"),
           "other": "sk-proj-AbCdEfGh12345678 and sk-ant-api03-XYZxyz_12345678",
           "plainvalue-without-shape-42": 3, "n": 1.5, "none": None}
    out = redact(obj)
    text = json.dumps(out)
    for secret in ("plainvalue-without-shape-42", "abcdEFGH1234", "zzzzzzzz9999", "AbCdEfGh12345678", "XYZxyz_1234"):
        assert secret not in text
    assert out["headers"][0] == f"Authorization: Bearer {REDACTED}"
    assert out["n"] == 1.5 and out["none"] is None and out[REDACTED] == 3
    assert obj["messages"][0]["content"] == "my key is plainvalue-without-shape-42, ok"  # the input is untouched


def test_redact_text_leaves_ordinary_text_alone() -> None:
    text = "use a learnable temperature per attention head; tokens=4096, key: value, task-sk-1"
    assert redact_text(text, secrets=[]) == text


# --- budget
@pytest.mark.parametrize("kwargs", [{"dollars": -1}, {"tokens": -5}, {"calls": True}, {"seconds": float("nan")},
                                    {"calls": "3"}])
def test_limits_reject_bad_values(kwargs: dict) -> None:
    with pytest.raises(ConfigError, match="must be a number >= 0"):
        Limits(**kwargs)


def test_limits_from_dict() -> None:
    assert Limits.from_dict({"dollars": 2.5, "calls": 10}) == Limits(dollars=2.5, calls=10)
    assert Limits.from_dict(None).is_unlimited()
    with pytest.raises(ConfigError, match=r"agents.budgets.run has unknown key\(s\) dolars"):
        Limits.from_dict({"dolars": 1}, "agents.budgets.run")
    with pytest.raises(ConfigError, match="agents.budgets.idea: budget `tokens`"):
        Limits.from_dict({"tokens": -1}, "agents.budgets.idea")


def test_estimate_is_worst_case_prompt_chars_over_4_plus_max_tokens() -> None:
    req = LLMRequest(msg("x" * 392), max_tokens=100)  # 392 + 8 = 400 chars -> 100 (+1) prompt tokens
    tokens, dollars = estimate(req, Price(1.0, 10.0))
    assert tokens == 101 + 100
    assert dollars == pytest.approx((101 * 1.0 + 100 * 10.0) / 1e6)
    assert estimate(req, None) == (201, None)
    with_tools = LLMRequest(msg("x" * 392), max_tokens=100, tools=[Tool("answer", "d" * 400, {"type": "object"})])
    assert estimate(with_tools, None)[0] > 201


def test_idea_of() -> None:
    assert idea_of("temp-per-head/v2") == "temp-per-head"
    assert idea_of("") == ""


def test_budget_stops_before_the_call_that_would_exceed_calls(tmp_path: Path) -> None:
    backend = ScriptedBackend(["a", "b", "c"])
    env = env_with(tmp_path, run=Limits(calls=2))
    s = LLMSession(env, "planner", backend)
    s.ask(LLMRequest(msg("1")))
    s.ask(LLMRequest(msg("2")))
    with pytest.raises(BudgetError) as e:
        s.ask(LLMRequest(msg("3")))
    assert len(backend.requests) == 2  # the third call was never made
    line = str(e.value)
    assert "\n" not in line and "budget run" in line and "calls" in line and "limit 2" in line
    assert "--budget-calls" in line and "agents.budgets.run.calls" in line
    assert len(read_transcript(env.transcript.path)) == 2  # type: ignore[union-attr]


def test_token_budget_counts_the_worst_case_of_the_next_call(tmp_path: Path) -> None:
    backend = ScriptedBackend(["x" * 40] * 5)
    env = env_with(tmp_path, run=Limits(tokens=300))
    s = LLMSession(env, "coder", backend)
    s.ask(LLMRequest(msg("hello"), max_tokens=100))  # scripted usage: 5//4 + 40//4 = 11 tokens
    assert env.book.spend().tokens == 11
    with pytest.raises(BudgetError, match=r"tokens spent 11 \+ this call's worst case 304 would pass the limit 300"):
        s.ask(LLMRequest(msg("hello"), max_tokens=300))
    assert len(backend.requests) == 1
    s.ask(LLMRequest(msg("hello"), max_tokens=200))  # 11 + 204 <= 300: allowed
    assert len(backend.requests) == 2


def test_role_and_idea_budgets_are_separate_scopes(tmp_path: Path) -> None:
    backend = ScriptedBackend(["ok"] * 10)
    env = env_with(tmp_path, idea=Limits(calls=2), roles={"judge": Limits(calls=1)})
    judge, planner = LLMSession(env, "judge", backend), LLMSession(env, "planner", backend)
    judge.ask(LLMRequest(msg("j")))
    with pytest.raises(BudgetError, match=r"budget role judge: calls .*agents.budgets.roles.judge.calls"):
        judge.ask(LLMRequest(msg("j")))
    planner.ask(LLMRequest(msg("p")))  # idea-a: 2 calls now
    env.version = "idea-a/v2"
    with pytest.raises(BudgetError, match=r"budget idea idea-a: calls .*agents.budgets.idea.calls"):
        planner.ask(LLMRequest(msg("p")))
    env.version = "idea-b/v1"  # another idea has its own budget
    planner.ask(LLMRequest(msg("p")))
    assert len(backend.requests) == 3
    assert env.book.spend("idea", "idea-a").calls == 2 and env.book.spend("idea", "idea-b").calls == 1
    assert env.book.spend("role", "planner").calls == 2 and env.book.spend().calls == 3


def test_dollar_budget(tmp_path: Path) -> None:
    class Priced(ScriptedBackend):
        def _call(self, request: LLMRequest) -> LLMReply:
            reply = super()._call(request)
            reply.usage = Usage(1000, 1000)
            return reply

    backend = Priced(["a"] * 5)
    backend.price = Price(1000.0, 1000.0)  # $1 per 1000 tokens each way: each call costs $2
    env = env_with(tmp_path, run=Limits(dollars=5.0))
    s = LLMSession(env, "analyzer", backend)
    s.ask(LLMRequest(msg("a"), max_tokens=10))
    s.ask(LLMRequest(msg("a"), max_tokens=10))
    assert env.book.spend().dollars == pytest.approx(4.0)
    with pytest.raises(BudgetError, match=r"dollars spent \$4.0000 \+ this call's worst case .* limit \$5.0000"):
        s.ask(LLMRequest(msg("a"), max_tokens=1000))  # worst case 1 + 1000 tokens ~ $1.001 > $1 left
    assert len(backend.requests) == 2


def test_seconds_budget(tmp_path: Path) -> None:
    env = env_with(tmp_path, run=Limits(seconds=1.0))
    env.book.charge("coder", "", LLMReply("x", latency_s=1.5))
    with pytest.raises(BudgetError, match=r"seconds spent 1.5 s would pass the limit 1.0 s"):
        env.book.check("coder", "", 1, 0.0)


def test_check_prices_refuses_a_dollar_budget_with_an_unknown_price() -> None:
    known, unknown = ScriptedBackend(["a"]), ScriptedBackend(["a"], spec="openai:mystery")
    unknown.price = None
    book = BudgetBook(run=Limits(dollars=1.0))
    check_prices(book, {"planner": known})
    with pytest.raises(ConfigError) as e:
        check_prices(book, {"planner": known, "judge": unknown})
    line = str(e.value)
    assert "judge" in line and "openai:mystery" in line and "agents.prices.scripted" in line
    assert "--budget-tokens" in line and "\n" not in line
    check_prices(BudgetBook(run=Limits(tokens=10)), {"judge": unknown})  # no dollar limit: fine
    check_prices(BudgetBook(roles={"planner": Limits(dollars=1)}), {"judge": unknown})  # covers another role
    with pytest.raises(ConfigError):
        check_prices(BudgetBook(roles={"judge": Limits(dollars=1)}), {"judge": unknown})


def test_unknown_cost_at_check_time_is_refused_too() -> None:
    book = BudgetBook(idea=Limits(dollars=1.0))
    with pytest.raises(BudgetError, match="price is unknown"):
        book.check("coder", "x/v1", 10, None)
    book.check("coder", "", 10, None)  # no idea scope yet: no dollar limit applies


# --- session + transcript
def test_transcript_records_every_call_with_all_keys_and_mode_0600(tmp_path: Path) -> None:
    backend = ScriptedBackend({"judge": [{"tool": "verdict", "arguments": {"decision": "approve"}}, "fine"]})
    env = env_with(tmp_path)
    events: list[tuple[str, dict]] = []
    env.emit = lambda kind, payload: events.append((kind, payload))
    s = LLMSession(env, "judge", backend)
    req = LLMRequest(msg("review this"), tools=[Tool("verdict", "the verdict", {"type": "object"})],
                     tool_choice="verdict", max_tokens=64, temperature=0.7)
    s.ask(req)
    s.ask(LLMRequest(msg("again"), schema={"type": "object"}, schema_name="VerdictOut"), try_no=2)
    assert backend.requests[0].role == "judge" and backend.requests[0].tag == "idea-a/v1"
    path = env.transcript.path  # type: ignore[union-attr]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    recs = read_transcript(path)
    assert [tuple(r) for r in recs] == [RECORD_KEYS, RECORD_KEYS]
    first, second = recs
    assert first["role"] == "judge" and first["version"] == "idea-a/v1" and first["run"] == 1
    assert first["backend"] == backend.spec and first["model"] == "scripted"
    assert first["request"] == {"messages": msg("review this"), "tools": ["verdict"], "schema_name": "answer",
                                "max_tokens": 64, "temperature": 0.7}
    assert first["response"]["tool_calls"][0]["name"] == "verdict"
    assert json.loads(first["response"]["tool_calls"][0]["arguments"]) == {"decision": "approve"}
    assert first["error"] is None and first["usage"]["prompt"] == 11 // 4 and first["cost_usd"] == 0.0
    assert first["try"] == 1 and second["try"] == 2 and second["request"]["schema_name"] == "VerdictOut"
    assert second["response"]["text"] == "fine" and second["response"]["finish_reason"] == "stop"
    assert s.calls == 2
    assert [k for k, _ in events] == ["llm", "llm"]
    assert events[-1][1]["calls"] == 2 and events[-1][1]["role"] == "judge"
    assert "llm judge idea-a/v1: 2 calls" in events[-1][1]["text"]


def test_failed_call_is_recorded_charged_and_reraised(tmp_path: Path) -> None:
    backend = ScriptedBackend([{"error": 401, "message": "invalid key"}])
    env = env_with(tmp_path)
    s = LLMSession(env, "planner", backend)
    with pytest.raises(LLMAuthError):
        s.ask(LLMRequest(msg("plan")))
    assert len(backend.requests) == 1  # fatal: not retried
    (rec,) = read_transcript(env.transcript.path)  # type: ignore[union-attr]
    assert rec["response"] is None and rec["usage"] is None
    assert rec["cost_usd"] == 0.0  # a free backend (scripted, a local server) costs nothing even when it fails
    assert rec["error"].startswith("LLMAuthError: ") and "\n" not in rec["error"]
    spent = env.book.spend("role", "planner")
    assert spent.calls == 1 and spent.unknown_cost_calls == 0 and s.calls == 1

    priced = ScriptedBackend([{"error": 500, "message": "down"}] * 5)
    priced.price = Price(1.0, 2.0, "test")  # a paid backend's failed call: its cost is unknown, not 0
    with pytest.raises(LLMError):
        LLMSession(env, "judge", priced).ask(LLMRequest(msg("review")))
    rec = read_transcript(env.transcript.path)[-1]  # type: ignore[union-attr]
    assert rec["cost_usd"] is None and env.book.spend("role", "judge").unknown_cost_calls == 1


def test_resume_rebuilds_the_spend_from_the_transcript(tmp_path: Path) -> None:
    backend = ScriptedBackend(["one answer", "two answers", {"error": 400, "message": "bad request"}, "three"])
    env = env_with(tmp_path, run=Limits(calls=4))
    planner, judge = LLMSession(env, "planner", backend), LLMSession(env, "judge", backend)
    planner.ask(LLMRequest(msg("a" * 50)))
    env.version = "idea-b/v1"
    judge.ask(LLMRequest(msg("b" * 70)))
    with pytest.raises(LLMError, match="bad request"):
        judge.ask(LLMRequest(msg("c")))
    records = read_transcript(env.transcript.path)  # type: ignore[union-attr]
    resumed = BudgetBook(run=Limits(calls=4))
    resumed.load(records)
    for scope, name in [("run", ""), ("role", "planner"), ("role", "judge"), ("idea", "idea-a"), ("idea", "idea-b")]:
        live, rebuilt = env.book.spend(scope, name), resumed.spend(scope, name)
        assert rebuilt.calls == live.calls and rebuilt.tokens == live.tokens
        assert rebuilt.dollars == pytest.approx(live.dollars)
        assert rebuilt.seconds == pytest.approx(live.seconds, abs=1e-3)
        assert rebuilt.unknown_cost_calls == live.unknown_cost_calls
    assert resumed.spend().calls == 3 and resumed.spend().tokens > 0
    # the resumed run continues with what is left: one call, then the budget stops it before the call
    env2 = AgentEnv(transcript=env.transcript, book=resumed, version="idea-b/v1")
    s2 = LLMSession(env2, "judge", backend)
    s2.ask(LLMRequest(msg("d")))
    with pytest.raises(BudgetError):
        s2.ask(LLMRequest(msg("e")))
    assert len(backend.requests) == 4
    other_run = BudgetBook()
    other_run.load(records, run=2)
    assert other_run.spend().calls == 0


def test_no_secret_in_any_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("SOME_SERVICE_TOKEN", "tok-plain-value-987654")
    backend = ScriptedBackend([f"echo {KEY}", {"error": 500, "message": f"upstream said tok-plain-value-987654 {KEY}"},
                               {"error": 401, "message": f"bad key {KEY}"}])
    backend.retry.max_retries = 1
    env = env_with(tmp_path)
    s = LLMSession(env, "coder", backend)
    s.ask(LLMRequest(msg(f"the key is {KEY} and Bearer {KEY}")))
    with pytest.raises(LLMAuthError):
        s.ask(LLMRequest(msg("again tok-plain-value-987654")))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files
    for p in files:
        data = p.read_bytes()
        assert KEY.encode() not in data and b"tok-plain-value-987654" not in data, p
    text = env.transcript.path.read_text()  # type: ignore[union-attr]
    assert REDACTED in text and text.count("\n") == 2


def test_read_transcript_torn_and_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    assert read_transcript(path) == []
    t = Transcript(path)
    backend = ScriptedBackend(["x"])
    rec = make_record(run=1, role="coder", version="", backend=backend, request=LLMRequest(msg("hi")),
                      reply=LLMReply("x", usage=Usage(1, 2), cost_usd=0.5, latency_s=0.25))
    t.append(rec)
    with open(path, "a") as f:
        f.write('{"at": "2026-01-01T00:00:00", "run": 1, "ro')  # a crash mid-write
    assert len(read_transcript(path)) == 1  # a torn last line is skipped
    t.append(rec)  # the next record starts on a new line; the torn one stays in the middle, still skipped
    assert len(read_transcript(path)) == 2
    with open(path, "a") as f:
        f.write("{")  # torn after one byte
    t.append(rec)
    assert len(read_transcript(path)) == 3
    assert spend_by(read_transcript(path), "role")["coder"] == Spend(3, 3, 6, 1.5, 0.75, 0)

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rec) + "\nnot json at all\n" + json.dumps(rec) + "\n")
    with pytest.raises(ConfigError, match=r"bad.jsonl:2 is not a JSON transcript record"):
        read_transcript(bad)
    partial = {k: v for k, v in rec.items() if k not in ("usage", "try")}
    bad.write_text(json.dumps(rec) + "\n" + json.dumps(partial) + "\n")
    with pytest.raises(ConfigError, match=r"bad.jsonl:2 is missing transcript key\(s\) usage, try"):
        read_transcript(bad)
    bad.write_text("[1, 2]\n")
    with pytest.raises(ConfigError, match=r"bad.jsonl:1 is not a transcript record"):
        read_transcript(bad)


def test_spend_by_role_and_version(tmp_path: Path) -> None:
    backend = ScriptedBackend(["a", "b", "c"])
    env = env_with(tmp_path)
    LLMSession(env, "planner", backend).ask(LLMRequest(msg("p")))
    env.version = "idea-a/v2"
    LLMSession(env, "coder", backend).ask(LLMRequest(msg("c")))
    LLMSession(env, "coder", backend).ask(LLMRequest(msg("c")))
    recs = read_transcript(env.transcript.path)  # type: ignore[union-attr]
    by_role = spend_by(recs, "role")
    assert list(by_role) == ["planner", "coder"] and by_role["coder"].calls == 2
    assert {k: v.calls for k, v in spend_by(recs, "version").items()} == {"idea-a/v1": 1, "idea-a/v2": 2}
    with pytest.raises(ValueError):
        spend_by(recs, "colour")


def test_standalone_env_is_unlimited_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = AgentEnv.standalone()
    assert env.transcript is None and env.root is None and env.book.run_limits.is_unlimited()
    assert env.tried() == [] and env.idea_log() == "" and env.judge_samples == 3
    s = LLMSession(env, "reviser", ScriptedBackend(["a"] * 3))
    for _ in range(3):
        s.ask(LLMRequest(msg("r"), max_tokens=10**6))
    assert s.calls == 3 and env.book.spend().calls == 3 and s.failed_dir is None and s.mode_override is None
    assert list(tmp_path.iterdir()) == []
    assert AgentEnv.standalone(judge_samples=5).judge_samples == 5


def test_spend_line_marks_unknown_costs() -> None:
    s = Spend()
    s.add(100, 50, 0.01, 1.0)
    assert s.line() == "1 calls, 150 tokens, $0.0100"
    s.add(10, 10, None, 1.0)
    assert s.line() == "2 calls, 170 tokens, >= $0.0100"


def test_concurrent_appends_keep_whole_lines(tmp_path: Path) -> None:
    import threading

    t = Transcript(tmp_path / "t.jsonl")
    backend = ScriptedBackend(["x"])
    big = "y" * 20000  # longer than a pipe buffer: a line must still be written whole
    rec = make_record(run=1, role="judge", version="a/v1", backend=backend, request=LLMRequest(msg(big)),
                      reply=LLMReply("x", usage=Usage(1, 1), cost_usd=0.0))
    book = BudgetBook()

    def work() -> None:
        for _ in range(10):
            t.append(rec)
            book.charge("judge", "a/v1", LLMReply("x", usage=Usage(1, 1), cost_usd=0.001, latency_s=0.01))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    recs = read_transcript(t.path)
    assert len(recs) == 40 and all(r["request"]["messages"][0]["content"] == big for r in recs)
    assert book.spend().calls == 40 and book.spend().dollars == pytest.approx(0.04)

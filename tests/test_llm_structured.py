"""Structured outputs of the LLM roles: tolerant extraction (the messy-answer corpus), the schemas, and ask_structured
(re-ask with the error, the raw answers saved after the last try, the schema -> tool -> prompt fallback)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoresearch.agents.llm import schemas, structured
from autoresearch.agents.llm.backend import LLMReply, LLMRequest
from autoresearch.agents.llm.extract import extract_json
from autoresearch.agents.llm.schemas import (
    AnalysisOut,
    FlagOut,
    PlanOut,
    RevisionOut,
    TaskOut,
    VerdictOut,
    json_schema_for,
    task_from_out,
    task_name,
)
from autoresearch.agents.llm.scripted import ScriptedBackend
from autoresearch.agents.llm.structured import MODES, ask_structured, first_mode, parse_answer
from autoresearch.agents.roles import ANALYSIS_KINDS, DECISIONS, FLAG_TYPES, TaskSpec
from autoresearch.errors import BudgetError, LLMAuthError, LLMUnsupportedError, StructuredOutputError

CORPUS = Path(__file__).parent / "data" / "llm_answers"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((CORPUS / "expected.yaml").read_text(encoding="utf-8"))

VALID = {"decision": "approve", "blocking_issues": [], "summary": "fine"}


class StandIn:
    """The part of an LLMSession that ask_structured uses."""

    def __init__(self, backend: ScriptedBackend, failed_dir: Path | None = None, role: str = "judge") -> None:
        self.backend = backend
        self.failed_dir = failed_dir
        self.role = role
        self.mode_override: str | None = None
        self.tries: list[int] = []

    def ask(self, request: LLMRequest, *, try_no: int = 1) -> LLMReply:
        request.role = request.role or self.role
        self.tries.append(try_no)
        return self.backend.complete(request)


def _msgs() -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are the judge."}, {"role": "user", "content": "Review this diff."}]


# --- the corpus --------------------------------------------------------------------------------------------------------


def test_corpus_covers_the_listed_shapes() -> None:
    files = {p.name for p in CORPUS.glob("*.txt")}
    assert files == set(EXPECTED), "every corpus file has an expected entry and vice versa"
    assert len(files) >= 15
    for shape in ("fenced_json", "prose_wrapped", "two_objects", "trailing_commas", "python_literals", "truncated",
                  "wrong_types", "string_for_list", "missing_field", "nested_fence_in_string", "empty", "refusal",
                  "json_array_one", "markdown_table", "unicode"):
        assert f"{shape}.txt" in files


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_extraction(name: str) -> None:
    want = EXPECTED[name]
    text = (CORPUS / name).read_text(encoding="utf-8")
    if want["extract"] == "error":
        with pytest.raises(ValueError) as e:
            extract_json(text)
        assert want["error"] in str(e.value)
        assert "\n" not in str(e.value)
    else:
        assert extract_json(text) == want["extract"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_validation(name: str) -> None:
    want = EXPECTED[name]
    model = getattr(schemas, want["model"])
    text = (CORPUS / name).read_text(encoding="utf-8")
    if want["valid"] == "error":
        with pytest.raises(ValueError) as e:
            parse_answer(text, model)
        assert want["error"] in str(e.value)
        assert "\n" not in str(e.value)
    else:
        dumped = parse_answer(text, model).model_dump()
        assert {k: dumped[k] for k in want["valid"]} == want["valid"]


# --- extraction details ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, want", [
    ('{"a": 1}', {"a": 1}),
    ('```JSON\n{"a": [1, 2,],}\n```', {"a": [1, 2]}),
    ("see [1]. {\"a\": 2}", {"a": 2}),
    ("{'a': 'x', 'b': False}", {"a": "x", "b": False}),
    ('{"re": "\\d+"}', {"re": "\\d+"}),                          # an invalid JSON escape: the literal fallback
    ('[{"a": 1}, {"b": 2}]', [{"a": 1}, {"b": 2}]),
    ('[1, 2]', [1, 2]),                                           # the whole answer is an array
    ('intro [1, 2] then {"a": {"b": [1, {"c": "}"}]}}', {"a": {"b": [1, {"c": "}"}]}}),
    ("<think>{\"a\": 1}</think>", {"a": 1}),                    # only the draft: it is taken
])
def test_extract_table(text: str, want: Any) -> None:
    assert extract_json(text) == want


@pytest.mark.parametrize("text", ["no json here", '{"a": [1, 2', '```json\n{"a": "unterminated\n```', "{'a': open('x')}"])
def test_extract_errors(text: str) -> None:
    with pytest.raises(ValueError):
        extract_json(text)


def test_extract_never_evaluates(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    text = "{'a': __import__('pathlib').Path(" + repr(str(target)) + ").write_text('x')}"
    with pytest.raises(ValueError):
        extract_json(text)
    assert not target.exists()


# --- schemas -----------------------------------------------------------------------------------------------------------


def test_literals_match_the_role_constants() -> None:
    assert set(VerdictOut.model_fields["decision"].annotation.__args__) == set(DECISIONS)  # type: ignore[union-attr]
    assert set(AnalysisOut.model_fields["kind"].annotation.__args__) == set(ANALYSIS_KINDS)  # type: ignore[union-attr]
    assert set(FlagOut.model_fields["type"].annotation.__args__) == set(FLAG_TYPES)  # type: ignore[union-attr]


@pytest.mark.parametrize("model", [PlanOut, TaskOut, FlagOut, VerdictOut, AnalysisOut, RevisionOut, schemas.EditOut])
def test_json_schema_is_flat_and_described(model: type) -> None:
    schema = json_schema_for(model)
    text = json.dumps(schema)
    assert "$ref" not in text and "$defs" not in text
    assert schema["type"] == "object"
    for name, prop in schema["properties"].items():
        assert prop.get("description"), f"{model.__name__}.{name} has no description for the model to read"


def test_json_schema_inlines_nested_models() -> None:
    schema = json_schema_for(PlanOut)
    flag = schema["properties"]["tasks"]["items"]["properties"]["flags"]["items"]
    assert set(flag["required"]) == {"key", "type", "off", "on"}
    assert flag["properties"]["type"]["enum"] == ["bool", "choice", "int", "float"]
    task = json_schema_for(RevisionOut)["properties"]["task"]
    assert any(alt.get("type") == "object" and "flags" in alt["properties"] for alt in task["anyOf"])


def test_unknown_keys_ignored_and_words_normalised() -> None:
    v = VerdictOut.model_validate({"decision": " Approved. ", "blocking_issues": None, "confidence": 0.9})
    assert (v.decision, v.blocking_issues) == ("approve", [])
    a = AnalysisOut.model_validate({"kind": "NOISE", "summary": "two\n lines"})
    assert (a.kind, a.summary) == ("noise", "two lines")
    f = FlagOut.model_validate({"key": "model.qk_norm", "type": "boolean", "off": "false", "on": 1})
    assert (f.type, f.off, f.on) == ("bool", False, True)


@pytest.mark.parametrize("flag", [
    {"key": "k", "type": "bool", "off": False, "on": "sometimes"},
    {"key": "k", "type": "int", "off": 1, "on": 2.5},
    {"key": "k", "type": "float", "off": 1.0, "on": "fast"},
    {"key": "k", "type": "choice", "off": "a", "on": "z", "choices": ["a", "b"]},
    {"key": "k", "type": "string", "off": "a"},
])
def test_flag_out_rejects(flag: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FlagOut.model_validate(flag)


def test_task_from_out() -> None:
    out = TaskOut.model_validate({
        "name": "QK Norm / per head!", "description": "normalise q and k",
        "flags": [{"key": "model.qk_norm", "type": "bool", "off": False, "on": True},
                  {"key": "model.act", "type": "choice", "off": "gelu", "on": "relu", "choices": ["gelu", "relu"]},
                  {"key": "optim.lr", "type": "float", "off": 0.001, "on": 0.002, "low": 1e-4, "high": 1e-2,
                   "log": True}],
        "files": ["a.py"], "expected_effect": "lower loss", "effect_size": 0.01, "needs_code": True})
    task = task_from_out(out, "use qk norm")
    assert isinstance(task, TaskSpec)
    assert task.name == "qk-norm-per-head"
    assert task.idea == "use qk norm" and task.needs_code and task.files == ["a.py"]
    assert task.on_overrides() == {"model.qk_norm": True, "model.act": "relu", "optim.lr": 0.002}
    assert task.flags[1].choices == ["gelu", "relu"] and task.flags[2].log
    assert TaskSpec.from_dict(task.to_dict()) == task


@pytest.mark.parametrize("name, idea, want", [
    ("qk-norm", "", "qk-norm"), ("!!!", "Use a learnable temperature", "use-a-learnable-temperature"),
    ("", "", "idea"), ("x" * 80, "", "x" * 48), ("v2.Final", "", "v2.final")])
def test_task_name(name: str, idea: str, want: str) -> None:
    assert task_name(name, idea) == want


# --- ask_structured ----------------------------------------------------------------------------------------------------


def test_valid_first_answer_one_call() -> None:
    backend = ScriptedBackend([{"json": VALID}])
    out = ask_structured(StandIn(backend), _msgs(), VerdictOut)
    assert isinstance(out, VerdictOut) and out.decision == "approve"
    (req,) = backend.requests
    assert req.schema == json_schema_for(VerdictOut) and req.schema_name == "VerdictOut"
    assert req.messages[0] == _msgs()[0]


def test_reask_after_invalid_answer() -> None:
    backend = ScriptedBackend([{"json": {"decision": "maybe", "blocking_issues": []}}, {"json": VALID}])
    session = StandIn(backend)
    out = ask_structured(session, _msgs(), VerdictOut)
    assert out.decision == "approve"
    assert len(backend.requests) == 2 and session.tries == [1, 2]
    first, second = backend.requests
    assert len(second.messages) == len(first.messages) + 2
    assert second.messages[-2] == {"role": "assistant", "content": json.dumps({"decision": "maybe",
                                                                             "blocking_issues": []})}
    assert second.messages[-1]["role"] == "user"
    assert "decision" in second.messages[-1]["content"] and "'maybe'" in second.messages[-1]["content"]


def test_reask_carries_only_the_last_failed_answer() -> None:
    """Three tries: the third prompt holds the caller's messages plus the second answer and its error, not the first
    answer too (a re-ask's prompt stays one answer long)."""
    bad1, bad2 = {"decision": "maybe"}, {"decision": "perhaps"}
    backend = ScriptedBackend([{"json": bad1}, {"json": bad2}, {"json": VALID}])
    ask_structured(StandIn(backend), _msgs(), VerdictOut)
    first, second, third = backend.requests
    assert len(third.messages) == len(second.messages) == len(first.messages) + 2
    assert third.messages[-2]["content"] == json.dumps(bad2)
    assert "maybe" not in " ".join(m["content"] for m in third.messages)


def test_reask_shows_the_start_of_a_long_answer() -> None:
    long = "x" * (structured._ECHO_CHARS + 500)
    backend = ScriptedBackend([long, {"json": VALID}], supports_schema=False, supports_tools=False)
    ask_structured(StandIn(backend), _msgs(), VerdictOut)
    echo = backend.requests[1].messages[-2]["content"]
    assert echo.startswith("x" * 100) and echo.endswith("[... 500 more characters]")
    assert len(echo) < len(long)


@pytest.mark.parametrize("answer", [{"text": '{"decision": "appr', "finish_reason": "length"},
                                    {"text": '{"decision": "appr', "finish_reason": "tool_calls",
                                     "usage": [100, 300]}])
def test_cut_off_named_by_finish_reason_or_by_a_full_completion(answer: dict[str, Any]) -> None:
    """llama.cpp's server says finish_reason "tool_calls" for a forced call that ran out of tokens: a completion of
    max_tokens tokens is named cut off as well."""
    backend = ScriptedBackend([answer, {"json": VALID}], supports_schema=False, supports_tools=False)
    ask_structured(StandIn(backend), _msgs(), VerdictOut, max_tokens=300)
    assert "cut off at max_tokens=300" in backend.requests[1].messages[-1]["content"]


def test_caller_messages_not_mutated() -> None:
    msgs = _msgs()
    backend = ScriptedBackend(["nope", {"json": VALID}], supports_schema=False, supports_tools=False)
    ask_structured(StandIn(backend), msgs, VerdictOut)
    assert msgs == _msgs()


def test_validate_hook_reasks() -> None:
    backend = ScriptedBackend([{"json": VALID}, {"json": {**VALID, "summary": "because the checks passed"}}])
    seen: list[str] = []

    def check(v: VerdictOut) -> str | None:
        seen.append(v.summary)
        return None if "because" in v.summary else "say why in the summary"

    out = ask_structured(StandIn(backend), _msgs(), VerdictOut, validate=check)
    assert out.summary == "because the checks passed" and seen == ["fine", "because the checks passed"]
    assert "say why in the summary" in backend.requests[1].messages[-1]["content"]


def test_three_invalid_answers_raise_and_save(tmp_path: Path) -> None:
    answers = ["I cannot decide.", {"json": {"decision": "maybe"}}, {"text": '{"decision": "appr', "finish_reason":
                                                                     "length"}]
    backend = ScriptedBackend(answers)
    failed = tmp_path / "failed"
    with pytest.raises(StructuredOutputError) as e:
        ask_structured(StandIn(backend, failed_dir=failed), _msgs(), VerdictOut, max_tokens=64)
    msg = str(e.value)
    assert len(backend.requests) == 3
    assert "judge" in msg and "VerdictOut" in msg and "cut off" in msg and "\n" not in msg
    (saved,) = failed.glob("judge-*.txt")
    assert str(saved) in msg
    text = saved.read_text(encoding="utf-8")
    assert "I cannot decide." in text and '"maybe"' in text and '{"decision": "appr' in text
    assert "max_tokens=64" in text


def test_saved_answers_are_redacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-abcdefghijklmnop")
    backend = ScriptedBackend(["my key is sk-test-abcdefghijklmnop"])
    with pytest.raises(StructuredOutputError):
        ask_structured(StandIn(backend, failed_dir=tmp_path), _msgs(), VerdictOut, max_tries=1)
    (saved,) = tmp_path.glob("*.txt")
    assert "abcdefghijklmnop" not in saved.read_text(encoding="utf-8") and "my key is" in saved.read_text()


def test_max_tries_counts_every_call() -> None:
    backend = ScriptedBackend(["x", "y", "z", {"json": VALID}])
    with pytest.raises(StructuredOutputError, match="not saved"):
        ask_structured(StandIn(backend), _msgs(), VerdictOut, max_tries=2)
    assert len(backend.requests) == 2


def test_mode_fallback_chain() -> None:
    backend = ScriptedBackend([{"error": "unsupported"}, {"error": "unsupported"}, json.dumps(VALID)])
    session = StandIn(backend)
    out = ask_structured(session, _msgs(), VerdictOut, max_tries=1)  # refusals are not tries
    assert out.decision == "approve"
    schema_req, tool_req, prompt_req = backend.requests
    assert schema_req.schema is not None and not schema_req.tools
    assert tool_req.schema is None and tool_req.tool_choice == "VerdictOut"
    assert tool_req.tools[0].parameters == json_schema_for(VerdictOut)
    assert prompt_req.schema is None and not prompt_req.tools
    assert '"decision"' in prompt_req.messages[-1]["content"] and "JSON schema" in prompt_req.messages[-1]["content"]
    assert session.mode_override == "prompt"
    # the refused modes are remembered: the next structured call starts in prompt mode
    backend.answers["default"].append(json.dumps(VALID))
    ask_structured(session, _msgs(), VerdictOut)
    assert backend.requests[-1].schema is None and not backend.requests[-1].tools


def test_fallback_skips_tool_mode_without_tools() -> None:
    backend = ScriptedBackend([{"error": "unsupported"}, json.dumps(VALID)], supports_tools=False)
    ask_structured(StandIn(backend), _msgs(), VerdictOut)
    assert [r.schema is not None for r in backend.requests] == [True, False]
    assert not backend.requests[1].tools


def test_prompt_mode_refused_raises() -> None:
    backend = ScriptedBackend([{"error": "unsupported"}], supports_schema=False, supports_tools=False)
    with pytest.raises(LLMUnsupportedError):
        ask_structured(StandIn(backend), _msgs(), VerdictOut)
    assert len(backend.requests) == 1


def test_tool_mode_reads_the_tool_call() -> None:
    backend = ScriptedBackend([{"tool": "VerdictOut", "arguments": {"decision": "reject", "blocking_issues": "x"}}],
                              supports_schema=False)
    out = ask_structured(StandIn(backend), _msgs(), VerdictOut)
    assert (out.decision, out.blocking_issues) == ("reject", ["x"])
    assert backend.requests[0].tool_choice == "VerdictOut"


def test_tool_mode_text_answer_still_parsed() -> None:
    backend = ScriptedBackend(["```json\n" + json.dumps(VALID) + "\n```"], supports_schema=False)
    assert ask_structured(StandIn(backend), _msgs(), VerdictOut).decision == "approve"


def test_prompt_mode_instruction_in_last_user_message_once() -> None:
    backend = ScriptedBackend(["no", json.dumps(VALID)], supports_schema=False, supports_tools=False)
    msgs = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "second"}]
    ask_structured(StandIn(backend), msgs, VerdictOut)
    first, second = backend.requests
    assert first.messages[0]["content"] == "first"
    assert first.messages[2]["content"].startswith("second\n\n") and "JSON schema" in first.messages[2]["content"]
    assert sum("JSON schema" in m["content"] for m in second.messages) == 1


def test_mode_override_and_first_mode() -> None:
    assert first_mode(ScriptedBackend([])) == "schema"
    assert first_mode(ScriptedBackend([], supports_schema=False)) == "tool"
    assert first_mode(ScriptedBackend([], supports_schema=False, supports_tools=False)) == "prompt"
    assert first_mode(ScriptedBackend([]), "tool") == "tool"
    assert MODES == ("schema", "tool", "prompt")
    with pytest.raises(ValueError):
        first_mode(ScriptedBackend([]), "xml")


def test_fatal_errors_pass_through() -> None:
    backend = ScriptedBackend([{"error": 401}])
    with pytest.raises(LLMAuthError):
        ask_structured(StandIn(backend), _msgs(), VerdictOut)
    assert len(backend.requests) == 1


def test_plan_out_end_to_end_messy() -> None:
    plan = (CORPUS / "nested_fence_in_string.txt").read_text(encoding="utf-8")
    backend = ScriptedBackend([plan], supports_schema=False, supports_tools=False)
    out = ask_structured(StandIn(backend, role="planner"), _msgs(), PlanOut)
    task = task_from_out(out.tasks[0], "qk norm")
    assert task.on_overrides() == {"model.qk_norm": True} and "```python" in out.plan_md


# --- with the real session ---------------------------------------------------------------------------------------------


def test_real_session_charges_each_try(tmp_path: Path) -> None:
    from autoresearch.agents.llm.session import AgentEnv, LLMSession
    from autoresearch.agents.llm.transcript import Transcript, read_transcript

    backend = ScriptedBackend({"analyzer": [{"json": {"kind": "great"}}, {"json": {"kind": "win", "summary": "x"}}]})
    env = AgentEnv.standalone(transcript=Transcript(tmp_path / "t.jsonl"), failed_dir=tmp_path / "failed")
    session = LLMSession(env, "analyzer", backend)
    out = ask_structured(session, _msgs(), AnalysisOut)
    assert out.kind == "win" and session.calls == 2
    assert [r.role for r in backend.requests] == ["analyzer", "analyzer"]
    records = read_transcript(tmp_path / "t.jsonl")
    assert [r["try"] for r in records] == [1, 2]
    assert env.book.spend("role", "analyzer").calls == 2


def test_real_session_budget_stops_the_reask(tmp_path: Path) -> None:
    from autoresearch.agents.llm.budget import BudgetBook, Limits
    from autoresearch.agents.llm.session import AgentEnv, LLMSession

    backend = ScriptedBackend(["bad", "bad", {"json": VALID}])
    env = AgentEnv.standalone(book=BudgetBook(run=Limits(calls=2)), failed_dir=tmp_path)
    with pytest.raises(BudgetError):
        ask_structured(LLMSession(env, "judge", backend), _msgs(), VerdictOut)
    assert len(backend.requests) == 2
    assert not list(tmp_path.glob("*.txt"))  # a budget stop is not a structured-output failure


def test_real_session_fallback_remembered(tmp_path: Path) -> None:
    from autoresearch.agents.llm.session import AgentEnv, LLMSession

    backend = ScriptedBackend([{"error": "unsupported"}, {"tool": "RevisionOut", "arguments": {"stop": True,
                                                                                               "reason": "done"}}])
    session = LLMSession(AgentEnv.standalone(), "reviser", backend)
    out = ask_structured(session, _msgs(), RevisionOut)
    assert out.stop and session.mode_override == "tool" and session.calls == 2


# --- a real small model (llama.cpp's OpenAI-compatible server; tests/local_llm.py) -----------------------------------


def test_schemas_compile_to_llama_cpp_grammars() -> None:
    """llama.cpp turns a JSON schema into a grammar; the flat schemas of json_schema_for all convert."""
    grammar = pytest.importorskip("llama_cpp.llama_grammar")
    for model in (PlanOut, TaskOut, FlagOut, VerdictOut, AnalysisOut, RevisionOut, schemas.EditOut):
        gbnf = grammar.json_schema_to_gbnf(json.dumps(json_schema_for(model)))
        grammar.LlamaGrammar.from_string(gbnf, verbose=False)
        # A `maxLength: 2500` once made PlanOut's grammar 36 kB of nested optionals and crashed the server (measured).
        assert len(gbnf) < 10_000, (model.__name__, len(gbnf))
    tasks = json_schema_for(PlanOut)["properties"]["tasks"]
    assert tasks["maxItems"] == 3 and "flags" in tasks["items"]["required"]


REVIEW = [{"role": "system", "content": "You are a strict code reviewer."},
          {"role": "user", "content": "The diff adds a flag model.qk_norm (default False); the checks and the "
                                      "regression passed. Give your verdict."}]


@pytest.mark.llm_local
@pytest.mark.slow
def test_local_model_tool_mode(local_llm_server: Any) -> None:
    from autoresearch.agents.llm.openai_backend import OpenAIBackend
    from autoresearch.agents.llm.session import AgentEnv, LLMSession

    session = LLMSession(AgentEnv.standalone(), "judge", OpenAIBackend("smollm2", local_llm_server.url))
    session.mode_override = "tool"
    out = ask_structured(session, REVIEW, VerdictOut, max_tokens=300)
    assert out.decision in DECISIONS  # schema-valid; whether the 135M model decides well is another matter


@pytest.mark.llm_local
@pytest.mark.slow
def test_local_model_default_chain(local_llm_server: Any) -> None:
    """From the best mode down: llama-cpp-python's server refuses `response_format: json_schema`, the chain must
    drop to a mode it serves and remember it."""
    from autoresearch.agents.llm.openai_backend import OpenAIBackend
    from autoresearch.agents.llm.retry import RetryPolicy
    from autoresearch.agents.llm.session import AgentEnv, LLMSession

    backend = OpenAIBackend("smollm2", local_llm_server.url, retry=RetryPolicy(max_retries=0))
    session = LLMSession(AgentEnv.standalone(), "judge", backend)
    out = ask_structured(session, REVIEW, VerdictOut, max_tokens=300)
    assert out.decision in DECISIONS and session.mode_override in ("tool", "prompt")


def test_an_answer_copying_the_instructions_example_text_is_asked_again() -> None:
    """Measured with SmolLM2-135M: a schema-valid analysis whose summary was the template's example sentence."""
    from autoresearch.agents.llm.session import AgentEnv, LLMSession

    system = ('Answer with ONE JSON object: {"kind": "win" | "noise", "summary": "one line: the kind and the key '
              'numbers"}')
    msgs = [{"role": "system", "content": system}, {"role": "user", "content": "the study: delta +0.5"}]
    copied = {"json": {"kind": "win", "summary": "One line:  the kind and the key numbers"}}
    own = {"json": {"kind": "win", "summary": "win: delta +0.5 over 2 seeds"}}
    backend = ScriptedBackend({"analyzer": [copied, own]})
    out = ask_structured(LLMSession(AgentEnv.standalone(), "analyzer", backend), msgs, AnalysisOut)
    assert out.summary == "win: delta +0.5 over 2 seeds" and len(backend.requests) == 2
    reask = backend.requests[1].messages[-1]["content"]
    assert "`summary` is the instructions' example text" in reask
    # a short quoted word ("win") is an allowed value, not an example to refuse
    assert ask_structured(LLMSession(AgentEnv.standalone(), "analyzer", ScriptedBackend([own])), msgs,
                          AnalysisOut).kind == "win"

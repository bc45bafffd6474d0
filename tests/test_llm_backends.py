"""LLM backends with no network: the OpenAI and Anthropic SDK backends against the stdlib fake server, retries,
error mapping, key hygiene, the scripted and replay backends, prices and specs."""

from __future__ import annotations

import json
import socket
import sys

import pytest

from autoresearch.agents.llm import retry as retry_mod
from autoresearch.agents.llm.anthropic_backend import AnthropicBackend, to_anthropic_messages
from autoresearch.agents.llm.backend import LLMRequest, Price, Tool, Usage
from autoresearch.agents.llm.openai_backend import OpenAIBackend
from autoresearch.agents.llm.prices import PRICES, lookup_price, price_for
from autoresearch.agents.llm.replay import ReplayBackend
from autoresearch.agents.llm.retry import (
    RetryPolicy,
    TransientError,
    backoff_s,
    http_error,
    parse_retry_after,
    with_retries,
)
from autoresearch.agents.llm.scripted import ScriptedBackend
from autoresearch.agents.llm.specs import BACKEND_SCHEMES, is_backend_spec, make_backend, split_spec
from autoresearch.errors import ConfigError, LLMAuthError, LLMContextError, LLMError, LLMUnsupportedError
from tests.fake_llm_server import (
    FakeLLMServer,
    anthropic_text,
    anthropic_tool,
    error,
    openai_text,
    openai_tool_call,
    raw,
)

KEY = "sk-test-h1-0123456789abcdefSECRET"
ANT_KEY = "sk-ant-test-h1-0123456789SECRET"


def _req(text: str = "hello", **kw) -> LLMRequest:
    return LLMRequest([{"role": "user", "content": text}], max_tokens=32, **kw)


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """Back-off waits, recorded instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr(retry_mod, "_sleep", waits.append)
    return waits


@pytest.fixture
def srv():
    with FakeLLMServer() as s:
        yield s


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANT_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)


def _openai(srv: FakeLLMServer, **kw) -> OpenAIBackend:
    return OpenAIBackend("fake-model", srv.url, **kw)


# --- retry ----------------------------------------------------------------------------------------------------------
def test_with_retries_counts_failed_tries_and_passes_fatal_errors_at_once():
    calls: list[int] = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("busy")
        return "ok"

    waits: list[float] = []
    assert with_retries(flaky, RetryPolicy(jitter=False), what="x", sleep=waits.append) == ("ok", 2)
    assert waits == [1.0, 2.0]  # exponential: base_s * 2**k

    def fatal():
        calls.append(1)
        raise LLMAuthError("bad key")

    calls.clear()
    with pytest.raises(LLMAuthError):
        with_retries(fatal, RetryPolicy(), what="x", sleep=waits.append)
    assert len(calls) == 1


def test_with_retries_gives_up_with_one_line():
    def busy():
        raise TransientError("HTTP 503: down\nsecond line")

    with pytest.raises(LLMError) as e:
        with_retries(busy, RetryPolicy(max_retries=2, base_s=0), what="openai:m", sleep=lambda s: None)
    msg = str(e.value)
    assert not isinstance(e.value, TransientError)
    assert "openai:m" in msg and "3 tries" in msg and "503" in msg and "\n" not in msg


def test_backoff_full_jitter_bounds_and_cap():
    p = RetryPolicy(base_s=1.0, max_s=5.0)
    for k in range(6):
        for _ in range(20):
            assert 0.0 <= backoff_s(p, k) <= min(5.0, 2 ** k)
    assert backoff_s(RetryPolicy(base_s=1, max_s=5, jitter=False), 10) == 5.0
    assert backoff_s(p, 0, retry_after_s=3.0) == 3.0       # Retry-After honoured exactly ...
    assert backoff_s(p, 0, retry_after_s=3600.0) == 5.0    # ... but capped at max_s


@pytest.mark.parametrize("headers,want", [
    ({"retry-after": "7"}, 7.0), ({"retry-after-ms": "250"}, 0.25), ({"retry-after": "1.5"}, 1.5),
    ({"retry-after": "soon"}, None), ({}, None), ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
])
def test_parse_retry_after(headers, want):
    assert parse_retry_after(headers) == want


@pytest.mark.parametrize("status,message,code,kind", [
    (429, "rate limited", None, TransientError), (500, "boom", None, TransientError),
    (503, "down", None, TransientError), (529, "overloaded", None, TransientError),
    (408, "timeout", None, TransientError), (401, "invalid api key", None, LLMAuthError),
    (403, "forbidden", None, LLMAuthError),
    (400, "This model's maximum context length is 4096 tokens", None, LLMContextError),
    (400, "too long", "context_length_exceeded", LLMContextError),
    (400, "prompt is too long: 250000 tokens > 200000 maximum", None, LLMContextError),
    (400, "the request exceeds the available context size, try increasing it", None, LLMContextError),
    (400, "response_format json_schema is not supported by this model", None, LLMUnsupportedError),
    (400, "tools are not supported for this model", None, LLMUnsupportedError),
    # llama-cpp-python's server 0.3.36 (measured): a json_schema response_format is refused with HTTP 500
    (500, "1 validation error: {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': "
          "\"Input should be 'text' or 'json_object'\"}", None, LLMUnsupportedError),
    (500, "validation error in the model runner", None, TransientError),
    (400, "temperature must be between 0 and 2", None, LLMError), (404, "model not found", None, LLMError),
    (422, "invalid body", None, LLMError),
])
def test_http_error_mapping(status, message, code, kind):
    e = http_error("openai:m", status, message, code=code, key_env="$OPENAI_API_KEY")
    assert type(e) is kind
    assert "openai:m" in str(e) and str(status) in str(e) and "\n" not in str(e)


# --- OpenAI backend -------------------------------------------------------------------------------------------------
def test_openai_text_answer_and_request_shape(srv, env):
    srv.script.append(openai_text("hi there", usage=(11, 3)))
    reply = _openai(srv, price=Price(1.0, 2.0)).complete(
        LLMRequest([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}],
                   max_tokens=64, temperature=0.2, seed=3, role="planner", tag="x/v1"))
    assert reply.text == "hi there" and reply.finish_reason == "stop" and reply.model == "fake-model"
    assert reply.usage == Usage(11, 3) and reply.retries == 0 and reply.latency_s > 0
    assert reply.cost_usd == pytest.approx((11 * 1.0 + 3 * 2.0) / 1e6)
    path, headers, body = srv.requests[0]
    assert path == "/v1/chat/completions"
    assert body["model"] == "fake-model" and body["max_tokens"] == 64 and body["temperature"] == 0.2
    assert body["seed"] == 3 and body["messages"][0] == {"role": "system", "content": "be brief"}
    assert "role" not in body and "tag" not in body and "planner" not in json.dumps(body)  # metadata stays local
    assert "response_format" not in body and "tools" not in body


def test_openai_429_then_success_honours_retry_after(srv, env, sleeps):
    srv.script += [error(429, "Rate limit reached", {"Retry-After": "7"}), openai_text("ok")]
    reply = _openai(srv).complete(_req())
    assert reply.text == "ok" and reply.retries == 1
    assert sleeps == [7.0]
    assert len(srv.requests) == 2


def test_openai_retry_after_is_capped(srv, env, sleeps):
    srv.script += [error(429, "slow down", {"Retry-After": "3600"}), openai_text("ok")]
    _openai(srv, retry=RetryPolicy(max_s=12.0)).complete(_req())
    assert sleeps == [12.0]


def test_openai_5xx_retried_with_backoff(srv, env, sleeps):
    srv.script += [error(500, "internal"), error(503, "unavailable"), openai_text("fine")]
    reply = _openai(srv, retry=RetryPolicy(base_s=1.0)).complete(_req())
    assert reply.text == "fine" and reply.retries == 2 and len(srv.requests) == 3
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 1.0 and 0 <= sleeps[1] <= 2.0


def test_openai_5xx_forever_gives_up(srv, env, sleeps):
    srv.script += [error(502, "bad gateway")] * 3
    with pytest.raises(LLMError, match="gave up after 3 tries") as e:
        _openai(srv, retry=RetryPolicy(max_retries=2)).complete(_req())
    assert "502" in str(e.value) and len(srv.requests) == 3 and len(sleeps) == 2


@pytest.mark.parametrize("status", [401, 403])
def test_openai_auth_error_fails_fast(srv, env, sleeps, status):
    srv.script += [error(status, "Incorrect API key provided"), openai_text("never")]
    with pytest.raises(LLMAuthError, match=r"\$OPENAI_API_KEY"):
        _openai(srv).complete(_req())
    assert len(srv.requests) == 1 and sleeps == []


@pytest.mark.parametrize("item", [
    error(400, "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens"),
    error(400, "Input too long", code="context_length_exceeded"),
])
def test_openai_context_window_error(srv, env, sleeps, item):
    srv.script += [item, openai_text("never")]
    with pytest.raises(LLMContextError, match="context"):
        _openai(srv).complete(_req())
    assert len(srv.requests) == 1


def test_openai_unsupported_response_format(srv, env, sleeps):
    srv.script.append(error(400, "'response_format.type' json_schema is not supported by this server"))
    with pytest.raises(LLMUnsupportedError):
        _openai(srv).complete(_req(schema={"type": "object"}))
    assert len(srv.requests) == 1


@pytest.mark.parametrize("status", [400, 404, 422])
def test_openai_other_4xx_fail_fast(srv, env, sleeps, status):
    srv.script += [error(status, "nope"), openai_text("never")]
    with pytest.raises(LLMError) as e:
        _openai(srv).complete(_req())
    assert not isinstance(e.value, (TransientError, LLMAuthError, LLMContextError, LLMUnsupportedError))
    assert len(srv.requests) == 1 and f"HTTP {status}" in str(e.value)


def test_openai_tool_call_parsed_and_tools_sent(srv, env):
    srv.script.append(openai_tool_call("submit_plan", {"plan_md": "# p", "tasks": [1, 2]}))
    tool = Tool("submit_plan", "Submit the plan.", {"type": "object", "properties": {"plan_md": {"type": "string"}}})
    reply = _openai(srv).complete(_req(tools=[tool], tool_choice="submit_plan"))
    assert reply.finish_reason == "tool_calls" and reply.text == ""
    assert len(reply.tool_calls) == 1
    call = reply.tool_calls[0]
    assert call.name == "submit_plan" and json.loads(call.arguments) == {"plan_md": "# p", "tasks": [1, 2]}
    assert call.id == "call_1"
    body = srv.requests[0][2]
    assert body["tools"] == [{"type": "function", "function": {
        "name": "submit_plan", "description": "Submit the plan.", "parameters": tool.parameters}}]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "submit_plan"}}


def test_openai_json_schema_request_body(srv, env):
    schema = {"type": "object", "properties": {"decision": {"type": "string"}}, "required": ["decision"]}
    srv.script.append(openai_text('{"decision": "approve"}'))
    reply = _openai(srv).complete(_req(schema=schema, schema_name="VerdictOut"))
    assert json.loads(reply.text) == {"decision": "approve"}
    body = srv.requests[0][2]
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "VerdictOut", "schema": schema, "strict": False}}
    assert "tool_choice" not in body


def test_openai_truncated_answer(srv, env):
    srv.script.append(openai_text('{"plan_md": "# half a pl', finish="length"))
    reply = _openai(srv).complete(_req())
    assert reply.finish_reason == "length" and reply.text.startswith('{"plan_md"')


def test_openai_missing_usage_is_none(srv, env):
    srv.script.append(openai_text("x", usage=None))
    reply = _openai(srv, price=Price(1.0, 1.0)).complete(_req())
    assert reply.usage is None and reply.cost_usd is None


def test_openai_garbage_body_is_transient_then_llm_error(srv, env, sleeps):
    srv.script += [raw("<html><body>502 Bad Gateway (proxy)</body></html>")] * 2
    with pytest.raises(LLMError, match="gave up after 2 tries") as e:
        _openai(srv, retry=RetryPolicy(max_retries=1)).complete(_req())
    assert "does not parse" in str(e.value) or "without a completion" in str(e.value)
    assert len(srv.requests) == 2


def test_openai_garbage_then_success(srv, env, sleeps):
    srv.script += [raw("not json at all", content_type="application/json"), raw('{"id": "x"}'),
                   {"status": 200, "body": {"choices": [{"index": 0}]}}, openai_text("ok")]
    reply = _openai(srv).complete(_req())
    assert reply.text == "ok" and reply.retries == 3


def test_openai_connection_refused_is_transient(env, sleeps):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = OpenAIBackend("m", f"http://127.0.0.1:{port}/v1", retry=RetryPolicy(max_retries=1))
    with pytest.raises(LLMError, match=r"gave up after 2 tries.*cannot reach"):
        b.complete(_req())
    assert len(sleeps) == 1


def test_openai_timeout_is_transient_for_a_remote_service(srv, env, sleeps, monkeypatch):
    import autoresearch.agents.llm.openai_backend as ob

    monkeypatch.setattr(ob, "is_local_url", lambda url: False)  # the fake server plays a remote service
    srv.script += [{**openai_text("late"), "delay_s": 1.0}, openai_text("on time")]
    reply = _openai(srv, timeout_s=0.3).complete(_req())
    assert reply.text == "on time" and reply.retries == 1


def test_openai_timeout_of_a_local_server_is_fatal_and_says_how_to_wait_longer(srv, env, sleeps):
    """A local server still works on the abandoned request: a retry would queue the same prompt behind it (measured
    with llama.cpp and SmolLM2 on 1 thread: 5 retries of a 116 s prompt took 10 minutes)."""
    srv.script += [{**openai_text("late"), "delay_s": 1.0}, openai_text("never asked")]
    with pytest.raises(LLMError, match=r"no answer within 0.3 s from the local server.*agents.timeout_s") as e:
        _openai(srv, timeout_s=0.3).complete(_req())
    assert not isinstance(e.value, TransientError) and sleeps == []


def test_openai_key_sent_in_header_and_nowhere_else(srv, env, sleeps):
    srv.script += [openai_text("fine"), error(401, f"Incorrect API key provided: {KEY}"), error(500, f"echo {KEY}")]
    b = _openai(srv, retry=RetryPolicy(max_retries=0))
    reply = b.complete(_req())
    assert srv.requests[0][1]["authorization"] == f"Bearer {KEY}"
    seen = [repr(b), str(b), b.spec, repr(reply), str(vars(reply))]
    for _ in range(2):
        with pytest.raises(LLMError) as e:
            b.complete(_req())
        seen += [str(e.value), repr(e.value), " ".join(map(str, e.value.args))]
    assert "[REDACTED]" in seen[-1]
    for text in seen:
        assert KEY not in text


def test_openai_local_url_needs_no_key_and_remote_does(srv, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    srv.script.append(openai_text("local"))
    assert _openai(srv).complete(_req()).text == "local"
    assert srv.requests[0][1]["authorization"].startswith("Bearer ")  # a placeholder, not a real key
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIBackend("gpt-4o-mini", "https://api.example.com/v1")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIBackend("gpt-4o-mini")  # the default URL is api.openai.com


def test_openai_base_url_from_env(srv, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
    srv.script.append(openai_text("via env"))
    b = OpenAIBackend("m")
    assert b.spec == "openai:m" and b.base_url == srv.url
    assert b.complete(_req()).text == "via env"


def test_openai_official_endpoint_uses_max_completion_tokens(env):
    assert OpenAIBackend("gpt-4o-mini")._params(_req())["max_completion_tokens"] == 32
    assert "max_tokens" not in OpenAIBackend("gpt-4o-mini")._params(_req())


def test_missing_sdk_gives_install_hint(monkeypatch, srv, env):
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(ConfigError, match=r"pip install 'autoresearch\[agents\]'"):
        OpenAIBackend("m", srv.url)
    monkeypatch.setitem(sys.modules, "anthropic", None)
    with pytest.raises(ConfigError, match=r"pip install 'autoresearch\[agents\]'"):
        AnthropicBackend("claude-x")


# --- Anthropic backend ----------------------------------------------------------------------------------------------
@pytest.fixture
def ant(srv, env, monkeypatch) -> AnthropicBackend:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.root)
    return AnthropicBackend("claude-test", price=Price(3.0, 15.0))


def test_anthropic_text_and_request_shape(srv, ant):
    srv.script.append(anthropic_text("bonjour", usage=(20, 4)))
    reply = ant.complete(LLMRequest([{"role": "system", "content": "You judge."},
                                     {"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
                                    max_tokens=50))
    assert reply.text == "bonjour" and reply.finish_reason == "stop" and reply.usage == Usage(20, 4)
    assert reply.cost_usd == pytest.approx((20 * 3 + 4 * 15) / 1e6)
    path, headers, body = srv.requests[0]
    assert path == "/v1/messages"
    assert ANT_KEY in (headers.get("x-api-key"), headers.get("authorization", "").removeprefix("Bearer "))
    assert body["system"] == "You judge." and body["max_tokens"] == 50 and body["model"] == "claude-test"
    assert body["messages"] == [{"role": "user", "content": "a\n\nb"}]  # one user turn


def test_anthropic_tool_use(srv, ant):
    srv.script.append(anthropic_tool("VerdictOut", {"decision": "revise", "blocking_issues": ["x"]}, text="Sure."))
    tool = Tool("VerdictOut", "The verdict.", {"type": "object"})
    reply = ant.complete(_req(tools=[tool], tool_choice="VerdictOut"))
    assert reply.finish_reason == "tool_calls" and reply.text == "Sure."
    assert reply.tool_calls[0].name == "VerdictOut" and reply.tool_calls[0].id == "toolu_1"
    assert json.loads(reply.tool_calls[0].arguments) == {"decision": "revise", "blocking_issues": ["x"]}
    body = srv.requests[0][2]
    assert body["tools"] == [{"name": "VerdictOut", "description": "The verdict.", "input_schema": {"type": "object"}}]
    assert body["tool_choice"] == {"type": "tool", "name": "VerdictOut"}


def test_anthropic_max_tokens_is_length(srv, ant):
    srv.script.append(anthropic_text("cut sh", stop="max_tokens"))
    assert ant.complete(_req()).finish_reason == "length"


def test_anthropic_overloaded_is_transient(srv, ant, sleeps):
    srv.script += [error(529, "Overloaded", anthropic=True, code="overloaded_error"),
                   error(429, "rate", {"retry-after": "2"}, anthropic=True), anthropic_text("ok")]
    reply = ant.complete(_req())
    assert reply.text == "ok" and reply.retries == 2 and sleeps[-1] == 2.0


def test_anthropic_garbage_is_transient(srv, ant, sleeps):
    srv.script += [raw("<html>proxy error</html>"), {"status": 200, "body": {"type": "message"}}, anthropic_text("ok")]
    reply = ant.complete(_req())
    assert reply.text == "ok" and reply.retries == 2


def test_anthropic_auth_and_context_errors_fail_fast(srv, ant, sleeps):
    srv.script += [error(401, f"invalid x-api-key {ANT_KEY}", anthropic=True, code="authentication_error"),
                   error(400, "prompt is too long: 210000 tokens > 200000 maximum", anthropic=True)]
    with pytest.raises(LLMAuthError, match=r"\$ANTHROPIC_API_KEY") as e:
        ant.complete(_req())
    assert ANT_KEY not in str(e.value)
    with pytest.raises(LLMContextError):
        ant.complete(_req())
    assert len(srv.requests) == 2 and sleeps == []


def test_anthropic_needs_key_and_has_no_schema_mode(srv, ant, monkeypatch):
    assert ant.supports_tools and not ant.supports_schema
    with pytest.raises(LLMUnsupportedError):
        ant.complete(_req(schema={"type": "object"}))
    assert srv.requests == []
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        AnthropicBackend("claude-test")


def test_to_anthropic_messages():
    system, turns = to_anthropic_messages([
        {"role": "system", "content": "s1"}, {"role": "user", "content": "u"}, {"role": "system", "content": "s2"},
        {"role": "assistant", "content": "a"}, {"role": "tool", "content": "t"}])
    assert system == "s1\n\ns2"
    assert turns == [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"},
                     {"role": "user", "content": "t"}]


# --- scripted -------------------------------------------------------------------------------------------------------
def test_scripted_answer_forms():
    b = ScriptedBackend(["plain", {"json": {"a": [1, 2]}}, {"tool": "f", "arguments": {"x": 1}},
                         {"text": "half", "finish_reason": "length"}])
    r1, r2, r3, r4 = (b.complete(_req("q" * 40)) for _ in range(4))
    assert r1.text == "plain" and r1.usage == Usage(10, 1) and r1.cost_usd == 0.0 and r1.finish_reason == "stop"
    assert json.loads(r2.text) == {"a": [1, 2]}
    assert r3.tool_calls[0].name == "f" and json.loads(r3.tool_calls[0].arguments) == {"x": 1}
    assert r3.finish_reason == "tool_calls"
    assert r4.text == "half" and r4.finish_reason == "length"
    assert len(b.requests) == 4 and b.requests[0].messages[0]["content"] == "q" * 40
    assert b.price == Price(0.0, 0.0, "scripted")


def test_scripted_roles_and_default():
    b = ScriptedBackend({"planner": ["p1", "p2"], "default": ["d1"]})
    assert b.complete(_req(role="planner")).text == "p1"
    assert b.complete(_req(role="judge")).text == "d1"
    assert b.complete(_req(role="planner")).text == "p2"
    with pytest.raises(LLMError, match=r"'judge' exhausted \(list 'default' had 1\)"):
        b.complete(_req(role="judge"))
    only = ScriptedBackend({"planner": ["p"]})
    with pytest.raises(LLMError, match="no answers for role 'coder'"):
        only.complete(_req(role="coder"))


def test_scripted_errors_behave_like_a_server(sleeps):
    b = ScriptedBackend([{"error": 429}, {"error": 500}, "after", {"error": 401}, "unused",
                         {"error": "unsupported"}, {"error": 400, "message": "maximum context length exceeded"}])
    reply = b.complete(_req())
    assert reply.text == "after" and reply.retries == 2
    with pytest.raises(LLMAuthError):
        b.complete(_req())
    assert b.complete(_req()).text == "unused"
    with pytest.raises(LLMUnsupportedError):
        b.complete(_req())
    with pytest.raises(LLMContextError):
        b.complete(_req())
    assert len(b.requests) == 7


def test_scripted_usage_override():
    b = ScriptedBackend([{"text": "x", "usage": [1000, 200]}])
    assert b.complete(_req()).usage == Usage(1000, 200)
    with pytest.raises(ConfigError, match="usage must be"):
        ScriptedBackend([{"text": "x", "usage": 5}])


def test_scripted_callable_answer():
    b = ScriptedBackend([lambda req: {"json": {"echo": req.messages[-1]["content"]}}])
    assert json.loads(b.complete(_req("ping")).text) == {"echo": "ping"}


def test_scripted_file_yaml_and_json(tmp_path):
    y = tmp_path / "answers.yaml"
    y.write_text("planner:\n  - json: {tasks: []}\ndefault:\n  - hello\n")
    b = make_backend(f"scripted:{y}")
    assert isinstance(b, ScriptedBackend) and b.spec == f"scripted:{y}"
    assert json.loads(b.complete(_req(role="planner")).text) == {"tasks": []}
    with pytest.raises(LLMError, match=rf"{y.name}.*'planner'.*had 1"):
        b.complete(_req(role="planner"))
    j = tmp_path / "a.json"
    j.write_text(json.dumps(["x"]))
    assert make_backend(f"scripted:{j}").complete(_req()).text == "x"


@pytest.mark.parametrize("answers,match", [
    ([{"txt": "typo"}], "unknown key"), ([{"error": 200}], "HTTP status"), ([3], "must be"),
    ({"planner": "not a list"}, "must be a list"), ([{"finish_reason": "length"}], "needs text"),
])
def test_scripted_bad_answers_are_config_errors(answers, match):
    with pytest.raises(ConfigError, match=match):
        ScriptedBackend(answers)


def test_scripted_missing_or_bad_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        make_backend(f"scripted:{tmp_path / 'nope.yaml'}")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        make_backend(f"scripted:{bad}")


# --- replay ---------------------------------------------------------------------------------------------------------
def _record(role: str, text: str | None, *, error: str | None = None, tool: dict | None = None) -> dict:
    response = None if text is None else {"text": text, "finish_reason": "stop", "tool_calls": [tool] if tool else []}
    return {"at": "2026-01-01T00:00:00+00:00", "run": 1, "role": role, "version": "", "backend": "openai:m",
            "model": "m", "request": {"messages": [], "tools": [], "schema_name": "", "max_tokens": 10,
                                      "temperature": 0.0},
            "response": response, "error": error, "usage": {"prompt": 5, "completion": 2}, "cost_usd": 0.01,
            "latency_s": 0.1, "retries": 0, "try": 1}


def test_replay_answers_per_role_in_order(tmp_path):
    path = tmp_path / "transcripts.jsonl"
    recs = [_record("planner", "plan A"), _record("judge", None, error="LLMError: boom"),
            _record("judge", "", tool={"name": "VerdictOut", "arguments": '{"decision": "approve"}', "id": "c1"}),
            _record("planner", "plan B")]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    b = make_backend(f"replay:{path}")
    assert isinstance(b, ReplayBackend) and b.price == Price(0.0, 0.0, "replay")
    assert b.complete(_req(role="judge")).tool_calls[0].name == "VerdictOut"  # the failed call was skipped
    first = b.complete(_req(role="planner"))
    assert first.text == "plan A" and first.usage == Usage(5, 2) and first.cost_usd == 0.0
    assert b.complete(_req(role="planner")).text == "plan B"
    with pytest.raises(LLMError, match=r"role 'planner' \(the transcript had 2\)"):
        b.complete(_req(role="planner"))
    with pytest.raises(LLMError, match="role 'coder'"):
        b.complete(_req(role="coder"))


def test_replay_round_trip_through_a_real_transcript(tmp_path):
    from autoresearch.agents.llm.transcript import Transcript, make_record

    live = ScriptedBackend({"planner": [{"json": {"a": 1}}], "judge": [{"tool": "VerdictOut",
                                                                         "arguments": {"decision": "approve"}}]})
    t = Transcript(tmp_path / "transcripts.jsonl")
    for role in ("planner", "judge"):
        req = _req(role=role)
        t.append(make_record(run=1, role=role, version="x/v1", backend=live, request=req, reply=live.complete(req)))
    b = ReplayBackend(t.path)
    assert json.loads(b.complete(_req(role="planner")).text) == {"a": 1}
    call = b.complete(_req(role="judge")).tool_calls[0]
    assert call.name == "VerdictOut" and json.loads(call.arguments) == {"decision": "approve"}


def test_replay_missing_or_empty(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        ReplayBackend(tmp_path / "none.jsonl")
    empty = tmp_path / "t.jsonl"
    empty.write_text(json.dumps(_record("planner", None, error="x")) + "\n")
    with pytest.raises(ConfigError, match="no successful call"):
        ReplayBackend(empty)


# --- prices ---------------------------------------------------------------------------------------------------------
def test_price_for_order():
    mine = {"gpt-4o-mini": Price(9.0, 9.0, "workspace.yaml agents.prices")}
    assert price_for("openai", "gpt-4o-mini", None, mine).input_per_mtok == 9.0          # override first
    assert price_for("openai", "gpt-4o-mini", "http://127.0.0.1:8080/v1", mine).source.startswith("workspace")
    assert price_for("openai", "qwen", "http://localhost:8080/v1") == Price(0.0, 0.0, "local server")
    assert price_for("scripted", "scripted") == Price(0.0, 0.0, "scripted")
    assert price_for("openai", "gpt-4o-mini") == PRICES["gpt-4o-mini"]
    assert price_for("openai", "gpt-4o-2024-08-06") == PRICES["gpt-4o"]
    assert price_for("anthropic", "claude-sonnet-4-5-20250929") == PRICES["claude-sonnet-4-5"]
    assert price_for("litellm", "anthropic/claude-haiku-4-5") == PRICES["claude-haiku-4-5"]
    assert price_for("openai", "gpt-4o-mini", "https://openrouter.ai/api/v1") is None     # a proxy bills its own way
    assert price_for("openai", "my-finetune") is None
    assert lookup_price("gpt-4o-audio-preview") is None  # not a snapshot of gpt-4o


def test_price_table_is_sourced():
    for model, p in PRICES.items():
        assert p.input_per_mtok > 0 and p.output_per_mtok >= p.input_per_mtok, model
        assert p.source.startswith("https://") and "20" in p.source, model


# --- specs ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec,want", [
    ("openai:gpt-4o-mini", ("openai", "gpt-4o-mini", None)),
    ("openai:qwen@http://127.0.0.1:8080/v1", ("openai", "qwen", "http://127.0.0.1:8080/v1")),
    ("openai:org/model@v2@https://host/v1", ("openai", "org/model@v2", "https://host/v1")),
    ("openai:user@host-model", ("openai", "user@host-model", None)),
    ("anthropic:claude-sonnet-4-5", ("anthropic", "claude-sonnet-4-5", None)),
    ("scripted:answers.yaml", ("scripted", "answers.yaml", None)),
    ("replay:/x/transcripts.jsonl", ("replay", "/x/transcripts.jsonl", None)),
])
def test_split_spec(spec, want):
    assert split_spec(spec) == want and is_backend_spec(spec)


@pytest.mark.parametrize("spec", ["gpt-4o", "openai:", "claude", "foo:bar", "openai:@http://h/v1", "scripted:",
                                  "openai:m@ftp://x"])
def test_bad_specs(spec):
    assert not is_backend_spec(spec) or spec.endswith("/v1") or "://" in spec  # shaped like a spec, bad URL
    with pytest.raises(ConfigError, match="openai:MODEL"):
        make_backend(spec)


def test_make_backend_openai_local_is_free(srv, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    b = make_backend(f"openai:qwen@{srv.url}")
    assert isinstance(b, OpenAIBackend) and b.spec == f"openai:qwen@{srv.url}" and b.model == "qwen"
    assert b.price == Price(0.0, 0.0, "local server") and b.supports_schema and b.supports_tools
    assert set(BACKEND_SCHEMES) == {"openai", "anthropic", "litellm", "replay", "scripted"}


def test_make_backend_prices_and_anthropic(env):
    b = make_backend("anthropic:claude-haiku-4-5", prices={"claude-haiku-4-5": Price(0.5, 0.5, "mine")})
    assert isinstance(b, AnthropicBackend) and b.price.source == "mine"
    assert make_backend("openai:unknown-model").price is None


def test_litellm_missing_gives_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "litellm", None)
    with pytest.raises(ConfigError, match="pip install litellm"):
        make_backend("litellm:gemini/gemini-2.0-flash")


# --- the contract every backend keeps -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["openai", "anthropic", "scripted", "replay"])
def test_backend_contract(kind, srv, env, monkeypatch, tmp_path):
    """Every backend: text in, an LLMReply out with text, usage, cost (priced), latency, model and a finish reason in
    the OpenAI vocabulary; the spec round-trips through make_backend and carries no key."""
    if kind == "openai":
        srv.script.append(openai_text("answer"))
        spec = f"openai:fake-model@{srv.url}"
    elif kind == "anthropic":
        monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.root)
        srv.script.append(anthropic_text("answer"))
        spec = "anthropic:claude-haiku-4-5"
    elif kind == "scripted":
        (tmp_path / "a.yaml").write_text("- answer\n")
        spec = f"scripted:{tmp_path / 'a.yaml'}"
    else:
        (tmp_path / "t.jsonl").write_text(json.dumps(_record("", "answer")) + "\n")
        spec = f"replay:{tmp_path / 't.jsonl'}"
    b = make_backend(spec)
    assert b.spec == spec and b.scheme == kind and repr(b) == f"{type(b).__name__}({spec!r})"
    assert b.price is not None
    reply = b.complete(_req())
    assert reply.text == "answer" and reply.finish_reason == "stop" and reply.model
    assert reply.usage is not None and reply.cost_usd is not None and reply.latency_s >= 0 and reply.retries == 0
    for text in (spec, repr(b), repr(reply)):
        assert KEY not in text and ANT_KEY not in text


def test_sdks_are_imported_lazily():
    import subprocess

    code = ("import sys, autoresearch.agents.llm; "
            "print(sorted(m for m in ('openai', 'anthropic', 'litellm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.strip() == "[]"

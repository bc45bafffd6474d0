"""LLM transport (harness/llm): chat vs completion requests, usage/finish reason/latency parsed, one-line errors, all
against a real local HTTP server."""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler

import pytest

from autoresearch.errors import ConfigError, LLMError
from autoresearch.harness.llm import Message, OpenAIClient, Usage, as_messages
from tests.conftest import serve_http


class _Handler(BaseHTTPRequestHandler):
    calls: list[dict] = []
    failures: dict[str, int] = {}

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.calls.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        model = body["model"]
        if model == "locked":
            return self._send(401, {"error": {"message": "invalid\nkey", "type": "auth"}})
        if model == "missing":
            return self._send(404, {"error": "no such model"})
        if model == "bad-param":
            return self._send(400, {"error": "max_tokens too large"})
        if model == "slow":
            time.sleep(1.0)
        if model == "html":
            return self._send_raw(200, b"<html>not an api</html>")
        if model == "empty":
            return self._send(200, {"choices": []})
        if _Handler.failures.get(model, 0) > 0:
            _Handler.failures[model] -= 1
            return self._send(503, {"error": "busy"})
        n = body.get("n", 1)
        if self.path.endswith("/chat/completions"):
            last = body["messages"][-1]["content"]
            choices = [{"index": i, "message": {"role": "assistant", "content": f"chat:{last}:{i}"},
                        "finish_reason": "stop"} for i in range(n)]
        else:
            choices = [{"index": i, "text": f"text:{body['prompt']}:{i}", "finish_reason": "length"}
                       for i in reversed(range(n))]
        reply: dict = {"model": model, "choices": choices}
        if model != "no-usage":
            reply["usage"] = {"prompt_tokens": 11, "completion_tokens": 5 * n, "total_tokens": 11 + 5 * n}
        self._send(200, reply)

    def _send(self, code, obj):
        self._send_raw(code, json.dumps(obj).encode())

    def _send_raw(self, code, data):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out ("slow")
            pass


@pytest.fixture(scope="module")
def url():
    with serve_http(_Handler) as base:
        yield base


def _client(url: str, model: str = "m", **kw) -> OpenAIClient:
    return OpenAIClient(model, base_url=url, api_key=kw.pop("api_key", "k"), backoff_s=0.01, **kw)


def test_chat_request_and_response(url):
    _Handler.calls.clear()
    msgs = [Message("system", "be brief"), {"role": "user", "content": "hi"}]
    r = _client(url).chat(msgs, n=2, temperature=0.3, max_tokens=9, stop=["a", "b", "c", "d", "e"])
    (call,) = _Handler.calls
    assert call["path"] == "/v1/chat/completions" and call["auth"] == "Bearer k"
    body = call["body"]
    assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert (body["model"], body["n"], body["temperature"], body["max_tokens"]) == ("m", 2, 0.3, 9)
    assert body["stop"] == ["a", "b", "c", "d"]  # the API takes at most four
    assert r.texts == ["chat:hi:0", "chat:hi:1"] and r.text == "chat:hi:0"
    assert r.finish_reason == "stop" and r.usage == Usage(11, 10) and r.usage.total_tokens == 21
    assert r.latency_s > 0 and r.attempts == 1 and r.model == "m"


def test_completion_request_sorts_choices_and_reads_finish_reason(url):
    _Handler.calls.clear()
    r = _client(url).complete("def f():", n=3, max_tokens=4)
    (call,) = _Handler.calls
    assert call["path"] == "/v1/completions" and call["body"]["prompt"] == "def f():" and "messages" not in call["body"]
    assert r.texts == ["text:def f()::0", "text:def f()::1", "text:def f()::2"]  # server sent them reversed
    assert [c.finish_reason for c in r.choices] == ["length"] * 3 and r.usage == Usage(11, 15)


def test_missing_usage_is_none_not_zero(url):
    r = _client(url, "no-usage").complete("x")
    assert r.usage is None and r.text == "text:x:0"


def test_env_base_url_and_key(url, monkeypatch):
    _Handler.calls.clear()
    monkeypatch.setenv("OPENAI_BASE_URL", url + "/")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    c = OpenAIClient("m")
    assert c.base_url == url and c.url(True) == url + "/chat/completions"
    c.chat([{"role": "user", "content": "q"}])
    assert _Handler.calls[-1]["auth"] == "Bearer sk-env"
    monkeypatch.delenv("OPENAI_API_KEY")
    OpenAIClient("m").complete("q")
    assert _Handler.calls[-1]["auth"] is None  # local servers need no key


def test_retries_on_5xx_then_succeeds(url):
    _Handler.failures["flaky"] = 2
    r = _client(url, "flaky", max_retries=3).complete("x")
    assert r.text == "text:x:0" and r.attempts == 3


@pytest.mark.parametrize(
    ("model", "match"),
    [
        ("locked", r"HTTP 401: .*invalid key.*; check OPENAI_API_KEY$"),
        ("missing", r"HTTP 404: .*; check the base URL .* and the model name$"),
        ("bad-param", r"HTTP 400: .*max_tokens too large.*; check the model name and the request parameters$"),
        ("html", r"response is not JSON .*; check that .* is an OpenAI-compatible API"),
        ("empty", r"returned no choices for model empty; check the model name$"),
    ],
)
def test_errors_are_one_line_with_a_fix(url, model, match):
    _Handler.calls.clear()
    with pytest.raises(LLMError, match=match) as e:
        _client(url, model, max_retries=1).complete("x")
    assert "\n" not in str(e.value) and f"model {model}" in str(e.value)
    if model in ("locked", "missing", "bad-param"):
        assert len(_Handler.calls) == 1  # a client error is not retried


def test_busy_server_error_after_retries(url):
    _Handler.failures["busy"] = 10
    with pytest.raises(LLMError, match=r"failed after 3 tries: HTTP 503.*retry later") as e:
        _client(url, "busy", max_retries=2).complete("x")
    assert "\n" not in str(e.value)
    _Handler.failures["busy"] = 0


def test_connection_refused_and_timeout(url):
    with pytest.raises(LLMError, match=r"cannot connect .*check the server is up at http://127.0.0.1:9/v1"):
        OpenAIClient("m", base_url="http://127.0.0.1:9/v1", max_retries=0).complete("x")
    with pytest.raises(LLMError, match=r"no answer within 0.2s.*raise the timeout"):
        _client(url, "slow", max_retries=0, timeout_s=0.2).complete("x")


def test_message_validation():
    assert as_messages([Message("user", "a")]) == [{"role": "user", "content": "a"}]
    with pytest.raises(ConfigError, match="at least one message"):
        as_messages([])
    with pytest.raises(ConfigError, match="role 'robot'"):
        as_messages([{"role": "robot", "content": "a"}])
    with pytest.raises(ConfigError, match="must have `role` and `content`"):
        as_messages([{"role": "user"}])
    with pytest.raises(ConfigError, match="content must be a string"):
        as_messages([{"role": "user", "content": 3}])

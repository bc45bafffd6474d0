"""Samplers: one contract every adapter passes, the OpenAI-compatible adapter against a local HTTP server, specs."""

from __future__ import annotations

import json
import sys
import types
from http.server import BaseHTTPRequestHandler

import pytest

from autoresearch.errors import AutoresearchError, ConfigError
from autoresearch.harness.samplers import (
    CallableSampler,
    HFSampler,
    OpenAISampler,
    Sampler,
    get_sampler,
    register_sampler_factory,
)
from tests.conftest import serve_http


class _Handler(BaseHTTPRequestHandler):
    calls: list[dict] = []
    failures: dict[str, int] = {}

    def log_message(self, *a):  # keep pytest output clean
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.calls.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        model = body["model"]
        if model == "locked":
            return self._send(401, {"error": "bad key"})
        if _Handler.failures.get(model, 0) > 0:
            _Handler.failures[model] -= 1
            return self._send(503, {"error": "busy"})
        n = 1 if model == "single" else body["n"]
        start = sum(1 for c in _Handler.calls if c["body"].get("model") == model) * 100  # distinct texts per call
        if self.path.endswith("/chat/completions"):
            prompt = body["messages"][-1]["content"]
            choices = [{"index": i, "message": {"content": f"{prompt}#{start + i} STOP tail"}} for i in range(n)]
        else:
            prompt = body["prompt"]
            choices = [{"index": i, "text": f"{prompt}#{start + i} STOP tail"} for i in reversed(range(n))]
        self._send(200, {"choices": choices})

    def _send(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def server():
    with serve_http(_Handler) as base:
        yield base


def _echo(prompt, *, n, temperature, top_p, max_tokens, stop):
    return [f"{prompt}#{i} STOP tail" for i in range(n)]


def _one(prompt, **kw):
    return f"{prompt}# STOP tail"


def _adapters(url: str) -> dict[str, Sampler]:
    return {
        "callable-list": CallableSampler(_echo),
        "callable-str": CallableSampler(_one),
        "openai": OpenAISampler("m", base_url=url, api_key="k", backoff_s=0.01),
        "openai-chat": OpenAISampler("m", base_url=url, api_key="k", chat=True, backoff_s=0.01),
        "openai-ignores-n": OpenAISampler("single", base_url=url, backoff_s=0.01),
    }


@pytest.mark.parametrize("name", list(_adapters("http://x")))
def test_sampler_contract(server, name):
    """Every adapter: n strings per prompt, prompts in order, cut at the first stop sequence."""
    s = _adapters(server)[name]
    out = s.generate(["p0", "p1", "p2"], n=3, temperature=0.5, top_p=0.9, max_tokens=16, stop=[" STOP"])
    assert len(out) == 3 and all(len(o) == 3 for o in out)
    for i, texts in enumerate(out):
        assert all(isinstance(t, str) and t.startswith(f"p{i}#") and "STOP" not in t for t in texts)
    with pytest.raises(ConfigError):
        s.generate(["p"], n=0)


def test_openai_request_shape_and_auth(server, monkeypatch):
    _Handler.calls.clear()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", server)
    s = get_sampler("openai:my-model")
    assert isinstance(s, OpenAISampler) and s.base_url == server
    s.generate(["hello"], n=2, temperature=0.2, top_p=0.8, max_tokens=7, stop=["a", "b", "c", "d", "e"])
    (call,) = _Handler.calls
    assert call["path"] == "/v1/completions" and call["auth"] == "Bearer sk-test"
    body = call["body"]
    assert body["model"] == "my-model" and body["prompt"] == "hello" and body["n"] == 2
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.2, 0.8, 7)
    assert body["stop"] == ["a", "b", "c", "d"]  # the API takes at most four; the fifth is applied locally


def test_openai_retries_then_fails_with_a_fix(server):
    _Handler.failures["flaky"] = 2
    s = OpenAISampler("flaky", base_url=server, backoff_s=0.01, max_retries=3)
    assert len(s.generate(["x"], n=1)[0]) == 1  # two 503s, then success
    with pytest.raises(AutoresearchError, match="HTTP 401.*check OPENAI_API_KEY"):
        OpenAISampler("locked", base_url=server, backoff_s=0.01).generate(["x"])
    with pytest.raises(AutoresearchError, match="check the server is up"):
        OpenAISampler("m", base_url="http://127.0.0.1:9/v1", max_retries=1, backoff_s=0.01).generate(["x"])


def test_spec_parsing(server, monkeypatch):
    s = get_sampler(f"openai:llama3:8b@{server}")
    assert isinstance(s, OpenAISampler) and s.model == "llama3:8b" and s.base_url == server and not s.chat
    c = get_sampler(f"openai-chat:gpt-x@{server}")
    assert isinstance(c, OpenAISampler) and c.chat and c.url.endswith("/chat/completions")
    mod = types.ModuleType("fake_sampler_mod")
    mod.fn = _echo
    monkeypatch.setitem(sys.modules, "fake_sampler_mod", mod)
    p = get_sampler("python:fake_sampler_mod:fn")
    assert isinstance(p, CallableSampler) and p.generate(["q"], n=2) == [["q#0 STOP tail", "q#1 STOP tail"]]
    with pytest.raises(ConfigError, match="unknown model spec"):
        get_sampler("gguf:/x")
    with pytest.raises(ConfigError, match="python:module:function"):
        get_sampler("python:nomodule")


def test_registration_hook_for_higher_layers(monkeypatch):
    from autoresearch.harness import samplers

    monkeypatch.setattr(samplers, "_FACTORIES", dict(samplers._FACTORIES))
    made = []
    register_sampler_factory("exp-", lambda spec: made.append(spec) or CallableSampler(_one))
    s = get_sampler("exp-007")
    assert made == ["exp-007"] and s.generate(["a"], n=2) == [["a# STOP tail", "a# STOP tail"]]
    register_sampler_factory("exp-00", lambda spec: CallableSampler(_echo))
    assert get_sampler("exp-007").generate(["a"], n=1) == [["a#0 STOP tail"]]  # the longest prefix wins


def test_hf_sampler_without_transformers_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ConfigError, match=r"pip install 'autoresearch\[hf\]'"):
        get_sampler("hf:/tmp/model")


def test_hf_sampler_contract_on_a_tiny_local_model(tmp_path):
    transformers = pytest.importorskip("transformers")  # optional extra; CI installs only [test]
    cfg = transformers.GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=300, n_positions=64)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(tmp_path)
    tok_dir = tmp_path
    pytest.importorskip("tokenizers")
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["def f(x):\n    return x\n"] * 20, vocab_size=300, min_frequency=1)
    transformers.PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="</s>").save_pretrained(tok_dir)
    s = HFSampler(tmp_path, device="cpu")
    out = s.generate(["def f(x):", "x"], n=2, max_tokens=5, temperature=0.8, top_p=0.9)
    assert len(out) == 2 and all(len(o) == 2 and all(isinstance(t, str) for t in o) for o in out)

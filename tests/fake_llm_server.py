"""A stdlib fake LLM server for tests with no network: OpenAI-compatible POST /v1/chat/completions and Anthropic POST
/v1/messages, answered from a scripted queue.

    with FakeLLMServer() as srv:
        srv.script += [error(429, "slow down", {"Retry-After": "2"}), openai_text("hi")]
        backend = OpenAIBackend("m", srv.url)              # srv.url = http://127.0.0.1:PORT/v1
        ...
        path, headers, body = srv.requests[-1]

The server is a `ThreadingHTTPServer` on 127.0.0.1 with a free port, serving from a daemon thread. Each POST pops the
next item of `.script` (a dict `{status, body, headers, delay_s}`; `body` a dict is sent as JSON, a str as raw text)
and records `(path, headers, json body or raw text)` in `.requests`. An empty queue answers 500 "script exhausted".
The Anthropic SDK appends `/v1/messages` to its base URL, so point it at `.root` (no `/v1`).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeLLMServer", "openai_text", "openai_tool_call", "anthropic_text", "anthropic_tool", "error", "raw"]


# --- scripted responses ---------------------------------------------------------------------------------------------
def openai_text(text: str, finish: str = "stop", usage: tuple[int, int] | None = (10, 5), model: str = "fake-model",
                **extra: Any) -> dict[str, Any]:
    """A chat completion answering `text` (usage None = the server reports none, as some local servers do)."""
    body: dict[str, Any] = {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 1700000000, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
    return {"status": 200, "body": body, **extra}


def openai_tool_call(name: str, args: dict[str, Any], usage: tuple[int, int] = (12, 7), model: str = "fake-model",
                     call_id: str = "call_1") -> dict[str, Any]:
    """A chat completion whose answer is one function call `name(**args)`."""
    body = {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 1700000000, "model": model,
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": None,
            "tool_calls": [{"id": call_id, "type": "function",
                            "function": {"name": name, "arguments": json.dumps(args)}}]}}],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
    }
    return {"status": 200, "body": body}


def _anthropic(content: list[dict[str, Any]], stop: str, usage: tuple[int, int], model: str) -> dict[str, Any]:
    return {"status": 200, "body": {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": stop, "stop_sequence": None,
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1]}}}


def anthropic_text(text: str, stop: str = "end_turn", usage: tuple[int, int] = (10, 5),
                   model: str = "fake-claude") -> dict[str, Any]:
    """An Anthropic message answering `text`."""
    return _anthropic([{"type": "text", "text": text}], stop, usage, model)


def anthropic_tool(name: str, input: dict[str, Any], text: str = "", usage: tuple[int, int] = (12, 7),
                   model: str = "fake-claude", call_id: str = "toolu_1") -> dict[str, Any]:
    """An Anthropic message whose answer is one tool_use block (after an optional text block)."""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content.append({"type": "tool_use", "id": call_id, "name": name, "input": input})
    return _anthropic(content, "tool_use", usage, model)


def error(status: int, message: str, headers: dict[str, str] | None = None, code: str | None = None,
          anthropic: bool = False) -> dict[str, Any]:
    """An error answer in the OpenAI shape ({"error": {"message", "type", "code"}}), or Anthropic's
    ({"type": "error", "error": {"type", "message"}}) with `anthropic=True`."""
    if anthropic:
        body: dict[str, Any] = {"type": "error", "error": {"type": code or "api_error", "message": message}}
    else:
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    return {"status": status, "body": body, "headers": dict(headers or {})}


def raw(text: str, status: int = 200, content_type: str = "text/html") -> dict[str, Any]:
    """A non-JSON body (a proxy's HTML page, a torn answer)."""
    return {"status": status, "body": text, "headers": {"Content-Type": content_type}}


# --- the server -----------------------------------------------------------------------------------------------------
class FakeLLMServer:
    """The fake server; a context manager (start on enter, stop on exit). `.script` is the queue of responses,
    `.requests` the list of `(path, headers, body)` received (headers with lower-case names)."""

    def __init__(self) -> None:
        self.script: list[dict[str, Any]] = []
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._httpd is not None, "FakeLLMServer is not started"
        return self._httpd.server_address[1]

    @property
    def root(self) -> str:
        """http://127.0.0.1:PORT (the Anthropic SDK's base URL)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT/v1 (the OpenAI SDK's base URL)."""
        return f"{self.root}/v1"

    def start(self) -> FakeLLMServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                self._reply({"status": 404, "body": {"error": {"message": f"no GET route {self.path}"}}})

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(n).decode("utf-8", "replace")
                try:
                    body: Any = json.loads(data)
                except ValueError:
                    body = data
                headers = {k.lower(): v for k, v in self.headers.items()}
                with server._lock:
                    server.requests.append((self.path, headers, body))
                    item = server.script.pop(0) if server.script else {
                        "status": 500, "body": {"error": {"message": "script exhausted", "type": "server_error"}}}
                if not (self.path.endswith("/chat/completions") or self.path.endswith("/messages")):
                    item = {"status": 404, "body": {"error": {"message": f"no route {self.path}"}}}
                self._reply(item)

            def _reply(self, item: dict[str, Any]) -> None:
                if item.get("delay_s"):
                    time.sleep(float(item["delay_s"]))
                payload = item.get("body", {})
                headers = dict(item.get("headers") or {})
                if isinstance(payload, str):
                    data = payload.encode()
                    headers.setdefault("Content-Type", "text/plain")
                else:
                    data = json.dumps(payload).encode()
                    headers.setdefault("Content-Type", "application/json")
                try:
                    self.send_response(int(item.get("status", 200)))
                    for k, v in headers.items():
                        self.send_header(k, str(v))
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-llm-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def bodies(self) -> list[Any]:
        """The JSON bodies received, in order."""
        return [b for _, _, b in self.requests]

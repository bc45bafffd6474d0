"""The OpenAI-compatible HTTP transport: one POST to /chat/completions or /completions, retried, parsed.

Works with api.openai.com and any server that speaks the same API (vLLM, llama.cpp server, ollama, TGI, ...); plain
urllib, no SDK. The base URL defaults to $OPENAI_BASE_URL (else https://api.openai.com/v1) and the key comes from
$OPENAI_API_KEY (optional for local servers). Requests are retried on 408/409/429/5xx, network errors, timeouts and
non-JSON answers, with exponential back-off; a request that still fails raises `LLMError` on one line naming the URL,
the model, what went wrong and the fix. This module runs in the caller's thread (samplers fan out over a thread
pool) and holds no state between calls.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import Any

from autoresearch.errors import LLMError
from autoresearch.harness.llm.messages import Choice, MessageLike, Response, Usage, as_messages
from autoresearch.harness.settings import DEFAULT_OPENAI_BASE_URL, load_settings

__all__ = ["DEFAULT_BASE_URL", "MAX_API_STOPS", "OpenAIClient"]

DEFAULT_BASE_URL = DEFAULT_OPENAI_BASE_URL
MAX_API_STOPS = 4
"""The OpenAI API accepts at most four stop sequences; callers apply the rest to the text themselves."""
_RETRY_CODES = (408, 409, 429)


def _one_line(text: str, limit: int = 200) -> str:
    return " ".join(text.split())[:limit]


class OpenAIClient:
    """A client for one model on one OpenAI-compatible server."""

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
    ) -> None:
        self.model = model
        env = load_settings()  # $OPENAI_BASE_URL, $OPENAI_API_KEY
        self.base_url = (base_url or env.openai_base_url).rstrip("/")
        self.api_key = api_key if api_key is not None else env.openai_api_key
        self.timeout_s = timeout_s
        self.max_retries = max(0, max_retries)
        self.backoff_s = backoff_s

    def url(self, chat: bool) -> str:
        return f"{self.base_url}/{'chat/completions' if chat else 'completions'}"

    # --- requests ---------------------------------------------------------------------------------------------------
    def chat(self, messages: Iterable[MessageLike], **params: Any) -> Response:
        """POST /chat/completions with `messages`; `params` (n, temperature, top_p, max_tokens, stop, ...) go into
        the body as given."""
        return self._request(True, {"messages": as_messages(messages)}, params)

    def complete(self, prompt: str, **params: Any) -> Response:
        """POST /completions with a raw `prompt` (the model continues it)."""
        return self._request(False, {"prompt": prompt}, params)

    def _request(self, chat: bool, payload: dict[str, Any], params: dict[str, Any]) -> Response:
        stop = params.get("stop")
        if stop is not None:
            params = {**params, "stop": list(stop)[:MAX_API_STOPS]} if stop else {
                k: v for k, v in params.items() if k != "stop"}
        body = {"model": self.model, **params, **payload}
        t0 = time.monotonic()
        raw, attempts = self._post(self.url(chat), body)
        return self._parse(chat, raw, time.monotonic() - t0, attempts)

    # --- wire -------------------------------------------------------------------------------------------------------
    def _post(self, url: str, body: dict[str, Any]) -> tuple[Any, int]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode("utf-8")
        last, fix = "", ""
        for attempt in range(self.max_retries + 1):
            req = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    return json.loads(resp.read().decode("utf-8")), attempt + 1
            except urllib.error.HTTPError as e:
                last, fix = f"HTTP {e.code}: {_error_detail(e.read())}", _http_fix(e.code)
                if e.code not in _RETRY_CODES and e.code < 500:
                    break  # a client error will not fix itself
            except urllib.error.URLError as e:
                reason = e.reason
                if isinstance(reason, TimeoutError):
                    last, fix = self._timeout(reason)
                else:
                    last = f"cannot connect ({_one_line(str(reason))})"
                    fix = f"check the server is up at {self.base_url} (or set OPENAI_BASE_URL)"
            except TimeoutError as e:
                last, fix = self._timeout(e)
            except (ConnectionError, OSError) as e:
                last = f"connection failed ({type(e).__name__}: {_one_line(str(e))})"
                fix = f"check the server is up at {self.base_url} (or set OPENAI_BASE_URL)"
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                last = f"response is not JSON ({getattr(e, 'msg', e)})"
                fix = f"check that {self.base_url} is an OpenAI-compatible API (it usually ends in /v1)"
            if attempt < self.max_retries:
                time.sleep(self.backoff_s * 2**attempt)
        tries = f" after {attempt + 1} tries" if attempt else ""
        raise LLMError(f"request to {url} (model {self.model}) failed{tries}: {last}; {fix}")

    def _timeout(self, e: BaseException) -> tuple[str, str]:
        return (f"no answer within {self.timeout_s:g}s ({type(e).__name__})",
                "check the server is up and not overloaded, or raise the timeout")

    def _parse(self, chat: bool, raw: Any, latency_s: float, attempts: int) -> Response:
        url = self.url(chat)
        if not isinstance(raw, dict):
            raise LLMError(f"{url} answered {type(raw).__name__} JSON, not an object; check the base URL "
                           f"{self.base_url} is an OpenAI-compatible API")
        if "error" in raw and not raw.get("choices"):
            raise LLMError(f"{url} (model {self.model}) returned an error: {_one_line(str(raw['error']))}; "
                           "check the model name and parameters")
        items = raw.get("choices") or []
        if not isinstance(items, list) or not items:
            raise LLMError(f"{url} returned no choices for model {self.model}; check the model name")
        choices = []
        for i, c in enumerate(sorted(items, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)):
            if not isinstance(c, dict):
                raise LLMError(f"{url} returned a malformed choice {c!r:.60}; check the server speaks the OpenAI API")
            text = (c.get("message") or {}).get("content") if chat else c.get("text")
            choices.append(Choice(text or "", c.get("finish_reason") or "", c.get("index", i)))
        return Response(choices, _usage(raw.get("usage")), latency_s, str(raw.get("model") or self.model), attempts)


def _error_detail(body: bytes) -> str:
    """The server's error message (OpenAI: {"error": {"message": ...}}), else the start of the body, on one line."""
    text = body.decode("utf-8", "replace")
    try:
        err = json.loads(text).get("error")
    except (json.JSONDecodeError, AttributeError):
        return _one_line(text)
    msg = err.get("message") if isinstance(err, dict) else err
    return _one_line(str(msg if msg else text))


def _usage(u: Any) -> Usage | None:
    if not isinstance(u, dict):
        return None
    p, c = u.get("prompt_tokens"), u.get("completion_tokens")
    if not isinstance(p, int) and not isinstance(c, int):
        return None
    return Usage(p if isinstance(p, int) else 0, c if isinstance(c, int) else 0)


def _http_fix(code: int) -> str:
    if code in (401, 403):
        return "check OPENAI_API_KEY"
    if code == 404:
        return "check the base URL (it usually ends in /v1) and the model name"
    if code in _RETRY_CODES or code >= 500:
        return "the server is busy or failing; check the server is up and retry later"
    return "check the model name and the request parameters"


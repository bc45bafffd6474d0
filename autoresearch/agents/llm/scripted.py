"""`scripted:FILE` — canned answers for tests and demos: no model, no network, no cost.

The file (YAML or JSON) holds either a list of answers, served in order, or a mapping role -> list of answers (a
request's `role` picks its list; a `default` list serves the roles not named). An answer is one of

    "some text"                                    the reply's text
    {json: {...}}                                  text = json.dumps(the value)
    {tool: NAME, arguments: {...}}                 one tool call (optionally with `text:` next to it)
    {text: "...", finish_reason: length}           a truncated answer (any finish_reason)
    {error: 429 | 500 | 401 | 400 | ..., message: "..."}
                                                   raises what that server error would (retry.http_error: 429/5xx are
                                                   transient and retried, 401 fails fast, a 400 whose message names
                                                   the context window is an LLMContextError, ...)
    {error: unsupported | context | auth}          LLMUnsupportedError / LLMContextError / LLMAuthError

In Python an answer may also be a callable `(LLMRequest) -> answer` (tests that answer from what was asked). Usage is
estimated as characters // 4 on each side unless an answer says `usage: [prompt, completion]`; the price is 0. `.requests` records every LLMRequest received, in order,
so that tests can assert on what each role was sent. Retries of scripted errors do not sleep.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from autoresearch.agents.llm.backend import Backend, LLMReply, LLMRequest, Price, ToolCall, Usage
from autoresearch.agents.llm.retry import RetryPolicy, http_error
from autoresearch.errors import ConfigError, LLMAuthError, LLMContextError, LLMError, LLMUnsupportedError

__all__ = ["ScriptedBackend", "load_answers"]

Answer = str | Mapping[str, Any] | Callable[[LLMRequest], Any]
_KEYS = {"text", "json", "tool", "arguments", "finish_reason", "error", "message", "id", "usage"}
_NAMED_ERRORS: dict[str, type[LLMError]] = {"unsupported": LLMUnsupportedError, "context": LLMContextError,
                                            "auth": LLMAuthError}
FORMS = ("a string, {json: VALUE}, {tool: NAME, arguments: {...}}, {text: ..., finish_reason: length}, "
         "{error: 429|500|401|400|unsupported|context|auth, message: ...}")


def load_answers(path: str | Path) -> list[Any] | dict[str, list[Any]]:
    """The answers in a YAML or JSON file (a list, or a mapping role -> list); a missing or malformed file is a
    ConfigError naming it."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"scripted answers file {p} does not exist; write a YAML list of answers there "
                          "(scripted:FILE)")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except ValueError as e:  # yaml.YAMLError is not a ValueError; caught below
        raise ConfigError(f"scripted answers file {p} is not valid JSON: {e}") from e
    except Exception as e:
        raise ConfigError(f"scripted answers file {p} is not valid YAML: {' '.join(str(e).split())[:200]}") from e
    return data


class ScriptedBackend(Backend):
    """Answers from a list (or a role -> list mapping), in order; see the module docstring for the answer forms."""

    scheme = "scripted"

    def __init__(self, answers: list[Answer] | Mapping[str, list[Answer]] | str | Path, *, spec: str = "",
                 supports_schema: bool = True, supports_tools: bool = True, retry: RetryPolicy | None = None) -> None:
        source = "<inline>"
        if isinstance(answers, (str, Path)):
            source = str(answers)
            answers = load_answers(answers)
        self.source = source
        """the file the answers came from (<inline> when given in Python)."""
        if isinstance(answers, Mapping):
            lists = {str(k): list(v) if isinstance(v, list) else v for k, v in answers.items()}
        elif isinstance(answers, list):
            lists = {"default": list(answers)}
        else:
            raise ConfigError(f"scripted answers ({source}) must be a list of answers or a mapping role -> list, got "
                              f"{type(answers).__name__}")
        for role, items in lists.items():
            if not isinstance(items, list):
                raise ConfigError(f"scripted answers ({source}) for role {role!r} must be a list, got "
                                  f"{type(items).__name__}")
            for i, a in enumerate(items):
                _check_answer(a, f"{source} {role}[{i}]")
        self.answers: dict[str, list[Answer]] = lists
        self.served: dict[str, int] = {role: 0 for role in lists}
        """how many answers of each list were used."""
        self.requests: list[LLMRequest] = []
        """every request received, in order."""
        self._lock = threading.Lock()
        super().__init__(spec or f"scripted:{source}", "scripted", price=Price(0.0, 0.0, "scripted"),
                         supports_schema=supports_schema, supports_tools=supports_tools,
                         retry=retry or RetryPolicy(base_s=0.0, max_s=0.0))

    def remaining(self, role: str = "default") -> int:
        """Answers not yet served in `role`'s list (the default list when the role has none)."""
        key = role if role in self.answers else "default"
        return len(self.answers.get(key, [])) - self.served.get(key, 0)

    def _call(self, request: LLMRequest) -> LLMReply:
        with self._lock:
            self.requests.append(request)
            key = request.role if request.role in self.answers else "default"
            if key not in self.answers:
                raise LLMError(f"{self.spec}: no answers for role {request.role!r} (the file has "
                               f"{', '.join(sorted(self.answers))}); add a `{request.role}:` or `default:` list")
            i = self.served[key]
            items = self.answers[key]
            if i >= len(items):
                raise LLMError(f"{self.spec}: scripted answers for role {request.role or key!r} exhausted "
                               f"(list {key!r} had {len(items)}); add more answers to {self.source}")
            self.served[key] = i + 1
            answer = items[i]
        if callable(answer):
            answer = answer(request)
            _check_answer(answer, f"{self.source} {key}[{i}] (computed)")
        return self._reply(answer, request, f"{key}[{i}]")

    def _reply(self, answer: Any, request: LLMRequest, where: str) -> LLMReply:
        if isinstance(answer, str):
            answer = {"text": answer}
        if "error" in answer:
            err = answer["error"]
            message = str(answer.get("message") or f"scripted error {err} ({where})")
            if isinstance(err, str) and err in _NAMED_ERRORS:
                raise _NAMED_ERRORS[err](f"{self.spec}: {message}")
            raise http_error(self.spec, int(err), message, key_env="the scripted answers")
        tool_calls: list[ToolCall] = []
        if "tool" in answer:
            args = answer.get("arguments", {})
            tool_calls.append(ToolCall(str(answer["tool"]), args if isinstance(args, str) else json.dumps(args),
                                       str(answer.get("id", f"call_{where}"))))
        text = json.dumps(answer["json"]) if "json" in answer else str(answer.get("text", ""))
        finish = str(answer.get("finish_reason") or ("tool_calls" if tool_calls else "stop"))
        prompt_chars = sum(len(m.get("content", "")) for m in request.messages)
        completion_chars = len(text) + sum(len(c.arguments) for c in tool_calls)
        usage = Usage(prompt_chars // 4, completion_chars // 4)
        if answer.get("usage") is not None:
            usage = Usage(int(answer["usage"][0]), int(answer["usage"][1]))
        return LLMReply(text=text, tool_calls=tool_calls, usage=usage, finish_reason=finish, model="scripted")


def _check_answer(answer: Any, where: str) -> None:
    if callable(answer) or isinstance(answer, str):
        return
    if not isinstance(answer, Mapping):
        raise ConfigError(f"scripted answer {where} must be {FORMS}; got {type(answer).__name__}")
    unknown = set(answer) - _KEYS
    if unknown:
        raise ConfigError(f"scripted answer {where} has unknown key(s) {', '.join(sorted(unknown))}; use {FORMS}")
    u = answer.get("usage")
    if u is not None and not (isinstance(u, (list, tuple)) and len(u) == 2 and all(isinstance(x, int) for x in u)):
        raise ConfigError(f"scripted answer {where}: usage must be [prompt_tokens, completion_tokens], got {u!r}")
    if "error" in answer:
        err = answer["error"]
        if not ((isinstance(err, int) and 400 <= err <= 599) or err in _NAMED_ERRORS):
            raise ConfigError(f"scripted answer {where}: error must be an HTTP status 400..599 or one of "
                              f"{', '.join(_NAMED_ERRORS)}, got {err!r}")
    elif not ({"text", "json", "tool"} & set(answer)):
        raise ConfigError(f"scripted answer {where} needs text, json, tool or error; use {FORMS}")

"""Structured answers from any backend: ask, parse, validate against a pydantic model, re-ask with the error.

    plan = ask_structured(session, messages, PlanOut, validate=check_plan)

Three modes, best first (DESIGN.md §7):
- `schema`: the backend's native JSON-schema mode (LLMRequest.schema; OpenAI `response_format`);
- `tool`: a forced call of one tool named after the model, whose parameters are the schema (Anthropic, and OpenAI-
  compatible servers without `response_format`);
- `prompt`: the schema in the last user message and "answer with one JSON object", parsed by extract.py.
The first mode is the session's `mode_override` when set, else the best one the backend claims to support. A backend
that refuses a mode (LLMUnsupportedError) drops to the next one; that call is not counted as a try, and the mode is
remembered on the session so that later calls skip the refused one.

Each answer is parsed (the tool call's arguments, else the text) with the tolerant extract_json, validated with
pydantic, then with the role's own `validate(obj)` (an error line or None). A few harmless wrappers are unwrapped
first: a one-item list holding the object, `{"VerdictOut": {...}}` / `{"answer": {...}}`, and a tool call written as
text (`{"name": ..., "arguments": {...}}`). On an error the answer (its first 4,000 characters) and the error go back
to the model, and it is asked again; only the last failed answer is kept, so a re-ask's prompt does not grow with each
try. An answer is cut off when the server says `length` or its completion used all of max_tokens. At most
`max_tries` calls in all, each one a `session.ask` (so charged to the budgets and transcribed with its try number).
After the last, every raw answer is written to `<session.failed_dir>/<role>-<timestamp>.txt` and StructuredOutputError
names the role, the model, the last error and the file.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from autoresearch.agents.llm.backend import Backend, LLMReply, LLMRequest, Tool
from autoresearch.agents.llm.extract import extract_json
from autoresearch.agents.llm.redact import redact_text
from autoresearch.agents.llm.schemas import json_schema_for
from autoresearch.errors import LLMUnsupportedError, StructuredOutputError

__all__ = ["ask_structured", "parse_answer", "copied_example", "MODES", "first_mode", "format_validation_error"]

MODES: tuple[str, ...] = ("schema", "tool", "prompt")
"""the structured-output modes, best first."""

M = TypeVar("M", bound=BaseModel)

_WRAPPER_KEYS = ("arguments", "parameters", "input", "answer", "output", "result", "properties")
_WRAPPER_META = {"name", "type", "title", "description", "function"}


class Session(Protocol):
    """What ask_structured needs of an LLMSession (session.py)."""

    backend: Backend
    role: str
    mode_override: str | None

    @property
    def failed_dir(self) -> Path | None: ...

    def ask(self, request: LLMRequest, *, try_no: int = 1) -> LLMReply: ...


def first_mode(backend: Backend, override: str | None = None) -> str:
    """The mode to start with: `override` when set, else the best one the backend claims."""
    if override:
        if override not in MODES:
            raise ValueError(f"structured-output mode {override!r} is not one of {', '.join(MODES)}")
        return override
    if backend.supports_schema:
        return "schema"
    return "tool" if backend.supports_tools else "prompt"


def _next_mode(mode: str, backend: Backend) -> str | None:
    rest = list(MODES[MODES.index(mode) + 1:])
    if "tool" in rest and not backend.supports_tools:
        rest.remove("tool")
    return rest[0] if rest else None


def ask_structured(session: Session, messages: list[dict[str, str]], model: type[M], *, max_tries: int = 3,
                   max_tokens: int = 2048, temperature: float = 0.0,
                   validate: Callable[[M], str | None] | None = None) -> M:
    """A validated `model` instance from the session's backend (see the module docstring); StructuredOutputError
    after `max_tries` invalid answers. Budget, authentication and context errors pass through unchanged."""
    if max_tries < 1:
        raise ValueError(f"max_tries must be >= 1, got {max_tries}")
    backend = session.backend
    mode = first_mode(backend, getattr(session, "mode_override", None))
    conversation = [dict(m) for m in messages]
    users = [i for i, m in enumerate(conversation) if m.get("role") == "user"]
    at = users[-1] if users else None
    """the caller's last user message: the mode's instruction goes there (once; a re-ask does not repeat it)."""
    raws: list[tuple[int, str, str, str]] = []
    """(try, mode, raw answer, error) of each failed try."""
    error = ""
    tries = 0
    while tries < max_tries:
        request = _request(conversation, at, model, mode, max_tokens, temperature)
        try:
            reply = session.ask(request, try_no=tries + 1)
        except LLMUnsupportedError as e:
            nxt = _next_mode(mode, backend)
            if nxt is None:
                raise
            raws.append((tries + 1, mode, "", f"refused: {_line(str(e))} -> {nxt} mode"))
            session.mode_override = mode = nxt
            continue
        tries += 1
        raw = _raw(reply, model)
        try:
            obj = parse_answer(raw, model, validate)
            copied = copied_example(obj, messages)
            if not copied:
                return obj
            error = (f"`{copied[0]}` is the instructions' example text {copied[1]!r}, copied word for word; write "
                     "your own content for it")
        except ValueError as e:
            error = str(e)
        cut = reply.finish_reason == "length" or (reply.usage is not None
                                                  and reply.usage.completion_tokens >= max_tokens)
        if cut:  # llama.cpp's server says finish_reason "tool_calls" for a forced call that ran out (measured)
            error = f"it was cut off at max_tokens={max_tokens} ({error}); be shorter"
        raws.append((tries, mode, raw, error))
        echo = raw if len(raw) <= _ECHO_CHARS else f"{raw[:_ECHO_CHARS]} [... {len(raw) - _ECHO_CHARS} more characters]"
        # Only the last failed answer goes back: a re-ask's prompt stays one answer long, not one per try.
        conversation = [dict(m) for m in messages] + [{"role": "assistant", "content": echo or "(empty answer)"},
                                                      {"role": "user", "content": _reask(model, mode, error)}]
    path = _save_failed(session, model, tries, raws)
    where = f"raw answers in {path}" if path else "raw answers not saved (no failed_dir)"
    role = getattr(session, "role", "") or "?"
    raise StructuredOutputError(f"{role}: no valid {model.__name__} after {tries} tries ({mode} mode); last error: "
                                f"{_line(error)[:300]}; {where}")


_ECHO_CHARS = 4000
"""At most this much of a failed answer is shown back in the re-ask (a cut-off answer is max_tokens long; its
start is what the model needs to see)."""


def _request(conversation: list[dict[str, str]], at: int | None, model: type[BaseModel], mode: str,
             max_tokens: int, temperature: float) -> LLMRequest:
    schema = json_schema_for(model)
    name = model.__name__
    if mode == "schema":
        return LLMRequest(_with_instruction(conversation, at, f"Answer with one JSON object of the `{name}` schema."),
                          max_tokens=max_tokens, temperature=temperature, schema=schema, schema_name=name)
    if mode == "tool":
        tool = Tool(name, (model.__doc__ or name).strip().splitlines()[0], schema)
        return LLMRequest(_with_instruction(conversation, at, f"Answer by calling the tool `{name}` with the "
                                                              "complete answer as its arguments."),
                          max_tokens=max_tokens, temperature=temperature, tools=[tool], tool_choice=name,
                          schema_name=name)
    instruction = ("Answer with ONE JSON object and nothing else (no prose, no second object). It must follow this "
                   f"JSON schema:\n```json\n{json.dumps(schema, ensure_ascii=False)}\n```")
    return LLMRequest(_with_instruction(conversation, at, instruction), max_tokens=max_tokens,
                      temperature=temperature, schema_name=name)


def _with_instruction(conversation: list[dict[str, str]], at: int | None, instruction: str) -> list[dict[str, str]]:
    """A copy with `instruction` appended to message `at` (the caller's last user message), or as a new user message
    when there is none."""
    out = [dict(m) for m in conversation]
    if at is None:
        return out + [{"role": "user", "content": instruction}]
    out[at]["content"] = f"{out[at]['content']}\n\n{instruction}"
    return out


def _raw(reply: LLMReply, model: type[BaseModel]) -> str:
    """What to parse: the arguments of the tool call named after the model (else of the first call), else the text."""
    calls = [c for c in reply.tool_calls if c.name == model.__name__] or list(reply.tool_calls)
    if calls and calls[0].arguments.strip():
        return calls[0].arguments
    return reply.text or ""


def parse_answer(raw: str, model: type[M], validate: Callable[[M], str | None] | None = None) -> M:
    """`raw` (an answer's text or tool arguments) as a validated `model`: extract_json, the wrappers unwrapped,
    pydantic, then `validate`; ValueError with the one-line error to send back to the model."""
    obj, error = _parse_validate(raw, model, validate)
    if obj is None:
        raise ValueError(error)
    return obj


def _parse_validate(raw: str, model: type[M], validate: Callable[[M], str | None] | None) -> tuple[M | None, str]:
    """(the object, "") or (None, the error line to send back)."""
    try:
        value = extract_json(raw)
    except ValueError as e:
        return None, str(e)
    errors: list[tuple[Any, str]] = []
    for candidate in _candidates(value, model):
        try:
            obj = model.model_validate(candidate)
        except ValidationError as e:
            errors.append((candidate, format_validation_error(e)))
            continue
        if validate is not None:
            try:
                problem = validate(obj)
            except ValueError as e:  # ConfigError is a ValueError: a role's check that raises instead of returning
                problem = str(e)
            if problem:
                return None, _line(problem)
        return obj, ""
    # The error of the innermost object tried is the useful one ({"VerdictOut": {...}} -> what is wrong inside).
    inner = [err for cand, err in errors if isinstance(cand, dict)]
    if inner:
        return None, inner[-1]
    if isinstance(value, list):
        return None, f"expected one JSON object ({model.__name__}), got an array of {len(value)} item(s)"
    return None, errors[0][1]


def _candidates(value: Any, model: type[BaseModel]) -> list[Any]:
    """`value`, then the object it may wrap: a one-item list, a single-key wrapper, a tool call written as text."""
    out = [value]
    if isinstance(value, list) and len(value) == 1:
        out.append(value[0])
    if isinstance(value, dict):
        fields = set(model.model_fields)
        if len(value) == 1:
            (key, inner), = value.items()
            if key not in fields:
                out.append(_maybe_json(inner))
        elif not (set(value) & fields):
            for key in _WRAPPER_KEYS:
                if key in value and set(value) - {key} <= _WRAPPER_META:
                    out.append(_maybe_json(value[key]))
                    break
    return out


def _maybe_json(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return extract_json(v)
        except ValueError:
            return v
    return v


def format_validation_error(e: ValidationError, limit: int = 6) -> str:
    """pydantic's errors as one compact line: `tasks.0.flags.1.on: value error ... (got 'x')`; at most `limit`."""
    parts = []
    errors = e.errors(include_url=False)
    for err in errors[:limit]:
        loc = ".".join(str(x) for x in err.get("loc", ())) or "(the object)"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        got = err.get("input")
        shown = "" if err.get("type") == "missing" or isinstance(got, dict) else f" (got {_short(got)})"
        parts.append(f"{loc}: {msg}{shown}")
    more = f"; and {len(errors) - limit} more" if len(errors) > limit else ""
    return "; ".join(parts) + more


def _short(v: Any, n: int = 60) -> str:
    s = repr(v)
    return s if len(s) <= n else s[: n - 3] + "..."


def _line(s: str) -> str:
    return " ".join(s.split())


def _reask(model: type[BaseModel], mode: str, error: str) -> str:
    how = f"by calling the tool `{model.__name__}`" if mode == "tool" else "with ONE complete JSON object"
    return f"That answer is not valid: {error}. Answer again {how}, fixing only that, with every required field."


def _save_failed(session: Session, model: type[BaseModel], tries: int,
                 raws: list[tuple[int, str, str, str]]) -> Path | None:
    """Every raw answer in `<failed_dir>/<role>-<timestamp>.txt` (redacted, written atomically); None without a
    failed_dir."""
    folder = getattr(session, "failed_dir", None)
    if folder is None:
        return None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    role = getattr(session, "role", "") or "llm"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = folder / f"{role}-{stamp}.txt"
    k = 2
    while path.exists():
        path = folder / f"{role}-{stamp}-{k}.txt"
        k += 1
    lines = [f"# {role}: no valid {model.__name__} after {tries} tries ({getattr(session.backend, 'spec', '?')})", ""]
    for try_no, mode, raw, error in raws:
        lines += [f"## try {try_no} ({mode} mode)", f"error: {_line(error)}", "", "```text", raw, "```", ""]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(redact_text("\n".join(lines)), encoding="utf-8")  # like the transcript: no key in any file
    os.replace(tmp, path)
    return path


_QUOTED = re.compile(r'"([^"\n]{16,})"')


def copied_example(obj: BaseModel, messages: list[dict[str, str]]) -> tuple[str, str] | None:
    """(field path, text) of the first string in `obj` that equals, word for word, a quoted example of 16+
    characters in the system message (the answer format of a role's template, e.g. "one line: the kind and the key
    numbers"); None when there is none. Measured: SmolLM2-135M in tool mode filled whole answers with them, which
    validate as a schema but say nothing."""
    system = "\n".join(m["content"] for m in messages if m.get("role") == "system")
    examples = {" ".join(x.split()).lower() for x in _QUOTED.findall(system)}
    if not examples:
        return None

    def walk(value: Any, path: str) -> tuple[str, str] | None:
        if isinstance(value, str):
            return (path, value) if " ".join(value.split()).lower() in examples else None
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for k, v in items:
            hit = walk(v, f"{path}.{k}" if path else str(k))
            if hit:
                return hit
        return None

    return walk(obj.model_dump(), "")

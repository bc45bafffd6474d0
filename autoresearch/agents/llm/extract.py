"""Tolerant JSON extraction from a language model's free-text answer (the prompted-JSON mode of structured.py, and
the text of a native/tool answer that still came wrapped).

What real answers look like, and what `extract_json` does with each (the corpus tests/data/llm_answers/ holds one
file per shape):
- bare JSON, or JSON in a ```json fence (or an unlabelled fence), with prose before and after: the value is found by
  a string-aware bracket scanner, so a fence or a brace INSIDE a JSON string (a plan's markdown with code) is text;
- two top-level objects (a draft and a correction, or an example then the answer): the FIRST complete object wins —
  documented so that the prompt can say "answer with one object"; objects are preferred to arrays, so a `[1]` in
  the prose does not hide the object after it; an array (of objects) is returned only when there is no object;
- a bracketed span that does not parse is skipped whole (the `[]` inside a broken object is not the answer);
- trailing commas, `//` line comments, and Python literals (True/False/None, single-quoted strings): normalised,
  then parsed with `ast.literal_eval` as the fallback — never `eval`;
- a reasoning model's `<think>...</think>` block (it may hold drafts) is skipped when JSON follows it;
- a truncated answer (an object opened and never closed), an empty answer, a refusal, a markdown table: ValueError
  with a short reason, which structured.py sends back to the model.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from typing import Any

__all__ = ["extract_json"]

_OPEN = {"{": "}", "[": "]"}
_CLOSE = {"}", "]"}
# After an opening bracket, what JSON (or a Python literal) can continue with; a `{key}` or `[optional]` in prose
# cannot start a value, so it is skipped instead of being reported as a truncated object.
_OBJECT_NEXT = set("\"'}/")
_ARRAY_NEXT = set("\"'{[]-+.0123456789tfnTFN/")


_THINK = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.S | re.I)


def extract_json(text: str) -> Any:
    """The first top-level JSON object in `text` (else the first array), parsed tolerantly; ValueError with a short
    reason when there is none or the answer was cut off."""
    if not text or not text.strip():
        raise ValueError("the answer is empty; answer with one JSON object")
    outside = _THINK.sub("", text)
    if outside != text and outside.strip():
        try:
            return _extract(outside)
        except ValueError:
            pass
    return _extract(text)


def _extract(text: str) -> Any:
    stripped = text.strip()
    try:
        value = json.loads(stripped, strict=False)
        if isinstance(value, (dict, list)):
            return value
    except ValueError:
        pass
    first_list: list[Any] | None = None
    first_bad = ""
    pos = 0
    while True:
        start = _next_start(text, pos)
        if start < 0:
            break
        end = _balanced_end(text, start)
        if end < 0:
            if first_list is not None:
                return first_list
            raise ValueError(f"the answer was cut off: the JSON {'object' if text[start] == '{' else 'array'} "
                             f"opened at character {start} never closes (answer shorter, or raise max_tokens)")
        span = text[start:end]
        try:
            value = _parse(span)
        except ValueError as e:
            # Skip the whole span: a fragment inside a broken object (its `[]`) is not the answer.
            first_bad = first_bad or f"the JSON at character {start} does not parse: {e}"
            pos = end
            continue
        if isinstance(value, dict):
            return value
        if isinstance(value, list) and first_list is None and any(isinstance(x, dict) for x in value):
            first_list = value  # an array of scalars in prose (`[1]`, YAML's `[]`) is not an answer
        pos = end
    if first_list is not None:
        return first_list
    if first_bad:
        raise ValueError(first_bad)
    raise ValueError(f"no JSON object in the answer ({len(text)} chars, begins {_preview(text)}); "
                     "answer with one JSON object")


def _preview(text: str, n: int = 60) -> str:
    s = " ".join(text.split())
    return repr(s[:n] + ("..." if len(s) > n else ""))


def _next_start(text: str, pos: int) -> int:
    """The index of the next `{`/`[` at or after `pos` that can start a JSON value (-1: none)."""
    n = len(text)
    while pos < n:
        c = text[pos]
        if c in _OPEN:
            j = pos + 1
            while j < n and text[j].isspace():
                j += 1
            if j < n and text[j] in (_OBJECT_NEXT if c == "{" else _ARRAY_NEXT):
                return pos
        pos += 1
    return -1


def _balanced_end(text: str, start: int) -> int:
    """One past the bracket closing the one at `start`, skipping strings ("..." and '...', with escapes); -1 when
    the text ends first (a truncated answer)."""
    stack: list[str] = []
    i, n = start, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            i = _string_end(text, i)
            if i < 0:
                return -1
            continue
        if c in _OPEN:
            stack.append(_OPEN[c])
        elif c in _CLOSE:
            if stack[-1] != c:
                return i + 1  # a bracket of the wrong kind: not JSON; the parse of this span reports it
            stack.pop()
            if not stack:
                return i + 1
        i += 1
    return -1


def _string_end(text: str, i: int) -> int:
    """One past the string that opens at `i`; -1 when it never closes."""
    quote, j, n = text[i], i + 1, len(text)
    while j < n:
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c == quote:
            return j + 1
        if quote == "'" and c == "\n":
            # An apostrophe in prose inside an object is rarer than a newline; a single-quoted Python string never
            # spans lines, so treat this quote as text.
            return i + 1
        j += 1
    return -1 if quote == '"' else i + 1


def _parse(span: str) -> Any:
    """`span` as JSON; else with trailing commas and // comments removed; else as a Python literal."""
    # strict=False: raw newlines inside strings (a multi-line plan_md) are common and harmless.
    try:
        return json.loads(span, strict=False)
    except ValueError as e:
        first = e
    try:
        return json.loads(_normalise(span, python=False), strict=False)
    except ValueError:
        pass
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "\d" in a string: an invalid-escape SyntaxWarning, harmless here
            return ast.literal_eval(_normalise(span, python=True))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    raise ValueError(str(first).split(":")[0] if str(first) else "not JSON")


_PY_WORDS = {"true": "True", "false": "False", "null": "None"}


def _normalise(span: str, *, python: bool) -> str:
    """`span` with, outside strings: `//` line comments and trailing commas removed; with `python`, true/false/null
    spelled as Python literals (so that a mix of both styles parses)."""
    out: list[str] = []
    i, n = 0, len(span)
    while i < n:
        c = span[i]
        if c in "\"'":
            end = _string_end(span, i)
            end = n if end < 0 else end
            out.append(span[i:end])
            i = end
            continue
        if c == "/" and span.startswith("//", i):
            j = span.find("\n", i)
            i = n if j < 0 else j
            continue
        if c == ",":
            j = i + 1
            while j < n and span[j].isspace():
                j += 1
            if j < n and span[j] in _CLOSE:
                i += 1
                continue
        if python and c.isalpha() and (i == 0 or not (span[i - 1].isalnum() or span[i - 1] == "_")):
            j = i
            while j < n and (span[j].isalnum() or span[j] == "_"):
                j += 1
            word = span[i:j]
            out.append(_PY_WORDS.get(word, word))
            i = j
            continue
        out.append(c)
        i += 1
    return "".join(out)

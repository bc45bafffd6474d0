"""Prompt templates of the LLM roles: readable Markdown files a user can override per workspace.

Each role's prompt is one Markdown file: the packaged `autoresearch/agents/templates/<role>.md`, or the workspace's
`DIR/prompts/<role>.md` when present (`AgentEnv.templates_dir`; copy the packaged file there and edit it). A template
holds `{{name}}` placeholders that the role fills (`render`); a line `<!-- user -->` splits it into the system
message (what the role is, what it must never do, the answer format) and the user message (this case's material),
`to_messages`; other HTML comments are notes for the person editing the file and are never sent. Only the template's
own comments are dropped: a filled value (a diff of a Markdown file, say) is sent exactly as it is.

A placeholder the role does not fill is a one-line ConfigError naming the file, the placeholder and the ones it
fills; filled values are inserted as they are, never scanned for placeholders again (a diff may contain `{{`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from autoresearch.errors import ConfigError

__all__ = ["Template", "load_template", "render", "to_messages", "prompt_messages", "template_fields",
           "PACKAGED_DIR", "USER_MARKER"]

PACKAGED_DIR = Path(__file__).resolve().parent.parent / "templates"
"""autoresearch/agents/templates/: the packaged templates (package data)."""
USER_MARKER = "<!-- user -->"
"""The line that ends the system message; everything below it is the user message."""
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_COMMENT_LINE = re.compile(r"[ \t]*<!--.*?-->[ \t]*(?:\r?\n)?", re.S)
"""a comment with the spaces around it and its line end: a comment alone on its lines leaves no blank line."""
_SPLIT = "\x1e"
"""the system/user split mark inside a rendered text (ASCII record separator; removed from filled values)."""
_SAFE_ROLE = re.compile(r"^[a-z][a-z0-9_-]*$")


class Template(str):
    """A template's text that remembers where it came from (for error messages)."""

    source: str = "template"
    """the file it was read from (`prompts/planner.md`, or `packaged planner.md`)."""
    user: bool = False
    """True when it is the user's override (an unknown placeholder is the user's to fix)."""

    def __new__(cls, text: str, source: str = "template", user: bool = False) -> Template:
        obj = super().__new__(cls, text)
        obj.source = source
        obj.user = user
        return obj


def load_template(role: str, env: Any = None) -> Template:
    """The template of `role`: `env.templates_dir/<role>.md` when that file exists, else the packaged one."""
    if not _SAFE_ROLE.match(role):
        raise ConfigError(f"role name {role!r} is not a template name; use planner, coder, judge, analyzer, reviser")
    user_dir = getattr(env, "templates_dir", None)
    if user_dir is not None:
        path = Path(user_dir) / f"{role}.md"
        if path.is_file():
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise ConfigError(f"prompt template {path} cannot be read ({type(e).__name__}); fix the file or "
                                  f"delete it to use the packaged one") from None
            if not text.strip():
                raise ConfigError(f"prompt template {path} is empty; write the prompt or delete the file to use the "
                                  "packaged one")
            return Template(text, str(path), user=True)
    path = PACKAGED_DIR / f"{role}.md"
    if not path.is_file():
        raise ConfigError(f"no prompt template for role {role!r} (looked for {path}); reinstall autoresearch or put "
                          f"one at DIR/prompts/{role}.md")
    return Template(path.read_text(encoding="utf-8"), f"packaged {role}.md")


def template_fields(template: str) -> list[str]:
    """The placeholder names a template uses (outside comments), in order of first use."""
    out: list[str] = []
    for part in _outside_comments(template):
        for m in _PLACEHOLDER.finditer(part):
            if m.group(1) not in out:
                out.append(m.group(1))
    return out


def render(template: str, **fields: Any) -> str:
    """`template` with its HTML comments dropped and every `{{name}}` replaced by `str(fields[name])`; the
    `<!-- user -->` line becomes an internal split mark that `to_messages` cuts at (a value that happens to hold that
    line cannot move the cut). A placeholder without a field is a one-line ConfigError: in a user's override it names
    the file and the fields the role fills."""
    source = getattr(template, "source", "template")
    missing = [name for name in template_fields(template) if name not in fields]
    if missing:
        known = ", ".join("{{" + k + "}}" for k in sorted(fields))
        if getattr(template, "user", False):
            raise ConfigError(f"prompt template {source} uses {{{{{missing[0]}}}}}, which this role does not fill; "
                              f"use only {known}")
        raise ConfigError(f"prompt template {source} needs the field {missing[0]!r}, which the role did not give "
                          f"(it gives {known})")
    lines = str(template).splitlines(keepends=True)
    cut = next((i for i, line in enumerate(lines) if line.strip() == USER_MARKER), None)
    parts = ["".join(lines[:cut]), "".join(lines[cut + 1:])] if cut is not None else [str(template)]
    out = []
    for part in parts:
        part = _COMMENT_LINE.sub("", part)
        out.append(_PLACEHOLDER.sub(lambda m: _text(fields[m.group(1)]).replace(_SPLIT, ""), part))
    return f"\n{_SPLIT}\n".join(out)


def to_messages(text: str) -> list[dict[str, str]]:
    """Chat messages of a rendered template: the part above the user mark is the system message, the part below it
    the user message (no mark: one user message). Only the ends of each part are stripped."""
    if _SPLIT in text:
        system, user = text.split(_SPLIT, 1)
    else:
        lines = text.splitlines()
        cut = next((i for i, line in enumerate(lines) if line.strip() == USER_MARKER), None)
        system = "\n".join(lines[:cut]) if cut is not None else ""
        user = "\n".join(lines[cut + 1:]) if cut is not None else text
    out = []
    for role, part in (("system", system), ("user", user)):
        part = part.strip()
        if part:
            out.append({"role": role, "content": part})
    if not any(m["role"] == "user" for m in out):
        out.append({"role": "user", "content": "Answer now, in the format described above."})
    return out


def prompt_messages(role: str, env: Any, **fields: Any) -> list[dict[str, str]]:
    """load_template + render + to_messages: the first messages of a `role` conversation."""
    return to_messages(render(load_template(role, env), **fields))


def _outside_comments(text: str) -> list[str]:
    return _COMMENT.split(str(text))


def _text(value: Any) -> str:
    if value is None:
        return "(none)"
    text = str(value)
    return text if text.strip() else "(none)"

"""Readable transcripts: each version's language-model calls as Markdown, `ideas/<name>/v<k>.transcript.md`, plus
`ideas/ideation.transcript.md` for the calls made before a version existed (the planner proposing an idea).

Rendered from `.autoresearch/transcripts.jsonl` (agents/llm/transcript.py; already redacted there) whenever the
report is written, so the report can link every version to what its roles were asked and answered: per call the role,
backend, structured re-ask number, tokens, cost and latency, then every message and the answer (its text and tool
calls) or the error. Long messages are cut in the middle (the full text stays in the JSONL).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from autoresearch.harness.atomic import atomic_write_text

__all__ = ["IDEATION", "transcript_file", "render_transcript", "write_transcripts", "spend_rows"]

IDEATION = "ideation"
"""the file stem of the calls made outside any version."""
_MAX_CHARS = 12_000


def transcript_file(ideas_dir: Path, version: str) -> Path:
    """`ideas/<name>/v<k>.transcript.md` for `name/vk`, `ideas/ideation.transcript.md` for ""."""
    if not version:
        return ideas_dir / f"{IDEATION}.transcript.md"
    name, _, k = version.rpartition("/")
    return ideas_dir / name / f"{k}.transcript.md"


def _cut(text: str) -> str:
    if len(text) <= _MAX_CHARS:
        return text
    half = _MAX_CHARS // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters cut; the full text is in transcripts.jsonl ...]\n" \
           f"{text[-half:]}"


def _fenced(text: str, info: str = "") -> list[str]:
    """`text` in a code fence longer than any backtick run inside it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{info}", _cut(text), fence]


def _money(x: Any) -> str:
    return "unknown" if x is None else f"${float(x):.4f}"


def render_transcript(version: str, records: Iterable[Mapping[str, Any]]) -> str:
    """The Markdown transcript of `records` (the calls of one version, in order)."""
    recs = list(records)
    tokens = sum(int((r.get("usage") or {}).get("prompt", 0)) + int((r.get("usage") or {}).get("completion", 0))
                 for r in recs)
    known = [float(r["cost_usd"]) for r in recs if r.get("cost_usd") is not None]
    cost = f"${sum(known):.4f}" + (" (some costs unknown)" if len(known) < len(recs) else "")
    title = f"Transcript of {version}" if version else "Transcript of ideation (calls before a version existed)"
    out = [f"# {title}", "", f"{len(recs)} language-model call(s), {tokens:,} tokens, {cost}. Secrets are redacted; "
                             "the raw records are in `.autoresearch/transcripts.jsonl`.", ""]
    for i, r in enumerate(recs, 1):
        usage = r.get("usage") or {}
        req = r.get("request") or {}
        head = (f"## {i}. {r.get('role', '?')} — {r.get('backend', '?')} — try {r.get('try', 1)} — "
                f"{r.get('at', '')}")
        out += [head, "", f"Tokens {usage.get('prompt', '-')} in / {usage.get('completion', '-')} out, cost "
                          f"{_money(r.get('cost_usd'))}, {float(r.get('latency_s') or 0):.2f} s, "
                          f"{r.get('retries', 0)} retries" + (f", schema `{req['schema_name']}`"
                                                                if req.get("schema_name") else "") + ".", ""]
        for m in req.get("messages") or []:
            out += [f"### {m.get('role', '?')}", "", *_fenced(str(m.get("content", ""))), ""]
        resp = r.get("response")
        if resp is not None:
            out += ["### answer" + (f" (finish: {resp['finish_reason']})" if resp.get("finish_reason") else ""), ""]
            if resp.get("text"):
                out += [*_fenced(str(resp["text"])), ""]
            for c in resp.get("tool_calls") or []:
                args = c.get("arguments", "")
                try:
                    args = json.dumps(json.loads(args), indent=2, ensure_ascii=False)
                except (TypeError, ValueError):
                    pass
                out += [f"Tool call `{c.get('name', '?')}`:", "", *_fenced(str(args), "json"), ""]
        if r.get("error"):
            out += [f"**Error:** {r['error']}", ""]
    return "\n".join(out).rstrip() + "\n"


def write_transcripts(ideas_dir: Path, records: Iterable[Mapping[str, Any]]) -> dict[str, Path]:
    """Write one Markdown transcript per version (and one for ideation) of `records`; version label -> its file."""
    by_version: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        by_version.setdefault(str(r.get("version") or ""), []).append(r)
    out = {}
    for version, recs in by_version.items():
        path = transcript_file(ideas_dir, version)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, render_transcript(version, recs))
        out[version] = path
    return out


def spend_rows(records: Iterable[Mapping[str, Any]], key: str = "role") -> list[list[str]]:
    """Table rows [name, calls, tokens in, tokens out, dollars, seconds] of the spend per `key` value, then a total."""
    from autoresearch.agents.llm.budget import Spend
    from autoresearch.agents.llm.transcript import spend_by

    recs = list(records)
    rows = []
    total = Spend()
    for r in recs:
        total.add_record(r)

    def row(name: str, s: Spend) -> list[str]:
        dollars = f"${s.dollars:.4f}" if not s.unknown_cost_calls else f">= ${s.dollars:.4f} ({s.unknown_cost_calls} " \
                                                                         "unpriced)"
        return [name, str(s.calls), f"{s.prompt_tokens:,}", f"{s.completion_tokens:,}", dollars, f"{s.seconds:.1f}"]

    for name, s in spend_by(recs, key).items():
        rows.append(row(name or "-", s))
    if rows:
        rows.append(row("total", total))
    return rows

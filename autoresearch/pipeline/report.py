"""The pipeline report: `DIR/report.md` and one self-contained `DIR/report.html` (no scripts, no external resources),
plus the workspace's idea log `DIR/ideas/idea_log.md`, all rebuilt from `pipeline.yaml` whenever the run stops.

The report tells the path to success: one row per version, in the order they ran — the change (its flags and a link
to its diff), how it ended (the study's verdict or the escalation), the numbers (Δ ± CI, p, n, both means) and the
lesson that led to the next version; then each version's details (attempts of the fix loop, gate decisions, the
study folder and its own report). Both files are rendered from one list of blocks so they cannot disagree. When
language-model roles ran, the report adds their spend per role and links each version to its readable transcript
`ideas/<name>/v<k>.transcript.md` (pipeline/transcript_md.py), rewritten from `.autoresearch/transcripts.jsonl`.
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoresearch.harness.atomic import atomic_write_text

if TYPE_CHECKING:
    from autoresearch.pipeline.state import PipelineState, VersionRecord
    from autoresearch.pipeline.workspace import Workspace

__all__ = ["write_report", "write_idea_log", "log_status", "version_label", "numbers_line"]

Block = tuple[Any, ...]

LOG_STATUS = {"kept": "Validated", "rejected": "Rejected", "inconclusive": "Inconclusive", "crashed": "Crashed",
              "escalated": "Escalated"}
"""Finished version status -> idea-log status."""


def version_label(v: VersionRecord) -> str:
    return f"{v.name}/v{v.k}"


def log_status(v: VersionRecord) -> str:
    return LOG_STATUS.get(v.status, "")


def _f(x: Any, spec: str = "+.4f") -> str:
    return "-" if not isinstance(x, (int, float)) or not math.isfinite(x) else format(float(x), spec)


def numbers_line(v: VersionRecord) -> str:
    """Δ [CI], p, n and both means of a version's study, in words ('' when no study finished)."""
    m = dict(v.metrics or {})
    if not m or m.get("delta") is None:
        return ""
    p = m.get("p_value")
    ps = "-" if not isinstance(p, (int, float)) or not math.isfinite(p) else (f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}")
    return (f"Δ = {_f(m.get('delta'))} [{_f(m.get('ci_low'))}, {_f(m.get('ci_high'))}], p = {ps}, "
            f"n = {m.get('n_seeds', '-')}; {m.get('metric', 'metric')} {_f(m.get('idea_mean'), '.4f')} vs baseline "
            f"{_f(m.get('baseline_mean'), '.4f')}")


def _task(v: VersionRecord) -> dict[str, Any]:
    t = v.task
    return t if isinstance(t, dict) else (t.to_dict() if hasattr(t, "to_dict") else {})


def _change(v: VersionRecord) -> str:
    flags = _task(v).get("flags") or []
    return ", ".join(f"{f.get('key')}: {f.get('off')!r} → {f.get('on')!r}" for f in flags) or "-"


def _diff_rel(ws: Workspace, v: VersionRecord) -> str:
    p = ws.root / "ideas" / v.name / f"v{v.k}.diff"
    return os.path.relpath(p, ws.root) if p.is_file() else ""


def _ending(v: VersionRecord) -> str:
    if v.status == "escalated":
        kinds = sorted({a.kind for a in v.attempts})
        return f"ESCALATED ({', '.join(kinds)})" if kinds else "ESCALATED"
    return v.verdict or v.status


def _llm(ws: Workspace) -> tuple[list[dict[str, Any]], dict[str, Path], str]:
    """(transcript records, version -> its Markdown transcript, a problem line) — all empty without LLM calls."""
    from autoresearch.errors import AutoresearchError

    path = ws.state_dir / "transcripts.jsonl"
    if not path.is_file():
        return [], {}, ""
    try:
        from autoresearch.pipeline.agent_env import read_records
        from autoresearch.pipeline.transcript_md import write_transcripts

        records = read_records(ws)
        return records, write_transcripts(ws.root / "ideas", records), ""
    except (AutoresearchError, OSError) as e:  # the report is still written; the problem is said in it
        return [], {}, f"The transcript could not be read: {e}"


def _blocks(ws: Workspace, st: PipelineState) -> list[Block]:
    records, transcripts, problem = _llm(ws)
    used = st.budget_used
    b: list[Block] = [("h1", "Research pipeline report"),
                      ("p", f"Idea: {st.idea or '(explore the flag space)'}. Workspace `{ws.root}`, testbed "
                            f"`{ws.file.testbed}`. Status **{st.status}** at stage `{st.stage}`; used "
                            f"{_count(getattr(used, 'versions', 0), 'version')}, "
                            f"{_count(getattr(used, 'trials', 0), 'trial')}, "
                            f"{getattr(used, 'seconds', 0.0):.0f} s.")]
    if st.baseline:
        bl = st.baseline
        b.append(("p", f"Baseline: {_f(getattr(bl, 'value', None), '.4f')} (tolerance "
                       f"{100 * getattr(bl, 'tolerance', 0.05):.0f}%), source: {getattr(bl, 'source', '')}."))
    kept = [v for v in st.versions if v.status == "kept"]
    b.append(("p", f"Result: **{version_label(kept[0])}** was KEPT (Validated)." if kept else
              "Result: no version was kept."))
    b.append(("h2", "Path to success"))
    rows = []
    for v in st.versions:
        diff = _diff_rel(ws, v)
        analysis = v.analysis or {}
        rows.append([version_label(v), _change(v), f"[diff]({diff})" if diff else "-", _ending(v),
                     log_status(v) or v.status, numbers_line(v) or "-",
                     analysis.get("kind", "-") if analysis else "-",
                     v.lesson or "-"])
    b.append(("table", ["version", "change", "diff", "ending", "idea log", "numbers", "analysis", "lesson"], rows))
    if records or problem:
        from autoresearch.pipeline.transcript_md import spend_rows

        b.append(("h2", "Language-model spend"))
        if problem:
            b.append(("p", problem))
        if records:
            b.append(("table", ["role", "calls", "tokens in", "tokens out", "cost", "seconds"],
                      spend_rows(records, "role")))
            if "" in transcripts:
                rel = os.path.relpath(transcripts[""], ws.root)
                b.append(("p", f"Calls before a version existed (the planner's proposals): [{rel}]({rel})."))
    for v in st.versions:
        b.append(("h2", version_label(v)))
        task = _task(v)
        b.append(("p", f"{task.get('description') or task.get('idea') or ''} Branch `{v.branch}`; status "
                       f"`{v.status}`; started {v.started_at or '-'}, finished {v.finished_at or '-'}."))
        if v.study_dir:
            rel = os.path.relpath(Path(v.study_dir), ws.root)
            b.append(("p", f"Study: [{rel}]({rel}/report.md) — verdict {v.verdict or '-'}."))
        if version_label(v) in transcripts:
            rel = os.path.relpath(transcripts[version_label(v)], ws.root)
            calls = sum(1 for r in records if r.get("version") == version_label(v))
            b.append(("p", f"Transcript: [{rel}]({rel}) ({calls} language-model calls)."))
        if v.attempts:
            b.append(("table", ["kind", "attempt", "error (head)"],
                      [[a.kind, str(a.n), (_head(a) or "")[:300]] for a in v.attempts]))
        gates = [g for g in st.gates if g.version == version_label(v)]
        if gates:
            b.append(("table", ["gate", "mode", "decision", "by", "note"],
                      [[g.stage, g.mode, g.decision, g.by, g.note or "-"] for g in gates]))
    return b


def _head(a: Any) -> str:
    for key in ("error_head", "head", "error"):
        x = getattr(a, key, None)
        if isinstance(x, str) and x:
            return x.replace("\n", " ")
    return ""


def _md(blocks: list[Block]) -> str:
    out: list[str] = []
    for blk in blocks:
        kind = blk[0]
        if kind == "h1":
            out += [f"# {blk[1]}", ""]
        elif kind == "h2":
            out += [f"## {blk[1]}", ""]
        elif kind == "p":
            out += [blk[1], ""]
        elif kind == "table":
            head, rows = blk[1], blk[2]
            out.append("| " + " | ".join(head) + " |")
            out.append("|" + "---|" * len(head))
            out += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in r) + " |" for r in rows]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def _inline(text: str) -> str:
    """Escape, then turn `code`, **bold** and [text](link) into HTML (the only markup the blocks use)."""
    import re

    s = html.escape(text)
    s = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', s)
    s = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", s)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", s)


def _html(blocks: list[Block]) -> str:
    body: list[str] = []
    for blk in blocks:
        kind = blk[0]
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{_inline(blk[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline(blk[1])}</p>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(h)}</th>" for h in blk[1])
            rows = "".join("<tr>" + "".join(f"<td>{_inline(str(c))}</td>" for c in r) + "</tr>" for r in blk[2])
            body.append(f"<table><tr>{head}</tr>{rows}</table>")
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;font-size:90%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Research pipeline report</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def write_idea_log(ws: Workspace, st: PipelineState) -> Path:
    """`DIR/ideas/idea_log.md`: every finished version with its status, diff, numbers and lesson."""
    from autoresearch.research.idea_log import IdeaEntry, write_entries

    path = ws.root / "ideas" / "idea_log.md"
    entries = []
    for v in st.versions:
        status = log_status(v)
        if not status:
            continue
        diff = ws.root / "ideas" / v.name / f"v{v.k}.diff"
        entries.append(IdeaEntry(version_label(v), status, description=_change(v), verdict=_ending(v),
                                 numbers=numbers_line(v), diff=os.path.relpath(diff, path.parent) if diff.is_file()
                                 else "", lesson=v.lesson, date=v.finished_at))
    return write_entries(path, "Idea log — research workspace", entries,
                         f"Idea: {st.idea or '(explore the flag space)'}; testbed `{ws.file.testbed}`.")


def write_report(ws: Workspace, st: PipelineState) -> tuple[Path, Path]:
    """Write report.md and report.html (atomically) in the workspace root; returns their paths."""
    blocks = _blocks(ws, st)
    md, page = ws.root / "report.md", ws.root / "report.html"
    atomic_write_text(md, _md(blocks))
    atomic_write_text(page, _html(blocks))
    for p in (md, page):
        os.chmod(p, 0o644)
    return md, page


def _count(n: int, word: str) -> str:
    """`1 version`, `3 versions`."""
    return f"{n} {word}{'' if n == 1 else 's'}"

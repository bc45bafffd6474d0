"""The case material the LLM roles put into their prompts, as plain Markdown: a task, a flag space, what was tried, a
finished study with its loss curves, the workspace files within a token budget.

Numbers are written as the study holds them (4 significant digits, `n/a` for a missing one), so that a model can
cite them back verbatim; nothing here calls a model. Tokens are estimated as characters / 4 (the budget's rule).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from autoresearch.agents.coders.allowed_paths import first_match
from autoresearch.agents.roles import Flag, StudySummary, TaskSpec

__all__ = ["value", "num", "describe_flag", "describe_flag_space", "describe_task", "describe_tried",
           "describe_study", "describe_curves", "select_files", "cap", "CHARS_PER_TOKEN"]

CHARS_PER_TOKEN = 4
_TEXT_SUFFIXES = (".py", ".yaml", ".yml", ".toml", ".md", ".txt", ".json", ".cfg", ".ini")
_SKIP_DIRS = {".git", ".autoresearch", "__pycache__", ".venv", "venv", "node_modules", ".mypy_cache",
              ".pytest_cache", ".ruff_cache"}
_MAX_FILE_BYTES = 200_000
_MAX_LISTED = 200


def value(v: Any) -> str:
    """A config value as a model should write it back: strings quoted, the rest as JSON-ish literals."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, str):
        return repr(v)
    return str(v)


def num(x: Any, digits: int = 4) -> str:
    """A number with `digits` significant digits; `n/a` for None / NaN / inf."""
    if x is None or isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return "n/a"
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def cap(text: str, limit: int, *, keep: str = "start") -> str:
    """`text` cut to `limit` characters, saying how much was left out; `keep="end"` keeps the last part (logs)."""
    text = text or ""
    if len(text) <= limit:
        return text
    note = f"[... {len(text) - limit} of {len(text)} characters left out ...]"
    return f"{text[:limit]}\n{note}" if keep == "start" else f"{note}\n{text[-limit:]}"


def describe_flag(f: Flag) -> str:
    """`- `key` (type): off X (baseline) -> on Y` (+ choices / range)."""
    extra = ""
    if f.choices:
        extra += f"; choices {', '.join(value(c) for c in f.choices)}"
    if f.numeric and f.low is not None and f.high is not None:
        extra += f"; range {num(f.low)}..{num(f.high)}{' (log)' if f.log else ''}"
    return f"- `{f.key}` ({f.type}): off {value(f.off)} (baseline) -> on {value(f.on)}{extra}"


def describe_flag_space(flags: Sequence[Flag]) -> str:
    """One line per key of the flag space: its default, and its alternatives (bool, choices) or range (numbers)."""
    by_key: dict[str, list[Flag]] = {}
    for f in flags:
        by_key.setdefault(f.key, []).append(f)
    lines = []
    for key, fs in by_key.items():
        f = fs[0]
        if f.type == "bool":
            alt = f"switch to {value(not f.off)}" if isinstance(f.off, bool) else f"on {value(f.on)}"
        elif f.type == "choice":
            alts = f.choices or [g.on for g in fs]
            alt = f"choices {', '.join(value(c) for c in alts)}"
        elif f.low is not None and f.high is not None:
            alt = f"sensible range {num(f.low)}..{num(f.high)}{' (log scale)' if f.log else ''}"
        else:
            alt = "any value"
        lines.append(f"- `{key}` ({f.type}): default {value(f.off)}; {alt}")
    return "\n".join(lines) or "(empty: the testbed declares no switchable keys)"


def describe_task(task: TaskSpec) -> str:
    """A task as the judge, analyzer and reviser read it."""
    lines = [f"Name: {task.name}", f"Idea: {task.idea}"]
    if task.description and task.description != task.idea:
        lines.append(f"Description: {task.description}")
    lines += ["Flags:", *(describe_flag(f) for f in task.flags)] if task.flags else ["Flags: none yet (the coder adds "
                                                                                     "them)"]
    lines.append(f"Files to touch: {', '.join(task.files) if task.files else 'none (the flags exist)'}")
    lines.append(f"Needs code: {'yes' if task.needs_code else 'no'}")
    effect = task.expected_effect or "not stated"
    if task.effect_size is not None:
        effect += f" (expected Δ {task.effect_size:+g}, positive = better)"
    lines.append(f"Expected effect: {effect}")
    if task.metric:
        lines.append(f"Metric: {task.metric}")
    return "\n".join(lines)


def describe_tried(tasks: Iterable[TaskSpec]) -> str:
    """One line per tried task: its name and its flags' on values (what makes two tasks the same idea)."""
    lines = []
    for t in tasks:
        flags = ", ".join(f"{f.key}={value(f.on)}" for f in t.flags) or "(no flags)"
        lines.append(f"- {t.name}: {flags}")
    return "\n".join(lines) or "(nothing yet)"


def describe_study(study: StudySummary, evidence: dict[str, Any] | None = None) -> str:
    """The study's numbers: metric per arm, Δ with its CI and p, throughput and memory with their noise (from the
    rule-based analyzer's `evidence` when given), trial statuses, the first error."""
    s, ev = study, evidence or {}
    lines = [f"Verdict: {s.verdict}. Metric `{s.metric}` ({s.direction} is better).",
             f"- {s.metric}: baseline {num(s.baseline_mean)}, idea {num(s.idea_mean)}",
             f"- Δ (positive = better): {num(s.delta)}, CI {num(s.ci_low)}..{num(s.ci_high)}, p = {num(s.p_value, 3)}, "
             f"n = {s.n_seeds} seed pair(s)"]
    for label, key, base, idea in (("tokens/s", "tokens_per_s", s.baseline_tokens_per_s, s.idea_tokens_per_s),
                                   ("peak memory (MB)", "memory_mb", s.baseline_memory, s.idea_memory)):
        m = ev.get(key) or {}
        move = ""
        if m and math.isfinite(m.get("change_pct", math.nan)):
            move = (f" (change {m['change_pct']:+.1f}%, noise ±{m['noise_pct']:.1f}%: "
                    f"{'beyond' if m.get('moved') else 'within'} the noise)")
        lines.append(f"- {label}: baseline {num(base)}, idea {num(idea)}{move}")
    for arm, per in s.per_seed.items():
        vals = per.get(s.metric) or []
        if vals:
            lines.append(f"- {arm} {s.metric} per seed: {', '.join(num(v) for v in vals)}")
    statuses = "; ".join(f"{arm}: {', '.join(map(str, sts))}" for arm, sts in s.statuses.items() if sts)
    lines.append(f"- trial statuses: {statuses or 'none recorded'}")
    if s.error:
        lines += ["- first error:", "```", cap(s.error.strip(), 2000, keep="end"), "```"]
    return "\n".join(lines)


def describe_curves(curves: dict[str, list[list[float]]]) -> str:
    """The arms' mean training-loss curves side by side: | step | baseline | idea | idea - baseline |."""
    arms = [a for a in curves if curves[a]]
    if not arms:
        return "(no loss curves recorded)"
    steps = sorted({float(p[0]) for a in arms for p in curves[a]})
    at = {a: {float(p[0]): float(p[1]) for p in curves[a]} for a in arms}
    both = len(arms) == 2
    head = "| step | " + " | ".join(arms) + (f" | {arms[1]} - {arms[0]} |" if both else " |")
    rows = [head, "|" + "---|" * (len(arms) + 1 + both)]
    for st in steps:
        vals = [at[a].get(st) for a in arms]
        cells = [num(v) for v in vals]
        if both:
            cells.append(num(vals[1] - vals[0]) if None not in vals else "n/a")  # type: ignore[operator]
        rows.append(f"| {num(st) if st != int(st) else int(st)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _editable_files(root: Path, editable: Sequence[str]) -> list[tuple[str, int]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.suffix in _TEXT_SUFFIXES and first_match(rel, editable) is not None:
                try:
                    size = path.stat().st_size
                except OSError:
                    continue
                out.append((rel, size))
    return out


def select_files(root: Path | None, editable: Sequence[str], idea: str, budget_tokens: int) -> tuple[str, str]:
    """(the list of editable files with their sizes, their text in fences) for a prompt, within `budget_tokens`:
    config files first, then the files the idea names (by file name or stem), then the others smallest first; a file
    that does not fit whole is left out (listed only), except the first config file, cut to the budget."""
    if root is None or not editable or not Path(root).is_dir():
        return "(no workspace files)", ""
    root = Path(root)
    files = [(rel, size) for rel, size in _editable_files(root, editable) if size <= _MAX_FILE_BYTES]
    if not files:
        return f"(no text files match the editable paths {', '.join(editable)})", ""
    words = idea.lower()

    def rank(item: tuple[str, int]) -> tuple[int, int, str]:
        rel, size = item
        name = rel.rsplit("/", 1)[-1].lower()
        stem = name.rsplit(".", 1)[0]
        if "config" in name:
            return 0, size, rel
        if name in words or (len(stem) > 2 and stem in words) or rel.lower() in words:
            return 1, size, rel
        return 2, size, rel

    ordered = sorted(files, key=rank)
    budget = max(0, budget_tokens) * CHARS_PER_TOKEN
    shown, blocks = [], []
    for i, (rel, _size) in enumerate(ordered):
        try:
            text = (root / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        block = f"```{rel}\n{text.rstrip()}\n```"
        if len(block) > budget:
            if i == 0 and rank(ordered[0])[0] == 0 and budget > 200:
                blocks.append(f"```{rel}\n{cap(text, budget - 100)}\n```")
                shown.append(rel)
                budget = 0
            continue
        blocks.append(block)
        shown.append(rel)
        budget -= len(block)
    listing = [f"- {rel} ({size} bytes){'' if rel in shown else ' (not shown)'}"
               for rel, size in sorted(files)[:_MAX_LISTED]]
    if len(files) > _MAX_LISTED:
        listing.append(f"- ... and {len(files) - _MAX_LISTED} more")
    return "\n".join(listing), "\n\n".join(blocks)

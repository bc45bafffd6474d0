"""Analyzer `rules`: why a finished study came out as it did, from its numbers alone — no language model.

The kinds, first match wins (the 5-dollar-llm workflow's "math/theory vs system overhead vs noise", DESIGN.md §7):
  bug      an idea trial crashed or diverged (or the verdict is CRASH): the implementation, not the idea, failed;
  win      the verdict is KEEP;
  theory   the metric is significantly worse (CI entirely on the bad side) while the idea is no slower and no
           larger than the baseline (e.g. AdamW instead of Muon: faster steps, much worse loss per token);
  systems  tokens/s or peak memory of the idea arm moved by more than their noise: the change costs (or saves)
           compute, so at a fixed time budget it is a systems question first;
  noise    the CI straddles 0 (or excludes it but the gain is below the study's minimum effect).

Noise of tokens/s and memory: with per-seed values of both arms (`StudySummary.per_seed`), twice the standard error
of the difference of the arm means, sqrt(sd_b²/n_b + sd_i²/n_i) (≈ a 95% margin), but at least 1% of the baseline
mean (timer, allocator and machine-load jitter that a few seeds do not show); without per-seed values, 5% of
the baseline mean. The numbers go into `Analysis.evidence`; `render_analysis_md` writes analysis.md.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from autoresearch.agents.roles import Analysis, Analyzer, StudySummary, TaskSpec

__all__ = ["RulesAnalyzer", "quantity_noise", "render_analysis_md", "NOISE_FLOOR", "NOISE_DEFAULT"]

NOISE_FLOOR = 0.05
"""Smallest noise of tokens/s and memory, as a fraction of the baseline mean. The baseline arm runs before the idea
arm, so a change of machine load between them reads as a speed change: a fresh user measured the same code (bit-
identical losses) at -36% and +27% tokens/s on a shared 2-core machine; below 5% is never called a move."""
NOISE_DEFAULT = 0.05
"""Noise as a fraction of the baseline mean when the study has no per-seed values."""
_BAD = ("crashed", "diverged", "failed", "timeout", "oom", "error")


def quantity_noise(baseline: float, values_b: Sequence[float], values_i: Sequence[float]) -> float:
    """The noise of a throughput/memory difference (see the module docstring), in the quantity's units."""
    b = [float(v) for v in values_b if v is not None and math.isfinite(v)]
    i = [float(v) for v in values_i if v is not None and math.isfinite(v)]
    if len(b) < 2 or len(i) < 2:
        return NOISE_DEFAULT * abs(baseline)
    se = math.sqrt(statistics.variance(b) / len(b) + statistics.variance(i) / len(i))
    return max(2.0 * se, NOISE_FLOOR * abs(baseline))


def _move(name: str, study: StudySummary, base: float, idea: float) -> dict[str, Any]:
    per = study.per_seed
    noise = quantity_noise(base, per.get("baseline", {}).get(name, []), per.get("idea", {}).get(name, []))
    change = idea - base
    ok = math.isfinite(change) and math.isfinite(noise)
    return {"baseline": base, "idea": idea, "change": change,
            "change_pct": 100.0 * change / base if ok and base else math.nan, "noise": noise,
            "noise_pct": 100.0 * noise / abs(base) if ok and base else math.nan,
            "moved": bool(ok and abs(change) > noise)}


class RulesAnalyzer(Analyzer):
    """`--analyzer rules`."""

    spec = "rules"

    def analyze(self, task: TaskSpec, study: StudySummary) -> Analysis:
        s = study
        speed = _move("tokens_per_s", s, s.baseline_tokens_per_s, s.idea_tokens_per_s)
        memory = _move("peak_memory_mb", s, s.baseline_memory, s.idea_memory)
        idea_statuses = list(s.statuses.get("idea", []))
        bad = [st for st in idea_statuses if str(st).lower() in _BAD]
        ev: dict[str, Any] = {"verdict": s.verdict, "metric": s.metric, "direction": s.direction,
                              "baseline_mean": s.baseline_mean, "idea_mean": s.idea_mean, "delta": s.delta,
                              "ci_low": s.ci_low, "ci_high": s.ci_high, "p_value": s.p_value, "n_seeds": s.n_seeds,
                              "tokens_per_s": speed, "memory_mb": memory, "statuses": dict(s.statuses)}
        stats = (f"Δ {s.metric} {_n(s.delta)} (CI {_n(s.ci_low)}..{_n(s.ci_high)}, p={_n(s.p_value, 3)}, "
                 f"n={s.n_seeds}; positive = better)")
        if bad or s.verdict == "CRASH":
            what = (f"{len(bad)} of {len(idea_statuses)} idea trials {'/'.join(sorted(set(bad)))}" if bad
                    else "the study crashed")
            ev["error"] = s.error
            return Analysis("bug", f"bug: {what}" + (f" (first error: {_line(s.error)})" if s.error else "")
                            + "; the implementation failed, not the idea", ev)
        if s.verdict == "KEEP":
            return Analysis("win", f"win: {s.metric} better, {stats}; {_moves(speed, memory)}", ev)
        costs = (speed["moved"] and speed["change"] < 0) or (memory["moved"] and memory["change"] > 0)
        if math.isfinite(s.ci_high) and s.ci_high < 0 and not costs:
            # worse per token while no slower and no larger: the idea itself (the maths), not its overhead
            return Analysis("theory", f"theory: {s.metric} significantly worse at equal or better speed and memory, "
                            f"{stats}; {_moves(speed, memory)}", ev)
        if speed["moved"] or memory["moved"]:
            return Analysis("systems", f"systems: {_moves(speed, memory, moved_only=True)} beyond the noise; {stats}",
                            ev)
        if math.isfinite(s.ci_low) and s.ci_low > 0:
            return Analysis("noise", f"noise: {s.metric} better but below the minimum effect, {stats}", ev)
        return Analysis("noise", f"noise: the CI straddles 0, {stats}; {_moves(speed, memory)}", ev)


def _n(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def _pct(m: dict[str, Any]) -> str:
    if not math.isfinite(m["change_pct"]):
        return "n/a"
    return f"{m['change_pct']:+.1f}% (noise ±{m['noise_pct']:.1f}%)"


def _moves(speed: dict[str, Any], memory: dict[str, Any], *, moved_only: bool = False) -> str:
    parts = [f"{name} {_pct(m)}" for name, m in (("tokens/s", speed), ("memory", memory))
             if m["moved"] or not moved_only]
    return ", ".join(parts)


def _line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return (lines[-1] if lines else "")[:200]


def render_analysis_md(task: TaskSpec, study: StudySummary, analysis: Analysis, *, version: str = "") -> str:
    """analysis.md of one version: the kind and its line, the task's flags, the numbers behind it."""
    ev = analysis.evidence
    title = f"{task.name}" + (f" {version}" if version else "")
    out = [f"# Analysis: {title}", "", f"**{analysis.kind}** — {analysis.summary}", "",
           f"Idea: {task.idea}", "", "| flag | off (baseline) | on (idea) |", "|---|---|---|"]
    out += [f"| `{f.key}` | `{f.off!r}` | `{f.on!r}` |" for f in task.flags] or ["| (none) | | |"]
    out += ["", f"Study: verdict **{study.verdict}**, metric `{study.metric}` ({study.direction} is better), "
            f"{study.n_seeds} seed pair(s).", "", "| quantity | baseline | idea | change | noise |",
            "|---|---|---|---|---|",
            f"| {study.metric} | {_n(study.baseline_mean)} | {_n(study.idea_mean)} | Δ {_n(study.delta)} "
            f"(CI {_n(study.ci_low)}..{_n(study.ci_high)}, p {_n(study.p_value, 3)}) | |"]
    for label, key in (("tokens/s", "tokens_per_s"), ("peak memory (MB)", "memory_mb")):
        m = ev.get(key) or {}
        if m:
            out.append(f"| {label} | {_n(m['baseline'])} | {_n(m['idea'])} | {_n(m['change'])} ({_pct(m)}) | "
                       f"{_n(m['noise'])}{' (moved)' if m['moved'] else ''} |")
    out += ["", "Trial statuses: " + ("; ".join(f"{arm}: {', '.join(map(str, sts))}"
                                               for arm, sts in study.statuses.items()) or "none recorded")]
    if study.error:
        out += ["", "First error:", "", "```", study.error.strip()[:4000], "```"]
    out += ["", "Δ is oriented so that positive = better. Noise of tokens/s and memory: 2 x the standard error of the "
            f"difference of the arm means over seeds, at least {NOISE_FLOOR:.0%} of the baseline "
            f"({NOISE_DEFAULT:.0%} without per-seed values).", ""]
    return "\n".join(out)

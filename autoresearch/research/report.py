"""The study report: `report.md` (+ `plots/*.png`) and one self-contained `report.html` (PNGs inlined as base64,
no scripts, no external resources — it opens offline).

Sections: verdicts with the decision rule, baseline reproduction, baseline-path regression, loss curves of baseline
vs each idea with seed bands, a forest plot of Δ with its CI, the running-best progression, budget and timing
(study wall time vs the trials' own training time), environment, and every trial.
Both files are rendered from one list of blocks so they cannot disagree.
"""

from __future__ import annotations

import base64
import html
import math
import os
from pathlib import Path
from typing import Any

from autoresearch.harness.atomic import atomic_write_bytes, atomic_write_text, read_jsonl
from autoresearch.research import plots
from autoresearch.research.idea_log import STATUS_ORDER
from autoresearch.research.ledger import Ledger, pair_deltas
from autoresearch.research.state import StudyState, now
from autoresearch.research.study import BASELINE, ResolvedStudy
from autoresearch.research.verdicts import VERDICTS, rule_text

__all__ = ["write_report", "collect_curves", "timing"]

Block = tuple[Any, ...]


def _f(x: Any, spec: str = "+.4f") -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(float(x), spec)


def _p(p: Any) -> str:
    if p is None or not math.isfinite(p):
        return "-"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def collect_curves(resolved: ResolvedStudy, state: StudyState) -> tuple[dict[str, list], str]:
    """arm -> [(x, loss)] per ok trial, from each experiment's log.jsonl; x is tokens when logged, else steps."""
    curves: dict[str, list] = {BASELINE: [], **{a: [] for a in resolved.idea_names}}
    xkey = "tokens"
    for t in state.trials.values():
        if t.arm not in curves or not t.ok or not t.exp:
            continue
        rows = [r for r in read_jsonl(Path(t.exp) / "log.jsonl") if "loss" in r]
        if not rows:
            continue
        if any("tokens" not in r for r in rows):
            xkey = "step"
        curves[t.arm].append(([r.get(xkey, r.get("step", 0)) for r in rows], [float(r["loss"]) for r in rows]))
    return curves, xkey


def timing(state: StudyState) -> dict[str, float]:
    """Study wall time vs the trials' own time (train() calls and whole subprocesses)."""
    trials = state.trials.values()
    train = sum(float(t.train_wall_s or 0) for t in trials)
    proc = sum(float(t.wall_s or 0) for t in trials)
    checks_stage = state.stages.get("checks")
    checks = float(checks_stage.seconds or 0) if checks_stage else 0.0
    wall = state.wall_seconds()
    workers = max((r.workers for r in state.runs), default=1)
    return {"wall_s": wall, "train_s": train, "process_s": proc + checks, "workers": workers,
            "utilisation": train / (wall * workers) if wall > 0 else math.nan}


def _blocks(resolved: ResolvedStudy, state: StudyState, ledger: Ledger, pngs: dict[str, bytes]) -> list[Block]:
    s = resolved.study
    metric = s.metric.name
    verdicts = [state.verdicts[a] for a in resolved.idea_names if a in state.verdicts]
    b: list[Block] = [("h1", f"Study {resolved.name}"), ("p", s.description or ""),
                      ("p", f"Generated {now()} · testbed `{s.testbed}` preset `{s.preset}` · metric `{metric}` "
                            f"({resolved.direction} is better)")]

    counts = {st: sum(v.log_status == st for v in verdicts) for st in STATUS_ORDER}
    b.append(("p", "Idea log: " + ", ".join(f"{k} {n}" for k, n in counts.items()) + " (see idea_log.md)."))

    # --- verdicts ---
    b.append(("h2", "Verdicts"))
    rows = [[v.idea, v.verdict, _f(v.mean), f"[{_f(v.lo)}, {_f(v.hi)}]", _p(v.p), str(v.n), _f(v.idea_mean, ".4f"),
             _f(v.baseline_mean, ".4f"), v.error or v.reason] for v in verdicts]  # full reason: the report is wide
    b.append(("table", ["idea", "verdict", "Δ (>0 better)", f"CI ({100 * verdicts[0].conf:.4g}%)" if verdicts else "CI",
                        "p", "n", f"idea {metric}", f"baseline {metric}", "reason"], rows))
    sp = s.seeds
    b.append(("p", rule_text(s.decision, metric=metric, direction=resolved.direction, initial=sp.initial,
                             max_seeds=sp.max, step=sp.step)))
    if s.control is not None:
        b.append(("p", f"A/A control `{s.control.name}`: the baseline config on seeds offset by "
                       f"{s.control.seed_offset}, paired by index with the baseline seeds; it must not be KEPT."))
    b.append(("h2", "Ideas"))
    b.append(("table", ["arm", "description", "overrides (on top of the baseline)"],
              [[i.name, i.description or "-", ", ".join(f"{k}={v}" for k, v in i.overrides.items())]
               for i in s.ideas]))

    # --- baseline and regression ---
    base = state.baseline
    b.append(("h2", "Baseline reproduction"))
    acc = base.accepted
    rec = acc.value if acc else s.baseline.value
    vals = ", ".join(f"{v:.4f}" for v in base.values)
    if rec is None:
        b.append(("p", f"No recorded value; measured {metric} {_f(base.measured, '.4f')} over seeds ({vals})."))
    else:
        src = f" (source: {s.baseline.source})" if s.baseline.source else ""
        note = f" — accepted on {acc.at} replacing {acc.previous}" if acc else ""
        b.append(("p", f"Recorded {metric} {rec:.4f}{src}{note}; tolerance {100 * s.baseline.tolerance:g}%; measured "
                       f"{_f(base.measured, '.4f')} over {len(base.values)} seeds ({vals})."))
    regst = state.stages.get("regression")
    b.append(("h2", "Baseline-path regression"))
    if not s.regression.enabled:
        b.append(("p", "Disabled in the study file."))
    elif regst:
        b.append(("p", f"Per-step loss trace of a {regst.steps if regst.steps is not None else '?'}-step deterministic "
                       f"baseline run with every idea flag explicitly off: **{regst.result or regst.status}** bit for "
                       f"bit (trace store `{regst.store}`; copy in regression_trace.json)."))

    # --- plots ---
    b.append(("h2", "Loss curves"))
    b.append(("img", "loss_curves", "Training loss of baseline vs each idea, seed bands"))
    b.append(("h2", "Effects (forest plot)"))
    b.append(("img", "forest", "Δ with CI per idea"))
    b.append(("h2", "Running best"))
    b.append(("img", "running_best", "Progression of trials and the best kept config"))

    # --- budget, timing, environment ---
    tm = timing(state)
    bud = s.budget
    b.append(("h2", "Budget and timing"))
    b.append(("table", ["item", "value"], [
        ["budget per trial", f"tokens={bud.tokens or 'preset'} seconds={bud.seconds or '-'}"],
        ["base overrides", ", ".join(f"{k}={v}" for k, v in s.overrides.items()) or "-"],
        ["seeds", f"initial {sp.initial}, max {sp.max}, step {sp.step}, base {sp.base}"],
        ["trials recorded", str(len(state.trials))],
        ["study wall time", f"{tm['wall_s']:.1f} s"],
        ["Σ trials' train() time", f"{tm['train_s']:.1f} s over {tm['workers']} workers"],
        ["Σ trial process time", f"{tm['process_s']:.1f} s (interpreter start, data, eval included)"],
        ["worker utilisation by training", f"{100 * tm['utilisation']:.1f}%" if math.isfinite(tm["utilisation"])
         else "-"],
    ]))
    env = state.environment
    b.append(("h2", "Environment"))
    b.append(("table", ["key", "value"], [[k, str(v)] for k, v in env.items()]))

    # --- trials ---
    b.append(("h2", "Trials"))
    deltas = pair_deltas([t.to_dict() for t in state.trials.values()], resolved.direction)  # from the state: whichever came first
    problem = ledger.problem()
    if problem:
        b.append(("p", f"**Ledger damage:** {problem}."))
    trows = []
    for tid, t in state.trials.items():
        trows.append([tid, t.arm, str(t.seed), t.status, _f(t.metric, ".4f"), _f(deltas.get(tid)),
                      f"{float(t.train_wall_s or 0):.1f}", str(t.attempts), Path(t.exp or "-").name,
                      (t.error or "")[:120]])
    b.append(("table", ["trial", "arm", "seed", "status", metric, "Δ", "train s", "attempts", "exp", "error"], trows))
    return b


def _md(blocks: list[Block]) -> str:
    out = []
    for blk in blocks:
        kind = blk[0]
        if kind == "h1":
            out.append(f"# {blk[1]}")
        elif kind == "h2":
            out.append(f"## {blk[1]}")
        elif kind == "p":
            if blk[1]:
                out.append(blk[1])
        elif kind == "table":
            heads, rows = blk[1], blk[2]
            esc = [[str(c).replace("|", "\\|") for c in r] for r in rows]
            out.append("\n".join(["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
                                 + ["| " + " | ".join(r) + " |" for r in esc]))
        elif kind == "img":
            out.append(f"![{blk[2]}](plots/{blk[1]}.png)")
        out.append("")
    return "\n".join(out)


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:3px 8px;"
        "text-align:left}th{background:#f3f3f3}img{max-width:100%}code{background:#f3f3f3;padding:0 3px}"
        ".KEEP{color:#2e7d32;font-weight:bold}.DISCARD{color:#c62828;font-weight:bold}.RETEST{color:#ef6c00}"
        ".CRASH{color:#6a1b9a;font-weight:bold}")


def _inline(text: str) -> str:
    """Escape, then render `code` and **bold** (the only Markdown the blocks use)."""
    import re

    t = html.escape(text)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", t)


def _td(cell: str) -> str:
    cls = f" class='{cell}'" if cell in VERDICTS else ""
    return f"<td{cls}>{_inline(cell)}</td>"


def _html(blocks: list[Block], pngs: dict[str, bytes], title: str) -> str:
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{_CSS}</style></head><body>"]
    for blk in blocks:
        kind = blk[0]
        if kind == "h1":
            out.append(f"<h1>{_inline(blk[1])}</h1>")
        elif kind == "h2":
            out.append(f"<h2>{_inline(blk[1])}</h2>")
        elif kind == "p" and blk[1]:
            out.append(f"<p>{_inline(blk[1])}</p>")
        elif kind == "table":
            heads = "".join(f"<th>{_inline(h)}</th>" for h in blk[1])
            body = "".join("<tr>" + "".join(_td(str(c)) for c in r) + "</tr>" for r in blk[2])
            out.append(f"<table><tr>{heads}</tr>{body}</table>")
        elif kind == "img" and blk[1] in pngs:
            data = base64.b64encode(pngs[blk[1]]).decode()
            out.append(f"<img alt='{html.escape(blk[2])}' src='data:image/png;base64,{data}'>")
    out.append("</body></html>")
    return "\n".join(out)


def _running_best(resolved: ResolvedStudy, state: StudyState, ledger: Ledger) -> tuple[list, list]:
    verdicts = state.verdicts
    order: dict[str, dict] = {}
    for r in ledger.records("trial"):
        if r.get("status") == "ok" and r.get("metric") is not None:
            order[r["trial"]] = r  # the last record of a trial wins (retries)
    status = {a: v.log_status for a, v in verdicts.items()}
    points = [{"order": i, "arm": r["arm"], "value": float(r["metric"]), "status": status.get(r["arm"], "")}
              for i, r in enumerate(order.values())]
    base = state.baseline.measured
    steps: list[tuple[int, float, str]] = []
    if base is None or not points:
        return points, steps
    better = (lambda a, b: a > b) if resolved.direction == "higher" else (lambda a, b: a < b)
    first_base = next((p["order"] for p in points if p["arm"] == BASELINE), 0)
    steps.append((first_base, float(base), "baseline"))
    kept = [(max(p["order"] for p in points if p["arm"] == a), a) for a, v in verdicts.items()
            if v.verdict == "KEEP" and any(p["arm"] == a for p in points)]
    for at, arm in sorted(kept):
        mean = verdicts[arm].idea_mean
        if math.isfinite(mean) and better(mean, steps[-1][1]):
            steps.append((at, float(mean), arm))
    return points, steps


def write_report(study_dir: Path, resolved: ResolvedStudy, state: StudyState, ledger: Ledger) -> tuple[Path, Path]:
    """Render plots, report.md and report.html into the study folder; return the two report paths."""
    sdir = Path(study_dir)
    verdicts = [state.verdicts[a] for a in resolved.idea_names if a in state.verdicts]
    labels = {v.idea: (v.verdict, v.log_status) for v in verdicts}
    curves, xkey = collect_curves(resolved, state)
    rows = [{**v.to_dict(), "status": v.log_status} for v in verdicts]
    points, steps = _running_best(resolved, state, ledger)
    pngs = {
        "loss_curves": plots.loss_curves_png(curves, BASELINE, labels, xlabel=xkey),
        "forest": plots.forest_png(rows, resolved.study.decision.min_effect, resolved.study.metric.name),
        "running_best": plots.running_best_png(points, steps, resolved.direction, resolved.study.metric.name),
    }
    for name, data in pngs.items():
        atomic_write_bytes(sdir / "plots" / f"{name}.png", data)
        os.chmod(sdir / "plots" / f"{name}.png", 0o644)  # temp files are 0600; reports are meant to be shared
    blocks = _blocks(resolved, state, ledger, pngs)
    md, page = sdir / "report.md", sdir / "report.html"
    atomic_write_text(md, _md(blocks))
    atomic_write_text(page, _html(blocks, pngs, f"Study {resolved.name}"))
    for p in (md, page):
        os.chmod(p, 0o644)
    return md, page

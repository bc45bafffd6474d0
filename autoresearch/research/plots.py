"""Plots of a study report (matplotlib, Agg backend, PNG bytes): loss curves with seed bands, a forest plot of Δ
with its CI, and the running-best progression.

matplotlib is imported inside the functions: trial subprocesses import the research package and must not pay for it.
Each function returns PNG bytes, so the report can both save them and embed them as base64 in one HTML file.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["loss_curves_png", "forest_png", "running_best_png"]

_COLORS = {"Validated": "#2e7d32", "Rejected": "#c62828", "Inconclusive": "#ef6c00", "Crashed": "#6a1b9a"}
"""Colours by idea-log status (a DISCARD for lack of evidence is not drawn like a DISCARD for harm)."""
_BASE = "#455a64"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def _band(runs: Sequence[tuple[Sequence[float], Sequence[float]]]) -> tuple[np.ndarray, ...] | None:
    """Common x, mean, min, max across seeds (runs truncated to the shortest)."""
    runs = [(np.asarray(x, float), np.asarray(y, float)) for x, y in runs if len(x)]
    if not runs:
        return None
    n = min(len(x) for x, _ in runs)
    x = runs[0][0][:n]
    ys = np.stack([y[:n] for _, y in runs])
    with np.errstate(all="ignore"):
        return x, np.nanmean(ys, 0), np.nanmin(ys, 0), np.nanmax(ys, 0)


def loss_curves_png(curves: dict[str, list[tuple[list[float], list[float]]]], baseline: str,
                    labels: dict[str, tuple[str, str]], xlabel: str = "tokens") -> bytes:
    """One panel per idea: baseline vs the idea, mean over seeds with a min–max band.

    `labels`: arm -> (verdict, idea-log status)."""
    plt = _plt()
    arms = [a for a in curves if a != baseline]
    cols = min(3, max(1, len(arms)))
    rows = max(1, math.ceil(len(arms) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.3 * rows), squeeze=False, sharey=True)
    base = _band(curves.get(baseline, []))
    for k, ax in enumerate(axes.flat):
        if k >= len(arms):
            ax.axis("off")
            continue
        arm = arms[k]
        verdict, status = labels.get(arm, ("?", ""))
        for name, band, color in ((baseline, base, _BASE), (arm, _band(curves[arm]), _COLORS.get(status, "#1565c0"))):
            if band is None:
                continue
            x, m, lo, hi = band
            ax.plot(x, m, color=color, lw=1.4, label=f"{name} (n={len(curves.get(name, []))})")
            ax.fill_between(x, lo, hi, color=color, alpha=0.18, lw=0)
        ax.set_title(f"{arm} — {verdict} ({status})" if status else f"{arm} — {verdict}", fontsize=10)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        # the interesting part is the end of training; the first steps would flatten everything
        bands = [bd for bd in (base, _band(curves[arm])) if bd is not None]
        if bands and bands[0][0].size > 4:
            lows = np.concatenate([bd[2][bd[2].size // 4:] for bd in bands])
            means = np.concatenate([bd[1] for bd in bands])
            lows, means = lows[np.isfinite(lows)], means[np.isfinite(means)]
            if lows.size and means.size:
                bottom, top = float(np.min(lows)), float(np.percentile(means, 90))
                if top > bottom:
                    ax.set_ylim(bottom - 0.03 * (top - bottom), top)
    axes.flat[0].set_ylabel("training loss")
    fig.suptitle("Training loss: baseline vs each idea (mean over seeds, band = min..max)", fontsize=11)
    fig.tight_layout()
    return _png(fig)


def forest_png(rows: list[dict[str, Any]], min_effect: float, metric: str) -> bytes:
    """Δ (positive = better) with its CI per idea, with 0 and the minimum effect marked.

    `rows`: dicts with idea, verdict, status, n, mean, lo, hi (None where undefined)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.0, 0.55 * len(rows) + 1.4))
    for i, r in enumerate(reversed(rows)):
        color = _COLORS.get(r.get("status", ""), "#1565c0")
        mean, lo, hi = (r.get(k) for k in ("mean", "lo", "hi"))
        if mean is None or not math.isfinite(mean):
            ax.text(0, i, f"{r['idea']}: {r['verdict']}", va="center", fontsize=8, color=color)
            continue
        lo_ = lo if lo is not None and math.isfinite(lo) else mean
        hi_ = hi if hi is not None and math.isfinite(hi) else mean
        ax.errorbar([mean], [i], xerr=[[mean - lo_], [hi_ - mean]], fmt="o", color=color, capsize=4)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{r['idea']} ({r['verdict']}, n={r['n']})" for r in reversed(rows)], fontsize=9)
    ax.axvline(0.0, color="black", lw=1)
    if min_effect > 0:
        ax.axvline(min_effect, color="#2e7d32", lw=1, ls="--", label=f"min effect {min_effect:g}")
        ax.legend(fontsize=8, loc="best")
    ax.set_xlabel(f"Δ {metric} vs baseline (positive = better), with CI")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Effect of each idea (paired seeds)", fontsize=11)
    return _png(fig)


def running_best_png(points: list[dict[str, Any]], steps: list[tuple[int, float, str]], direction: str,
                     metric: str) -> bytes:
    """Every trial's metric in completion order (coloured by its arm's status) and the running best *decided* config.

    The step line moves only when an idea is KEPT (mean over its seeds), never on a single lucky seed — the failure
    mode of one-run keep/discard loops.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8.0, 3.6))
    for p in points:
        color = _BASE if p["arm"] == "baseline" else _COLORS.get(p.get("status", ""), "#1565c0")
        ax.scatter([p["order"]], [p["value"]], s=14, color=color, alpha=0.8)
    if steps:
        xs = [s[0] for s in steps] + [max((p["order"] for p in points), default=steps[-1][0])]
        ys = [s[1] for s in steps] + [steps[-1][1]]
        ax.step(xs, ys, where="post", color="black", lw=1.5, label="running best (baseline / KEEP means)")
        for x, y, label in steps:
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(3, 4), fontsize=8)
        ax.legend(fontsize=8)
    ax.set_xlabel("trial (completion order)")
    ax.set_ylabel(f"{metric} ({direction} is better)")
    ax.grid(alpha=0.3)
    ax.set_title("Progression: every trial, and the best config kept so far", fontsize=11)
    return _png(fig)

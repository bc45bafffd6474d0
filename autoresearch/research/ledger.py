"""The append-only ledger of a study: `ledger.jsonl` (every field) and `results.tsv` (karpathy/autoresearch columns).

Every trial — ok, crashed or diverged — and every verdict round is appended to `ledger.jsonl`, never rewritten
(STYLE.md §11). Appends are idempotent by key and serialized with an flock, so a runner killed between "trial
finished" and "state saved" can append the same record again on resume without duplicating it, and two processes
never interleave lines. A torn last line (a kill mid-append) is terminated before the next append, so the next
record never glues onto it; damaged lines are kept as they are and reported (`problem`), never silently dropped.

`results.tsv` is derived: it is rebuilt from `ledger.jsonl` (atomically) after every append and by `rebuild()` on
resume and report, so a torn, edited or deleted results.tsv comes back. It keeps karpathy/autoresearch's columns
`commit <metric> memory_gb status description` (a crashed trial shows 0.000000 and 0.0, as there) and adds
`seed delta verdict`. Δ of a trial is computed from its seed pair when the pair is complete, whichever of the two
finished first (issue 8 §4: an idea trial that finished before its baseline left Δ empty in 6 of 12 runs).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from autoresearch.harness.atomic import append_jsonl, atomic_write_text, file_lock, scan_jsonl

__all__ = ["Ledger", "tsv_columns", "pair_deltas"]

BASELINE = "baseline"
_UNPAIRED = ("baseline", "regression", "checks")


def tsv_columns(metric: str) -> list[str]:
    """Header of results.tsv for a study whose metric is `metric`."""
    return ["commit", metric, "memory_gb", "status", "description", "seed", "delta", "verdict"]


def pair_deltas(trials: Iterable[dict[str, Any]], direction: str) -> dict[str, float]:
    """trial id -> Δ (positive = better) for every ok idea/control trial whose baseline pair (same `index`) is ok.

    The last ok baseline record of an index wins (a retried baseline replaces the earlier attempt)."""
    trials = list(trials)
    base: dict[int, float] = {}
    for t in trials:
        if t.get("arm") == BASELINE and t.get("status") == "ok" and _finite(t.get("metric")) and t.get("index") is not None:
            base[int(t["index"])] = float(t["metric"])
    out: dict[str, float] = {}
    for t in trials:
        if t.get("arm") in _UNPAIRED or t.get("status") != "ok" or not _finite(t.get("metric")):
            continue
        idx = t.get("index")
        if idx is None or int(idx) not in base or not t.get("trial"):
            continue
        d = float(t["metric"]) - base[int(idx)]
        out[str(t["trial"])] = d if direction == "higher" else -d
    return out


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _clean(text: Any) -> str:
    return " ".join(str(text).split())


def _fmt(x: Any, spec: str) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    return format(float(x), spec)


class Ledger:
    """`studies/<name>/ledger.jsonl` + the derived `results.tsv`; records are dicts with a `key` and a `kind`."""

    def __init__(self, study_dir: str | Path, metric: str, direction: str | None = None) -> None:
        """`direction` ("lower" | "higher") lets results.tsv compute Δ of pairs completed in either order; without
        it the Δ stored in each record is shown."""
        self.dir = Path(study_dir)
        self.metric = metric
        self.direction = direction
        self.jsonl = self.dir / "ledger.jsonl"
        self.tsv = self.dir / "results.tsv"
        self._lock = self.dir / ".ledger.lock"

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        recs = scan_jsonl(self.jsonl).records
        return [r for r in recs if kind is None or r.get("kind") == kind]

    def problem(self) -> str:
        """One line describing damaged ledger lines ('' if none); such lines are kept and reported, not dropped."""
        scan = scan_jsonl(self.jsonl)
        if not scan.bad:
            return ""
        return (f"{scan.describe_bad(self.jsonl)}; kept as is and left out of results.tsv and the report "
                f"(trials recorded in state.json were appended again)")

    def append(self, record: dict[str, Any]) -> bool:
        """Append `record` (must carry `key` and `kind`) unless a record with that key exists; True if written."""
        if "key" not in record or "kind" not in record:
            raise ValueError("ledger records need a `key` and a `kind`")
        with file_lock(self._lock):
            existing = scan_jsonl(self.jsonl).records
            if any(r.get("key") == record["key"] for r in existing):
                self._write_tsv(existing)
                return False
            self._terminate_torn_line()
            append_jsonl(self.jsonl, record)
            self._write_tsv([*existing, record])
            return True

    def rebuild(self) -> None:
        """Rewrite results.tsv from ledger.jsonl (after a crash, a hand edit, or a deleted file)."""
        with file_lock(self._lock):
            self._write_tsv(scan_jsonl(self.jsonl).records)

    def _terminate_torn_line(self) -> None:
        """A kill mid-append leaves a last line without its newline; end it so the next record starts clean."""
        try:
            with open(self.jsonl, "rb") as f:
                f.seek(0, os.SEEK_END)
                if f.tell() == 0:
                    return
                f.seek(-1, os.SEEK_END)
                last = f.read(1)
        except FileNotFoundError:
            return
        if last != b"\n":
            fd = os.open(self.jsonl, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, b"\n")
            finally:
                os.close(fd)

    # --- results.tsv ---

    def _write_tsv(self, records: list[dict[str, Any]]) -> None:
        deltas = pair_deltas([r for r in records if r.get("kind") == "trial"], self.direction) \
            if self.direction else {}
        lines = ["\t".join(tsv_columns(self.metric))]
        for rec in records:
            lines.append("\t".join(self._row(rec, deltas)))
        text = "\n".join(lines) + "\n"
        try:
            if self.tsv.read_text() == text:
                return
        except (FileNotFoundError, UnicodeDecodeError):
            pass
        atomic_write_text(self.tsv, text)
        os.chmod(self.tsv, 0o644)  # temp files are 0600; the table is meant to be read by others

    def _row(self, r: dict[str, Any], deltas: dict[str, float]) -> list[str]:
        if r.get("kind") == "checks":
            return [r.get("commit", ""), "0.000000", "0.0", r.get("status", ""), _clean(r.get("description", "")),
                    "", "", ""]
        if r.get("kind") in ("trial", "regression"):
            ok = r.get("status") == "ok"
            value = _fmt(r.get("metric"), ".6f") if ok else "0.000000"
            mem = _fmt(r.get("memory_gb"), ".1f") if ok else "0.0"
            status = r.get("status", "")
            desc = f"{r.get('arm')}: {r.get('description', '')}"
            if not ok and r.get("error"):
                desc += f" [{r['error']}]"
            delta = r.get("delta")
            if delta is None and ok:
                delta = deltas.get(str(r.get("trial")))
            return [str(r.get("commit", "")), value, mem or "0.0", str(status), _clean(desc)[:300],
                    str(r.get("seed", "")), _fmt(delta, "+.6f"), ""]
        # verdict round: the arm's mean, its Δ and the verdict
        return [str(r.get("commit", "")), _fmt(r.get("idea_mean"), ".6f") or "0.000000", "",
                str(r.get("verdict", "")).lower(), _clean(f"{r.get('arm')}: {r.get('reason', '')}")[:300],
                f"n={r.get('n', '')}", _fmt(r.get("mean"), "+.6f"), str(r.get("verdict", ""))]

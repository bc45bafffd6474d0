"""The append-only ledger of a study: `results.tsv` (karpathy/autoresearch column style) and `ledger.jsonl`.

Every trial — ok, crashed or diverged — and every verdict round is appended, never rewritten (STYLE.md §11).
`results.tsv` keeps karpathy/autoresearch's columns `commit <metric> memory_gb status description` (a crashed
trial shows 0.000000 and 0.0, as there) and adds `seed delta verdict`; `ledger.jsonl` holds every field.

Appends are idempotent by key and serialized with an flock, so a runner killed between "trial finished" and
"state saved" can append the same record again on resume without duplicating it, and two processes never
interleave rows. `ledger.jsonl` is the source of truth: on each append, TSV rows missing after a crash between
the two writes are appended first (both files list records in the same order).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from autoresearch.harness.atomic import append_jsonl, file_lock, read_jsonl

__all__ = ["Ledger", "tsv_columns"]


def tsv_columns(metric: str) -> list[str]:
    """Header of results.tsv for a study whose metric is `metric`."""
    return ["commit", metric, "memory_gb", "status", "description", "seed", "delta", "verdict"]


def _clean(text: Any) -> str:
    return " ".join(str(text).split())


def _fmt(x: Any, spec: str) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    return format(float(x), spec)


class Ledger:
    """`studies/<name>/results.tsv` + `ledger.jsonl`; records are dicts with a `key` and a `kind`."""

    def __init__(self, study_dir: str | Path, metric: str) -> None:
        self.dir = Path(study_dir)
        self.metric = metric
        self.jsonl = self.dir / "ledger.jsonl"
        self.tsv = self.dir / "results.tsv"
        self._lock = self.dir / ".ledger.lock"

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        recs = read_jsonl(self.jsonl)
        return [r for r in recs if kind is None or r.get("kind") == kind]

    def append(self, record: dict[str, Any]) -> bool:
        """Append `record` (must carry `key` and `kind`) unless a record with that key exists; True if written."""
        if "key" not in record or "kind" not in record:
            raise ValueError("ledger records need a `key` and a `kind`")
        with file_lock(self._lock):
            existing = read_jsonl(self.jsonl)
            if any(r.get("key") == record["key"] for r in existing):
                self._sync_tsv(existing)
                return False
            append_jsonl(self.jsonl, record)
            self._sync_tsv([*existing, record])
            return True

    # --- results.tsv ---

    def _sync_tsv(self, records: list[dict[str, Any]]) -> None:
        have = self._tsv_rows()
        if have < 0:
            _append_line(self.tsv, "\t".join(tsv_columns(self.metric)))
            have = 0
        for rec in records[have:]:
            _append_line(self.tsv, "\t".join(self._row(rec)))

    def _tsv_rows(self) -> int:
        """Data rows in results.tsv, or -1 when the file (header) does not exist yet."""
        try:
            text = self.tsv.read_text()
        except FileNotFoundError:
            return -1
        lines = [ln for ln in text.split("\n") if ln]
        return max(0, len(lines) - 1) if lines else -1

    def _row(self, r: dict[str, Any]) -> list[str]:
        if r["kind"] == "checks":
            return [r.get("commit", ""), "0.000000", "0.0", r.get("status", ""), _clean(r.get("description", "")),
                    "", "", ""]
        if r["kind"] in ("trial", "regression"):
            ok = r.get("status") == "ok"
            value = _fmt(r.get("metric"), ".6f") if ok else "0.000000"
            mem = _fmt(r.get("memory_gb"), ".1f") if ok else "0.0"
            status = r.get("status", "")
            desc = f"{r.get('arm')}: {r.get('description', '')}"
            if not ok and r.get("error"):
                desc += f" [{r['error']}]"
            return [r.get("commit", ""), value, mem or "0.0", status, _clean(desc)[:300], str(r.get("seed", "")),
                    _fmt(r.get("delta"), "+.6f"), ""]
        # verdict round: the arm's mean, its Δ and the verdict
        return [r.get("commit", ""), _fmt(r.get("idea_mean"), ".6f") or "0.000000", "", r.get("verdict", "").lower(),
                _clean(f"{r.get('arm')}: {r.get('reason', '')}")[:300], f"n={r.get('n', '')}",
                _fmt(r.get("mean"), "+.6f"), r.get("verdict", "")]


def _append_line(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
    finally:
        os.close(fd)


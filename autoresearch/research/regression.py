"""Baseline-path regression: a short deterministic baseline run whose per-step losses must reproduce bit for bit.

Ideas are flags, and a flag that is off must leave the baseline code path exactly as it was (issue 4 §2). The check
records the per-step loss trace of a short baseline run (every idea flag off, `log_every=1`, CPU) once, in a trace
store shared by every study on this machine, and compares each later study's run with it float for float (by
`float.hex`, so -0.0, NaN and the last ulp all count). A trace recorded before an idea's code was written catches
an "off" flag that still changes the baseline; a mismatch names the first differing step.

Traces are keyed by what the short run is declared to be — testbed, preset, its overrides — and by the machine
fingerprint (Python, torch, numpy, CPU model, what precision `auto` resolves to: harness/provenance.py
`machine_fingerprint`), *not* by the resolved config: adding a new flag field to a config
must not silently start a new trace, or the check could never catch the change it exists for. Floating-point
results legitimately differ across CPUs and library versions, so another fingerprint records its own trace.
The first recording runs the short run twice and requires the two to agree, proving the run is deterministic.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoresearch.errors import StudyError
from autoresearch.harness.atomic import atomic_write_text, read_jsonl
from autoresearch.harness.settings import load_settings

__all__ = ["Trace", "trace_key", "trace_store", "read_trace", "first_difference", "load_trace",
           "save_trace"]


@dataclass
class Trace:
    """Per-step losses of one run."""

    steps: list[int]
    losses: list[float]

    @property
    def hex(self) -> list[str]:
        return [float(x).hex() for x in self.losses]


def trace_key(testbed: str, preset: str, overrides: dict[str, Any], fp: dict[str, str]) -> str:
    """Store key of a short run: declared inputs + machine fingerprint."""
    blob = json.dumps({"testbed": testbed, "preset": preset, "overrides": overrides, "fp": fp}, sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def trace_store(configured: str = "") -> Path:
    """Directory of recorded traces: `regression.store`, else $AUTORESEARCH_CACHE/traces, else ~/.cache/...."""
    if configured:
        return Path(configured).expanduser()
    return load_settings().traces_dir


def read_trace(exp_path: str | Path) -> Trace:
    """The per-step loss trace of a finished run from its log.jsonl (every step must be logged)."""
    log = Path(exp_path) / "log.jsonl"
    rows = [r for r in read_jsonl(log) if "step" in r and "loss" in r]
    if not rows:
        raise StudyError(f"regression run {exp_path} logged no step losses in {log}; the testbed must write "
                         f"`step` and `loss` to log.jsonl")
    steps = [int(r["step"]) for r in rows]
    if any(b - a != 1 for a, b in zip(steps, steps[1:])):
        raise StudyError(f"regression run {exp_path} did not log every step (steps {steps[:6]}...); set "
                         f"`regression.overrides: {{train.log_every: 1}}` in the study file")
    return Trace(steps, [float(r["loss"]) for r in rows])


def first_difference(recorded: Trace, fresh: Trace) -> str | None:
    """None when the traces are identical bit for bit; else a sentence naming the first differing step."""
    for s_rec, s_new, a, b in zip(recorded.steps, fresh.steps, recorded.hex, fresh.hex):
        if s_rec != s_new:
            return f"step numbering differs: recorded step {s_rec}, this run step {s_new}"
        if a != b:
            return (f"first differing step {s_rec}: loss {float.fromhex(b)!r} now vs {float.fromhex(a)!r} recorded "
                    f"({b} vs {a})")
    if len(recorded.steps) != len(fresh.steps):
        n = min(len(recorded.steps), len(fresh.steps))
        step = (recorded.steps if len(recorded.steps) > n else fresh.steps)[n]
        return (f"first differing step {step}: recorded {len(recorded.steps)} steps, this run "
                f"{len(fresh.steps)} steps")
    return None


def load_trace(path: Path) -> tuple[Trace, dict[str, Any]] | None:
    """A recorded trace and its metadata, or None if not recorded yet."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError:
        raise StudyError(f"recorded trace {path} is corrupt (not JSON); delete it to record again") from None
    return Trace([int(s) for s in data["steps"]], [float.fromhex(h) for h in data["losses_hex"]]), data


def save_trace(path: Path, trace: Trace, meta: dict[str, Any]) -> None:
    """Write a trace (steps, losses, their hex) with provenance, atomically."""
    data = {**meta, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "steps": trace.steps,
            "losses": trace.losses, "losses_hex": trace.hex}
    atomic_write_text(path, json.dumps(data, indent=1))

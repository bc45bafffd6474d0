"""The `Tracker` protocol (what one experiment tracker — TensorBoard, MLflow, W&B — is asked to do) and the
conversions of the registry's records into what trackers take: flat `key: scalar` mappings.

A tracker mirrors one experiment: each `log.jsonl` record becomes `log_metrics(step, numbers)`, `results.yaml`
becomes `log_summary(scalars)` (written at the start as `status: running` and again at the end), `config.yaml`
becomes `log_config(flat config)`, and the run's labels (experiment, testbed; study, arm, seed, trial for a study's
trial) are `set_tags`. A tracker may raise anything: `TrackerSet` (tracker_set.py) contains the failure.
"""

from __future__ import annotations

import math
from typing import Any, Protocol, runtime_checkable

__all__ = ["Tracker", "flatten", "numbers", "FINAL_FAILED"]

FINAL_FAILED = ("crashed", "diverged")
"""`status` values of results.yaml that end a tracker's run as failed (W&B exit code 1, MLflow FAILED)."""


@runtime_checkable
class Tracker(Protocol):
    """One experiment tracker's run. Every method may raise; none is called after `close()`."""

    name: str

    def log_metrics(self, step: int | None, metrics: dict[str, float]) -> None:
        """Numbers of one log.jsonl record at training step `step` (None: the record has no step)."""

    def log_summary(self, summary: dict[str, float | int | str]) -> None:
        """The run's results.yaml, flattened (`data.source`); numbers and strings (`status`, `error`)."""

    def log_config(self, config: dict[str, Any]) -> None:
        """The resolved config, flattened (`model.n_layers: 4`); written once when a fresh run starts."""

    def set_tags(self, tags: dict[str, str]) -> None:
        """Labels of the run (experiment, testbed; study, arm, seed, trial for a study's trial)."""

    def close(self) -> None:
        """Flush and end the run; its final state follows the last summary's `status`."""


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`; lists and other non-mapping values are kept as they are."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def numbers(record: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, float]:
    """The numeric (not bool) values of a flat record as floats; non-finite values (a diverged loss) are kept."""
    return {k: float(v) for k, v in record.items()
            if k not in skip and isinstance(v, (int, float)) and not isinstance(v, bool)}


def finite(values: dict[str, float]) -> dict[str, float]:
    """The finite values only (some trackers reject NaN/inf)."""
    return {k: v for k, v in values.items() if math.isfinite(v)}

"""Experiment trackers: mirror an experiment's `log.jsonl`, `results.yaml` and config into TensorBoard, MLflow or
Weights & Biases (`autoresearch train ... --tracker NAME`, `study run ... --tracker NAME`, several allowed).

    base.py          the `Tracker` protocol and the record -> flat scalars conversions
    tracker_set.py   `TrackerSet`: the fan-out that warns once about a failing tracker and drops it
    tensorboard.py   torch.utils.tensorboard SummaryWriter into <experiment>/trackers/tensorboard/
    mlflow.py        one MLflow run per experiment (MLFLOW_TRACKING_URI, default ./mlflow.db)
    wandb.py         one W&B run per experiment (WANDB_MODE=offline works without an account)

Each tracker's package is an optional extra imported only when that tracker is used: `check_trackers` (called by
the CLI before anything starts) turns an unknown name or a missing package into one line with the fix. Once a run
has started, nothing a tracker does can stop it (tracker_set.py). A tracker keeps what it needs to continue the
same run after `--resume` under `<experiment>/trackers/`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from autoresearch.errors import ConfigError
from autoresearch.harness.trackers.base import Tracker
from autoresearch.harness.trackers.tracker_set import TrackerSet

__all__ = ["TRACKERS", "Tracker", "TrackerSet", "check_trackers", "make_trackers"]

TRACKERS: dict[str, tuple[str, str]] = {
    "tensorboard": ("tensorboard", "tensorboard"),
    "mlflow": ("mlflow", "mlflow"),
    "wandb": ("wandb", "wandb"),
}
"""Tracker name -> (the module it needs, the pip extra that installs it)."""


def check_trackers(names: Iterable[str], *, installed: bool = True) -> list[str]:
    """The tracker names in order without repeats; an unknown name (or, with `installed`, a missing package) is a
    one-line ConfigError with the fix."""
    out: list[str] = []
    for raw in names:
        name = str(raw).strip().lower()
        if name not in TRACKERS:
            raise ConfigError(f"unknown tracker {raw!r}; use one of {', '.join(TRACKERS)} (--tracker NAME, "
                              "repeatable)")
        module, extra = TRACKERS[name]
        if installed and importlib.util.find_spec(module) is None:
            raise ConfigError(f"tracker {name} needs the `{module}` package, which is not installed; "
                              f"pip install 'autoresearch[{extra}]'")
        if name not in out:
            out.append(name)
    return out


def _make(name: str, *, run_name: str, tags: dict[str, str], log_dir: Path) -> Tracker:
    if name == "tensorboard":
        from autoresearch.harness.trackers.tensorboard import TensorBoardTracker

        return TensorBoardTracker(run_name=run_name, tags=tags, log_dir=log_dir)
    if name == "mlflow":
        from autoresearch.harness.trackers.mlflow import MLflowTracker

        return MLflowTracker(run_name=run_name, tags=tags, log_dir=log_dir)
    from autoresearch.harness.trackers.wandb import WandbTracker

    return WandbTracker(run_name=run_name, tags=tags, log_dir=log_dir)


def make_trackers(names: Iterable[str], *, run_name: str, tags: dict[str, Any] | None = None,
                  log_dir: str | Path) -> TrackerSet:
    """Start one run in each named tracker. `log_dir` (an experiment's `trackers/` folder) holds their local files
    and the ids that let a resumed experiment continue the same runs. An unknown name is a ConfigError; a tracker
    that fails to start (package missing on a worker, server down) is a one-line warning and is left out."""
    tags_s = {k: str(v) for k, v in (tags or {}).items() if v is not None}
    ts = TrackerSet([])
    for name in check_trackers(names, installed=False):
        try:
            ts.trackers.append(_make(name, run_name=run_name, tags=tags_s, log_dir=Path(log_dir)))
        except Exception as e:
            ts.report(name, "start", e)
    ts.set_tags(tags_s)
    return ts


"""Weights & Biases tracker: one W&B run per experiment, its local files under `<experiment>/trackers/wandb/`.

Where: the standard W&B settings — `WANDB_PROJECT` (default `autoresearch`), `WANDB_ENTITY`, `WANDB_API_KEY`, and
`WANDB_MODE=offline` to write the run locally with no account (`wandb sync <experiment>/trackers/wandb/offline-run-*`
uploads it later). A study's trials are grouped by study (`group`) and their job type is the arm; the tags are
`key:value` strings (`study:quickstart`, `arm:baseline`, `seed:1`, ...). Each log.jsonl record is one `run.log` at its
step, results.yaml goes into the run summary, the config into `run.config`. The run id is kept in
`<experiment>/trackers/wandb.json`: a resumed experiment continues the same run (W&B ignores the steps it already
has; those a resume replays after its checkpoint are not logged twice).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from autoresearch.harness.atomic import atomic_write_text

__all__ = ["WandbTracker", "DEFAULT_PROJECT"]

DEFAULT_PROJECT = "autoresearch"
_MAX_TAG = 64  # W&B's limit on one tag


class WandbTracker:
    name = "wandb"

    def __init__(self, *, run_name: str, tags: dict[str, str], log_dir: Path) -> None:
        try:
            import wandb
        except ImportError as e:
            raise ImportError(f"{e}; pip install 'autoresearch[wandb]'") from None
        self.state_path = log_dir / "wandb.json"
        project = os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT
        saved = self._saved(project)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=project, name=run_name, dir=str(log_dir), group=tags.get("study"), job_type=tags.get("arm"),
            tags=[f"{k}:{v}"[:_MAX_TAG] for k, v in tags.items()], id=saved, resume="allow" if saved else None,
            reinit="create_new", settings=wandb.Settings(console="off", silent=True),
        )
        self.status = ""
        self.pending = False
        self.tags = dict(tags)
        if not saved:
            atomic_write_text(self.state_path, json.dumps({"project": project, "id": self.run.id}) + "\n")

    def _saved(self, project: str) -> str | None:
        try:
            data = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None
        ok = isinstance(data, dict) and data.get("project") == project and isinstance(data.get("id"), str)
        return data["id"] if ok else None

    def log_metrics(self, step: int | None, metrics: dict[str, float]) -> None:
        if step is None:
            self.run.log(metrics)
        else:
            self.run.log(metrics, step=step)  # records of one step (train, then eval) merge into one row
        self.pending = True

    def log_summary(self, summary: dict[str, float | int | str]) -> None:
        self.status = str(summary.get("status", self.status))
        if self.pending:  # W&B holds the last row until the step moves on and would then copy it over the summary
            self.run.log({}, commit=True)
            self.pending = False
        self.run.summary.update(summary)

    def log_config(self, config: dict[str, Any]) -> None:
        self.run.config.update(config, allow_val_change=True)

    def set_tags(self, tags: dict[str, str]) -> None:
        self.tags.update(tags)
        self.run.config.update({"autoresearch": self.tags}, allow_val_change=True)

    def close(self) -> None:
        self.run.finish(exit_code=0 if self.status == "ok" else 1)

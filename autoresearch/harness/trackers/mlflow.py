"""MLflow tracker: one MLflow run per experiment, through `MlflowClient` (no global active run, so several
experiments in one process never mix).

Where: the standard `MLFLOW_TRACKING_URI` (a server, `sqlite:///path.db`, ...; unset = MLflow's own default, which is
`sqlite:///mlflow.db` in the working directory for MLflow 3); the MLflow experiment is `MLFLOW_EXPERIMENT_NAME`, else
the study's name for a study's trial, else `autoresearch`. The run is named after the experiment (or the trial).
Each log.jsonl number is a metric at its step; results.yaml numbers are metrics at the last step (so MLflow's
"latest value" is the final one) and its strings (`status`, `error`) are tags; the config is the run's parameters.
The run id is kept in `<experiment>/trackers/mlflow.json`: a resumed experiment continues the same run.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from autoresearch.harness.atomic import atomic_write_text
from autoresearch.harness.trackers.base import FINAL_FAILED, numbers

__all__ = ["MLflowTracker", "DEFAULT_EXPERIMENT"]

DEFAULT_EXPERIMENT = "autoresearch"
_MAX_TAG = 5000  # MLflow's limits on a tag / parameter value
_MAX_PARAM = 6000
_BATCH = 100  # parameters per log_batch call (MLflow's limit)


class MLflowTracker:
    name = "mlflow"

    def __init__(self, *, run_name: str, tags: dict[str, str], log_dir: Path) -> None:
        try:
            import mlflow
            from mlflow.tracking import MlflowClient
        except ImportError as e:
            raise ImportError(f"{e}; pip install 'autoresearch[mlflow]'") from None
        self.uri = mlflow.get_tracking_uri()
        self.client = MlflowClient(tracking_uri=self.uri)
        self.state_path = log_dir / "mlflow.json"
        self.step = 0
        self.ts = 0
        self.status = ""
        saved = self._saved()
        if saved:  # a resumed experiment: continue its run
            self.run_id = saved
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            exp_name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or tags.get("study") or DEFAULT_EXPERIMENT
            run = self.client.create_run(self._experiment_id(exp_name), run_name=run_name)
            self.run_id = run.info.run_id
            log_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.state_path, json.dumps({"tracking_uri": self.uri, "run_id": self.run_id}) + "\n")

    def _saved(self) -> str | None:
        """The run id of an earlier start of this experiment against the same tracking URI."""
        try:
            data = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None
        ok = isinstance(data, dict) and data.get("tracking_uri") == self.uri and isinstance(data.get("run_id"), str)
        return data["run_id"] if ok else None

    def _experiment_id(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(self.client.create_experiment(name))
        except Exception:  # another trial created it meanwhile
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return str(found.experiment_id)

    def _metrics(self, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        # strictly increasing: of two values at one step MLflow shows the later one, so the summary, written last, wins
        ts = self.ts = max(int(time.time() * 1000), self.ts + 1)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, ts, self.step) for k, v in values.items()])

    def log_metrics(self, step: int | None, metrics: dict[str, float]) -> None:
        if step is not None:
            self.step = step
        self._metrics(metrics)

    def log_summary(self, summary: dict[str, float | int | str]) -> None:
        from mlflow.entities import RunTag

        if nums := numbers(summary):
            self._metrics(nums)
        text = {k: v for k, v in summary.items() if isinstance(v, str)}
        self.status = str(text.get("status", self.status))
        if text:
            self.client.log_batch(self.run_id, tags=[RunTag(k, v[:_MAX_TAG]) for k, v in text.items()])

    def log_config(self, config: dict[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(k, json.dumps(v) if isinstance(v, (list, dict)) else str(v)[:_MAX_PARAM])
                  for k, v in config.items()]
        for i in range(0, len(params), _BATCH):
            self.client.log_batch(self.run_id, params=params[i:i + _BATCH])

    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(k, v[:_MAX_TAG]) for k, v in tags.items()])

    def close(self) -> None:
        status = "FINISHED" if self.status == "ok" else "FAILED" if self.status in FINAL_FAILED else "KILLED"
        self.client.set_terminated(self.run_id, status=status)

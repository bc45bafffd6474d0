"""TensorBoard tracker: `torch.utils.tensorboard.SummaryWriter` writing event files into
`<experiment>/trackers/tensorboard/`, so `tensorboard --logdir experiments/` shows every experiment side by side.

Each log.jsonl number is a scalar at its step (`loss`, `lr`, `val_loss`, ...); results.yaml numbers are scalars
`summary/<key>` at the last step, its strings (`status`, `error`) and the tags are text, and the config is one text
block. A resumed run appends to the same folder; TensorBoard shows the newest points of a step written twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autoresearch.harness.trackers.base import numbers

__all__ = ["TensorBoardTracker"]


class TensorBoardTracker:
    name = "tensorboard"

    def __init__(self, *, run_name: str, tags: dict[str, str], log_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            raise ImportError(f"{e}; pip install 'autoresearch[tensorboard]'") from None
        self.log_dir = log_dir / "tensorboard"
        self.writer = SummaryWriter(log_dir=str(self.log_dir), flush_secs=30)
        self.tags = {"run": run_name}
        self.step = 0

    def log_metrics(self, step: int | None, metrics: dict[str, float]) -> None:
        if step is not None:
            self.step = step
        for k, v in metrics.items():
            self.writer.add_scalar(k, v, global_step=self.step)

    def log_summary(self, summary: dict[str, float | int | str]) -> None:
        for k, v in numbers(summary).items():
            self.writer.add_scalar(f"summary/{k}", v, global_step=self.step)
        for k, v in summary.items():
            if isinstance(v, str):
                self.writer.add_text(f"summary/{k}", v, global_step=self.step)
        self.writer.flush()

    def log_config(self, config: dict[str, Any]) -> None:
        rows = "\n".join(f"| {k} | {v} |" for k, v in config.items())
        self.writer.add_text("config", f"| key | value |\n|---|---|\n{rows}", global_step=0)

    def set_tags(self, tags: dict[str, str]) -> None:
        self.tags.update(tags)  # the table is rewritten whole: TensorBoard shows the newest text of a tag
        rows = "\n".join(f"| {k} | {v} |" for k, v in self.tags.items())
        self.writer.add_text("tags", f"| tag | value |\n|---|---|\n{rows}", global_step=0)

    def close(self) -> None:
        self.writer.close()

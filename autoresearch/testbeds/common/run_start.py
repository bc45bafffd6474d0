"""The start of a training run: resolve its precision and, for a fresh run, write `config.yaml` (the resolved config,
run metadata, the testbed's name as `meta.testbed`, the precision) and a `running` results.yaml."""

from __future__ import annotations

from typing import Any

import torch

from autoresearch.harness.precision import resolve_precision
from autoresearch.harness.provenance import run_metadata
from autoresearch.harness.registry import Experiment
from autoresearch.testbeds.common import distributed
from autoresearch.testbeds.common.config import TrainConfig
from autoresearch.testbeds.common.run_state import RunState

__all__ = ["start_run"]


def start_run(
    exp: Experiment, config: dict[str, Any], train_cfg: TrainConfig, device: torch.device, *, testbed: str,
    resume: bool,
) -> RunState:
    """A fresh `RunState` at the precision `train.precision` resolves to on `device`; on a fresh run also the
    experiment's config.yaml (`config` is the resolved config as a dict) and results.yaml — by rank 0 alone in a
    multi-process run, which records the number of processes as `meta.nproc`."""
    prec = resolve_precision(train_cfg.precision, device)
    if not resume and distributed.is_main():
        meta = {**run_metadata(train_cfg.seed, str(device)), "testbed": testbed, "precision": prec.as_dict(),
                "nproc": distributed.world_size()}
        exp.write_config(config, meta)
        exp.write_results({"status": "running"})
    return RunState(precision=prec)

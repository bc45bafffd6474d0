"""The step record and the end of a step (testbeds/common/step_record.py, run_state.py): the keys every logged step
carries, what is counted, when a line is logged, divergence, and the compile step kept out of tokens/s."""

from __future__ import annotations

import math
import time

import pytest
import torch

from autoresearch.harness.precision import PrecisionChoice
from autoresearch.harness.progress import TrainProgress
from autoresearch.harness.registry import new_experiment
from autoresearch.testbeds.common.config import TrainConfig
from autoresearch.testbeds.common.perf_summary import PERF_KEYS, perf_summary
from autoresearch.testbeds.common.run_state import RunState
from autoresearch.testbeds.common.step_record import STEP_KEYS, finish_step

CPU = torch.device("cpu")


def _run() -> RunState:
    return RunState(precision=PrecisionChoice("fp32", "fp32", "asked for fp32"))


def _steps(train_cfg: TrainConfig, losses: list[float], tmp_path, total: int = 5, **extra):
    run, exp = _run(), new_experiment(tmp_path)
    bar = TrainProgress(total, enabled=False)
    records = []
    for loss in losses:
        records.append(finish_step(run, exp, bar, train_cfg, t0=time.perf_counter(), loss_sum=torch.tensor(loss * 2),
                                   lr=0.1, grad_norm=torch.tensor(1.5), tokens=100, total_steps=total, device=CPU,
                                   **extra))
        if run.status != "ok":
            break
    return run, exp, records


def test_every_record_carries_the_step_keys_then_the_testbeds_own(tmp_path):
    run, exp, records = _steps(TrainConfig(grad_accum=2, log_every=2), [3.0, 2.5, 2.0], tmp_path, phase="sft")
    assert list(records[0]) == [*STEP_KEYS, "phase"]
    assert [(r["step"], r["tokens"], r["loss"], r["grad_norm"]) for r in records] == [
        (1, 100, 3.0, 1.5), (2, 200, 2.5, 1.5), (3, 300, 2.0, 1.5)]  # loss = loss_sum / grad_accum
    assert [r["step"] for r in exp.read_log()] == [2]  # every log_every steps (and the last of total_steps)
    assert run.first_loss == 3.0 and run.thr.tokens == 300 and run.status == "ok"


def test_the_first_step_of_a_compiled_run_is_not_throughput(tmp_path):
    run, _, records = _steps(TrainConfig(grad_accum=2, compile=True), [3.0, 2.9], tmp_path)
    assert records[0]["tokens_per_s"] == 0.0 and run.thr.tokens == 100 and run.tokens == 200
    eager, _, _ = _steps(TrainConfig(grad_accum=2, compile=False), [3.0, 2.9], tmp_path)
    assert eager.thr.tokens == 200


@pytest.mark.parametrize("loss", [10.0, math.nan])
def test_divergence_stops_marks_the_run_and_logs_the_step(tmp_path, loss):
    run, exp, records = _steps(TrainConfig(grad_accum=2, log_every=100, diverge_loss=3.0), [2.0, loss, 1.0], tmp_path)
    assert run.status == "diverged" and len(records) == 2
    assert run.error.startswith(f"loss {loss:.4g} at step 2 (first loss 2, limit x3.0)")
    assert [r["step"] for r in exp.read_log()] == [2]


def test_out_of_time_only_with_a_budget():
    run = _run()
    run.train_seconds = 5.0
    assert not run.out_of_time(0.0) and not run.out_of_time(6.0) and run.out_of_time(5.0)


def test_perf_summary_keys_and_values():
    run = _run()
    run.advance(2.0, 1000, 2.0)
    out = perf_summary(run, 1e9, CPU, 3, time.perf_counter() - 1.0)
    assert list(out) == list(PERF_KEYS)
    assert out["tokens_per_s"] == 500.0 and out["achieved_tflops"] == 0.5 and out["mfu"] is None
    assert (out["device"], out["precision"], out["seed"]) == ("cpu", "fp32", 3) and out["wall_seconds"] >= 1.0

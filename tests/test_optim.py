"""LR schedules and the Muon/AdamW split."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from autoresearch.testbeds.common.config import OptimConfig
from autoresearch.testbeds.common.optim import build_optimizers, lr_multiplier, schedule_steps, set_lr
from autoresearch.testbeds.lm.config import preset


def test_constant_with_warmup():
    cfg = OptimConfig(schedule="constant", warmup_frac=0.1)
    m = [lr_multiplier(s, 100, cfg) for s in range(100)]
    assert m[0] == pytest.approx(0.1) and m[9] == 1.0 and m[-1] == 1.0


def test_cosine_reaches_floor():
    cfg = OptimConfig(schedule="cosine", min_lr_frac=0.1)
    m = [lr_multiplier(s, 101, cfg) for s in range(101)]
    assert m[0] == 1.0 and m[50] == pytest.approx(0.55) and m[100] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(m, m[1:]))


def test_wsd_stable_then_linear_decay_to_the_floor():
    cfg = OptimConfig(schedule="wsd", warmup_frac=0.0, decay_frac=0.2)
    m = [lr_multiplier(s, 100, cfg) for s in range(100)]
    # 20 decay steps (80..99) each 1/20 lower; the last one is exactly min_lr_frac (was peak/20 = 0.05: issue 8 §3)
    assert m[79] == 1.0 and m[80] == pytest.approx(0.95) and m[89] == pytest.approx(0.5) and m[99] == 0.0


def test_wsd_tiny_preset_ends_at_min_lr_frac():
    cfg = preset("tiny")
    total = cfg.steps  # 240
    last = lr_multiplier(total - 1, total, cfg.optim)
    assert last == cfg.optim.min_lr_frac == 0.0  # the reported fault: 0.00333 (= 1/decay_steps) instead
    floor = OptimConfig(schedule="wsd", decay_frac=0.3, min_lr_frac=0.1)
    assert lr_multiplier(total - 1, total, floor) == pytest.approx(0.1)


STEPS = [1, 2, 3, 4, 7, 10, 99, 240]
WARMUPS = [0.0, 0.05, 0.3, 1.0]
DECAYS = [0.0, 0.2, 0.7, 1.0]  # 0.7/1.0 with warm-up: the decay is longer than the steps that remain


@pytest.mark.parametrize("schedule", ["constant", "cosine", "wsd"])
@pytest.mark.parametrize("total", STEPS)
def test_every_schedule_first_middle_last_step_match_the_definition(schedule, total):
    for warmup_frac, decay_frac, floor in itertools.product(WARMUPS, DECAYS, [0.0, 0.1]):
        cfg = OptimConfig(schedule=schedule, warmup_frac=warmup_frac, decay_frac=decay_frac, min_lr_frac=floor)
        m = [lr_multiplier(s, total, cfg) for s in range(total)]
        W, D = schedule_steps(total, cfg)
        case = (schedule, total, warmup_frac, decay_frac, floor, W, D, m)
        # warm-up: as many steps as documented, rising linearly from peak/W (step 0) to the peak (step W-1)
        assert W == min(round(warmup_frac * total), total if schedule == "constant" else total - 1), case
        for s in range(W):
            assert m[s] == pytest.approx((s + 1) / W), case
        # last step: constant stays at the peak; cosine and wsd end exactly at min_lr_frac
        if schedule == "constant":
            assert m[-1] == 1.0, case
        else:
            assert m[-1] == pytest.approx(floor, abs=1e-12), case
        # after the warm-up: never above the peak nor below the floor, never rising
        after = m[W:]
        assert all(floor - 1e-12 <= x <= 1.0 for x in after), case
        assert all(a >= b - 1e-12 for a, b in zip(after, after[1:])), case
        if schedule == "constant":
            assert after == [1.0] * len(after), case
        if schedule == "cosine" and len(after) >= 3 and len(after) % 2 == 1:
            assert after[0] == 1.0 and after[len(after) // 2] == pytest.approx((1 + floor) / 2), case
        if schedule == "wsd":
            assert 1 <= D <= total - W, case
            assert D == min(max(round(decay_frac * total), 1), total - W), case
            assert m[W:total - D] == [1.0] * (total - D - W), case  # stable phase at the peak
            decay = m[total - D:]
            steps = [a - b for a, b in zip([1.0] + decay, decay)]
            assert all(x == pytest.approx((1 - floor) / D) for x in steps), case  # linear, D equal steps


def test_single_step_and_steps_past_the_end():
    for schedule, want in (("constant", 1.0), ("cosine", 0.1), ("wsd", 0.1)):
        cfg = OptimConfig(schedule=schedule, warmup_frac=1.0, min_lr_frac=0.1)
        assert lr_multiplier(0, 1, cfg) == pytest.approx(want)
        assert lr_multiplier(500, 10, cfg) == lr_multiplier(9, 10, cfg)  # past the end: the last step's value
    assert lr_multiplier(0, 0, OptimConfig(schedule="wsd")) == 0.0  # a degenerate total counts as one step


def test_training_loop_applies_the_last_step_floor(micro_cfg, tmp_path):
    from autoresearch.harness.config import apply_overrides
    from autoresearch.harness.registry import new_experiment
    from autoresearch.testbeds.lm.train import train

    cfg = apply_overrides(micro_cfg, ["optim.schedule=wsd", "optim.decay_frac=0.5", "optim.min_lr_frac=0.25",
                                      "optim.warmup_frac=0.25", "train.train_tokens=512"])  # 4 steps
    exp = new_experiment(tmp_path)
    assert train(cfg, exp)["status"] == "ok"
    rows = [json.loads(line) for line in (exp.path / "log.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in rows if "lr" in r]
    peak = cfg.optim.muon_lr
    assert lrs == pytest.approx([peak, peak, 0.625 * peak, 0.25 * peak])


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(10, 4)
        self.w = torch.nn.Linear(4, 4, bias=False)
        self.g = torch.nn.Parameter(torch.ones(4))

    def param_groups(self):
        return [self.w.weight], [self.emb.weight, self.g]


def test_muon_and_adamw_split():
    model = _Tiny()
    opts = build_optimizers(model, OptimConfig())
    assert [type(o).__name__ for o in opts] == ["Muon", "AdamW"]
    assert opts[0].param_groups[0]["params"] == [model.w.weight]
    only = build_optimizers(model, OptimConfig(optimizer="adamw"))
    assert len(only) == 1 and len(only[0].param_groups[0]["params"]) == 3
    assert set_lr(opts, 0.5) == pytest.approx(0.012)
    assert opts[1].param_groups[0]["lr"] == pytest.approx(0.003)

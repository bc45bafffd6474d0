"""LR schedules and the Muon/AdamW split."""

from __future__ import annotations

import pytest
import torch

from autoresearch.testbeds.lm.config import OptimConfig
from autoresearch.testbeds.lm.optim import build_optimizers, lr_multiplier, set_lr


def test_constant_with_warmup():
    cfg = OptimConfig(schedule="constant", warmup_frac=0.1)
    m = [lr_multiplier(s, 100, cfg) for s in range(100)]
    assert m[0] == pytest.approx(0.1) and m[9] == 1.0 and m[-1] == 1.0


def test_cosine_reaches_floor():
    cfg = OptimConfig(schedule="cosine", min_lr_frac=0.1)
    m = [lr_multiplier(s, 101, cfg) for s in range(101)]
    assert m[0] == 1.0 and m[50] == pytest.approx(0.55) and m[100] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(m, m[1:]))


def test_wsd_stable_then_linear_decay():
    cfg = OptimConfig(schedule="wsd", warmup_frac=0.0, decay_frac=0.2)
    m = [lr_multiplier(s, 100, cfg) for s in range(100)]
    assert m[79] == 1.0 and m[80] == 1.0 and m[90] == pytest.approx(0.5) and m[99] == pytest.approx(0.05)


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

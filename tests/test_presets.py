"""Guard tests: every preset builds at full size, and its shrunk variant trains a few steps."""

from __future__ import annotations

import pytest
import torch

from autoresearch.harness.config import apply_overrides
from autoresearch.harness.registry import new_experiment
from autoresearch.testbeds.lm.config import PRESETS, preset
from autoresearch.testbeds.lm.model import GPT
from autoresearch.testbeds.lm.train import train
from tests.conftest import micro_overrides


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_builds_full_size(name):
    cfg = preset(name)
    with torch.device("meta"):
        model = GPT(cfg.model, cfg.data.vocab_size)
    n = model.num_params()
    assert n > 0 and model.flops_per_token(cfg.model.seq_len) > 6 * n * 0.5
    if name == "5dollar":
        assert abs(n - 88.63e6) / 88.63e6 < 0.01, n  # DESIGN.md §3 anchor: 88.63M


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_shrunk_variant_trains(name, cache_dir, tmp_path):
    keep = {"model.mlp", "model.norm", "model.qk_norm", "model.tie_embeddings"}
    shrink = [o for o in micro_overrides(cache_dir) if o.split("=")[0] not in keep]
    cfg = apply_overrides(preset(name), shrink + ["train.train_tokens=384", "train.grad_accum=1"])
    res = train(cfg, new_experiment(tmp_path))
    assert res["status"] == "ok" and res["steps"] == 3
    assert cfg.optim == preset(name).optim  # the preset's optimizer and schedule are what was trained

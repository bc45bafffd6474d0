"""Parameter-matched GPT baseline for an HRM config (needs the LM testbed's GPT; skips without it)."""

from __future__ import annotations

import pytest
import torch

from autoresearch.testbeds.codegen.param_match import hrm_param_count, match_gpt_config
from autoresearch.testbeds.common.hrm import HRM
from autoresearch.testbeds.common.hrm_config import HRM_PRESETS, HRMConfig

gpt_module = pytest.importorskip("autoresearch.testbeds.common.gpt")


def test_hrm_param_count_formula_matches_the_model():
    for tie in (True, False):
        cfg = HRMConfig(d_model=64, n_heads=4, layers_per_stack=3, d_ff=160, seq_len=32, tie_embeddings=tie)
        assert hrm_param_count(cfg, 101) == HRM(cfg, 101).num_params()


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_matched_gpt_is_close_and_prints_both_counts(preset, capsys):
    cfg = HRM_PRESETS[preset]()
    mc = match_gpt_config(cfg, 4096)
    target = hrm_param_count(cfg, 4096)
    n = gpt_module.GPT(mc, 4096).num_params()
    assert abs(n - target) / target <= 0.05  # the default tolerance
    closest = match_gpt_config(cfg, 4096, tolerance=0.0, verbose=False)  # no tolerance: the closest count wins
    assert abs(gpt_module.GPT(closest, 4096).num_params() - target) <= abs(n - target)
    assert mc.seq_len == cfg.seq_len and mc.d_model % cfg.head_dim == 0
    if preset == "tiny":
        assert mc.d_model == cfg.d_model  # equal width, more layers, when that is within tolerance
    out = capsys.readouterr().out
    assert f"{target:,}" in out and f"{n:,}" in out
    torch.manual_seed(0)
    logits = gpt_module.GPT(mc, 4096)(torch.randint(0, 4096, (1, 8)))
    assert logits.shape == (1, 8, 4096)

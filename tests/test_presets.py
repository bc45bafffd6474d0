"""Guard tests: every preset builds at full size, and its shrunk variant trains a few steps."""

from __future__ import annotations

import pytest
import torch
import yaml

from autoresearch.harness.config import apply_overrides
from autoresearch.harness.registry import new_experiment
from autoresearch.testbeds.common.gpt import GPT
from autoresearch.testbeds.lm.config import PRESETS, preset
from autoresearch.testbeds.lm.train import train
from tests.conftest import REPO, micro_overrides


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


STUDY_FILES = sorted({p.name: p for p in [*(REPO / "studies").glob("*.yaml"),
                                          *(REPO / "autoresearch" / "studies").glob("*.yaml")]}.values())


@pytest.mark.parametrize("path", STUDY_FILES, ids=lambda p: p.name)
def test_config_ranges_accept_every_value_the_built_in_studies_use(path):
    """Every arm, seed and regression run of a built-in study builds a valid config (ranges stay tolerant)."""
    from autoresearch.testbeds.base import get_testbed

    study = yaml.safe_load(path.read_text())
    testbed = get_testbed(study["testbed"])
    base = dict(study.get("overrides") or {})
    base.update(testbed.budget_overrides(tokens=study["budget"].get("tokens"), seconds=study["budget"].get("seconds")))
    seeds = study["seeds"]
    offsets = [0, (study.get("control") or {}).get("seed_offset", 0)]
    arms = [{}] + [idea.get("overrides") or {} for idea in study.get("ideas", [])]
    arms.append((study.get("regression") or {}).get("overrides") or {})
    for arm in arms:
        for seed in (seeds["base"], seeds["base"] + seeds["max"] - 1):
            for off in offsets:
                cfg = testbed.make_config(study["preset"], {**base, **arm, **testbed.seed_overrides(seed + off)})
                testbed.check_config(cfg)


def test_every_preset_passes_its_ranges_after_a_round_trip():
    """Presets that edit fields after construction (`hrm.seq_len = 128`) are re-validated through a dict."""
    from autoresearch.harness.config import from_dict, to_dict
    from autoresearch.testbeds.codegen.config import CODEGEN_PRESETS, CodegenConfig, codegen_preset
    from autoresearch.testbeds.lm.config import LMConfig

    for name in PRESETS:
        assert from_dict(LMConfig, to_dict(preset(name))) == preset(name)
    for name in CODEGEN_PRESETS:
        assert from_dict(CodegenConfig, to_dict(codegen_preset(name))) == codegen_preset(name)

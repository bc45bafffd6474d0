"""Config machinery: strict loading, overrides, one-line errors with a fix."""

from __future__ import annotations

import pytest

from autoresearch.errors import ConfigError
from autoresearch.harness.config import (
    apply_overrides,
    field_help,
    from_dict,
    load_yaml,
    parse_override,
    save_yaml,
    to_dict,
)
from autoresearch.testbeds.lm.config import PRESETS, LMConfig, preset


def test_roundtrip_yaml(tmp_path):
    cfg = preset("tiny")
    save_yaml(cfg, tmp_path / "c.yaml")
    assert load_yaml(tmp_path / "c.yaml", LMConfig) == cfg


def test_override_types_are_parsed():
    cfg = apply_overrides(preset("tiny"), ["model.n_layers=3", "train.precision=fp32", "model.qk_norm=false",
                                           "optim.muon_lr=0.01"])
    assert cfg.model.n_layers == 3 and cfg.train.precision == "fp32" and cfg.model.qk_norm is False
    assert cfg.optim.muon_lr == 0.01
    assert preset("tiny").model.n_layers == 4  # presets are fresh copies


def test_unknown_key_suggests():
    with pytest.raises(ConfigError, match=r"unknown config key `model.n_layer`; did you mean `model.n_layers`"):
        apply_overrides(preset("tiny"), ["model.n_layer=3"])
    with pytest.raises(ConfigError, match="did you mean `optim`"):
        apply_overrides(preset("tiny"), ["optm.muon_lr=3"])


def test_bad_value_names_field_value_and_fix():
    with pytest.raises(ConfigError) as e:
        apply_overrides(preset("tiny"), ["model.n_layers=four"])
    assert "`model.n_layers` must be an integer, got 'four'" in str(e.value)
    with pytest.raises(ConfigError, match=r"`train.precision` must be one of 'fp32', 'bf16', got 'bf61'; did you mean 'bf16'"):
        apply_overrides(preset("tiny"), ["train.precision=bf61"])
    with pytest.raises(ConfigError, match=r"`model.n_kv_heads` must divide model.n_heads=4, got 3; use a divisor"):
        apply_overrides(preset("tiny"), ["model.n_kv_heads=3"])
    with pytest.raises(ConfigError, match="must be > 0"):
        apply_overrides(preset("tiny"), ["train.batch_size=0"])


def test_errors_are_one_line():
    for bad in (["model.n_layers=x"], ["nope=1"], ["model=3"], ["model.d_model=130"]):
        with pytest.raises(ConfigError) as e:
            apply_overrides(preset("tiny"), bad)
        assert "\n" not in str(e.value)


def test_override_syntax_error():
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_override("model.n_layers")


def test_budget_multiple():
    cfg = preset("tiny")
    cfg.train.train_tokens = 10000
    with pytest.raises(ConfigError, match=r"multiple of batch_size\*grad_accum\*seq_len=2048, got 10000; use 10240"):
        cfg.check_budget()
    assert cfg.check_budget(round_up=True).train.train_tokens == 10240


def test_from_dict_rejects_unknown_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key `model.bogus`"):
        from_dict(LMConfig, {"model": {"bogus": 1}})
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "missing.yaml", LMConfig)
    (tmp_path / "bad.yaml").write_text("model: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(tmp_path / "bad.yaml", LMConfig)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="did you mean 'tiny'"):
        preset("tinyy")


def test_every_field_has_help():
    rows = field_help(LMConfig)
    assert len(rows) > 30
    assert all(h for _, h, _ in rows), [n for n, h, _ in rows if not h]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_valid_and_whole_steps(name):
    cfg = preset(name)
    cfg.check_budget()
    assert cfg.steps > 0
    assert from_dict(LMConfig, to_dict(cfg)) == cfg


def test_5dollar_matches_anchor():
    cfg = preset("5dollar")
    m = cfg.model
    assert (m.d_model, m.n_layers, m.n_heads, m.n_kv_heads, m.d_ff, m.seq_len) == (512, 22, 8, 4, 2048, 2048)
    assert cfg.tokens_per_step == 16384 and cfg.steps == 489
    assert (cfg.optim.muon_lr, cfg.optim.adamw_lr, cfg.optim.adamw_weight_decay) == (0.024, 0.006, 0.2)

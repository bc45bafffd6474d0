"""Config machinery: strict loading, overrides, one-line errors with a fix."""

from __future__ import annotations

import math
import random
import subprocess
import sys

import pytest
import yaml

from autoresearch.errors import ConfigError
from autoresearch.harness.config import (
    Range,
    apply_overrides,
    field_help,
    field_ranges,
    from_dict,
    load_yaml,
    parse_override,
    save_yaml,
    to_dict,
)
from autoresearch.testbeds.lm.config import PRESETS, LMConfig, preset
from tests.conftest import REPO


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
    with pytest.raises(ConfigError, match=r"`train.precision` must be one of 'auto', 'fp32', 'bf16', got 'bf61'; did you mean 'bf16'"):
        apply_overrides(preset("tiny"), ["train.precision=bf61"])
    with pytest.raises(ConfigError, match=r"`model.n_kv_heads` must divide model.n_heads=4, got 3; use a divisor"):
        apply_overrides(preset("tiny"), ["model.n_kv_heads=3"])
    with pytest.raises(ConfigError, match=r"`train.batch_size` must be in \[1, 1048576\], got 0; use e.g. 8"):
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
    msg = r"`train.train_tokens` must be a multiple of batch_size\*grad_accum\*seq_len=2048, got 10000; use 8192 or 10240"
    with pytest.raises(ConfigError, match=msg + ", or pass --round-up"):
        cfg.check_budget()
    assert cfg.check_budget(round_up=True).train.train_tokens == 10240


@pytest.mark.parametrize("testbed", ["lm", "codegen"])
def test_budget_of_whole_steps_is_one_rule_for_both_testbeds(testbed):
    """codegen used to floor a partial step silently where lm refused it; both now refuse it the same way."""
    from autoresearch.testbeds.codegen.config import CODEGEN_PRESETS, codegen_preset

    make = preset if testbed == "lm" else codegen_preset
    cfg = make("tiny")
    tps = cfg.tokens_per_step
    cfg.train.train_tokens = 3 * tps + 5
    with pytest.raises(ConfigError, match=rf"^`train.train_tokens` must be a multiple of batch_size\*grad_accum\*seq_len="
                                          rf"{tps}, got {3 * tps + 5}; use {3 * tps} or {4 * tps}, or pass --round-up$"):
        cfg.check_budget()
    assert cfg.check_budget(round_up=True) is cfg and cfg.train.train_tokens == 4 * tps and cfg.steps == 4
    cfg.train.train_tokens = 7  # below one step: the only valid value is one step
    with pytest.raises(ConfigError, match=rf"got 7; use {tps}, or pass --round-up"):
        cfg.check_budget()
    for name in (PRESETS if testbed == "lm" else CODEGEN_PRESETS):  # every preset's default budget is whole steps
        c = make(name)
        assert c.train.train_tokens % c.tokens_per_step == 0, name


def test_builtin_study_budgets_are_whole_steps():
    from autoresearch.testbeds import get_testbed

    for path in [*sorted((REPO / "studies").glob("*.yaml")), *sorted((REPO / "autoresearch" / "studies").glob("*.yaml"))]:
        study = yaml.safe_load(path.read_text())
        cfg = get_testbed(study["testbed"]).preset_config(study["preset"])
        cfg = apply_overrides(cfg, [f"{k}={v}" for k, v in (study.get("overrides") or {}).items()])
        assert study["budget"]["tokens"] % cfg.tokens_per_step == 0, path


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


# --- ranges: every numeric field of every config declares one, and values outside it are refused ---------------------


def _config_roots():
    from autoresearch.testbeds.codegen.config import CodegenConfig, codegen_preset

    return [(LMConfig, lambda: preset("tiny")), (CodegenConfig, lambda: codegen_preset("tiny"))]


def _numeric_fields():
    for cls, make in _config_roots():
        for name, tp, rng in field_ranges(cls):
            yield pytest.param(cls, make, name, tp, rng, id=f"{cls.__name__}.{name}")


def _outside(tp, rng: Range) -> list:
    """Values just outside the declared range (and NaN/inf for floats)."""
    step = 1 if tp is int else 1e-9
    out = []
    if rng.lo is not None:
        out.append(rng.lo if rng.lo_open else rng.lo - step)
        out.append(rng.lo - 1000)
    if rng.hi is not None:
        out.append(rng.hi if rng.hi_open else rng.hi + step)
    if tp is float:
        out += [math.nan, math.inf, -math.inf]
    return out


@pytest.mark.parametrize(("cls", "make", "name", "tp", "rng"), list(_numeric_fields()))
def test_every_numeric_field_has_a_range_and_refuses_values_outside_it(cls, make, name, tp, rng):
    assert rng is not None, f"{cls.__name__}.{name} declares no range: add ge=/gt=/le=/lt= to its param(...)"
    is_list = isinstance(_get(make(), name), list)
    for bad in _outside(tp, rng):
        value = [bad] if is_list else bad
        with pytest.raises(ConfigError) as e:
            apply_overrides(make(), {name: value})
        msg = str(e.value)
        assert f"`{name}`" in msg and "\n" not in msg, msg  # names the key the user writes, on one line
    # the preset's own value is inside the range (ranges are tolerant of what the presets use)
    assert all(rng.contains(v) for v in _as_list(_get(make(), name)))


def _get(cfg, dotted):
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _as_list(v):
    return v if isinstance(v, list) else [v]


@pytest.mark.parametrize("override", [
    "train.max_seconds=-5", "eval.every=-1", "model.rope_base=0", "train.seed=-1", "train.device=tpu",
    "model.init_std=-1", "model.d_model=1048576", "optim.adamw_beta1=1.0", "optim.adamw_beta2=-0.1",
    "optim.muon_momentum=1", "optim.muon_lr=0", "optim.adamw_lr=.inf", "optim.adamw_weight_decay=-0.1",
    "optim.muon_weight_decay=.nan", "train.threads=-1", "train.diverge_loss=0.5", "train.log_every=0",
    "train.device=cuda:x", "train.device=''", "data.source=''", "data.val_fraction=0.5", "data.max_corpus_mb=1e400",
    "model.n_layers=1e400", "train.train_tokens=1e18", "optim.warmup_frac=1.5", "optim.grad_clip=-1",
])
def test_listed_bad_values_are_one_line_config_errors(override):
    with pytest.raises(ConfigError) as e:
        apply_overrides(preset("tiny"), [override])
    assert "\n" not in str(e.value) and f"`{override.split('=')[0]}`" in str(e.value)


def test_range_messages_state_rule_value_and_fix():
    with pytest.raises(ConfigError, match=r"^`model.rope_base` must be > 0, got 0.0; use e.g. 10000.0$"):
        apply_overrides(preset("tiny"), ["model.rope_base=0"])
    with pytest.raises(ConfigError, match=r"^`optim.adamw_beta1` must be in \[0, 1\), got 1.0; use e.g. 0.9$"):
        apply_overrides(preset("tiny"), ["optim.adamw_beta1=1.0"])
    with pytest.raises(ConfigError, match=r"`train.device` must be auto, cpu, cuda, cuda:N or mps, got 'tpu'"):
        apply_overrides(preset("tiny"), ["train.device=tpu"])
    with pytest.raises(ConfigError, match=r"`optim.muon_lr` must be a finite number, got nan"):
        apply_overrides(preset("tiny"), {"optim.muon_lr": math.nan})
    for ok in ("train.device=cuda:1", "train.device=mps", "train.diverge_loss=0", "train.max_seconds=0",
               "eval.every=0", "model.rope_base=0.5", "train.seed=4294967296"):
        apply_overrides(preset("tiny"), [ok])
    with pytest.raises(ConfigError, match=r"`gpt.n_layers` must be in \[1, 1024\]"):  # the key under codegen
        from autoresearch.testbeds.codegen.config import codegen_preset

        apply_overrides(codegen_preset("tiny"), ["gpt.n_layers=0"])


def test_directly_built_configs_are_checked_too():
    from autoresearch.testbeds.common.config import OptimConfig, TrainConfig

    with pytest.raises(ConfigError, match="optim.muon_momentum"):
        OptimConfig(muon_momentum=1.5)
    with pytest.raises(ConfigError, match="train.max_seconds"):
        TrainConfig(max_seconds=-5.0)


def test_model_too_big_for_memory_is_refused_with_an_estimate(monkeypatch):
    import autoresearch.harness.memory as memory

    monkeypatch.setattr(memory, "device_memory", lambda device: (8 * 10**9, "RAM"))
    cfg = apply_overrides(preset("tiny"), ["model.d_model=16384", "model.n_heads=128", "model.n_kv_heads=64"])
    with pytest.raises(ConfigError, match=r"~3\.36e\+09 parameters: training needs at least .* but this machine's "
                                          r"RAM has 8 GB; use a smaller model.d_model"):
        cfg.check_budget()
    preset("tiny").check_budget()  # 1.25M parameters fit anywhere
    from autoresearch.testbeds.codegen.config import codegen_preset

    big = apply_overrides(codegen_preset("tiny"), ["hrm.d_model=16384", "hrm.n_heads=64"])
    with pytest.raises(ConfigError, match="use a smaller hrm.d_model"):
        big.check_budget()


def test_device_memory_reads_this_machine():
    from autoresearch.harness.memory import device_memory

    got = device_memory("cpu")
    assert got is not None and got[0] > 2**28 and got[1] == "RAM"


# --- config files ----------------------------------------------------------------------------------------------------


def test_saved_experiment_config_loads_with_its_meta_block(tmp_path):
    path = tmp_path / "config.yaml"
    save_yaml({**to_dict(preset("tiny")), "meta": {"git": {"commit": "abc"}, "seed": 0}}, path)
    assert load_yaml(path, LMConfig) == preset("tiny")


@pytest.mark.parametrize(("content", "match"), [
    (b"", r"config file '.*c.yaml' is empty; write a mapping of sections \(model, optim, data, train, eval\)"),
    (b"# only a comment\n", r"is empty"),
    (b"- a\n- b\n", r"must hold a mapping of sections .*, got a list"),
    (b"42\n", r"must hold a mapping of sections .*, got a int"),
    (b"just words\n", r"must hold a mapping of sections .*, got a str"),
    (bytes(range(256)) * 4, r"is not (UTF-8 text|valid YAML)"),
    (b"\xff\xfe\x00m\x00o", r"is not UTF-8 text \(bad byte 0xff at offset 0\)"),
    (b"model: {d_model: -4}\n", r"config file '.*c.yaml': `model.d_model` must be in \[1, 65536\]"),
])
def test_unusable_config_files_are_one_line_errors(tmp_path, content, match):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=match) as e:
        load_yaml(path, LMConfig)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="is a folder"):
        load_yaml(tmp_path, LMConfig)


def test_random_bytes_config_file_never_raises_anything_but_config_error(tmp_path):
    rng = random.Random(0)
    for i in range(30):
        path = tmp_path / f"r{i}.yaml"
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))))
        with pytest.raises(ConfigError):
            load_yaml(path, LMConfig)


# --- the CLI: bad numbers are exit 2 with one line, never a traceback ------------------------------------------------


@pytest.mark.slow
def test_cli_bad_values_exit_2_with_one_line(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    saved = tmp_path / "exp-config.yaml"
    save_yaml({**to_dict(preset("tiny")), "meta": {"seed": 0}}, saved)
    cases = [
        (["train", "lm", "--set", "train.max_seconds=-5"], "`train.max_seconds` must be >= 0, got -5.0"),
        (["train", "lm", "--set", "model.d_model=1048576"], "`model.d_model` must be in [1, 65536], got 1048576"),
        (["train", "lm", "--set", "train.device=tpu"], "`train.device` must be auto, cpu, cuda, cuda:N or mps"),
        (["train", "lm", "--seed", "-1"], "`train.seed` must be in [0, "),
        (["train", "lm", "--config", str(empty)], f"config file {str(empty)!r} is empty"),
        (["train", "lm", "--config", str(saved), "--set", "eval.every=-1"], "`eval.every` must be >= 0, got -1"),
        (["check", "lm", "--steps", "0"], "--steps must be in [1, 100000], got 0"),
        (["train", "codegen", "--set", "eval.top_p=0"], "`eval.top_p` must be in (0, 1], got 0.0"),
        (["train", "codegen", "--set", "hrm.n_heads=3"], "`hrm.n_heads`=3: `hrm.d_model` must be divisible by "
                                                         "hrm.n_heads=3, got 128"),  # issue 9: said `model.d_model`
    ]
    for args, want in cases:
        r = subprocess.run([sys.executable, "-m", "autoresearch", *args, "--root", str(tmp_path / "exps")]
                           if args[0] == "train" else [sys.executable, "-m", "autoresearch", *args,
                                                       "--out", str(tmp_path / "chk")],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and want in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr + r.stdout
    assert not (tmp_path / "exps").exists()  # refused before an experiment folder is made


@pytest.mark.parametrize("field", ["data.corpus", "data.pretrain_source"])
def test_codegen_data_errors_name_the_codegen_field_not_the_lm_one(tmp_path, field):
    """codegen feeds data.corpus / data.pretrain_source to the LM pipeline as its `data.source`: errors name the
    field the user set (QA: `--set data.corpus=nope` said "`data.source` path does not exist")."""
    from autoresearch.errors import DataError
    from autoresearch.harness.data import load_token_data
    from autoresearch.testbeds.codegen.config import codegen_preset, lm_data_errors
    from autoresearch.testbeds.codegen.data import build_tokenizer
    from autoresearch.testbeds.common.config import DataConfig

    missing = str(tmp_path / "nope")
    if field == "data.corpus":
        cfg = codegen_preset("tiny")
        cfg.data.corpus, cfg.data.tokenizer = missing, "bpe"
        with pytest.raises(DataError) as e:
            build_tokenizer(cfg, [])
    else:
        with pytest.raises(DataError) as e, lm_data_errors(field):
            load_token_data(DataConfig(source=missing, cache_dir=str(tmp_path / "cache")))
    msg = str(e.value)
    assert f"`{field}` path does not exist" in msg and "data.source" not in msg and "\n" not in msg


@pytest.mark.parametrize("text,field,expected", [
    ("optim.muon_lr=1e-3", "optim.muon_lr", 0.001),       # YAML 1.1 reads `1e-3` as a string
    ("optim.adamw_lr=5E-4", "optim.adamw_lr", 0.0005),
    ("train.train_tokens=2048e1", "train.train_tokens", 20480),
    ("data.max_corpus_mb=1e0", "data.max_corpus_mb", 1.0),
])
def test_exponent_numbers_without_a_dot_are_numbers(text, field, expected):
    from autoresearch.harness.config import apply_overrides
    from autoresearch.testbeds.lm.config import lm_tiny

    cfg = apply_overrides(lm_tiny(), [text])
    section, name = field.split(".")
    assert getattr(getattr(cfg, section), name) == expected


@pytest.mark.parametrize("text,msg", [
    ("optim.muon_lr=1e+400", "must be a finite number"),
    ("model.n_layers=1.5e0", "must be an integer"),
    ("optim.muon_lr=1e-3x", "must be a number"),
])
def test_numbers_still_checked_after_parsing(text, msg):
    from autoresearch.harness.config import apply_overrides
    from autoresearch.testbeds.lm.config import lm_tiny

    with pytest.raises(ConfigError, match=msg):
        apply_overrides(lm_tiny(), [text])


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    from autoresearch.harness.config import load_yaml

    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  n_layers: [1,\n")
    with pytest.raises(ConfigError, match=r"not valid YAML \(line \d+, column \d+\)"):
        load_yaml(bad, LMConfig)


# --- nested sections: errors name the dotted path the user wrote (issue 9) ------------------------------------------


def _codegen(overrides):
    from autoresearch.testbeds.codegen.config import codegen_preset

    return apply_overrides(codegen_preset("tiny"), overrides)


@pytest.mark.parametrize("make, overrides, start", [
    # a cross-field rule checked on another field names the key that was set, with its value
    (_codegen, ["hrm.n_heads=3"], "`hrm.n_heads`=3: `hrm.d_model` must be divisible by hrm.n_heads=3, got 128;"),
    (_codegen, ["arch=gpt", "match_params=false", "gpt.n_heads=3"],
     "`gpt.n_heads`=3: `gpt.d_model` must be divisible by gpt.n_heads=3, got 512;"),
    (_codegen, ["eval.n_samples=2"], "`eval.n_samples`=2: `eval.k` must not exceed eval.n_samples=2"),
    (_codegen, ["train.seed=1", "hrm.grad_last_k=7", "hrm.grad_mode=last_k"], "`hrm.grad_last_k` must be in [1,"),
    (lambda o: apply_overrides(preset("tiny"), o), ["model.n_heads=3"],
     "`model.n_heads`=3: `model.d_model` must be divisible by model.n_heads=3, got 128;"),
    # the GPT section sits at `gpt` in codegen: no path in the message says `model.`
    (_codegen, ["gpt.d_model=100"], "`gpt.d_model` must be divisible by gpt.n_heads=8, got 100;"),
    (_codegen, ["gpt.n_kv_heads=3"], "`gpt.n_kv_heads` must divide gpt.n_heads=8, got 3;"),
    (_codegen, ["gpt.d_model=0"], "`gpt.d_model` must be in [1, 65536], got 0;"),
    (_codegen, ["hrm.d_model=0"], "`hrm.d_model` must be in [1, 65536], got 0;"),
])
def test_nested_errors_name_the_path_the_user_wrote(make, overrides, start):
    with pytest.raises(ConfigError) as e:
        make(overrides)
    msg = str(e.value)
    assert msg.startswith(start) and "\n" not in msg, msg
    if overrides[0].startswith(("gpt.", "arch=")):
        assert "model." not in msg, msg


def test_a_bare_field_name_in_the_rule_blames_the_written_key_of_that_section():
    cfg = _codegen(["hrm.grad_mode=last_k", "hrm.grad_last_k=4"])  # 4 <= h_cycles*(l_cycles+1) = 6
    with pytest.raises(ConfigError, match=r"^`hrm.h_cycles`=1: `hrm.grad_last_k` must be in \[1, h_cycles"):
        apply_overrides(cfg, ["train.seed=2", "hrm.h_cycles=1"])
    with pytest.raises(ConfigError, match=r"^`hrm.h_cycles`=1: "):  # the only key written is the culprit
        apply_overrides(cfg, {"hrm.h_cycles": 1})


def test_nested_errors_from_a_config_file_name_the_key_in_the_file(tmp_path):
    from autoresearch.testbeds.codegen.config import CodegenConfig, codegen_preset

    f = tmp_path / "c.yaml"
    f.write_text("arch: gpt\nmatch_params: false\ngpt:\n  n_heads: 3\n")
    with pytest.raises(ConfigError, match=r"^config file '.*c.yaml': `gpt.n_heads`=3: `gpt.d_model` must be divisible "
                                          r"by gpt.n_heads=3, got 512;"):
        load_yaml(f, CodegenConfig, codegen_preset("tiny"))
    f.write_text("hrm:\n  n_heads: 3\n")
    with pytest.raises(ConfigError, match=r"`hrm.n_heads`=3: `hrm.d_model` must be divisible by hrm.n_heads=3"):
        load_yaml(f, CodegenConfig, codegen_preset("tiny"))


@pytest.mark.parametrize("testbed, overrides, start", [
    ("lm", ["model.seq_len=100"], "`model.seq_len`=100: `train.train_tokens` must be a multiple of "),
    ("lm", {"train.seed": 3, "model.seq_len": 100}, "`model.seq_len`=100: `train.train_tokens` must be a multiple"),
    ("codegen", ["train.grad_accum=3"], "`train.grad_accum`=3: `train.train_tokens` must be a multiple of "),
])
def test_testbed_cross_field_checks_name_the_key_the_user_wrote(testbed, overrides, start):
    from autoresearch.testbeds import get_testbed

    with pytest.raises(ConfigError) as e:
        get_testbed(testbed).make_config("tiny", overrides)
    assert str(e.value).startswith(start), str(e.value)


def test_blame_leaves_an_unrelated_key_alone_unless_the_rest_was_valid():
    from autoresearch.harness.config import blame_overrides

    err = ConfigError("`train.device` must be auto, cpu, cuda, cuda:N or mps, got 'tpu'; use cpu")
    assert blame_overrides(err, {"train.seed": 1}, base_valid=False) is err  # the preset itself may be the cause
    assert str(blame_overrides(err, {"train.seed": 1})).startswith("`train.seed`=1: `train.device` must be")
    assert blame_overrides(err, {"train.device": "tpu"}) is err  # already names the written key
    assert blame_overrides(err, {"model.d_model": 8, "optim.muon_lr": 1.0}) is err  # no culprit: unchanged

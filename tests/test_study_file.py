"""Study files: loading, defaults, and one-line errors naming the field, the value and the fix — all before any
trial runs (flags are validated through the testbed's own `make_config`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autoresearch.errors import StudyError
from autoresearch.research.study import load_study, resolve_study

REPO = Path(__file__).resolve().parents[1]
FAKE = f"{Path(__file__).resolve().parent / 'fake_testbed.py'}:FakeTestbed"


def _write(tmp_path: Path, data: dict | str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return p


def _study(**kw) -> dict:
    base = {"name": "t", "testbed": FAKE, "preset": "tiny", "budget": {"tokens": 10_000},
            "ideas": [{"name": "boost", "overrides": {"model.boost": 0.1}}]}
    base.update(kw)
    return base


def _err(tmp_path: Path, data: dict | str, resolve: bool = False) -> str:
    with pytest.raises(StudyError) as e:
        study = load_study(_write(tmp_path, data))
        if resolve:
            resolve_study(study)
    msg = str(e.value)
    assert "\n" not in msg, "errors must be one line"
    return msg


def test_defaults_and_resolution(tmp_path):
    study = load_study(_write(tmp_path, _study(control={})))
    assert study.seeds.initial == 3 and study.seeds.max == 5
    assert study.decision.alpha == 0.05 and study.baseline.tolerance == 0.05
    assert study.metric.name == "val_loss" and study.control.seed_offset == 1000
    r = resolve_study(study)
    assert r.direction == "lower"
    assert r.idea_names == ["boost", "aa_control"]
    assert r.arms["boost"]["model.boost"] == 0.1 and r.arms["baseline"]["train.train_tokens"] == 10_000
    assert r.seed("baseline", 2) == 2 and r.seed("boost", 2) == 2 and r.seed("aa_control", 2) == 1002
    assert r.regression_overrides["train.train_tokens"] == 8 * 1000  # 8 steps of the fake's 1000 tokens
    assert r.regression_overrides["model.boost"] == 0.0  # every idea flag explicitly off
    assert "model.boost" not in r.regression_key_overrides


def test_overrides_as_key_value_list(tmp_path):
    study = load_study(_write(tmp_path, _study(ideas=[{"name": "b", "overrides": ["model.boost=0.2"]}])))
    assert study.ideas[0].overrides == {"model.boost": 0.2}


def test_name_defaults_to_file_stem(tmp_path):
    data = _study()
    del data["name"]
    assert load_study(_write(tmp_path, data, name="my_study.yaml")).name == "my_study"


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "studies").glob("*.yaml")))
def test_every_shipped_study_resolves_and_matches_packaged_copy(name):
    src = REPO / "studies" / name
    assert src.read_text() == (REPO / "autoresearch" / "studies" / name).read_text(), "keep packaged copies identical"
    r = resolve_study(load_study(src))
    assert r.idea_names


def test_quickstart_file_resolves_and_matches_packaged_copy():
    src = REPO / "studies" / "lm_quickstart.yaml"
    packaged = REPO / "autoresearch" / "studies" / "lm_quickstart.yaml"
    assert src.read_text() == packaged.read_text(), "keep the packaged quickstart identical to studies/"
    r = resolve_study(load_study(src))
    assert r.study.testbed == "lm" and {"adamw_only", "aa_control"} <= set(r.idea_names)
    assert r.study.control is not None


@pytest.mark.parametrize(
    "data, expect",
    [
        ("[1, 2", "not valid YAML"),
        ("- a\n- b\n", "must be a mapping"),
        ({**_study(), "sedes": {"initial": 3}}, "unknown section `sedes`; did you mean `seeds`?"),
        (_study(seeds={"initial": "three"}), "`seeds.initial` must be an integer, got 'three'"),
        (_study(seeds={"initial": 1}), "`seeds.initial` must be >= 2"),
        (_study(seeds={"initial": 4, "max": 3}), "`seeds.max` must be >= seeds.initial=4, got 3"),
        (_study(seeds={"intial": 3}), "unknown config key `seeds.intial`; did you mean `seeds.initial`?"),
        (_study(decision={"alpha": 0.9}), "`decision.alpha` must be in (0, 0.5), got 0.9"),
        (_study(decision={"ci": "bootstrap"}), "needs seeds.initial >= 10"),
        (_study(decision={"test": "wilcoxon"}), "`decision.test` must be one of 'paired', 'welch'"),
        (_study(baseline={"tolerance": 5}), "`baseline.tolerance` must be in (0, 1), got 5"),
        (_study(metric={"direction": "down"}), "`metric.direction` must be one of"),
        (_study(ideas=[]), "`ideas` must list at least one idea"),
        (_study(ideas=[{"name": "a b", "overrides": {"model.boost": 1}}]), "`ideas[0].name` must be letters"),
        (_study(ideas=[{"name": "x", "overrides": {"model.boost": 1}}, {"name": "x", "overrides": {"model.hurt": 1}}]),
         "`ideas[1].name` 'x' is already used by ideas[0]"),
        (_study(ideas=[{"name": "baseline", "overrides": {"model.boost": 1}}]), "already used by the baseline arm"),
        (_study(ideas=[{"name": "x", "overrides": {}}]), "`ideas[0].overrides` is empty for 'x'"),
        (_study(ideas=[{"name": "x", "overrides": [3]}]), "`ideas[0].overrides[0]` must be a `key=value` string"),
        (_study(control={"name": "boost"}), "`control.name` must be a free identifier"),
        (_study(control={"seed_offset": 0}), "`control.seed_offset` must not be 0"),
        (_study(name="bad/name"), "`name` must be letters"),
        (_study(name="x" * 101), "at most 100 characters"),
        # every number has a range (issue 8 §4): checked at load time, before any folder exists
        (_study(seeds={"initial": 3, "max": 1_000_000_000}), "`seeds.max` must be <= 1000"),
        (_study(seeds={"initial": 5000, "max": 5000}), "`seeds.initial` must be <= 1000"),
        (_study(seeds={"step": 0}), "`seeds.step` must be in [1, seeds.max=5]"),
        (_study(seeds={"base": -1}), "`seeds.base` must be in [0,"),
        (_study(seeds={"base": 2**31}), "`seeds.base` must be in [0,"),
        (_study(budget={"tokens": 1.0e18}), "`budget.tokens` must be <= 1e+12"),
        (_study(budget={"tokens": 10**18}), "`budget.tokens` must be <= 1e+12"),
        (_study(budget={"tokens": "1e18"}), "`budget.tokens` must be <= 1e+12"),  # YAML 1.1's string `1e18`
        (_study(budget={"tokens": "1e4x"}), "`budget.tokens` must be an integer"),
        (_study(budget={"seconds": float("inf")}), "`budget.seconds` must be"),
        (_study(baseline={"value": float("nan")}), "`baseline.value` must be a finite number"),
        (_study(control={"seed_offset": 2}), "`control.seed_offset` must be at least seeds.max=5 away from 0"),
        (_study(control={"seed_offset": -1000}), "puts the control seeds at -1000..-996"),
        (_study(regression={"steps": 10**6}), "`regression.steps` must be in [2, 10000]"),
        (_study(regression={"tokens": 0}), "`regression.tokens` must be in [1,"),
        (_study(resources={"workers": -1}), "`resources.workers` must be in [0, 1024]"),
        (_study(resources={"threads_per_trial": 0}), "`resources.threads_per_trial` must be in [1, 1024]"),
        (_study(resources={"timeout_s": -1}), "`resources.timeout_s` must be in [0,"),
        (_study(resources={"timeout_s": float("inf")}), "`resources.timeout_s` must be"),
        (_study(resources={"retries": 11}), "`resources.retries` must be in [0, 10]"),
        (_study(decision={"bootstrap_samples": 10}), "`decision.bootstrap_samples` must be >= 1000"),
        (_study(ideas=[{"name": f"i{k}", "overrides": {"model.boost": k}} for k in range(201)]), "at most 200"),
    ],
)
def test_file_errors(tmp_path, data, expect):
    msg = _err(tmp_path, data)
    assert expect in msg
    assert "s.yaml" in msg  # names the file


def test_missing_file(tmp_path):
    with pytest.raises(StudyError, match="does not exist"):
        load_study(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "data, expect",
    [
        (_study(ideas=[{"name": "x", "overrides": {"model.bost": 0.1}}]),
         "ideas[0] (x): unknown config key `model.bost`; did you mean `model.boost`?"),
        (_study(ideas=[{"name": "x", "overrides": {"model.noop": "yes"}}]),
         "`model.noop` must be true or false, got 'yes'"),
        (_study(ideas=[{"name": "x", "overrides": {"train.train_tokens": 5000}}]),
         "sets 'train.train_tokens', the study budget"),
        (_study(ideas=[{"name": "x", "overrides": {"train.seed": 5}}]), "sets the seed key 'train.seed'"),
        (_study(ideas=[{"name": "x", "overrides": {"model.boost": 0.0}}]), "leave the config equal to the baseline"),
        (_study(overrides={"train.train_tokens": 5}), "`overrides` sets 'train.train_tokens', which `budget:` also"),
        (_study(metric={"name": "val_los"}), "is not reported by testbed"),
        (_study(testbed="nosuch"), "unknown testbed 'nosuch'"),
        (_study(testbed="/nonexistent/tb.py:X"), "does not exist"),
        (_study(preset="huge"), "unknown preset 'huge'"),
        (_study(budget={"tokens": -5}), "`budget.tokens` must be > 0"),
    ],
)
def test_errors_found_by_the_testbed_before_any_trial(tmp_path, data, expect):
    msg = _err(tmp_path, data, resolve=True)
    assert expect in msg, msg


def test_lm_flags_are_checked_by_the_lm_config(tmp_path):
    data = _study(testbed="lm", budget={"tokens": 98304},
                  ideas=[{"name": "x", "overrides": {"model.mlp": "swiglo"}}])
    msg = _err(tmp_path, data, resolve=True)
    assert "model.mlp" in msg and "swiglu" in msg  # did you mean 'swiglu'?


@pytest.mark.parametrize("content, expect", [
    (bytes(range(256)) * 8, "is not UTF-8 text (byte 0x80 at offset 128"),  # binary, e.g. head -c 2000 /dev/urandom
    (b"\xff\xfe\x00garbage", "is not UTF-8 text (byte 0xff at offset 0"),
    (b"name: t\x00\n", "is not valid YAML (non-printable character #x0000"),
    (b"name: t\nideas: [1,\n  b: c\n", "is not valid YAML (line 4:1: expected ',' or ']'"),
    (b"name: t\n  bad: indent\n", "is not valid YAML (line 2:6: mapping values are not allowed here)"),
    ("folder", "is a folder, not a YAML file"),
])
def test_unreadable_study_files_are_one_line_naming_the_file(tmp_path, content, expect):
    """QA: a binary study file crashed with UnicodeDecodeError; every unreadable file is one line with the reason."""
    path = tmp_path / "bad.yaml"
    if content == "folder":
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(StudyError) as e:
        load_study(path)
    msg = str(e.value)
    assert "\n" not in msg and "bad.yaml" in msg and expect in msg, msg


def test_cli_run_of_a_folder_says_it_is_a_folder(tmp_path):
    from typer.testing import CliRunner

    from autoresearch.cli.app import app

    (tmp_path / "some_dir").mkdir()
    r = CliRunner().invoke(app, ["study", "run", str(tmp_path / "some_dir"), "--root", str(tmp_path / "SR")])
    assert isinstance(r.exception, StudyError) and "is a folder, not a YAML file" in str(r.exception)
    assert "does not exist" not in str(r.exception) and not (tmp_path / "SR").exists()


# a study of each built-in testbed whose budget is not whole steps (lm tiny: 16 x 128 = 2048 tokens a step; codegen
# tiny: 16 x 128 = 2048 too), and the budget it must be rounded up to
_PARTIAL_STEPS = {
    "lm": ({"testbed": "lm", "ideas": [{"name": "sw", "overrides": {"model.mlp": "swiglu"}}]}, 10_000, 10240),
    "codegen": ({"testbed": "codegen", "metric": {"name": "heldout_loss"}, "overrides": {"arch": "gpt"},
                 "ideas": [{"name": "hrm", "overrides": {"arch": "hrm"}}]}, 5_000, 6144),
}


@pytest.mark.slow
@pytest.mark.parametrize("testbed", list(_PARTIAL_STEPS))
def test_a_budget_of_partial_steps_is_refused_before_the_first_trial(tmp_path, testbed):
    """Issue 9: a bad budget in a study is refused with one line (the study key and the value to set), no
    traceback, and nothing is created: no study folder, no trial folder, no experiment."""
    kw, tokens, fixed = _PARTIAL_STEPS[testbed]
    path = _write(tmp_path, _study(name=f"bud_{testbed}", budget={"tokens": tokens}, **kw))
    msg = _err(tmp_path, path.read_text(), resolve=True)
    assert "whole steps of 2048 tokens" in msg and f"`budget.tokens: {fixed}`" in msg, msg
    r = subprocess.run([sys.executable, "-m", "autoresearch", "study", "run", str(path), "--root", "studies",
                        "--registry", "experiments"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 2 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and f"`budget.tokens: {fixed}`" in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "studies").exists() and not (tmp_path / "experiments").exists()

"""The built-in study `adversarial_vs_sft` (issue 12, item 11): it loads and resolves through the study machinery
(every arm's config validated by the adversarial testbed), its arms are SFT only vs the three RL modes, and the packaged
copy equals studies/."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoresearch.research.study import load_study, resolve_study
from autoresearch.testbeds.base import TESTBEDS

REPO = Path(__file__).resolve().parents[1]
FILE = REPO / "studies" / "adversarial_vs_sft.yaml"


@pytest.fixture
def registered(monkeypatch):
    if "adversarial" not in TESTBEDS:  # until the testbed is registered, resolve it by its module path
        monkeypatch.setitem(TESTBEDS, "adversarial", "autoresearch.testbeds.adversarial.testbed:AdversarialTestbed")


def test_study_resolves_with_sft_baseline_and_three_rl_arms(registered):
    study = load_study(FILE)
    assert study.testbed == "adversarial" and study.metric.name == "pass@1" and study.metric.direction == "higher"
    assert study.seeds.initial == 3 and study.resources.threads_per_trial == 1
    r = resolve_study(study)
    assert r.direction == "higher"
    assert r.idea_names == ["rl_visible", "rl_codisc", "shuffled_control"]
    modes = {arm: over["rl.mode"] for arm, over in r.arms.items()}
    assert modes == {"baseline": "none", "rl_visible": "visible", "rl_codisc": "discriminator",
                     "shuffled_control": "shuffled"}
    budgets = {over["train.train_tokens"] for over in r.arms.values()}
    assert len(budgets) == 1  # every arm gets the same SFT; only the RL differs
    cfg = r.testbed.make_config(study.preset, r.arms["rl_codisc"])
    assert cfg.train.threads == 1 and cfg.train.device == "cpu" and cfg.rl_steps > 0
    assert r.testbed.make_config(study.preset, r.arms["baseline"]).rl_steps == 0
    assert r.regression_overrides["rl.mode"] == "none"  # the replay runs the baseline path


def test_packaged_copy_is_identical_and_built_in():
    from autoresearch.cli.study import builtin_study

    assert (REPO / "autoresearch" / "studies" / FILE.name).read_text() == FILE.read_text()
    found = builtin_study("adversarial_vs_sft")
    assert found is not None and found.read_text() == FILE.read_text()

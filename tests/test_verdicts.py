"""Verdict rules (DESIGN.md §6): every branch, the Bonferroni split over looks, and the A/A false-KEEP rate."""

from __future__ import annotations

import numpy as np
import pytest

from autoresearch.errors import ConfigError
from autoresearch.research.verdicts import DecisionRule, decide, format_verdict, n_looks, rule_text

BASE = [5.00, 5.10, 4.95, 5.05, 5.02]


def _d(idea, base=BASE, **kw):
    kw.setdefault("rule", DecisionRule(alpha=0.05, min_effect=0.01))
    kw.setdefault("max_seeds", 5)
    kw.setdefault("direction", "lower")
    return decide("idea", idea, base[: len(idea)], **kw)


def test_keep_when_ci_excludes_zero_on_the_good_side_and_effect_is_large_enough():
    v = _d([b - 0.10 + e for b, e in zip(BASE, [0.003, -0.002, 0.001])])
    assert v.verdict == "KEEP" and v.code == "better" and v.log_status == "Validated"
    assert v.lo > 0 and v.mean == pytest.approx(0.0993, abs=1e-4)
    assert v.n == 3 and v.p < 0.05


def test_significant_but_below_min_effect_is_not_kept():
    idea = [b - 0.005 + e for b, e in zip(BASE, [0.0002, -0.0001, 0.0001])]
    v = _d(idea, rule=DecisionRule(alpha=0.05, min_effect=0.05))
    assert v.lo > 0  # significant ...
    assert v.verdict == "DISCARD" and v.code == "too_small"  # ... but the whole CI is below the minimum effect
    assert v.log_status == "Rejected"


def test_discard_when_ci_excludes_zero_on_the_bad_side():
    v = _d([b + 0.2 + e for b, e in zip(BASE, [0.01, -0.01, 0.0])])
    assert v.verdict == "DISCARD" and v.code == "worse" and v.hi < 0


def test_retest_while_inconclusive_then_discard_at_max_seeds():
    noisy = [5.05, 5.02, 4.99, 5.07, 5.00]
    v3 = _d(noisy[:3])
    assert v3.verdict == "RETEST" and v3.lo < 0 < v3.hi
    v5 = _d(noisy, looks=3)
    assert v5.verdict == "DISCARD" and v5.code == "max_seeds" and v5.log_status == "Inconclusive"


def test_crash_when_a_trial_failed_carries_the_error():
    v = _d([4.9, 4.9], error="idea-s1 crashed: RuntimeError: boom")
    assert v.verdict == "CRASH" and v.log_status == "Crashed" and "boom" in v.error
    assert "CRASH" in format_verdict(v) and "boom" in format_verdict(v)


def test_direction_higher_is_better():
    acc_base = [0.50, 0.52, 0.51]
    v = decide("idea", [0.60, 0.62, 0.605], acc_base, direction="higher",
               rule=DecisionRule(min_effect=0.01), max_seeds=3)
    assert v.verdict == "KEEP" and v.mean > 0
    v = decide("idea", [0.40, 0.42, 0.405], acc_base, direction="higher",
               rule=DecisionRule(min_effect=0.01), max_seeds=3)
    assert v.verdict == "DISCARD" and v.code == "worse"


def test_more_looks_widen_the_interval():
    idea = [b - 0.03 + e for b, e in zip(BASE, [0.01, -0.012, 0.004])]
    one = _d(idea, looks=1)
    three = _d(idea, looks=3)
    assert one.conf == pytest.approx(0.95) and three.conf == pytest.approx(1 - 0.05 / 3)
    assert three.hi - three.lo > one.hi - one.lo


def test_n_looks():
    assert n_looks(3, 5, 1) == 3
    assert n_looks(3, 5, 2) == 2
    assert n_looks(3, 3, 1) == 1
    assert n_looks(3, 10, 4) == 3  # 3, 7, 10


def test_rule_validation():
    with pytest.raises(ConfigError, match="decision.alpha"):
        DecisionRule(alpha=0.7)
    with pytest.raises(ConfigError, match="decision.min_effect"):
        DecisionRule(min_effect=-0.1)


def test_rule_text_states_the_rule():
    text = rule_text(DecisionRule(alpha=0.05, min_effect=0.01), metric="val_loss", direction="lower", initial=3,
                     max_seeds=5, step=1)
    for piece in ("val_loss", "α = 0.05", "min effect = 0.01", "98.33%", "3 looks", "KEEP", "DISCARD", "RETEST",
                  "CRASH", "up to 5"):
        assert piece in text


def _aa_keep_rate(initial: int, max_seeds: int, step: int, min_effect: float, studies: int, seed: int) -> float:
    """Simulate full A/A studies (RETEST loop included) and return the fraction that end in KEEP."""
    rng = np.random.default_rng(seed)
    rule = DecisionRule(alpha=0.05, min_effect=min_effect)
    looks = n_looks(initial, max_seeds, step)
    keeps = 0
    for _ in range(studies):
        base = rng.normal(0.0, 1.0, max_seeds)
        ctrl = rng.normal(0.0, 1.0, max_seeds)
        n = initial
        while True:
            v = decide("aa", list(ctrl[:n]), list(base[:n]), direction="lower", rule=rule, max_seeds=max_seeds,
                       looks=looks)
            if v.verdict != "RETEST":
                break
            n = min(max_seeds, n + step)
        keeps += v.verdict == "KEEP"
    return keeps / studies


@pytest.mark.parametrize("plan", [(3, 5, 1), (3, 10, 1), (2, 2, 1), (5, 8, 3)])
def test_aa_control_is_kept_at_rate_at_most_alpha(plan):
    # min_effect = 0 is the hardest case: only the CI guards against a false KEEP
    rate = _aa_keep_rate(*plan, min_effect=0.0, studies=3000, seed=sum(plan))
    assert rate <= 0.05, f"A/A KEEP rate {rate:.3f} > alpha for seed plan {plan}"


def test_without_the_split_repeated_looks_would_exceed_alpha():
    # the reason for the Bonferroni split: deciding at n = 3..10 with a plain 95% CI keeps an A/A far too often
    rng = np.random.default_rng(0)
    rule = DecisionRule(alpha=0.05)
    keeps = 0
    for _ in range(3000):
        base, ctrl = rng.normal(size=10), rng.normal(size=10)
        for n in range(3, 11):
            v = decide("aa", list(ctrl[:n]), list(base[:n]), direction="lower", rule=rule, max_seeds=10, looks=1)
            if v.verdict != "RETEST":
                break
        keeps += v.verdict == "KEEP"
    assert keeps / 3000 > 0.05

"""Statistics of the research layer against scipy.stats as the oracle (scipy is a test-only dependency)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as S

from autoresearch.research.stats import (
    bootstrap_ci,
    mean_ci,
    paired_deltas,
    paired_t,
    summarize,
    t_cdf,
    t_ppf,
    t_sf,
    welch_ci,
    welch_t,
)


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7.5, 30, 250])
def test_t_distribution_matches_scipy(df):
    for t in [-40.0, -5.0, -2.1, -0.3, 0.0, 0.7, 1.96, 3.3, 12.0, 80.0]:
        assert t_cdf(t, df) == pytest.approx(S.t.cdf(t, df), rel=1e-10, abs=1e-14)
        assert t_sf(t, df) == pytest.approx(S.t.sf(t, df), rel=1e-10, abs=1e-14)
    for q in [0.001, 0.025, 0.4, 0.6, 0.9, 0.975, 0.99, 0.9916666, 0.9999]:
        assert t_ppf(q, df) == pytest.approx(S.t.ppf(q, df), rel=1e-9, abs=1e-12)


def test_t_ppf_rejects_bad_quantiles():
    with pytest.raises(ValueError):
        t_ppf(1.0, 3)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("conf", [0.95, 0.9833333])
def test_mean_ci_matches_scipy(seed, conf):
    x = np.random.default_rng(seed).normal(0.3, 1.0, size=3 + seed)
    m, lo, hi = mean_ci(x, conf)
    slo, shi = S.t.interval(conf, x.size - 1, loc=x.mean(), scale=S.sem(x))
    assert m == pytest.approx(x.mean())
    assert lo == pytest.approx(slo, rel=1e-9)
    assert hi == pytest.approx(shi, rel=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_paired_t_matches_ttest_rel(seed):
    rng = np.random.default_rng(seed)
    b = rng.normal(5.0, 0.1, size=3 + seed)
    a = b + rng.normal(0.02 * (seed - 2), 0.03, size=b.size)
    t, p = paired_t(a - b)
    ref = S.ttest_rel(a, b)
    assert t == pytest.approx(ref.statistic, rel=1e-9)
    assert p == pytest.approx(ref.pvalue, rel=1e-8)


@pytest.mark.parametrize("seed", range(6))
def test_welch_matches_ttest_ind(seed):
    rng = np.random.default_rng(100 + seed)
    a = rng.normal(0.0, 1.0, size=3 + seed)
    b = rng.normal(0.5, 2.0, size=5 + 2 * seed)
    t, df, p = welch_t(a, b)
    ref = S.ttest_ind(a, b, equal_var=False)
    assert t == pytest.approx(ref.statistic, rel=1e-9)
    assert p == pytest.approx(ref.pvalue, rel=1e-8)
    assert df == pytest.approx(ref.df, rel=1e-9)
    diff, lo, hi = welch_ci(a, b, 0.95)
    ci = ref.confidence_interval(0.95)
    assert diff == pytest.approx(a.mean() - b.mean())
    assert (lo, hi) == pytest.approx((ci.low, ci.high), rel=1e-8)


def test_bootstrap_ci_agrees_with_scipy_percentile():
    x = np.random.default_rng(7).normal(1.0, 2.0, size=200)
    m, lo, hi = bootstrap_ci(x, 0.95, n_boot=20_000, seed=1)
    ref = S.bootstrap((x,), np.mean, confidence_level=0.95, n_resamples=20_000, method="percentile",
                      random_state=np.random.default_rng(2)).confidence_interval
    se = x.std(ddof=1) / math.sqrt(x.size)
    assert m == pytest.approx(x.mean())
    # two Monte-Carlo estimates of the same percentiles: equal within a few % of a standard error
    assert abs(lo - ref.low) < 0.05 * se
    assert abs(hi - ref.high) < 0.05 * se
    assert lo < m < hi


def test_paired_deltas_orientation():
    base = [5.0, 5.1]
    lower_is_better = paired_deltas([4.9, 5.0], base, "lower")
    higher_is_better = paired_deltas([4.9, 5.0], base, "higher")
    assert lower_is_better == pytest.approx([0.1, 0.1])
    assert higher_is_better == pytest.approx([-0.1, -0.1])
    with pytest.raises(ValueError):
        paired_deltas([1.0], [1.0, 2.0], "lower")
    with pytest.raises(ValueError):
        paired_deltas([1.0], [1.0], "up")


def test_degenerate_samples_are_decided_not_nan():
    assert mean_ci([0.0, 0.0, 0.0]) == (0.0, 0.0, 0.0)
    assert paired_t([0.0, 0.0, 0.0]) == (0.0, 1.0)
    m, lo, hi = mean_ci([0.25, 0.25, 0.25])
    assert (m, lo, hi) == (0.25, 0.25, 0.25)
    assert paired_t([0.2, 0.2])[1] == 0.0
    m, lo, hi = mean_ci([1.5])
    assert m == 1.5 and lo == -math.inf and hi == math.inf
    assert paired_t([1.5]) == (0.0, 1.0)
    assert welch_t([1.0], [2.0, 3.0])[2] == 1.0


def test_summarize_paired_and_welch():
    rng = np.random.default_rng(3)
    base = rng.normal(5.0, 0.05, 5)
    idea = base - 0.1 + rng.normal(0, 0.01, 5)  # lower loss = better
    s = summarize(idea, base, "lower", conf=0.95)
    ref = S.ttest_rel(base, idea)  # oriented: baseline − idea
    assert s.mean == pytest.approx(float(np.mean(base - idea)))
    assert s.p == pytest.approx(ref.pvalue, rel=1e-8)
    assert s.lo > 0 and s.n == 5
    w = summarize(idea, base, "lower", test="welch")
    assert w.p == pytest.approx(S.ttest_ind(base, idea, equal_var=False).pvalue, rel=1e-8)
    b = summarize(idea, base, "lower", ci="bootstrap", n_boot=2000)
    assert b.lo <= b.mean <= b.hi
    with pytest.raises(ValueError):
        summarize(idea, base, "lower", test="mannwhitney")

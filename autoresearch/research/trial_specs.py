"""The trials of a study: their ids (the folder under `trials/` and the key in state and ledger) and the
`TrialSpec`s the scheduler runs.

    <arm>-s<seed>              a training trial of an arm (baseline, an idea, the A/A control) on one seed
    checks-g<gen>              the integration checks, generation <gen> (a failure bumps it, so resume runs anew)
    regression-g<gen>-<k>      the k-th short regression run of generation <gen>

Ids are stable across resumes (the seed, not a counter, names a trial), so a finished trial is found again by its id.
A spec carries the arm's overrides as a JSON-able dict that the trial process turns back into a config with the same
`make_config` that validated every arm before the study started.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autoresearch.research.state import RegressionPlan
from autoresearch.research.study import BASELINE, ResolvedStudy
from autoresearch.research.trial import TrialSpec

__all__ = ["TrialSpecs", "arm_trial_id", "checks_trial_id", "regression_trial_id", "arm_of", "pairing_index",
           "REGRESSION"]

REGRESSION = "regression"
"""The arm of the short regression runs (unpaired: no pairing index, no verdict)."""


def arm_trial_id(resolved: ResolvedStudy, arm: str, index: int) -> str:
    """Id of `arm`'s trial at pairing index `index`."""
    return f"{arm}-s{resolved.seed(arm, index)}"


def checks_trial_id(generation: int) -> str:
    return f"checks-g{generation}"


def regression_trial_id(generation: int, k: int) -> str:
    return f"{REGRESSION}-g{generation}-{k}"


def arm_of(trial_id: str) -> str:
    """The arm of an `<arm>-s<seed>` id."""
    return trial_id.rsplit("-s", 1)[0]


def pairing_index(resolved: ResolvedStudy, arm: str, seed: int | None) -> int | None:
    """Inverse of `ResolvedStudy.seed`: the pairing index of `arm`'s trial on `seed` (None for unpaired runs)."""
    if seed is None or arm == REGRESSION:
        return None
    study = resolved.study
    offset = study.seeds.base
    if study.control is not None and arm == study.control.name:
        offset += study.control.seed_offset
    return int(seed) - offset


@dataclass
class TrialSpecs:
    """Builds the specs of one study's trials for one runner session (registry and timeout are chosen per run)."""

    resolved: ResolvedStudy
    registry: str
    timeout_s: float
    trackers: tuple[str, ...] = ()
    """trackers added on the command line (`--tracker`), after the study file's `resources.trackers`."""

    def spec(self, tid: str, arm: str, seed: int | None, kind: str, overrides: dict[str, Any]) -> TrialSpec:
        s = self.resolved.study
        return TrialSpec(study=self.resolved.name, trial_id=tid, arm=arm, seed=seed, kind=kind, testbed=s.testbed,
                         preset=s.preset, overrides=dict(overrides), registry=self.registry,
                         threads=s.resources.threads_per_trial, timeout_s=self.timeout_s, retries=s.resources.retries,
                         gpus=s.resources.gpus_per_trial, nproc=s.resources.nproc_per_trial,
                         trackers=list(dict.fromkeys([*s.resources.trackers, *self.trackers])))

    def arm(self, arm: str, index: int) -> TrialSpec:
        """`arm`'s training trial at pairing index `index`."""
        r = self.resolved
        return self.spec(arm_trial_id(r, arm, index), arm, r.seed(arm, index), "train", r.trial_overrides(arm, index))

    def checks(self, generation: int) -> TrialSpec:
        """The integration checks, on the baseline config."""
        return self.spec(checks_trial_id(generation), "checks", None, "checks", self.resolved.arms[BASELINE])

    def regression(self, plan: RegressionPlan) -> list[TrialSpec]:
        """The short regression runs of `plan` (identical: recording a trace runs it twice to prove determinism)."""
        r = self.resolved
        base = r.study.seeds.base
        overrides = {**r.regression_overrides, **r.testbed.seed_overrides(base)}
        return [self.spec(regression_trial_id(plan.gen, k), REGRESSION, base, "train", overrides)
                for k in range(1, plan.runs + 1)]

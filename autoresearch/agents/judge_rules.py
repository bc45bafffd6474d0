"""Judge `rules`: approves an implemented version only when every mechanical check passed — no language model.

It reads nothing but the task and the `Evidence` the implementation stage gathered (stateless, as DESIGN.md §7 asks
of a judge): the diff stays in editable paths with the protected hash unchanged, the edited files compile and lint,
the testbed's integration checks pass, and flag off reproduces the base commit's per-step losses bit for bit.
Anything else is `revise` with one line per blocking reason (the details line that names the failure, e.g. the
regression's first differing step, follows). An LLM judge (issue 11) runs after this one and can never approve what
it refused.
"""

from __future__ import annotations

from autoresearch.agents.roles import Evidence, Judge, TaskSpec, Verdict

__all__ = ["RulesJudge", "BLOCKING"]

BLOCKING: tuple[tuple[str, str], ...] = (
    ("editable_ok", "the diff touches a path outside the editable globs, or the protected hash changed"),
    ("compile_ok", "an edited Python file does not compile"),
    ("lint_ok", "ruff finds errors (F, E9) in the edited files"),
    ("checks_ok", "the testbed's integration checks fail"),
    ("regression_ok", "flag off does not reproduce the baseline's per-step losses bit for bit"),
)
"""Evidence field -> the reason given when it is False, in the order the pipeline checks them."""


class RulesJudge(Judge):
    """`--judge rules`."""

    spec = "rules"

    def review(self, task: TaskSpec, evidence: Evidence) -> Verdict:
        reasons = [why for name, why in BLOCKING if not getattr(evidence, name)]
        if not reasons:
            return Verdict("approve", [])
        details = [line.strip() for line in evidence.details.splitlines() if line.strip()]
        return Verdict("revise", reasons + details)

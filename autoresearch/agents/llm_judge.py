"""Judge on a language model (`--judge openai:MODEL`, ...): reviews an implemented version after the rule-based judge.

The rule-based judge (judge_rules.py) runs first and anything but its `approve` is returned as it is: a model can
never approve what failed a mechanical check, and no call is made. Then `samples` independent reviews, each a FRESH
conversation built only from templates/judge.md (overridable as DIR/prompts/judge.md), the task spec, the diff
(capped at DIFF_CHARS) and the evidence fields — never anything of the coder's conversation (DESIGN.md §7: the judge
is stateless). An empty diff (coder `none`: the code is the base commit's own) has nothing for a model to review
and is approved without a call. With more than one sample the reviews are drawn at a temperature above 0 (identical greedy answers
would make the vote pointless). The most frequent decision wins; a tie is `revise`. The reasons are the majority's
blocking issues, each once. A review that says revise/reject must name a blocking issue, and an approve must name
none (else re-ask).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from autoresearch.agents.judge_rules import RulesJudge
from autoresearch.agents.llm.prompt_text import cap, describe_task
from autoresearch.agents.llm.role_base import LLMRole
from autoresearch.agents.llm.schemas import VerdictOut
from autoresearch.agents.llm.templates import prompt_messages
from autoresearch.agents.roles import Evidence, Judge, TaskSpec, Verdict

__all__ = ["LLMJudge", "majority", "DIFF_CHARS", "SAMPLE_TEMPERATURE"]

DIFF_CHARS = 12_000
"""The diff's first characters sent to the judge (a bigger diff is cut, saying how much was left out)."""
SAMPLE_TEMPERATURE = 0.7
"""Temperature of each review when several are drawn (env.settings.judge.temperature overrides)."""


def majority(verdicts: list[VerdictOut]) -> Verdict:
    """The most frequent decision of `verdicts` (a tie between the top decisions: revise) with the blocking issues of
    the reviews that voted for it (on a tie: of every review that did not approve), each once; a split vote says so
    in its first reason."""
    counts = Counter(v.decision for v in verdicts)
    top = max(counts.values())
    leaders = [d for d, c in counts.items() if c == top]
    decision = leaders[0] if len(leaders) == 1 else "revise"
    if decision == "approve":
        return Verdict("approve", [])
    voters = [v for v in verdicts if (v.decision != "approve" if len(leaders) > 1 else v.decision == decision)]
    reasons: list[str] = []
    if len(leaders) > 1:
        reasons.append("the reviews split (" + ", ".join(f"{d} {c}" for d, c in sorted(counts.items())) + "): revise")
    for v in voters:
        for issue in v.blocking_issues:
            line = " ".join(str(issue).split())
            if line and line not in reasons:
                reasons.append(line)
    return Verdict(decision, reasons or [f"{decision} without a stated reason"])  # type: ignore[arg-type]


def _validate(out: VerdictOut) -> str | None:
    issues = [i for i in out.blocking_issues if str(i).strip()]
    if out.decision != "approve" and not issues:
        return f"a {out.decision} decision must list at least one blocking issue (one line each)"
    if out.decision == "approve" and issues:
        return ("an approve decision must have no blocking issues; either decide revise (the issues block) or "
                "approve with blocking_issues []")
    return None


class LLMJudge(LLMRole, Judge):
    """A judge that asks a language model (`backend_spec`), after the rule-based judge."""

    role = "judge"

    def __init__(self, backend_spec: str, *, env: Any, backend: Any = None) -> None:
        super().__init__(backend_spec, env=env, backend=backend)
        self.rules = RulesJudge()
        self.last_reviews: list[VerdictOut] = []
        """the individual reviews of the last `review` (for reports and tests)."""

    def review(self, task: TaskSpec, evidence: Evidence, samples: int = 1) -> Verdict:
        from autoresearch.agents.llm.structured import ask_structured

        self.last_reviews = []
        first = self.rules.review(task, evidence)
        if first.decision != "approve":
            return first
        if not evidence.diff.strip():  # coder none: the idea is an existing flag, the code is the base's own
            return Verdict("approve", [])
        samples = max(1, int(samples))
        knobs = self.knobs(1024, SAMPLE_TEMPERATURE if samples > 1 else 0.0)
        for _ in range(samples):
            messages = self.messages(task, evidence)  # a fresh conversation per review
            self.last_reviews.append(ask_structured(self.session, messages, VerdictOut, validate=_validate, **knobs))
        return majority(self.last_reviews)

    def messages(self, task: TaskSpec, evidence: Evidence) -> list[dict[str, str]]:
        """The whole conversation of one review: the template with the task, the evidence and the diff."""
        diff = evidence.diff.strip()
        return prompt_messages(self.role, self.env, task=describe_task(task), evidence=_describe_evidence(evidence),
                               diff=f"```diff\n{cap(diff, DIFF_CHARS)}\n```" if diff else "(empty diff: nothing "
                                                                                          "was changed)")


def _describe_evidence(e: Evidence) -> str:
    def ok(x: bool) -> str:
        return "passed" if x else "FAILED"

    lines = [f"- editable paths only, protected files unchanged: {ok(e.editable_ok)}",
             f"- edited Python files compile: {ok(e.compile_ok)}",
             f"- lint (ruff F, E9): {ok(e.lint_ok)}",
             f"- the testbed's integration checks: {ok(e.checks_ok)}",
             f"- regression (flags off: per-step losses bit-identical to the unedited code): {ok(e.regression_ok)}",
             f"- changed paths: {', '.join(e.changed_paths) or '(none listed)'}"]
    details = [ln.strip() for ln in e.details.splitlines() if ln.strip()]
    if details:
        lines += ["- details:", *(f"  {ln}" for ln in details[:20])]
    return "\n".join(lines)

"""Reviser on a language model (`--reviser openai:MODEL`, ...): the next version of an idea that did not win, or stop.

The model is sent (templates/reviser.md, overridable as DIR/prompts/reviser.md) the idea, the latest version's task
and its analysis (kind, summary, the reasoning and the key numbers), the idea's earlier versions with their
analyses, every task tried in the workspace (`env.tried()`) and the idea log (`env.idea_log()`); it answers a
`RevisionOut`: stop (-> None), or the next task. The task is checked (task_check.py) and re-asked on a problem — a
task whose flags and values were tried, an off value that differs from the one the idea's earlier versions used, a
file outside the editable paths. The new task keeps the idea, its name (the orchestrator numbers the version) and its
metric, and still needs code when the last version did (every version starts again from the base commit).
A `win` is never revised (the loop ends on KEEP): None, without a call. A model that answers but never validly
(three tries) leaves the decision to the rule-based reviser (reviser_none.py), saying so in `last_reason`.
"""

from __future__ import annotations

from typing import Any

from autoresearch.agents.llm.prompt_text import cap, describe_task, describe_tried, num
from autoresearch.agents.llm.role_base import LLMRole
from autoresearch.agents.llm.schemas import RevisionOut, task_from_out
from autoresearch.agents.llm.task_check import check_task
from autoresearch.agents.llm.templates import prompt_messages
from autoresearch.agents.roles import Analysis, Flag, Reviser, TaskSpec
from autoresearch.errors import ConfigError, StructuredOutputError

__all__ = ["LLMReviser", "describe_analysis"]

IDEA_LOG_CHARS = 6000
TEXT_CHARS = 3000
"""An analysis' reasoning is cut to this many characters in the reviser's prompt."""


def describe_analysis(analysis: Analysis, *, text: bool = True) -> str:
    """An analysis as the reviser reads it: kind and summary, the key numbers, the reasoning (when `text`)."""
    ev = analysis.evidence or {}
    lines = [f"Kind: {analysis.kind}. {analysis.summary}"]
    if "delta" in ev:
        lines.append(f"Δ (positive = better) {num(ev.get('delta'))}, CI {num(ev.get('ci_low'))}.."
                     f"{num(ev.get('ci_high'))}, p = {num(ev.get('p_value'), 3)}, n = {ev.get('n_seeds', 'n/a')}")
    for label, key in (("tokens/s", "tokens_per_s"), ("memory", "memory_mb")):
        m = ev.get(key)
        if isinstance(m, dict) and isinstance(m.get("change_pct"), (int, float)):
            lines.append(f"{label}: {num(m['change_pct'], 3)}% vs baseline (noise ±{num(m.get('noise_pct'), 3)}%)")
    if text and analysis.text.strip():
        lines += ["", cap(analysis.text.strip(), TEXT_CHARS)]
    return "\n".join(lines)


class LLMReviser(LLMRole, Reviser):
    """A reviser that asks a language model (`backend_spec`)."""

    role = "reviser"

    def __init__(self, backend_spec: str, *, env: Any, backend: Any = None) -> None:
        super().__init__(backend_spec, env=env, backend=backend)
        self.last_reason = ""
        """the model's one-line reason of the last `revise` (why this version, or why stop)."""

    def revise(self, task: TaskSpec, analysis: Analysis,
               history: list[tuple[TaskSpec, Analysis]]) -> TaskSpec | None:
        from autoresearch.agents.llm.structured import ask_structured

        self.last_reason = ""
        if analysis.kind == "win":
            return None
        env = self.env
        tried = [*env.tried(), *(t for t, _ in history), task]
        known: dict[str, Flag] = {}
        for t in [*tried[::-1]]:  # the latest version's flags first
            for f in t.flags:
                if f.off is not None:
                    known.setdefault(f.key, f)
        result: list[TaskSpec] = []

        def validate(out: RevisionOut) -> str | None:
            if out.stop or out.task is None:
                return None
            try:
                new = task_from_out(out.task, task.idea)
            except ConfigError as e:
                return str(e)
            new, problems = check_task(new, known=list(known.values()), tried=tried, editable=env.editable)
            if problems:
                return "; ".join(problems)
            result[:] = [new]
            return None

        earlier = "\n\n".join(f"## v{i}\n{describe_task(t)}\n\n{describe_analysis(a, text=False)}"
                              for i, (t, a) in enumerate(history, 1)) or "(none: this was the first version)"
        messages = prompt_messages(
            self.role, env, idea=task.idea, task=describe_task(task), analysis=describe_analysis(analysis),
            history=earlier, version=f"v{len(history) + 1}", tried=describe_tried(_unique(tried)),
            idea_log=cap(env.idea_log().strip(), IDEA_LOG_CHARS, keep="end") or "(empty)",
            editable=", ".join(env.editable) or "(none)")
        try:
            out = ask_structured(self.session, messages, RevisionOut, validate=validate, **self.knobs(1024))
        except StructuredOutputError as e:  # the model answered, never validly: the rule-based reviser decides
            from autoresearch.agents.reviser_none import NoneReviser

            self.last_reason = f"the reviser's model gave no valid revision ({' '.join(str(e).split())[:300]}); " \
                               "the rule-based reviser decided"
            return NoneReviser().revise(task, analysis, history)
        self.last_reason = " ".join(out.reason.split())
        if out.stop or not result:
            return None
        new = result[0]
        new.idea, new.name, new.metric = task.idea, task.name, task.metric
        new.needs_code = new.needs_code or task.needs_code
        if new.needs_code and not new.files:
            new.files = list(task.files)
        if not new.description:
            new.description = self.last_reason or task.description
        return new


def _unique(tasks: list[TaskSpec]) -> list[TaskSpec]:
    """`tasks` without repeats (same name and flags), in order."""
    seen: set[tuple[str, frozenset[tuple[str, str]]]] = set()
    out = []
    for t in tasks:
        key = (t.name, t.signature())
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out

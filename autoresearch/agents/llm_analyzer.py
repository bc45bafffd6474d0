"""Analyzer on a language model (`--analyzer openai:MODEL`, ...): why a finished study came out as it did, in words.

The rule-based analyzer (analyzer_rules.py) reads the study first and gives its kind and numbers. The model is sent
(templates/analyzer.md, overridable as DIR/prompts/analyzer.md) the task, the study's numbers (metric per arm, Δ with
its CI and p, seeds, tokens/s and memory against the baseline with their noise, trial statuses, the first error), the
arms' mean training-loss curves as a table, and the rules' reading; it answers an `AnalysisOut`. Its kind must agree
with the study's verdict — KEEP <=> win, and a CRASH study is a bug — else it is asked again with that reason.
The Analysis keeps the rules' numbers as evidence (the reviser and the report read them) plus what the model cited;
its Markdown reasoning becomes `Analysis.text` (analysis.md). A model that answers but never validly (three tries)
leaves the rules' reading in place, saying so (the verdict is the study's, the analysis only explains it); a model
that cannot be reached is an LLMError for the orchestrator (the version escalates).
"""

from __future__ import annotations

from typing import Any

from autoresearch.agents.analyzer_rules import RulesAnalyzer
from autoresearch.agents.llm.prompt_text import describe_curves, describe_study, describe_task
from autoresearch.agents.llm.role_base import LLMRole
from autoresearch.agents.llm.schemas import AnalysisOut
from autoresearch.agents.llm.templates import prompt_messages
from autoresearch.agents.roles import ANALYSIS_KINDS, Analysis, Analyzer, StudySummary, TaskSpec
from autoresearch.errors import StructuredOutputError

__all__ = ["LLMAnalyzer", "SUMMARY_CHARS"]

SUMMARY_CHARS = 300
"""An analysis summary is one line (the idea log, events and the report print it)."""


def consistency(study: StudySummary, out: AnalysisOut) -> str | None:
    """The one line a re-ask sends when the model's kind contradicts the verdict, else None."""
    if study.verdict == "KEEP" and out.kind != "win":
        return f"the study's verdict is KEEP, so the kind must be win (got {out.kind})"
    if out.kind == "win" and study.verdict != "KEEP":
        return (f"kind win needs the verdict KEEP, but the verdict is {study.verdict}; choose noise, systems, theory "
                "or bug")
    if study.verdict == "CRASH" and out.kind != "bug":
        return f"the study crashed (verdict CRASH), so the kind must be bug (got {out.kind})"
    if not out.summary.strip():
        return "the summary is empty; give one line with the kind and the key numbers"
    return None


class LLMAnalyzer(LLMRole, Analyzer):
    """An analyzer that asks a language model (`backend_spec`), after the rule-based analyzer."""

    role = "analyzer"

    def __init__(self, backend_spec: str, *, env: Any, backend: Any = None) -> None:
        super().__init__(backend_spec, env=env, backend=backend)
        self.rules = RulesAnalyzer()

    def analyze(self, task: TaskSpec, study: StudySummary) -> Analysis:
        from autoresearch.agents.llm.structured import ask_structured

        reading = self.rules.analyze(task, study)
        messages = prompt_messages(
            self.role, self.env, task=describe_task(task), verdict=study.verdict,
            study=describe_study(study, reading.evidence), curves=describe_curves(study.curves),
            rules=reading.summary if reading.summary.startswith(reading.kind) else f"{reading.kind}: {reading.summary}",
            kinds=", ".join(ANALYSIS_KINDS))
        try:
            out = ask_structured(self.session, messages, AnalysisOut, validate=lambda o: consistency(study, o),
                                 **self.knobs(1536))
        except StructuredOutputError as e:  # the model answered, never validly: the rules' reading stands
            line = " ".join(str(e).split())[:400]
            return Analysis(reading.kind, reading.summary, {**reading.evidence, "llm_error": line},
                            text=f"The analyzer's model gave no valid analysis ({line}); this is the rule-based "
                                 "analyzer's reading.")
        summary = " ".join(out.summary.split())
        if len(summary) > SUMMARY_CHARS:
            summary = summary[:SUMMARY_CHARS - 3].rstrip() + "..."
        evidence = {**reading.evidence, "rules": {"kind": reading.kind, "summary": reading.summary},
                    "cited": [str(c) for c in out.evidence_cited]}
        return Analysis(out.kind, summary, evidence, text=out.reasoning_md.strip())

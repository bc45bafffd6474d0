"""Research roles: the interface (`roles.py`), the rule-based roles that need no language model, and the role specs
(`make_planner("none")`, `make_coder("patch:FILE")`, ...) the CLI resolves. The LLM roles plug into the same
interface (issue 11)."""

from __future__ import annotations

from autoresearch.agents.analyzer_rules import RulesAnalyzer, render_analysis_md
from autoresearch.agents.judge_rules import RulesJudge
from autoresearch.agents.planner_none import NonePlanner
from autoresearch.agents.reviser_none import NoneReviser
from autoresearch.agents.role_specs import (
    ROLE_SPECS,
    make_analyzer,
    make_coder,
    make_judge,
    make_planner,
    make_reviser,
    register_role,
)
from autoresearch.agents.roles import (
    Analysis,
    Analyzer,
    Coder,
    CoderResult,
    Design,
    Evidence,
    Flag,
    Judge,
    PlanContext,
    Planner,
    Reviser,
    StudySummary,
    TaskSpec,
    Verdict,
)
from autoresearch.testbeds.flags import complete_flags, flags_from_config_diff, parse_user_flags

__all__ = [
    "Flag",
    "TaskSpec",
    "Design",
    "CoderResult",
    "Verdict",
    "Analysis",
    "Evidence",
    "PlanContext",
    "StudySummary",
    "Planner",
    "Coder",
    "Judge",
    "Analyzer",
    "Reviser",
    "ROLE_SPECS",
    "make_planner",
    "make_coder",
    "make_judge",
    "make_analyzer",
    "make_reviser",
    "register_role",
    "NonePlanner",
    "RulesJudge",
    "RulesAnalyzer",
    "NoneReviser",
    "render_analysis_md",
    "flags_from_config_diff",
    "complete_flags",
    "parse_user_flags",
]

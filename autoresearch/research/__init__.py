"""The research layer: studies of ideas over seeds, statistics, verdicts, ledger, idea log and reports.

Imports are lazy (PEP 562) so that `python -m autoresearch.research.trial`, which every trial subprocess runs,
does not pay for numpy, matplotlib or the runner at start-up.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    # study file
    "Study": "study", "Idea": "study", "ResolvedStudy": "study", "load_study": "study", "parse_study": "study",
    "resolve_study": "study",
    # statistics and verdicts
    "Summary": "stats", "summarize": "stats", "paired_deltas": "stats", "mean_ci": "stats", "paired_t": "stats",
    "welch_t": "stats", "welch_ci": "stats", "bootstrap_ci": "stats",
    "DecisionRule": "verdicts", "Verdict": "verdicts", "decide": "verdicts", "rule_text": "verdicts",
    "format_verdict": "verdicts",
    # persistence
    "Ledger": "ledger", "StudyState": "state", "TrialRecord": "state", "StageStatus": "state",
    # trials, regression, pipeline
    "TrialSpec": "trial", "TrialOutcome": "trial", "AttemptLauncher": "trial", "AttemptExit": "trial",
    "EXECUTORS": "executors", "make_launcher": "executors",
    "TrialScheduler": "scheduler", "default_workers": "scheduler",
    "run_study": "runner", "StudyRunner": "runner", "StudyResult": "runner", "prepare_study": "study_dir",
    "open_study": "study_dir", "accept_baseline": "study_dir", "check_study": "study",
    "StudyStatus": "status", "study_status": "status",
    # outputs
    "write_idea_log": "idea_log", "write_report": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'autoresearch.research' has no attribute {name!r}")
    return getattr(importlib.import_module(f"autoresearch.research.{mod}"), name)


def __dir__() -> list[str]:
    return __all__

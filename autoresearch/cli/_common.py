"""Small pieces shared by CLI verbs: `key: value` summaries and config assembly from presets/files/overrides."""

from __future__ import annotations

import math
from typing import Any

import typer

__all__ = ["print_summary", "fmt"]


def fmt(value: Any) -> str:
    """Human formatting for summaries and tables: 4 significant decimals, thousands separators, '-' for None."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.4g}" if abs(value) < 1e-3 and value != 0 else f"{value:.4f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10000 else str(value)
    return str(value)


def print_summary(items: dict[str, Any]) -> None:
    """The closing `key: value` block every long job prints (DESIGN.md §1)."""
    for k, v in items.items():
        typer.echo(f"{k}: {fmt(v) if not isinstance(v, str) else v}")

"""Command-line interface: a typer app whose verbs are thin wrappers over the library."""

from __future__ import annotations

from autoresearch.cli.app import app, main

__all__ = ["app", "main"]

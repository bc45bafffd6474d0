"""Testbeds: small, fast, honest research subjects behind one contract (`Testbed`, testbeds/base.py)."""

from __future__ import annotations

from autoresearch.testbeds.base import (
    TESTBEDS,
    CheckResult,
    CliOption,
    LoadedModel,
    Testbed,
    get_testbed,
    register_testbed,
)

__all__ = ["Testbed", "CheckResult", "CliOption", "LoadedModel", "get_testbed", "register_testbed", "TESTBEDS"]

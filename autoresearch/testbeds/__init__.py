"""Testbeds: small, fast, honest research subjects behind one interface (`Testbed`)."""

from __future__ import annotations

from autoresearch.testbeds.base import TESTBEDS, CheckResult, Testbed, get_testbed, register_testbed

__all__ = ["Testbed", "CheckResult", "get_testbed", "register_testbed", "TESTBEDS"]

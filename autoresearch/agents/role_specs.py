"""Role specs: the strings `research run --planner/--coder/--judge/--analyzer/--reviser` take, resolved to role objects.

A spec is a bare name (`none`, `rules`, `claude`) or `name:ARG` (`patch:FILE`, `cmd:PATH`; the LLM issue adds
`openai:MODEL@URL`, `anthropic:MODEL`...). Each role has a table name -> (form, factory); `register_role` adds a row,
so a new kind of role plugs in without touching the resolver. An unknown spec is ONE line listing the valid forms.
Implementations are imported when resolved (a coder's module is not loaded for `--planner none`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autoresearch.agents.roles import Analyzer, Coder, Judge, Planner, Reviser
from autoresearch.errors import ConfigError

__all__ = ["ROLE_SPECS", "ROLES", "register_role", "make_planner", "make_coder", "make_judge",
           "make_analyzer", "make_reviser", "role_forms"]

ROLES = ("planner", "coder", "judge", "analyzer", "reviser")


@dataclass(frozen=True)
class _Entry:
    form: str
    """how the spec is written, e.g. `patch:FILE`."""
    factory: Callable[..., Any]
    """factory(arg, **options) -> the role object; arg is "" for a bare name."""
    takes_arg: bool


_TABLE: dict[str, dict[str, _Entry]] = {role: {} for role in ROLES}


def register_role(role: str, name: str, factory: Callable[..., Any], *, arg: str = "") -> None:
    """Add the spec `name` (or `name:ARG` when `arg` names the argument, e.g. "FILE") to `role`'s table;
    `factory(arg_value, **options)` builds the role object."""
    if role not in _TABLE:
        raise ConfigError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    _TABLE[role][name] = _Entry(f"{name}:{arg}" if arg else name, factory, bool(arg))


def role_forms(role: str) -> list[str]:
    """The valid spec forms of `role`, in registration order."""
    return [e.form for e in _TABLE[role].values()]


def _make(role: str, spec: str, options: dict[str, Any]) -> Any:
    text = str(spec).strip()
    name, sep, arg = text.partition(":")
    entry = _TABLE[role].get(name.strip())
    valid = ", ".join(role_forms(role))
    if entry is None:
        raise ConfigError(f"unknown {role} {text!r}; use one of: {valid}")
    if entry.takes_arg and not arg.strip():
        raise ConfigError(f"{role} {text!r} needs its argument: write {entry.form}")
    if not entry.takes_arg and sep:
        raise ConfigError(f"{role} {text!r} takes no argument; write {entry.form} (valid: {valid})")
    return entry.factory(arg.strip(), **options)


def make_planner(spec: str = "none", **options: Any) -> Planner:
    """The planner of `spec` (`none`: the flag space with optuna TPE, agents/planner_none.py)."""
    return _make("planner", spec, options)


def make_coder(spec: str = "none", **options: Any) -> Coder:
    """The coder of `spec`: `none` (no edit: the idea is an existing flag), `patch:FILE`, `cmd:PATH`, `claude`,
    `codex`, `aider` (agents/coders/)."""
    return _make("coder", spec, options)


def make_judge(spec: str = "rules", **options: Any) -> Judge:
    """The judge of `spec` (`rules`: agents/judge_rules.py)."""
    return _make("judge", spec, options)


def make_analyzer(spec: str = "rules", **options: Any) -> Analyzer:
    """The analyzer of `spec` (`rules`: agents/analyzer_rules.py)."""
    return _make("analyzer", spec, options)


def make_reviser(spec: str = "none", **options: Any) -> Reviser:
    """The reviser of `spec` (`none`: agents/reviser_none.py)."""
    return _make("reviser", spec, options)


def _lazy(module: str, attr: str, *, with_arg: bool = False) -> Callable[..., Any]:
    """A factory importing `module.attr` when called: attr(arg, **options) or attr(**options)."""

    def factory(arg: str, **options: Any) -> Any:
        cls = getattr(importlib.import_module(module), attr)
        return cls(arg, **options) if with_arg else cls(**options)

    return factory


register_role("planner", "none", _lazy("autoresearch.agents.planner_none", "NonePlanner"))
register_role("coder", "none", _lazy("autoresearch.agents.coders.none", "NoneCoder"))
register_role("coder", "patch", _lazy("autoresearch.agents.coders.patch", "PatchCoder", with_arg=True), arg="FILE")
register_role("coder", "cmd", _lazy("autoresearch.agents.coders.command", "CommandCoder", with_arg=True), arg="PATH")
for _agent in ("claude", "codex", "aider"):
    register_role("coder", _agent, lambda arg, _a=_agent, **options: _cli_agent(_a, **options))
register_role("judge", "rules", _lazy("autoresearch.agents.judge_rules", "RulesJudge"))
register_role("analyzer", "rules", _lazy("autoresearch.agents.analyzer_rules", "RulesAnalyzer"))
register_role("reviser", "none", _lazy("autoresearch.agents.reviser_none", "NoneReviser"))


def _cli_agent(agent: str, **options: Any) -> Coder:
    mod = importlib.import_module("autoresearch.agents.coders.cli_agents")
    return mod.CliAgentCoder(agent, **options)


ROLE_SPECS: dict[str, list[str]] = {role: role_forms(role) for role in ROLES}
"""role -> its valid spec forms at import time (for --help and docs)."""

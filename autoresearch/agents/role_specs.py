"""Role specs: the strings `research run --planner/--coder/--judge/--analyzer/--reviser` take, resolved to role objects.

A spec is a bare name (`none`, `rules`, `claude`) or `name:ARG` (`patch:FILE`, `cmd:PATH`, and for every role the
language-model backends `openai:MODEL[@URL]`, `anthropic:MODEL`, `litellm:MODEL`, `replay:FILE`, `scripted:FILE`).
Each role has a table name -> (form, factory); `register_role` adds a row, so a new kind of role plugs in without
touching the resolver. An unknown spec is ONE line listing the valid forms. Implementations are imported when
resolved (a coder's module is not loaded for `--planner none`, no LLM SDK for the rule-based roles). A factory
registered with `wants_env=True` (the LLM roles) gets the run's `AgentEnv` (budgets, transcript, workspace) as `env=`;
the others never see it. `resolve_specs` applies `research run --agent SPEC` to every role not given explicitly.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autoresearch.agents.roles import Analyzer, Coder, Judge, Planner, Reviser
from autoresearch.errors import ConfigError

__all__ = ["ROLE_SPECS", "ROLES", "DEFAULT_SPECS", "LLM_SCHEMES", "register_role", "make_planner", "make_coder",
           "make_judge", "make_analyzer", "make_reviser", "make_role", "role_forms", "resolve_specs", "is_llm_spec"]

ROLES = ("planner", "coder", "judge", "analyzer", "reviser")
DEFAULT_SPECS: dict[str, str] = {"planner": "none", "coder": "none", "judge": "rules", "analyzer": "rules",
                                 "reviser": "none"}
"""Each role's spec when neither its own option nor `--agent` gives one (no language model anywhere)."""
LLM_SCHEMES: dict[str, str] = {"openai": "MODEL[@URL]", "anthropic": "MODEL", "litellm": "MODEL",
                               "replay": "FILE", "scripted": "FILE"}
"""The language-model backends every role takes (agents/llm/specs.py), with how their argument is written."""


@dataclass(frozen=True)
class _Entry:
    form: str
    """how the spec is written, e.g. `patch:FILE`."""
    factory: Callable[..., Any]
    """factory(arg, **options) -> the role object; arg is "" for a bare name."""
    takes_arg: bool
    wants_env: bool = False
    """the factory takes `env=` (an AgentEnv: the LLM roles)."""


_TABLE: dict[str, dict[str, _Entry]] = {role: {} for role in ROLES}


def register_role(role: str, name: str, factory: Callable[..., Any], *, arg: str = "", wants_env: bool = False) -> None:
    """Add the spec `name` (or `name:ARG` when `arg` names the argument, e.g. "FILE") to `role`'s table;
    `factory(arg_value, **options)` builds the role object (with `env=` too when `wants_env`)."""
    if role not in _TABLE:
        raise ConfigError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    _TABLE[role][name] = _Entry(f"{name}:{arg}" if arg else name, factory, bool(arg), wants_env)


def role_forms(role: str) -> list[str]:
    """The valid spec forms of `role`, in registration order."""
    return [e.form for e in _TABLE[role].values()]


def is_llm_spec(spec: str) -> bool:
    """Whether `spec` names a language-model backend (`openai:...`, `scripted:...`): such a role needs an AgentEnv."""
    return str(spec).strip().partition(":")[0].strip() in LLM_SCHEMES


def resolve_specs(given: dict[str, str | None], agent: str = "") -> dict[str, str]:
    """Every role's spec: its own (`--planner ...`) when given, else `agent` (`--agent SPEC`) when set, else the
    rule-based default (DEFAULT_SPECS). `agent` must be a language-model spec (ConfigError otherwise)."""
    agent = (agent or "").strip()
    if agent and not is_llm_spec(agent):
        forms = ", ".join(f"{k}:{v}" for k, v in LLM_SCHEMES.items())
        raise ConfigError(f"--agent {agent!r} is not a language-model spec; use one of: {forms}")
    unknown = sorted(set(given) - set(ROLES))
    if unknown:
        raise ConfigError(f"unknown role(s) {', '.join(unknown)}; use {', '.join(ROLES)}")
    out = {}
    for role in ROLES:
        own = (given.get(role) or "").strip()
        out[role] = own or agent or DEFAULT_SPECS[role]
    return out


def make_role(role: str, spec: str, *, env: Any = None, **options: Any) -> Any:
    """The `role` object of `spec`; `env` (an AgentEnv) goes only to the factories that want it (the LLM roles),
    which make a standalone one (no workspace, no limits, no transcript) when it is None."""
    if role not in _TABLE:
        raise ConfigError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    return _make(role, spec, options, env)


def _make(role: str, spec: str, options: dict[str, Any], env: Any = None) -> Any:
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
    if entry.wants_env:
        if env is None:
            from autoresearch.agents.llm.session import AgentEnv

            env = AgentEnv.standalone()
        return entry.factory(arg.strip(), env=env, **options)
    return entry.factory(arg.strip(), **options)


def make_planner(spec: str = "none", *, env: Any = None, **options: Any) -> Planner:
    """The planner of `spec` (`none`: the flag space with optuna TPE, agents/planner_none.py; an LLM spec:
    agents/llm_planner.py)."""
    return _make("planner", spec, options, env)


def make_coder(spec: str = "none", *, env: Any = None, **options: Any) -> Coder:
    """The coder of `spec`: `none` (no edit: the idea is an existing flag), `patch:FILE`, `cmd:PATH`, `claude`,
    `codex`, `aider` (agents/coders/), or an LLM spec (SEARCH/REPLACE edits, agents/coders/llm_coder.py)."""
    return _make("coder", spec, options, env)


def make_judge(spec: str = "rules", *, env: Any = None, **options: Any) -> Judge:
    """The judge of `spec` (`rules`: agents/judge_rules.py; an LLM spec: agents/llm_judge.py, rules first)."""
    return _make("judge", spec, options, env)


def make_analyzer(spec: str = "rules", *, env: Any = None, **options: Any) -> Analyzer:
    """The analyzer of `spec` (`rules`: agents/analyzer_rules.py; an LLM spec: agents/llm_analyzer.py)."""
    return _make("analyzer", spec, options, env)


def make_reviser(spec: str = "none", *, env: Any = None, **options: Any) -> Reviser:
    """The reviser of `spec` (`none`: agents/reviser_none.py; an LLM spec: agents/llm_reviser.py)."""
    return _make("reviser", spec, options, env)


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


_LLM_CLASSES = {"planner": ("autoresearch.agents.llm_planner", "LLMPlanner"),
                "coder": ("autoresearch.agents.coders.llm_coder", "LLMCoder"),
                "judge": ("autoresearch.agents.llm_judge", "LLMJudge"),
                "analyzer": ("autoresearch.agents.llm_analyzer", "LLMAnalyzer"),
                "reviser": ("autoresearch.agents.llm_reviser", "LLMReviser")}


def _llm_role(role: str, scheme: str) -> Callable[..., Any]:
    """A factory: the LLM class of `role` on the backend `scheme:ARG` (the class makes the backend, lazily)."""
    module, attr = _LLM_CLASSES[role]

    def factory(arg: str, *, env: Any, **options: Any) -> Any:
        cls = getattr(importlib.import_module(module), attr)
        return cls(f"{scheme}:{arg}", env=env, **options)

    return factory


for _role in ROLES:
    for _scheme, _arg in LLM_SCHEMES.items():
        register_role(_role, _scheme, _llm_role(_role, _scheme), arg=_arg, wants_env=True)


ROLE_SPECS: dict[str, list[str]] = {role: role_forms(role) for role in ROLES}
"""role -> its valid spec forms at import time (for --help and docs)."""

"""Budgets of the LLM roles: dollars, tokens, calls and seconds, per run, per idea and per role, checked BEFORE each
call.

`BudgetBook.check` is called by the session (session.py) with a worst-case estimate of the next call (prompt
characters / 4 + max_tokens tokens; dollars from the backend's price) and raises BudgetError when spent + estimate
would pass a limit, so the call that would exceed a budget is never made. `charge` adds what a call really cost.
The transcript (transcript.py) is the only record of what was spent: after a resume `load` rebuilds the book from it.
`seconds` is the wall-clock spent inside LLM calls (retries and back-off included), not the run's whole wall-clock.
A dollar budget needs a price for every backend it covers: `check_prices` refuses one with an unknown price at start.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from autoresearch.errors import BudgetError, ConfigError

if TYPE_CHECKING:
    from autoresearch.agents.llm.backend import Backend, LLMReply, LLMRequest, Price

__all__ = ["Limits", "Spend", "BudgetBook", "check_prices", "estimate", "idea_of", "QUANTITIES"]

QUANTITIES = ("dollars", "tokens", "calls", "seconds")
"""the quantities a budget limits, in the order they are checked."""

_FLAG = {"dollars": "--budget-dollars", "tokens": "--budget-tokens", "calls": "--budget-calls"}


@dataclass(frozen=True)
class Limits:
    """Limits of one budget scope; None = no limit."""

    dollars: float | None = None
    """USD (prompt + completion at the backend's price)."""
    tokens: int | None = None
    """prompt + completion tokens."""
    calls: int | None = None
    """requests made (each structured re-ask and each failed request counts)."""
    seconds: float | None = None
    """wall-clock seconds spent inside LLM calls."""

    def __post_init__(self) -> None:
        for name in QUANTITIES:
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or v != v or v < 0:
                raise ConfigError(f"budget `{name}` must be a number >= 0 (or null for no limit), got {v!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "budget") -> Limits:
        """Limits from a mapping such as workspace.yaml `agents.budgets.run`; an unknown key is a ConfigError."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be a mapping of {', '.join(QUANTITIES)}, got {data!r:.60}")
        unknown = sorted(set(data) - set(QUANTITIES))
        if unknown:
            raise ConfigError(f"{where} has unknown key(s) {', '.join(map(str, unknown))}; "
                              f"use {', '.join(QUANTITIES)}")
        try:
            return cls(**dict(data))
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None

    def is_unlimited(self) -> bool:
        return all(getattr(self, q) is None for q in QUANTITIES)

    def to_dict(self) -> dict[str, Any]:
        return {q: getattr(self, q) for q in QUANTITIES if getattr(self, q) is not None}


@dataclass
class Spend:
    """What one scope has spent."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    dollars: float = 0.0
    """the sum of the calls whose cost is known."""
    seconds: float = 0.0
    unknown_cost_calls: int = 0
    """calls whose cost is unknown (no price, or no usage reported): `dollars` is a lower bound when > 0."""

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def used(self, quantity: str) -> float:
        """The spent amount of one of QUANTITIES."""
        return {"dollars": self.dollars, "tokens": self.tokens, "calls": self.calls, "seconds": self.seconds}[quantity]

    def add(self, prompt_tokens: int, completion_tokens: int, cost: float | None, seconds: float) -> None:
        self.calls += 1
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.seconds += seconds
        if cost is None:
            self.unknown_cost_calls += 1
        else:
            self.dollars += cost

    def add_record(self, record: Mapping[str, Any]) -> None:
        """Add one transcript record (transcript.py)."""
        usage = record.get("usage") or {}
        cost = record.get("cost_usd")
        self.add(int(usage.get("prompt", 0)), int(usage.get("completion", 0)),
                 None if cost is None else float(cost), float(record.get("latency_s") or 0.0))

    def line(self) -> str:
        """`3 calls, 1,234 tokens, $0.0021` (`>= $...` when some costs are unknown)."""
        dollars = f"${self.dollars:.4f}" if not self.unknown_cost_calls else f">= ${self.dollars:.4f}"
        return f"{self.calls} calls, {self.tokens:,} tokens, {dollars}"

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["tokens"] = self.tokens
        return d


def idea_of(version: str) -> str:
    """The idea name of a version label `<name>/v<k>` ("" for "")."""
    return version.rsplit("/", 1)[0] if "/" in version else version


def estimate(request: LLMRequest, price: Price | None) -> tuple[int, float | None]:
    """Worst-case (tokens, dollars) of a request before it is sent: prompt characters / 4 (messages, tools, schema)
    plus the whole max_tokens; dollars None when the price is unknown."""
    chars = sum(len(m.get("content", "")) + 8 for m in request.messages)
    for t in request.tools:
        chars += len(t.name) + len(t.description) + len(json.dumps(t.parameters))
    if request.schema is not None:
        chars += len(json.dumps(request.schema))
    prompt = chars // 4 + 1
    tokens = prompt + request.max_tokens
    if price is None:
        return tokens, None
    return tokens, (prompt * price.input_per_mtok + request.max_tokens * price.output_per_mtok) / 1e6


def _fix(scope: str, name: str, quantity: str) -> str:
    key = {"run": "run", "idea": "idea", "role": f"roles.{name}"}[scope]
    yaml = f"workspace.yaml agents.budgets.{key}.{quantity}"
    if scope == "run" and quantity in _FLAG:
        return f"raise {_FLAG[quantity]} or {yaml}"
    return f"raise {yaml}"


def _fmt(quantity: str, v: float) -> str:
    if quantity == "dollars":
        return f"${v:.4f}"
    if quantity == "seconds":
        return f"{v:.1f} s"
    return f"{int(v):,}"


class BudgetBook:
    """Limits and spend of the run, of each idea and of each role; the session checks before and charges after every
    call. Idea scopes are keyed by the idea name of the version label (`<name>/v<k>` -> `<name>`). Charging is
    thread-safe; calls made concurrently are each checked against the spend before any of them was charged."""

    def __init__(self, run: Limits | None = None, idea: Limits | None = None,
                 roles: Mapping[str, Limits] | None = None) -> None:
        self.run_limits = run or Limits()
        self.idea_limits = idea or Limits()
        """the same limits apply to each idea separately."""
        self.role_limits: dict[str, Limits] = dict(roles or {})
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self._run = Spend()
        self._ideas: dict[str, Spend] = {}
        self._roles: dict[str, Spend] = {}

    # --- reading
    def spend(self, scope: str = "run", name: str = "") -> Spend:
        """What `run`, `idea` NAME or `role` NAME has spent (a copy)."""
        if scope == "run":
            s = self._run
        elif scope == "idea":
            s = self._ideas.get(name, Spend())
        elif scope == "role":
            s = self._roles.get(name, Spend())
        else:
            raise ValueError(f"budget scope must be run, idea or role, got {scope!r}")
        return Spend(**{f.name: getattr(s, f.name) for f in fields(s)})

    def roles(self) -> dict[str, Spend]:
        """Spend per role, in the order roles first spent."""
        return {r: self.spend("role", r) for r in self._roles}

    def ideas(self) -> dict[str, Spend]:
        return {i: self.spend("idea", i) for i in self._ideas}

    def has_dollar_limit(self, role: str) -> bool:
        """Whether a dollar budget covers calls of `role`."""
        lim = self.role_limits.get(role)
        return (self.run_limits.dollars is not None or self.idea_limits.dollars is not None
                or (lim is not None and lim.dollars is not None))

    def _scopes(self, role: str, version: str) -> list[tuple[str, str, Limits, Spend]]:
        out = [("run", "", self.run_limits, self._run)]
        idea = idea_of(version)
        if idea:
            out.append(("idea", idea, self.idea_limits, self._ideas.get(idea, Spend())))
        if role in self.role_limits:
            out.append(("role", role, self.role_limits[role], self._roles.get(role, Spend())))
        return out

    # --- before a call
    def check(self, role: str, version: str, estimate_tokens: int, estimate_dollars: float | None) -> None:
        """Raise BudgetError when the next call (its worst-case estimate) would pass a limit of the run, the version's
        idea or the role."""
        for scope, name, lim, spent in self._scopes(role, version):
            label = "run" if scope == "run" else f"{scope} {name}"
            for q in QUANTITIES:
                limit = getattr(lim, q)
                if limit is None:
                    continue
                used = spent.used(q)
                if q == "dollars" and estimate_dollars is None:
                    raise BudgetError(f"budget {label}: the {role} backend's price is unknown, so its dollar limit "
                                      f"{_fmt(q, limit)} cannot be kept; set workspace.yaml agents.prices.<model>: "
                                      "{input: USD/1M, output: USD/1M}, or use --budget-tokens")
                extra = {"dollars": estimate_dollars or 0.0, "tokens": estimate_tokens, "calls": 1, "seconds": 0.0}[q]
                over = used + extra > limit if q != "seconds" else used >= limit
                if over:
                    est = {"dollars": f" + this call's worst case {_fmt(q, extra)}",
                           "tokens": f" + this call's worst case {_fmt(q, extra)}", "calls": " + this call"}.get(q, "")
                    raise BudgetError(f"budget {label}: {q} spent {_fmt(q, used)}{est} would pass the limit "
                                      f"{_fmt(q, limit)} (before a {role} call); {_fix(scope, name, q)}")

    # --- after a call
    def charge(self, role: str, version: str, reply: LLMReply | None, *, seconds: float | None = None,
               failed_cost: float | None = None) -> None:
        """Add one call: a reply (its usage, cost and latency), or None for a call that failed (`seconds` it took;
        its tokens are unknown, its cost is `failed_cost`: None = unknown, 0.0 for a free backend)."""
        if reply is None:
            args: tuple[int, int, float | None, float] = (0, 0, failed_cost, seconds or 0.0)
        else:
            u = reply.usage
            args = (u.prompt_tokens if u else 0, u.completion_tokens if u else 0, reply.cost_usd,
                    reply.latency_s if seconds is None else seconds)
        self._add(role, version, *args)

    def _add(self, role: str, version: str, prompt: int, completion: int, cost: float | None, secs: float) -> None:
        with self._lock:
            self._run.add(prompt, completion, cost, secs)
            idea = idea_of(version)
            if idea:
                self._ideas.setdefault(idea, Spend()).add(prompt, completion, cost, secs)
            self._roles.setdefault(role, Spend()).add(prompt, completion, cost, secs)

    def load(self, records: Iterable[Mapping[str, Any]], run: int | None = None) -> None:
        """Rebuild the spend from transcript records (transcript.read_transcript), replacing what the book held;
        `run` = count only that run's records (None = all)."""
        self.reset()
        for r in records:
            if run is not None and r.get("run") != run:
                continue
            usage = r.get("usage") or {}
            cost = r.get("cost_usd")
            self._add(str(r.get("role", "")), str(r.get("version") or ""), int(usage.get("prompt", 0)),
                      int(usage.get("completion", 0)), None if cost is None else float(cost),
                      float(r.get("latency_s") or 0.0))


def check_prices(book: BudgetBook, backends: Mapping[str, Backend]) -> None:
    """At the start of a run: a dollar budget covering a role whose backend has no price is a ConfigError."""
    for role, backend in backends.items():
        if backend is None or not book.has_dollar_limit(role) or backend.price is not None:
            continue
        raise ConfigError(f"a dollar budget is set but the price of {backend.spec} (the {role} backend, model "
                          f"{backend.model}) is unknown; set workspace.yaml agents.prices.{backend.model}: "
                          "{input: USD/1M, output: USD/1M}, or use --budget-tokens")

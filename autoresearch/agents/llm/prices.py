"""What a model costs: USD per million tokens (prompt, completion) for a handful of well-known models, and the
lookup every backend uses (`price_for`).

The order is: the workspace's own prices (`workspace.yaml agents.prices.<model>: {input, output}`) first, then a
server on this machine (free), scripted/replay (free), then the table below, else None — unknown, and a dollar budget
with such a backend is refused at start (budget.check_prices). The table applies to the official endpoints only (an
`openai:` spec with no @URL or @https://api.openai.com/..., `anthropic:`, and `litellm:` model names): a proxy or a
third-party server serving the same model name may bill differently. Prices change; each entry says where and when it
was read, and a workspace override always wins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlparse

from autoresearch.agents.llm.backend import Price

__all__ = ["PRICES", "price_for", "lookup_price", "is_local_url"]

_OPENAI = "https://openai.com/api/pricing (standard tier; as tabulated 2026-05-07)"
_ANTHROPIC = "https://docs.anthropic.com/en/docs/about-claude/pricing (base input/output; as read 2026-03-21)"

PRICES: dict[str, Price] = {
    "gpt-4o": Price(2.50, 10.00, _OPENAI),
    "gpt-4o-mini": Price(0.15, 0.60, _OPENAI),
    "gpt-4.1": Price(2.00, 8.00, _OPENAI),
    "gpt-4.1-mini": Price(0.40, 1.60, _OPENAI),
    "gpt-4.1-nano": Price(0.10, 0.40, _OPENAI),
    "claude-opus-4-5": Price(5.00, 25.00, _ANTHROPIC),
    "claude-opus-4-1": Price(15.00, 75.00, _ANTHROPIC),
    "claude-sonnet-4-5": Price(3.00, 15.00, _ANTHROPIC),
    "claude-sonnet-4": Price(3.00, 15.00, _ANTHROPIC),
    "claude-haiku-4-5": Price(1.00, 5.00, _ANTHROPIC),
    "claude-3-5-haiku": Price(0.80, 4.00, _ANTHROPIC),
}
"""model name -> price; a dated snapshot (`gpt-4o-2024-08-06`, `claude-sonnet-4-5-20250929`) or `-latest` alias
resolves to its family."""

_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "0.0.0.0")
_FREE = ("scripted", "replay")


def lookup_price(model: str, table: Mapping[str, Price] = PRICES) -> Price | None:
    """`model`'s entry in `table`: the exact name, else the name without a date-snapshot / `-latest` suffix."""
    if model in table:
        return table[model]
    base = _SNAPSHOT.sub("", model)
    return table.get(base)


def is_local_url(url: str | None) -> bool:
    """True for a server on this machine (127.0.0.0/8, localhost, ::1)."""
    if not url:
        return False
    host = (urlparse(url).hostname or "").lower()
    return host in _LOCAL_HOSTS or host.startswith("127.")


def _official(scheme: str, base_url: str | None) -> bool:
    if scheme == "openai":
        return base_url is None or urlparse(base_url).hostname == "api.openai.com"
    return scheme in ("anthropic", "litellm")


def price_for(scheme: str, model: str, base_url: str | None = None,
              overrides: Mapping[str, Price] | None = None) -> Price | None:
    """The price of `model` behind `scheme` (openai | anthropic | litellm | replay | scripted) at `base_url`; None when
    unknown. `overrides` (workspace.yaml agents.prices) are looked up by model name first."""
    if overrides:
        hit = lookup_price(model, overrides)
        if hit is not None:
            return hit
    if scheme in _FREE:
        return Price(0.0, 0.0, scheme)
    if is_local_url(base_url):
        return Price(0.0, 0.0, "local server")
    if not _official(scheme, base_url):
        return None
    name = model.split("/", 1)[1] if scheme == "litellm" and "/" in model else model
    return lookup_price(name)

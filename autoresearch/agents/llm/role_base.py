"""What every LLM role shares: the backend made from its spec, the one LLMSession its calls go through, and its
per-role knobs (workspace.yaml `agents.settings.<role>`: max_tokens, temperature, max_tries).

    class LLMJudge(LLMRole, Judge):
        role = "judge"
        ...
        out = ask_structured(self.session, messages, VerdictOut, **self.knobs(1024))
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = ["LLMRole"]


class LLMRole:
    """Mixin of the LLM roles: `(backend_spec, *, env, backend=None)`; tests pass `backend` (a ScriptedBackend)."""

    role: ClassVar[str] = ""
    """planner | coder | judge | analyzer | reviser: the session's role (budgets, transcripts, scripted answers)."""

    def __init__(self, backend_spec: str, *, env: Any, backend: Any = None) -> None:
        from autoresearch.agents.llm.session import LLMSession

        if backend is None:
            from autoresearch.agents.llm.specs import make_backend

            backend = make_backend(backend_spec, prices=env.prices, timeout_s=getattr(env, "timeout_s", 120.0))
        self.spec = backend_spec  # per instance: the role spec it was made from (the ABCs declare a ClassVar)
        self.env = env
        self.backend = backend
        self.session = LLMSession(env, self.role, backend)

    def knobs(self, max_tokens: int, temperature: float = 0.0) -> dict[str, Any]:
        """ask_structured's max_tokens / temperature / max_tries: env.settings[role] over the role's defaults."""
        s = dict((getattr(self.env, "settings", None) or {}).get(self.role) or {})
        return {"max_tokens": int(s.get("max_tokens", max_tokens)),
                "temperature": float(s.get("temperature", temperature)),
                "max_tries": int(s.get("max_tries", 3))}

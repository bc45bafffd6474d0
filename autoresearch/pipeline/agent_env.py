"""The language-model roles' environment for one run of a workspace: the `AgentEnv` every LLM role shares.

`build_agent_env` turns workspace.yaml `agents:` (budgets per run / idea / role, model prices, judge samples, the
planner's and coder's context budget) and the command line (`--budget-dollars/--budget-tokens/--budget-calls` over
`agents.budgets.run`) into one `agents.llm.session.AgentEnv`: the transcript `DIR/.autoresearch/transcripts.jsonl`,
raw answers of failed structured calls under `DIR/.autoresearch/failed/`, the user's prompt overrides in
`DIR/prompts/<role>.md`, and a `BudgetBook` rebuilt from the transcript (the transcript is the only record of what
was spent, so a resumed run continues counting where it stopped). It is only built when a role is a language model:
a run without one never imports `agents.llm`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autoresearch.agents.llm.session import AgentEnv
    from autoresearch.agents.roles import TaskSpec
    from autoresearch.pipeline.workspace import LLMLimits, Workspace

__all__ = ["TRANSCRIPT", "FAILED_DIR", "PROMPTS_DIR", "build_agent_env", "transcript_path", "run_limits",
           "llm_backends", "read_records"]

TRANSCRIPT = "transcripts.jsonl"
"""under the workspace's `.autoresearch/`."""
FAILED_DIR = "failed"
"""under `.autoresearch/`: the raw answers of a role's structured call that never validated."""
PROMPTS_DIR = "prompts"
"""at the workspace root: `<role>.md` replaces that role's packaged prompt template."""


def transcript_path(ws: Workspace) -> Path:
    return ws.state_dir / TRANSCRIPT


def read_records(ws: Workspace) -> list[dict[str, Any]]:
    """Every transcript record of the workspace ([] when no LLM was ever called); never imports an SDK."""
    path = transcript_path(ws)
    if not path.is_file():
        return []
    from autoresearch.agents.llm.transcript import read_transcript

    return read_transcript(path)


def _limits(lim: LLMLimits) -> Any:
    from autoresearch.agents.llm.budget import Limits

    def limit(v: float | None) -> float | None:  # 0 = no limit, as everywhere in workspace.yaml `budgets`
        return None if not v else v

    return Limits(dollars=limit(lim.dollars), tokens=limit(lim.tokens), calls=limit(lim.calls),  # type: ignore[arg-type]
                  seconds=limit(lim.seconds))


def run_limits(ws: Workspace, *, dollars: float | None = None, tokens: int | None = None,
               calls: int | None = None) -> Any:
    """The run's budget.Limits: workspace.yaml `agents.budgets.run`, each quantity given on the command line winning
    (0 on the command line = no limit)."""
    from autoresearch.agents.llm.budget import Limits

    base = ws.file.agents.budgets.run
    over = {"dollars": dollars, "tokens": tokens, "calls": calls}
    vals = {q: (getattr(base, q) if v is None else v) or None for q, v in over.items()}  # 0 = no limit
    return Limits(dollars=vals["dollars"], tokens=vals["tokens"], calls=vals["calls"], seconds=base.seconds or None)


def build_agent_env(ws: Workspace, *, run: int = 1, dollars: float | None = None, tokens: int | None = None,
                    calls: int | None = None, emit: Callable[[str, dict[str, Any]], None] | None = None,
                    tried: Callable[[], list[TaskSpec]] | None = None) -> AgentEnv:
    """The AgentEnv of run `run` of `ws`, its budget book loaded with that run's spend from the transcript."""
    from autoresearch.agents.llm.backend import Price
    from autoresearch.agents.llm.budget import BudgetBook
    from autoresearch.agents.llm.session import AgentEnv
    from autoresearch.agents.llm.transcript import Transcript

    agents = ws.file.agents
    book = BudgetBook(run_limits(ws, dollars=dollars, tokens=tokens, calls=calls), _limits(agents.budgets.idea),
                      {role: _limits(lim) for role, lim in agents.budgets.roles.items()})
    book.load(read_records(ws), run=run)
    prices = {model: Price(p.input, p.output, "workspace.yaml agents.prices") for model, p in agents.prices.items()}
    log = ws.ideas_dir / "idea_log.md"

    def idea_log() -> str:
        try:
            return log.read_text(encoding="utf-8")
        except OSError:
            return ""

    return AgentEnv(root=ws.root, transcript=Transcript(transcript_path(ws)), book=book,
                    templates_dir=ws.root / PROMPTS_DIR, failed_dir=ws.state_dir / FAILED_DIR,
                    editable=list(ws.file.editable), run=run, idea_log=idea_log, tried=tried or list,
                    emit=emit or (lambda kind, data: None), prices=prices, judge_samples=agents.judge_samples,
                    context_tokens=agents.context_tokens, timeout_s=agents.timeout_s,
                    settings={role: dict(knobs) for role, knobs in agents.settings.items()})


def llm_backends(roles: Any) -> dict[str, Any]:
    """role -> the Backend of each language-model role of `roles` (a pipeline Roles); rule-based roles are left out."""
    from autoresearch.agents.llm.backend import Backend

    out: dict[str, Any] = {}
    for role in ("planner", "coder", "judge", "analyzer", "reviser"):
        obj = getattr(roles, role, None)
        backend = getattr(obj, "backend", None)
        if backend is None:
            backend = getattr(getattr(obj, "session", None), "backend", None)
        if isinstance(backend, Backend):
            out[role] = backend
    return out

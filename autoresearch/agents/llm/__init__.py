"""Language-model backends for the research roles, and what every LLM call goes through: structured outputs,
budgets checked before each call, and transcripts (docs/agents.md).

    backend = make_backend("openai:gpt-4o-mini")            # or openai:MODEL@URL, anthropic:MODEL, scripted:FILE ...
    reply = backend.complete(LLMRequest([{"role": "user", "content": "hi"}], max_tokens=16))
"""

from __future__ import annotations

from autoresearch.agents.llm.anthropic_backend import AnthropicBackend
from autoresearch.agents.llm.backend import Backend, LLMReply, LLMRequest, Price, Tool, ToolCall, Usage
from autoresearch.agents.llm.litellm_backend import LiteLLMBackend
from autoresearch.agents.llm.openai_backend import OpenAIBackend
from autoresearch.agents.llm.prices import PRICES, price_for
from autoresearch.agents.llm.replay import ReplayBackend
from autoresearch.agents.llm.retry import RetryPolicy, TransientError
from autoresearch.agents.llm.scripted import ScriptedBackend
from autoresearch.agents.llm.specs import BACKEND_SCHEMES, is_backend_spec, make_backend

__all__ = ["Backend", "LLMReply", "LLMRequest", "Price", "Tool", "ToolCall", "Usage"]
__all__ += ["RetryPolicy", "TransientError", "ScriptedBackend", "ReplayBackend", "PRICES", "price_for",
            "BACKEND_SCHEMES", "is_backend_spec", "make_backend", "OpenAIBackend", "AnthropicBackend",
            "LiteLLMBackend"]
from autoresearch.agents.llm.budget import BudgetBook, Limits, Spend, check_prices  # noqa: E402
from autoresearch.agents.llm.session import AgentEnv, LLMSession  # noqa: E402
from autoresearch.agents.llm.transcript import Transcript, read_transcript, spend_by  # noqa: E402

__all__ += ["BudgetBook", "Limits", "Spend", "check_prices", "AgentEnv", "LLMSession", "Transcript",
            "read_transcript", "spend_by"]
from autoresearch.agents.llm.extract import extract_json  # noqa: E402
from autoresearch.agents.llm.schemas import (  # noqa: E402
    AnalysisOut,
    EditOut,
    FlagOut,
    PlanOut,
    RevisionOut,
    TaskOut,
    VerdictOut,
    json_schema_for,
    task_from_out,
)
from autoresearch.agents.llm.structured import ask_structured, parse_answer  # noqa: E402

__all__ += ["extract_json", "ask_structured", "parse_answer", "FlagOut", "TaskOut", "PlanOut", "VerdictOut",
            "AnalysisOut", "RevisionOut", "EditOut", "task_from_out", "json_schema_for"]
from autoresearch.agents.llm.role_base import LLMRole  # noqa: E402
from autoresearch.agents.llm.templates import load_template, prompt_messages, render, to_messages  # noqa: E402

__all__ += ["LLMRole", "load_template", "render", "to_messages", "prompt_messages"]

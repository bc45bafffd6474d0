"""LLM transport: chat messages (or a raw prompt) in; text, finish reason, token usage and latency out.

    client = OpenAIClient("gpt-4o-mini")                      # $OPENAI_BASE_URL / $OPENAI_API_KEY
    r = client.chat([{"role": "user", "content": "hi"}], max_tokens=16)
    r.text, r.finish_reason, r.usage.prompt_tokens, r.latency_s

`harness/samplers.py` (OpenAISampler) and the agents layer build on it. `messages.py` holds the data that crosses
the transport, `openai_compat.py` the HTTP call.
"""

from __future__ import annotations

from autoresearch.harness.llm.messages import ROLES, Choice, Message, MessageLike, Response, Usage, as_messages
from autoresearch.harness.llm.openai_compat import DEFAULT_BASE_URL, MAX_API_STOPS, OpenAIClient

__all__ = [
    "ROLES",
    "Choice",
    "Message",
    "MessageLike",
    "Response",
    "Usage",
    "as_messages",
    "DEFAULT_BASE_URL",
    "MAX_API_STOPS",
    "OpenAIClient",
]

"""Client dialects: the wire format a client speaks to tollway, per endpoint.

Every endpoint is served from tollway's canonical request (an OpenAI Chat Completions body), so routing,
holds, budgets, failover and every upstream dialect work unchanged. A client dialect turns its own
request body into that canonical request, and the canonical answer (a chat completion, or a chat SSE
stream as it arrives) back into its own wire format, errors included. The OpenAI chat endpoints have no
client dialect (None): their bytes are the canonical ones, so the chat path does no extra work.
"""

from __future__ import annotations

from tollway.gateway.client_dialects.anthropic_messages import MESSAGES, MESSAGES_COUNT_TOKENS
from tollway.gateway.client_dialects.base import ClientDialect
from tollway.gateway.client_dialects.openai_responses import RESPONSES

CLIENT_DIALECTS: dict[str, ClientDialect] = {MESSAGES.endpoint: MESSAGES,
                                             MESSAGES_COUNT_TOKENS.endpoint: MESSAGES_COUNT_TOKENS,
                                             RESPONSES.endpoint: RESPONSES}

__all__ = ["CLIENT_DIALECTS", "ClientDialect"]

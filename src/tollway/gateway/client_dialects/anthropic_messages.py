"""The Anthropic Messages client dialect: `POST /v1/messages` and `POST /v1/messages/count_tokens`.

The request is translated into the canonical chat request (anthropic_request.py), and the answer back
(anthropic_answer.py), except where the deployment that serves it speaks Messages itself (an Anthropic
upstream: MessagesNative, the same-dialect fast path of native.py); errors take Anthropic's shape,
`{"type": "error", "error": {"type", "message"}}`, with the error type Anthropic gives each status, so the
anthropic SDK raises the exception it would against Anthropic. count_tokens answers from the request
alone with tollway's estimate rule (core/usage.py estimate_tokens over the prompt's text, tool definitions
included): no upstream call.
Source: https://docs.anthropic.com/en/api/errors (retrieved 2026-12-06).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping

import orjson

from tollway.core.errors import GatewayError
from tollway.core.request import ClientRequest, prompt_text
from tollway.core.usage import Usage, estimate_tokens
from tollway.gateway.client_dialects.anthropic_answer import MessagesEventSink, error_event, message_answer
from tollway.gateway.client_dialects.anthropic_request import canonical_request
from tollway.providers.anthropic import native_preamble
from tollway.upstream.translated import refusing

if TYPE_CHECKING:
    from tollway.gateway.exchange import StreamSink
    from tollway.routing.table import RoutedDeployment

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
               403: "permission_error", 404: "not_found_error", 405: "invalid_request_error",
               413: "request_too_large", 429: "rate_limit_error", 500: "api_error", 503: "overloaded_error",
               529: "overloaded_error"}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status) or ("invalid_request_error" if status < 500 else "api_error")


class MessagesNative:
    """/v1/messages to an Anthropic deployment: the client's body with the deployment's model name (a
    Messages body carries no field of tollway's own: unknown fields are refused when it is read), and the
    upstream's answer and events as Anthropic wrote them; the usage of its message_start and message_delta
    is read by the Anthropic dialect's own reader, cache reads and both cache writes included."""

    dialects = frozenset({"anthropic"})
    endpoint = "messages"

    def __init__(self) -> None:
        self.preamble = refusing(native_preamble)

    def payload(self, creq: ClientRequest, dep: "RoutedDeployment") -> bytes:
        return orjson.dumps({**creq.dialect_state, "model": dep.upstream_model})

    def answer(self, creq: ClientRequest, body: bytes) -> bytes:
        return body

    def stream_usage(self, dep: "RoutedDeployment") -> None:
        return None

    def error_event(self, message: str) -> bytes:
        return error_event(message)

    def streamed(self, creq: ClientRequest, reader: object) -> None:
        """Messages keep nothing between requests."""


class AnthropicMessages:
    """The client dialect of one Messages endpoint (the message itself, or count_tokens)."""

    wire_endpoint = "chat"

    def __init__(self, endpoint: str, counts_tokens: bool) -> None:
        self.endpoint = endpoint
        self.counts_tokens = counts_tokens
        self.native: MessagesNative | None = None if counts_tokens else MessagesNative()

    def canonical(self, raw: bytes) -> ClientRequest:
        return canonical_request(raw, needs_max_tokens=not self.counts_tokens)

    def answer(self, completion: bytes, usage: Usage, model: str) -> bytes:
        return message_answer(completion, usage, model)

    def stream_sink(self, sink: "StreamSink", model: str,
                    read_usage: Callable[[Mapping], Usage | None]) -> MessagesEventSink:
        return MessagesEventSink(sink, model, read_usage)

    def error(self, exc: GatewayError, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        body = orjson.dumps({"type": "error", "error": {"type": error_type(exc.status), "message": exc.message}})
        return exc.status, {**headers, **exc.headers, "Content-Type": "application/json"}, body

    def count(self, creq: ClientRequest) -> bytes:
        text = prompt_text(creq)
        tools = creq.body.get("tools")
        tokens = estimate_tokens(text) + (estimate_tokens(orjson.dumps(tools).decode()) if tools else 0)
        return orjson.dumps({"input_tokens": tokens})

    async def prepare(self, creq: ClientRequest, key_id: str) -> None:
        """Messages keep no state between requests (dialect_state is the client's body, for the fast path)."""

    def answered(self, creq: ClientRequest, answer: bytes) -> None:
        """Nothing is kept of a Message."""

    def streamed(self, creq: ClientRequest, translating: MessagesEventSink) -> None:
        """Nothing is kept of a streamed Message."""


MESSAGES = AnthropicMessages("messages", counts_tokens=False)
MESSAGES_COUNT_TOKENS = AnthropicMessages("messages.count_tokens", counts_tokens=True)

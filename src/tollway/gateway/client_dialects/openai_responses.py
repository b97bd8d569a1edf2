"""The OpenAI Responses client dialect: `POST /v1/responses`, translated to and from Chat Completions.

Errors keep OpenAI's shape (the Responses API uses the same error body as Chat Completions). Nothing is
stored, so `GET`/`DELETE /v1/responses/{id}` are not served and `previous_response_id` is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping

from tollway.core.errors import GatewayError
from tollway.core.request import ClientRequest
from tollway.core.usage import Usage
from tollway.gateway.client_dialects.openai_responses_answer import ResponsesEventSink, responses_answer
from tollway.gateway.client_dialects.openai_responses_request import canonical_request

if TYPE_CHECKING:
    from tollway.gateway.exchange import StreamSink


class OpenAIResponses:
    endpoint = "responses"
    wire_endpoint = "chat"
    counts_tokens = False

    def canonical(self, raw: bytes) -> ClientRequest:
        return canonical_request(raw)

    def answer(self, completion: bytes, usage: Usage, model: str) -> bytes:
        return responses_answer(completion, usage, model)

    def stream_sink(self, sink: "StreamSink", model: str,
                    read_usage: Callable[[Mapping], Usage | None]) -> ResponsesEventSink:
        return ResponsesEventSink(sink, model, read_usage)

    def error(self, exc: GatewayError, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        return exc.rendered(headers)

    def count(self, creq: ClientRequest) -> bytes:
        raise NotImplementedError("the Responses endpoint counts no tokens on its own")


RESPONSES = OpenAIResponses()

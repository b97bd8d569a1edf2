"""The OpenAI Responses client dialect: `POST /v1/responses`, translated to and from Chat Completions, or
sent natively to an OpenAI deployment's own Responses API (openai_responses_native.py).

Errors keep OpenAI's shape (the Responses API uses the same error body as Chat Completions). With `store`
(true unless the client says false, as OpenAI's default) each answered response is kept with the caller's
key in the StoredResponses the gateway attaches; `previous_response_id` prepends the stored conversation
(its input and output items) to the new input, and another key's response is not found (404).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

import orjson

from tollway.core.errors import GatewayError
from tollway.core.request import ClientRequest
from tollway.core.usage import Usage
from tollway.gateway.client_dialects.openai_responses_answer import ResponsesEventSink, responses_answer
from tollway.gateway.client_dialects.openai_responses_native import ResponsesNative
from tollway.gateway.client_dialects.openai_responses_request import ResponsesTurn, canonical_request, chat_messages
from tollway.ledger.stored_responses import StoredResponse, StoredResponses

if TYPE_CHECKING:
    from tollway.gateway.exchange import StreamSink


def response_not_found(response_id: str, param: str | None = None) -> GatewayError:
    return GatewayError(404, f"Response with id '{response_id[:80]}' not found.", "invalid_request_error",
                        "response_not_found", param)


class OpenAIResponses:
    endpoint = "responses"
    wire_endpoint = "chat"
    counts_tokens = False

    def __init__(self) -> None:
        self.stored: StoredResponses | None = None  # attached by the gateway that serves this process
        self.native = ResponsesNative(self)  # to an OpenAI upstream: its own Responses API

    def canonical(self, raw: bytes) -> ClientRequest:
        return canonical_request(raw)

    async def prepare(self, creq: ClientRequest, key_id: str) -> None:
        """Once the caller's key is known: prepend the conversation of `previous_response_id`."""
        turn: ResponsesTurn = creq.dialect_state
        turn.key_id = key_id
        if turn.previous_response_id is None:
            return
        record = await self.stored.get(turn.previous_response_id, key_id) if self.stored is not None else None
        if record is None:
            raise response_not_found(turn.previous_response_id, "previous_response_id")
        turn.earlier_items = record.input_items + record.output_items
        messages = creq.body["messages"]
        at = 1 if turn.has_instructions else 0  # instructions are not carried over: the new ones come first
        messages[at:at] = chat_messages(turn.earlier_items)

    def keep(self, creq: ClientRequest, response: dict[str, Any]) -> None:
        """Store an answered response (off the request path: StoredResponses writes it later)."""
        turn: ResponsesTurn = creq.dialect_state
        if not turn.store or self.stored is None:
            return
        self.stored.keep(StoredResponse(response["id"], turn.key_id, response["created_at"],
                                        turn.earlier_items + turn.input_items, response["output"],
                                        response | {"store": True,
                                                    "previous_response_id": turn.previous_response_id}))

    def answer(self, completion: bytes, usage: Usage, model: str) -> bytes:
        return responses_answer(completion, usage, model)

    def answered(self, creq: ClientRequest, body: bytes) -> None:
        self.keep(creq, orjson.loads(body))

    def stream_sink(self, sink: "StreamSink", model: str,
                    read_usage: Callable[[Mapping], Usage | None]) -> ResponsesEventSink:
        return ResponsesEventSink(sink, model, read_usage)

    def streamed(self, creq: ClientRequest, translating: ResponsesEventSink) -> None:
        if translating.final is not None:
            self.keep(creq, translating.final)

    def error(self, exc: GatewayError, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        return exc.rendered(headers)

    def count(self, creq: ClientRequest) -> bytes:
        raise NotImplementedError("the Responses endpoint counts no tokens on its own")


RESPONSES = OpenAIResponses()
_JSON = {"Content-Type": "application/json"}


async def stored_response_answer(method: str, response_id: str, key_id: str) -> tuple[int, dict[str, str], bytes]:
    """GET: the stored response object; DELETE: OpenAI's deletion object. 404 for an id this key has not
    stored (another key's response included: its existence is not revealed)."""
    stored = RESPONSES.stored
    if method == "DELETE":
        if stored is None or not await stored.delete(response_id, key_id):
            raise response_not_found(response_id)
        return 200, _JSON, orjson.dumps({"id": response_id, "object": "response", "deleted": True})
    record = await stored.get(response_id, key_id) if stored is not None else None
    if record is None:
        raise response_not_found(response_id)
    return 200, _JSON, orjson.dumps(record.response)

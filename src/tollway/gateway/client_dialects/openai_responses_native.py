"""/v1/responses to an OpenAI deployment natively: the upstream's own Responses API, as the client wrote it.

tollway keeps its own store on every path: `previous_response_id` is resolved from tollway's stored
responses (the caller's key only) and the whole conversation is sent upstream as `input`, so a plan that
fails over to a deployment of another dialect mid-walk sends that one the same conversation, translated;
an id is never handed to an upstream that may not know it (a response served by another deployment, or
another provider). `store` is forwarded as the client gave it (OpenAI keeps its copy as it would without
tollway); tollway keeps its own, which is what `previous_response_id` and GET /v1/responses/{id} read.
Earlier items sent again are made self-contained: assistant messages as plain assistant turns, function
calls without their item ids, and reasoning items only with their `encrypted_content` (an upstream cannot
take back reasoning it did not keep; a translated response's reasoning was never the upstream's).
Sources: https://platform.openai.com/docs/api-reference/responses/create ,
https://platform.openai.com/docs/guides/conversation-state (retrieved 2026-12-07).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable

import orjson

from tollway.core.request import ClientRequest
from tollway.core.usage import Usage
from tollway.providers.chat_chunks import event_data
from tollway.providers.dialect import ErrorMeaning, WireRefusal
from tollway.providers.failure import classify
from tollway.upstream.translated import refusing

if TYPE_CHECKING:
    from tollway.gateway.client_dialects.openai_responses import OpenAIResponses
    from tollway.gateway.client_dialects.openai_responses_request import ResponsesTurn
    from tollway.routing.table import RoutedDeployment

_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_KEPT_STATUSES = frozenset({"completed", "incomplete"})
_OPENING_EVENTS = frozenset({"response.created", "response.in_progress", "response.queued"})
_EMPTY_PART_EVENTS = frozenset({"response.content_part.added", "response.reasoning_summary_part.added"})
_NO_MEANING = ErrorMeaning()


def native_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored items (input and output) as input an upstream takes without having stored them."""
    out: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("type", "message")
        if kind == "message" and item.get("role") == "assistant" and isinstance(item.get("content"), list):
            text = "".join(p.get("text", "") for p in item["content"] if isinstance(p, dict))
            out.append({"role": "assistant", "content": text})
        elif kind == "function_call":
            out.append({k: v for k, v in item.items() if k not in ("id", "status")})
        elif kind == "reasoning":
            if item.get("encrypted_content"):
                out.append({k: v for k, v in item.items() if k != "status"})
        else:
            out.append(item)
    return out


def native_body(turn: "ResponsesTurn", model: str) -> bytes:
    """The client's body with the upstream model; `previous_response_id` resolved by tollway into `input`."""
    body = {name: value for name, value in turn.body.items() if name != "previous_response_id"}
    body["model"] = model
    if turn.earlier_items:
        body["input"] = [*native_items(turn.earlier_items), *turn.input_items]
    return orjson.dumps(body)


def preamble(event: bytes) -> bool:
    """The Responses events before the first token: the response created or in progress, an output item
    (message or reasoning) added with nothing in it yet, an empty part added. An `error` or
    `response.failed` event there is a WireRefusal, so the walk moves on invisibly."""
    data = event_data(event)
    try:
        parsed = orjson.loads(data) if data else None
    except orjson.JSONDecodeError:
        return False
    if not isinstance(parsed, dict):
        return False
    kind = parsed.get("type")
    if kind in _OPENING_EVENTS:
        return True
    if kind == "response.output_item.added":
        item = parsed.get("item")
        return isinstance(item, dict) and item.get("type") in ("message", "reasoning") and not (
            item.get("content") or item.get("summary"))
    if kind in _EMPTY_PART_EVENTS:
        part = parsed.get("part")
        return isinstance(part, dict) and not part.get("text")
    if kind == "error":
        raise _refusal(parsed)
    if kind == "response.failed":
        response = parsed.get("response")
        error = response.get("error") if isinstance(response, dict) else None
        raise _refusal(error if isinstance(error, Mapping) else {})
    return False


def _refusal(error: Mapping) -> WireRefusal:
    """What an error inside a Responses stream means for failover, read as if it were an error status."""
    code = str(error.get("code") or "")
    status = 429 if "rate_limit" in code else 400 if code.startswith("invalid") else 500
    failure = classify(_NO_MEANING, status, orjson.dumps({"error": {"message": error.get("message") or code,
                                                                     "code": code or None}}))
    return WireRefusal(failure.kind, failure.message, failure.status)


class FinalResponseUsage:
    """A native Responses stream's usage reader: the usage of its final event (completed, incomplete or
    failed: each carries the whole response), and that response, for tollway's store."""

    __slots__ = ("_read", "usage", "reported_prompt", "final")

    def __init__(self, read: Callable[[Mapping], Usage | None]) -> None:
        self._read = read
        self.usage: Usage | None = None
        self.reported_prompt: Usage | None = None
        self.final: dict[str, Any] | None = None

    def observe(self, chunk: Mapping) -> bool:
        if chunk.get("type") not in _FINAL_EVENTS:
            return False
        response = chunk.get("response")
        if not isinstance(response, dict):
            return False
        self.final = response
        usage = self._read(response)
        if usage is None:
            return False
        self.usage = usage
        return True


def error_event(message: str) -> bytes:
    """The Responses stream's `error` event, for a stream cut after its first event."""
    return b"event: error\ndata: " + orjson.dumps({"type": "error", "code": "stream_interrupted",
                                                    "message": message, "param": None}) + b"\n\n"


class ResponsesNative:
    dialects = frozenset({"openai"})
    endpoint = "responses"

    def __init__(self, responses: "OpenAIResponses") -> None:
        self._responses = responses
        self.preamble = refusing(preamble)

    def payload(self, creq: ClientRequest, dep: "RoutedDeployment") -> bytes:
        return native_body(creq.dialect_state, dep.upstream_model)

    def answer(self, creq: ClientRequest, body: bytes) -> bytes:
        """The upstream's response as it is; kept in tollway's store when the client asked for it."""
        if creq.dialect_state.store:
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError:
                return body
            self._keep(creq, parsed)
        return body

    def stream_usage(self, dep: "RoutedDeployment") -> FinalResponseUsage:
        return FinalResponseUsage(dep.dialect.usage_from_body)

    def error_event(self, message: str) -> bytes:
        return error_event(message)

    def streamed(self, creq: ClientRequest, reader: object) -> None:
        if isinstance(reader, FinalResponseUsage) and reader.final is not None:
            self._keep(creq, reader.final)

    def _keep(self, creq: ClientRequest, response: Any) -> None:
        """Keep an answered response (completed or incomplete) whose shape the store can hold."""
        if (isinstance(response, dict) and isinstance(response.get("id"), str)
                and isinstance(response.get("output"), list) and isinstance(response.get("created_at"), int)
                and response.get("status") in _KEPT_STATUSES):
            self._responses.keep(creq, response)

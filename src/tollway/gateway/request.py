"""Parse and check a client request once, at the door.

Validation is hand-written rather than a pydantic model per request: it runs on every request, and the
checks that matter (a model name, messages of the right shape, numbers that are numbers) cost
microseconds this way. Everything else is passed through to the upstream untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from tollway.gateway.errors import bad_request

ENDPOINT_REQUIRED = {"chat": "messages", "completions": "prompt", "embeddings": "input"}


@dataclass(slots=True)
class ClientRequest:
    endpoint: str
    body: dict[str, Any]
    model: str
    stream: bool
    client_wants_usage: bool
    raw_size: int
    features: Any = None  # routing.features.RequestFeatures, made on first use

    @property
    def max_tokens(self) -> int | None:
        value = self.body.get("max_completion_tokens", self.body.get("max_tokens"))
        return value if isinstance(value, int) else None


def parse_request(endpoint: str, raw: bytes) -> ClientRequest:
    """Decode and check the body; raises GatewayError(400) with a message naming the field."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"Request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request("Request body must be a JSON object.", code="invalid_json")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required and must be a non-empty string.", "model")
    required = ENDPOINT_REQUIRED[endpoint]
    if required not in body:
        raise bad_request(f"'{required}' is required.", required)
    if endpoint == "chat":
        _check_messages(body["messages"])
    _check_numbers(body)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be true or false.", "stream")
    if stream and endpoint == "embeddings":
        raise bad_request("Embeddings cannot be streamed.", "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise bad_request("'stream_options' must be an object.", "stream_options")
    wants_usage = bool(options and options.get("include_usage"))
    return ClientRequest(endpoint, body, model, stream, wants_usage, len(raw))


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array.", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad_request(f"messages[{i}] must be an object with 'role' and 'content'.", f"messages[{i}]")
        role = message.get("role")
        if not isinstance(role, str):
            raise bad_request(f"messages[{i}].role is required and must be a string.", f"messages[{i}].role")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise bad_request(f"messages[{i}].content must be a string or an array of content parts.",
                              f"messages[{i}].content")


def _check_numbers(body: dict[str, Any]) -> None:
    for name in ("max_tokens", "max_completion_tokens", "n"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise bad_request(f"'{name}' must be a positive integer, got {value!r}.", name)
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise bad_request(f"'{name}' must be a number, got {value!r}.", name)


def prompt_text(request: ClientRequest) -> str:
    """The request's text, for estimating usage when an upstream reports none."""
    body = request.body
    if request.endpoint == "chat":
        parts: list[str] = []
        for message in body["messages"]:
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
        return "\n".join(parts)
    value = body.get("prompt" if request.endpoint == "completions" else "input")
    return value if isinstance(value, str) else " ".join(str(v) for v in value) if isinstance(value, list) else ""

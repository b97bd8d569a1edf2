"""Parse and check a client request once, at the door.

Validation is hand-written rather than a pydantic model per request: it runs on every request, and the
checks that matter (a model name, messages of the right shape, numbers that are numbers) cost
microseconds this way. Everything else is passed through to the upstream untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from tollway.core.errors import bad_request

ENDPOINT_REQUIRED = {"chat": "messages", "completions": "prompt", "embeddings": "input"}
# One nesting limit for reading and forwarding: orjson reads ~1024 levels but writes only 255, so a body
# between the two would parse and then fail on its way upstream. No real request comes near it.
MAX_JSON_DEPTH = 128
# Numeric fields as OpenAI's API bounds them (its reference: n 1-128, top_logprobs 0-20, logprobs 0-5,
# best_of 1-20, temperature 0-2, top_p 0-1, penalties -2..2); token counts to a signed 32-bit integer,
# beyond any model's output and within what a budget hold can price exactly.
MAX_TOKENS_BOUND = 2**31 - 1
INT_BOUNDS = {"max_tokens": (1, MAX_TOKENS_BOUND), "max_completion_tokens": (1, MAX_TOKENS_BOUND), "n": (1, 128),
              "top_logprobs": (0, 20), "best_of": (1, 20), "dimensions": (1, 65536), "seed": (-2**63, 2**63 - 1)}
NUMBER_BOUNDS = {"temperature": (0, 2), "top_p": (0, 1), "presence_penalty": (-2, 2), "frequency_penalty": (-2, 2)}
# Every bounded name, in the order a body with several bad ones is reported: most bodies carry one or two
# of them, so a request intersects its keys with this set and checks only those.
_BOUNDED_ORDER = (*INT_BOUNDS, *NUMBER_BOUNDS, "logprobs")
_BOUNDED = frozenset(_BOUNDED_ORDER)


@dataclass(slots=True)
class ClientRequest:
    endpoint: str
    body: dict[str, Any]
    model: str
    stream: bool
    client_wants_usage: bool
    raw_size: int
    features: Any = None  # routing.features.RequestFeatures, made on first use
    dialect_state: Any = None  # what a client dialect keeps for its answer (a Responses turn to store)

    @property
    def max_tokens(self) -> int | None:
        value = self.body.get("max_completion_tokens", self.body.get("max_tokens"))
        return value if isinstance(value, int) else None


def json_object(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object within the nesting limit, for every client dialect; else a 400."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"Request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request("Request body must be a JSON object.", code="invalid_json")
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _depth_over(body, MAX_JSON_DEPTH):
        raise bad_request(f"Request body nests deeper than {MAX_JSON_DEPTH} levels of arrays and objects.",
                          code="json_too_deep")
    return body


def parse_request(endpoint: str, raw: bytes) -> ClientRequest:
    """Decode and check the body; raises GatewayError(400) with a message naming the field."""
    body = json_object(raw)
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
    present = _BOUNDED.intersection(body)
    if not present:
        return
    for name in _BOUNDED_ORDER if len(present) > 1 else present:
        value = body.get(name)
        if value is not None:
            _check_number(name, value)


def _check_number(name: str, value: Any) -> None:
    ints = INT_BOUNDS.get(name)
    if ints is not None:
        low, high = ints
        if type(value) is not int or value < low:
            kind = "a positive integer" if low == 1 else f"an integer from {low} to {high}"
            raise bad_request(f"'{name}' must be {kind}, got {_shown(value)}.", name)
        if value > high:
            raise bad_request(f"'{name}' must be at most {high}, got {_shown(value)}.", name)
        return
    numbers = NUMBER_BOUNDS.get(name)
    if numbers is not None:
        low, high = numbers
        if type(value) not in (int, float):
            raise bad_request(f"'{name}' must be a number, got {_shown(value)}.", name)
        if not low <= value <= high:
            raise bad_request(f"'{name}' must be from {low} to {high}, got {_shown(value)}.", name)
        return
    # logprobs: a boolean for chat, a count 0-5 for completions
    if type(value) is not bool and (type(value) is not int or not 0 <= value <= 5):
        raise bad_request(f"'logprobs' must be true/false (chat) or an integer from 0 to 5 (completions), got "
                          f"{_shown(value)}.", "logprobs")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _depth_over(value: Any, limit: int) -> bool:
    """Whether `value` nests arrays and objects more than `limit` deep (iterative: no recursion limit)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if type(item) is dict else item
        for child in children:
            if type(child) in (dict, list):
                stack.append((child, depth + 1))
    return False


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

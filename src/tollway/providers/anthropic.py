"""Anthropic Messages: auth, version header, usage, error meaning and the transforms to and from it.

Anthropic's `input_tokens` EXCLUDES cache reads and writes (everyone else's prompt count includes
them), a 1-hour cache write is billed apart from a 5-minute one, and a stream splits its usage:
message_start carries the prompt side, message_delta the cumulative output. The gateway calls it from
the Chat Completions endpoint through its transforms (anthropic_request.py, anthropic_response.py);
translated answers keep Anthropic's own usage fields, so the readers below read a native body or a
translated one alike. Errors: 529 overloaded (retry elsewhere), 402 billing_error (out of funds),
429 rate limit, 413 request too large (https://docs.anthropic.com/en/api/errors, retrieved 2026-12-06).
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from tollway.core.usage import CacheSplitUsage, Usage
from tollway.providers.anthropic_request import messages_request
from tollway.providers.anthropic_response import MessagesStream, chat_completion, refusal
from tollway.providers.chat_chunks import event_data
from tollway.providers.dialect import AuthStyle, Dialect, ErrorMeaning
from tollway.providers.failure import FailureKind
from tollway.providers.usage_fields import EMPTY, count, is_mapping, mapping


def anthropic_usage(usage: Mapping) -> Usage:
    """Anthropic usage: input_tokens EXCLUDES cache reads and writes, so the prompt is the sum of all three."""
    uncached = count(usage.get("input_tokens"))
    read = count(usage.get("cache_read_input_tokens"))
    split = mapping(usage.get("cache_creation"))
    write_5m, write_1h = count(split.get("ephemeral_5m_input_tokens")), count(split.get("ephemeral_1h_input_tokens"))
    written = count(usage.get("cache_creation_input_tokens")) or write_5m + write_1h
    prompt, completion = uncached + read + written, count(usage.get("output_tokens"))
    if write_1h:
        return CacheSplitUsage(prompt_tokens=prompt, cached_tokens=read, cache_write_tokens=written,
                               completion_tokens=completion, cache_write_1h_tokens=min(write_1h, written))
    return Usage(prompt_tokens=prompt, cached_tokens=read, cache_write_tokens=written, completion_tokens=completion)


def usage_from_body(body: Mapping) -> Usage | None:
    """Usage of a non-streamed Messages answer; None when it carries none."""
    if not is_mapping(body):
        return None
    usage = body.get("usage")
    return anthropic_usage(usage) if is_mapping(usage) else None


def usage_from_event(event: Mapping) -> Usage | None:
    """The usage one stream event reports on its own: message_start's prompt side, or a message_delta's
    (or a whole message's) counts. Combine a stream's with merge_stream (or its StreamUsageReader)."""
    if not is_mapping(event):
        return None
    kind = event.get("type")
    if kind == "message_start":
        usage = mapping(event.get("message")).get("usage")
    elif kind in ("message_delta", "message") or kind is None:
        usage = event.get("usage")
    else:
        return None
    return anthropic_usage(usage) if isinstance(usage, Mapping) else None


def merge_stream(start: Usage | None, delta: Mapping) -> Usage:
    """Usage of an Anthropic stream so far: message_start's usage plus a message_delta event (or its usage).

    message_delta counts are cumulative, not increments: its output_tokens replaces the earlier count, and
    the input/cache counts it may repeat (newer API versions) replace message_start's.
    """
    usage = delta.get("usage") if isinstance(delta, Mapping) and delta.get("type") == "message_delta" else delta
    if not isinstance(usage, Mapping):
        usage = EMPTY
    start = start or Usage()
    start_1h = getattr(start, "cache_write_1h_tokens", 0)
    known = {
        "input_tokens": start.uncached_prompt_tokens,
        "cache_read_input_tokens": start.cached_tokens,
        "cache_creation_input_tokens": start.cache_write_tokens,
        "output_tokens": start.completion_tokens,
    }
    merged: dict[str, object] = {key: count(usage[key]) if key in usage else value for key, value in known.items()}
    if "cache_creation" in usage:
        merged["cache_creation"] = usage["cache_creation"]
    elif start_1h:
        merged["cache_creation"] = {"ephemeral_1h_input_tokens": start_1h,
                                    "ephemeral_5m_input_tokens": start.cache_write_tokens - start_1h}
    return anthropic_usage(merged)


class SplitStreamUsage:
    """An Anthropic stream's usage: message_start's prompt side kept apart, merged with each message_delta."""

    __slots__ = ("usage", "reported_prompt")

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.reported_prompt: Usage | None = None

    def observe(self, chunk: Mapping) -> bool:
        if not is_mapping(chunk):
            return False
        kind = chunk.get("type")
        if kind == "message_start":
            self.reported_prompt = usage_from_event(chunk)
            return False
        if kind == "message_delta":
            self.usage = merge_stream(self.reported_prompt, chunk)
            return True
        found = usage_from_event(chunk)
        if found is None:
            return False
        self.usage = found
        return True


_EMPTY_BLOCK_KEYS = ("text", "thinking")


def is_preamble(event: bytes) -> bool:
    """message_start, ping, and the start of a text or thinking block with no text yet: events that come
    before the first token. A tool_use block's start names the tool, which is substance."""
    payload = b"".join(line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:"))
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    kind = parsed.get("type") if isinstance(parsed, dict) else None
    if kind in ("message_start", "ping"):
        return True
    if kind != "content_block_start":
        return False
    block = mapping(parsed.get("content_block"))
    return block.get("type") in _EMPTY_BLOCK_KEYS and not any(map(block.get, _EMPTY_BLOCK_KEYS))


def native_preamble(event: bytes) -> bool:
    """is_preamble for an Anthropic stream relayed to a Messages client as it is (the same-dialect fast
    path): an `error` event before the first token (overloaded, rate limited) raises its WireRefusal, so the
    walk moves on before the client has seen anything, as it does for a translated stream."""
    if b'"error"' in event:
        data = event_data(event)
        try:
            parsed = orjson.loads(data) if data else None
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict) and parsed.get("type") == "error":
            raise refusal(parsed.get("error"))
    return is_preamble(event)


class MessagesTransforms:
    """Chat Completions <-> Anthropic Messages."""

    passthrough = False

    def request(self, endpoint: str, payload: bytes, max_output: int) -> bytes:
        return messages_request(payload, max_output)

    def response(self, endpoint: str, body: bytes) -> bytes:
        return chat_completion(body)

    def stream(self) -> MessagesStream:
        return MessagesStream(anthropic_usage)


DIALECT = Dialect(
    name="anthropic", auth=AuthStyle.X_API_KEY, paths={"chat": "messages", "messages": "messages"},
    usage_from_body=usage_from_body, usage_from_chunk=usage_from_event, stream_usage=SplitStreamUsage,
    errors=ErrorMeaning(messages={"overloaded_error": FailureKind.SERVER}), is_preamble=is_preamble,
    reasoning_field="thinking", default_base_url="https://api.anthropic.com/v1",
    transforms=MessagesTransforms(), version_header="anthropic-version", default_version="2023-06-01",
    forwarded_headers=("anthropic-beta",),
)

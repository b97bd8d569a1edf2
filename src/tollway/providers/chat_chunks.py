"""Writing canonical answers: chat.completion bodies and chat.completion.chunk SSE events.

Translating dialects (Anthropic, Gemini) build their answers here, so every translated stream has the
same shape a Chat Completions client expects: a role chunk, content/reasoning/tool-call deltas, one
chunk with finish_reason, a usage-only chunk (`choices: []`) and `data: [DONE]`. A chunk's fixed
prefix is encoded once per stream; each event costs one orjson.dumps of its delta.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"


class ChunkWriter:
    """The chunk events of one translated stream (id, model and creation time fixed at its start)."""

    __slots__ = ("_head", "_usage_head")

    def __init__(self, stream_id: str, model: str) -> None:
        head = orjson.dumps({"id": stream_id, "object": "chat.completion.chunk", "created": int(time.time()),
                             "model": model})[:-1]
        self._head = b"data: " + head + b',"choices":[{"index":0,"delta":'
        self._usage_head = b"data: " + head + b',"choices":[],"usage":'

    def delta(self, delta: Mapping[str, Any]) -> bytes:
        return self._head + orjson.dumps(delta) + b',"finish_reason":null}]}\n\n'

    def text_delta(self, field: bytes, literal: bytes) -> bytes:
        """A delta of one text field whose value is already a JSON string literal (cut from the upstream's
        event unchanged): no decode, no encode."""
        return self._head + b'{"' + field + b'":' + literal + b'},"finish_reason":null}]}\n\n'

    def finish(self, reason: str) -> bytes:
        return self._head + b'{},"finish_reason":"' + reason.encode() + b'"}]}\n\n'

    def usage(self, usage: Mapping[str, Any]) -> bytes:
        return self._usage_head + orjson.dumps(usage) + b"}\n\n"


def completion(answer_id: str, model: str, message: dict[str, Any], finish_reason: str | None,
               usage: Mapping[str, Any] | None) -> bytes:
    """A non-streamed chat.completion body."""
    body: dict[str, Any] = {"id": answer_id, "object": "chat.completion", "created": int(time.time()),
                            "model": model, "choices": [{"index": 0, "message": message,
                                                         "finish_reason": finish_reason}]}
    if usage is not None:
        body["usage"] = usage
    return orjson.dumps(body)


def event_data(event: bytes) -> bytes:
    """The data of one SSE event (its `data:` lines joined); b"" for an event without data."""
    if event.startswith(b"data:") and b"\n" not in event:
        return event[5:].strip()
    at = event.find(b"\ndata:")  # the usual named event: `event: x` then one data line
    if at >= 0 and event.find(b"\n", at + 1) < 0 and event.startswith(b"event:"):
        return event[at + 6:].strip()
    return b"".join(line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:"))

"""Anthropic Messages answers and streams as Chat Completions answers and chunks.

text blocks -> content; tool_use -> tool_calls (streamed `input_json_delta` -> argument deltas);
thinking -> reasoning_content, with each block's signature kept in `thinking_blocks` (the convention
LiteLLM uses) so a client can hand it back on the next turn; stop reasons mapped to finish reasons.
The usage object keeps Anthropic's own counts (input_tokens without cache, cache reads, 5-minute and
1-hour writes) beside the Chat Completions ones: the dialect's usage reader reads the exact split from
them, and a client sees the counts it knows. An `error` event in a stream becomes a WireRefusal
classified like an error status (529 overloaded moves on before the first token reaches the client).
Source: https://docs.anthropic.com/en/api/messages-streaming (retrieved 2026-12-06).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from tollway.core.usage import Usage
from tollway.providers.chat_chunks import DONE, ChunkWriter, completion, event_data
from tollway.providers.dialect import WireRefusal
from tollway.providers.failure import FailureKind
from tollway.providers.usage_fields import count, mapping

FINISH_REASONS = {"end_turn": "stop", "max_tokens": "length", "tool_use": "tool_calls", "stop_sequence": "stop",
                  "refusal": "content_filter", "pause_turn": "stop", "model_context_window_exceeded": "length"}
_ERROR_KINDS = {"overloaded_error": (FailureKind.SERVER, 529), "api_error": (FailureKind.SERVER, 500),
                "rate_limit_error": (FailureKind.RATE_LIMITED, 429), "billing_error": (FailureKind.OUT_OF_FUNDS, 402),
                "invalid_request_error": (FailureKind.CLIENT_ERROR, 400),
                "request_too_large": (FailureKind.CLIENT_ERROR, 413)}


def chat_usage(usage: Mapping) -> dict[str, Any]:
    """Chat Completions usage for Anthropic's, with Anthropic's own fields kept beside it."""
    uncached, read = count(usage.get("input_tokens")), count(usage.get("cache_read_input_tokens"))
    split = mapping(usage.get("cache_creation"))
    written = (count(usage.get("cache_creation_input_tokens"))
               or count(split.get("ephemeral_5m_input_tokens")) + count(split.get("ephemeral_1h_input_tokens")))
    output = count(usage.get("output_tokens"))
    prompt = uncached + read + written
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output,
                           "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": written},
                           "input_tokens": uncached, "cache_read_input_tokens": read,
                           "cache_creation_input_tokens": written, "output_tokens": output}
    if split:
        out["cache_creation"] = dict(split)
    return out


def chat_completion(body: bytes) -> bytes:
    """A chat.completion for a non-streamed Messages answer."""
    message = orjson.loads(body)
    text: list[str] = []
    reasoning: list[str] = []
    thoughts: list[dict] = []
    calls: list[dict] = []
    for block in message.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text", ""))
        elif kind == "thinking":
            reasoning.append(block.get("thinking", ""))
            thoughts.append(block)
        elif kind == "redacted_thinking":
            thoughts.append(block)
        elif kind == "tool_use":
            calls.append({"id": block.get("id"), "type": "function",
                          "function": {"name": block.get("name"),
                                       "arguments": orjson.dumps(block.get("input", {})).decode()}})
    out: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if reasoning:
        out["reasoning_content"] = "".join(reasoning)
    if thoughts:
        out["thinking_blocks"] = thoughts
    if calls:
        out["tool_calls"] = calls
    usage = message.get("usage")
    return completion(message.get("id", ""), message.get("model", ""), out,
                      FINISH_REASONS.get(message.get("stop_reason"), "stop"),
                      chat_usage(usage) if isinstance(usage, Mapping) else None)


def refusal(error: Any) -> WireRefusal:
    """What an Anthropic error object (in a stream's `error` event) means for failover."""
    error = mapping(error)
    kind, status = _ERROR_KINDS.get(str(error.get("type")), (FailureKind.SERVER, None))
    return WireRefusal(kind, str(error.get("message") or error.get("type") or "upstream error event"), status)


# text and thinking deltas as Anthropic writes them (compact JSON, this key order): their string literal is
# copied into the chat chunk as it is, without parsing the event; any other spelling takes the parsing path
_TEXT_DELTAS = ((b'"delta":{"type":"text_delta","text":', b"content"),
                (b'"delta":{"type":"thinking_delta","thinking":', b"reasoning_content"))
_DELTA_EVENT = b'data: {"type":"content_block_delta",'


def _literal_delta(event: bytes) -> tuple[bytes, bytes] | None:
    """(chat field, JSON string literal) of a compact text or thinking delta event (`event:` line, one
    `data:` line); None otherwise."""
    if not event.endswith(b'"}}'):
        return None
    start = event.find(_DELTA_EVENT)
    if start < 0 or event.find(b"\n", start) >= 0:
        return None
    for marker, field in _TEXT_DELTAS:
        at = event.find(marker, start)
        if at > 0:
            literal = event[at + len(marker):-2]
            return (field, literal) if literal[:1] == b'"' and len(literal) > 1 else None
    return None


_MARK = b'"\x00"'  # a literal no chunk head can hold (orjson writes NUL as \u0000): where the text goes
_QUICK_END = b'"}}\n\n'


class MessagesStream:
    """One Anthropic event stream as Chat Completions chunks. `reported_prompt` is message_start's prompt
    side (read by `read_usage`), kept for the estimate of a stream cut before its final usage.

    The delta events of one content block differ only in their text, so once one has been read by
    `_literal_delta`, the bytes before its literal (`_quick_prefix`) and the chat chunk around it
    (`_quick_head`, `_quick_tail`) are kept: `feed_read` then translates a read holding one such event
    with a prefix test and a quote search, the literal copied between the two."""

    __slots__ = ("_chunks", "_usage", "_tools", "_block_tool", "_stopped", "_read_usage", "reported_prompt",
                 "_quick_prefix", "_quick_head", "_quick_tail")

    def __init__(self, read_usage: Callable[[Mapping], Usage]) -> None:
        self._read_usage = read_usage
        self.reported_prompt: Usage | None = None
        self._chunks: ChunkWriter | None = None
        self._usage: dict[str, Any] = {}
        self._tools = 0          # tool calls opened so far (their chat index)
        self._block_tool: dict[int, int] = {}  # content block index -> tool call index
        self._stopped = False
        self._quick_prefix = b""
        self._quick_head = b""
        self._quick_tail = b""

    def feed_read(self, raw: bytes) -> bytes | None:
        """The chat chunk for a read that is one more text (or thinking) delta of the block whose last delta
        was read (`event: content_block_delta` ... `"text":"..."}}` and a blank line, the text holding no
        quote, escaped or not); None for anything else, which the caller feeds event by event."""
        prefix = self._quick_prefix
        if prefix and raw.startswith(prefix) and raw.endswith(_QUICK_END):
            start, end = len(prefix), len(raw) - len(_QUICK_END)  # end: the closing quote
            if raw.find(b'"', start, end) < 0 and raw[end - 1] != 92:  # not a backslash before the closing quote
                return self._quick_head + raw[start - 1:end + 1] + self._quick_tail
        return None

    def feed_many(self, events: list[bytes]) -> bytes:
        """`feed` over the events of one read (comments and empty ones skipped), the short path inline: a
        fast upstream's read holds dozens."""
        out: list[bytes] = []
        append = out.append
        for event in events:
            if not event or event[:1] == b":":
                continue
            prefix = self._quick_prefix
            if prefix and event.startswith(prefix) and event.endswith(b'"}}'):
                start, end = len(prefix), len(event) - 3
                if event.find(b'"', start, end) < 0 and event[end - 1] != 92:
                    append(self._quick_head + event[start - 1:end + 1] + self._quick_tail)
                    continue
            append(self.feed(event))
        return b"".join(out)

    def feed(self, event: bytes) -> bytes:
        prefix = self._quick_prefix
        if prefix and event.startswith(prefix) and event.endswith(b'"}}'):  # as feed_read, without the blank line
            start, end = len(prefix), len(event) - 3
            if event.find(b'"', start, end) < 0 and event[end - 1] != 92:
                return self._quick_head + event[start - 1:end + 1] + self._quick_tail
        chunks = self._chunks
        if chunks is not None:
            literal = _literal_delta(event)
            if literal is not None:
                field, text = literal
                self._quick_prefix = event[:len(event) - len(text) - 1]
                self._quick_head, self._quick_tail = chunks.text_delta(field, _MARK).split(_MARK)
                return chunks.text_delta(field, text)
        data = event_data(event)
        if not data:
            return b""
        parsed = orjson.loads(data)
        kind = parsed.get("type")
        if kind == "content_block_delta":
            return self._delta(parsed)
        if kind == "message_start":
            message = mapping(parsed.get("message"))
            self._usage = dict(mapping(message.get("usage")))
            self.reported_prompt = self._read_usage(self._usage)
            self._chunks = ChunkWriter(str(message.get("id", "")), str(message.get("model", "")))
            return self._chunks.delta({"role": "assistant", "content": ""})
        if chunks is None:
            if kind == "error":
                raise refusal(parsed.get("error"))
            return b""
        if kind == "content_block_start":
            block = mapping(parsed.get("content_block"))
            if block.get("type") != "tool_use":
                return b""
            index = self._block_tool[parsed.get("index", 0)] = self._tools
            self._tools += 1
            return chunks.delta({"tool_calls": [{"index": index, "id": block.get("id"), "type": "function",
                                                 "function": {"name": block.get("name"), "arguments": ""}}]})
        if kind == "message_delta":
            self._usage.update(mapping(parsed.get("usage")))
            reason = mapping(parsed.get("delta")).get("stop_reason")
            return chunks.finish(FINISH_REASONS.get(reason, "stop")) if reason else b""
        if kind == "message_stop":
            self._stopped = True
            return b""
        if kind == "error":
            raise refusal(parsed.get("error"))
        return b""  # ping, content_block_stop

    def _delta(self, parsed: dict) -> bytes:
        chunks = self._chunks
        if chunks is None:
            return b""
        delta = mapping(parsed.get("delta"))
        kind = delta.get("type")
        if kind == "text_delta":
            return chunks.delta({"content": delta.get("text", "")})
        if kind == "thinking_delta":
            return chunks.delta({"reasoning_content": delta.get("thinking", "")})
        if kind == "input_json_delta":
            index = self._block_tool.get(parsed.get("index", 0), 0)
            return chunks.delta({"tool_calls": [{"index": index,
                                                 "function": {"arguments": delta.get("partial_json", "")}}]})
        if kind == "signature_delta":
            return chunks.delta({"thinking_blocks": [{"type": "thinking", "thinking": "",
                                                      "signature": delta.get("signature", "")}]})
        return b""

    def finish(self) -> bytes:
        if not self._stopped or self._chunks is None:
            return b""  # cut: no usage, no [DONE]; the relay reports the stream as interrupted
        return self._chunks.usage(chat_usage(self._usage)) + DONE

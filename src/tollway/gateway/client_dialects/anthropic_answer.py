"""tollway's canonical answer (a chat completion, or a chat SSE stream) as Anthropic Messages answers.

content -> a text block; reasoning_content -> a thinking block (its signature from `thinking_blocks`, as
the Anthropic upstream translation hands it on); tool_calls -> tool_use blocks (streamed argument
pieces -> `input_json_delta`); finish_reason -> stop_reason. Usage is Anthropic's split: input_tokens
are the prompt tokens neither read from nor written to the cache. A stream is translated as it arrives,
event by event: `message_start` with the first chunk, a content block per kind of delta, and
`message_delta` (stop reason, usage) and `message_stop` once the chat stream ends.
Source: https://docs.anthropic.com/en/api/messages-streaming (retrieved 2026-12-06).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

import orjson

from tollway.core.usage import Usage
from tollway.gateway.client_dialects.chat_stream import ChatStreamTranslator

if TYPE_CHECKING:
    from tollway.gateway.exchange import StreamSink

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}


def message_id(chat_id: Any) -> str:
    text = str(chat_id or "")
    return text if text.startswith("msg_") else "msg_" + text


def message_usage(usage: Usage | None) -> dict[str, int]:
    if usage is None:
        return {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    return {"input_tokens": usage.uncached_prompt_tokens, "output_tokens": usage.completion_tokens,
            "cache_creation_input_tokens": usage.cache_write_tokens, "cache_read_input_tokens": usage.cached_tokens}


def _tool_input(arguments: Any) -> Any:
    try:
        value = orjson.loads(arguments or "{}")
    except (orjson.JSONDecodeError, TypeError):
        return {"_raw_arguments": arguments}  # the model wrote arguments that are not JSON: kept, not dropped
    return value if isinstance(value, dict) else {"_value": value}


def message_answer(completion: bytes, usage: Usage, model: str) -> bytes:
    """The Messages answer for a chat.completion body."""
    parsed = orjson.loads(completion)
    choice = (parsed.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    signature = ""
    for block in message.get("thinking_blocks") or []:
        if isinstance(block, dict) and block.get("type") == "redacted_thinking":
            content.append(block)
        elif isinstance(block, dict) and block.get("signature"):
            signature = block["signature"]
    if message.get("reasoning_content"):
        content.append({"type": "thinking", "thinking": message["reasoning_content"], "signature": signature})
    if message.get("content"):
        text = message["content"]
        if isinstance(text, list):
            text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
                        "input": _tool_input(function.get("arguments"))})
    return orjson.dumps({"id": message_id(parsed.get("id")), "type": "message", "role": "assistant", "model": model,
                         "content": content, "stop_reason": STOP_REASONS.get(choice.get("finish_reason"), "end_turn"),
                         "stop_sequence": None, "usage": message_usage(usage)})


_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'


def event(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def error_event(message: str) -> bytes:
    """Anthropic's `error` event: what ends a stream cut after its first event."""
    return event("error", {"type": "error", "error": {"type": "api_error", "message": message}})


class MessagesEventSink(ChatStreamTranslator):
    """Takes the chat SSE blocks the relay forwards and writes Anthropic's events to the client's sink."""

    __slots__ = ("_model", "_read_usage", "_started", "_block", "_kind", "_tools", "_stop",
                 "_usage", "_signature", "_text_head")

    def __init__(self, sink: "StreamSink", model: str, read_usage: Callable[[Mapping], Usage | None]) -> None:
        super().__init__(sink)
        self._model = model
        self._read_usage = read_usage
        self._started = False
        self._block = -1          # index of the open content block; -1 before the first
        self._kind = ""           # its kind ("" when none is open)
        self._tools: dict[int, int] = {}  # chat tool call index -> content block index
        self._stop = "end_turn"
        self._usage: Usage | None = None
        self._signature = ""
        self._text_head = b""  # the open text block's delta event up to the text's literal

    def _close_stream(self) -> bytes:
        return self._finish()

    def _error_event(self, message: str) -> bytes:
        return error_event(message)

    def _text_delta(self, literal: bytes) -> bytes:
        return self._text_head + literal + b"}}\n\n"

    def _translate(self, chunk: dict) -> bytes:
        choices = chunk.get("choices")
        out = [] if self._started else [self._start(chunk)]
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = self._read_usage(chunk) or self._usage
        for choice in choices or ():
            delta = choice.get("delta") or {}
            if delta.get("reasoning_content"):
                out.append(self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""}))
                out.append(self._delta({"type": "thinking_delta", "thinking": delta["reasoning_content"]}))
            for block in delta.get("thinking_blocks") or ():
                if isinstance(block, dict) and block.get("signature") and self._kind == "thinking":
                    out.append(self._delta({"type": "signature_delta", "signature": block["signature"]}))
            if delta.get("content"):
                out.append(self._open("text", {"type": "text", "text": ""}))
                out.append(self._delta({"type": "text_delta", "text": delta["content"]}))
            for call in delta.get("tool_calls") or ():
                out.append(self._tool_call(call))
            reason = choice.get("finish_reason")
            if reason:
                self._stop = STOP_REASONS.get(reason, "end_turn")
        return b"".join(out)

    def _start(self, chunk: dict) -> bytes:
        self._started = True
        return event("message_start", {"type": "message_start", "message": {
            "id": message_id(chunk.get("id")), "type": "message", "role": "assistant", "model": self._model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": message_usage(None)}})

    def _open(self, kind: str, block: dict[str, Any]) -> bytes:
        if self._kind == kind and kind != "tool_use":
            return b""
        closed = self._close()
        self._block += 1
        self._kind = kind
        if kind == "text":
            self._text_open = True
            self._text_head = b'%s%d,"delta":{"type":"text_delta","text":' % (_DELTA_HEAD, self._block)
        return closed + event("content_block_start",
                              {"type": "content_block_start", "index": self._block, "content_block": block})

    def _close(self) -> bytes:
        if not self._kind:
            return b""
        self._kind = ""
        self._text_open = False
        return event("content_block_stop", {"type": "content_block_stop", "index": self._block})

    def _delta(self, delta: dict[str, Any], index: int | None = None) -> bytes:
        """A content_block_delta event, written around the encoded delta (one per token: kept cheap)."""
        at = self._block if index is None else index
        return b"%s%d%s%s}\n\n" % (_DELTA_HEAD, at, b',"delta":', orjson.dumps(delta))

    def _tool_call(self, call: dict) -> bytes:
        index = call.get("index", 0)
        function = call.get("function") or {}
        out = b""
        if index not in self._tools:
            out = self._open("tool_use", {"type": "tool_use", "id": call.get("id") or f"toolu_{index}",
                                          "name": function.get("name") or "", "input": {}})
            self._tools[index] = self._block
        arguments = function.get("arguments")
        if arguments:
            out += self._delta({"type": "input_json_delta", "partial_json": arguments}, self._tools[index])
        return out

    def _finish(self) -> bytes:
        if self._ended:
            return b""
        self._ended = True
        out = b"" if self._started else self._start({})
        return out + self._close() + event("message_delta", {
            "type": "message_delta", "delta": {"stop_reason": self._stop, "stop_sequence": None},
            "usage": message_usage(self._usage)}) + event("message_stop", {"type": "message_stop"})

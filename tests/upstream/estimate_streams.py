"""Streams whose usage must be estimated, per dialect, and the documented estimate computed the test's own way.

Each stream is a list of (event bytes, the completion text that event carries). The expected figures come
from that text by the rule docs/usage-normalisation.md states (a token per 4 ASCII characters, rounded up,
plus one per other character), counted here without the code under test.
"""

from __future__ import annotations

import json

from tests.upstream.scripted_upstream import event

DONE = b"data: [DONE]\n\n"
TEXT = ["Hello", ", wor", "ld! ", "你好", "世界 ", "the end"]  # ASCII and CJK, in pieces of odd sizes


def documented_estimate(text: str) -> int:
    ascii_chars = sum(1 for char in text if ord(char) < 128)
    return -(-ascii_chars // 4) + (len(text) - ascii_chars)


def _chat(delta: dict, finish: str | None = None, **extra: object) -> dict:
    return {"id": "c1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


def _anthropic(kind: str, payload: dict) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + json.dumps({"type": kind, **payload}).encode() + b"\n\n"


def openai_stream() -> list[tuple[bytes, str]]:
    """OpenAI: `usage: null` on every chunk, content, then a tool call's arguments."""
    parts = [(event({**_chat({"role": "assistant", "content": "", "refusal": None}), "usage": None}), "")]
    parts += [(event({**_chat({"content": piece}), "usage": None}), piece) for piece in TEXT]
    args = ['{"city": ', '"Paris"}']
    parts.append((event({**_chat({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                  "function": {"name": "weather", "arguments": args[0]}}]}),
                         "usage": None}), args[0]))
    parts.append((event({**_chat({"tool_calls": [{"index": 0, "function": {"arguments": args[1]}}]}), "usage": None}),
                  args[1]))
    return parts


def openai_tail(with_usage: bool) -> list[bytes]:
    finish = event({**_chat({}, "tool_calls"), "usage": None})
    usage = event({"id": "c1", "object": "chat.completion.chunk", "choices": [],
                   "usage": {"prompt_tokens": 9, "completion_tokens": 30, "total_tokens": 39}})
    return [finish, usage, DONE] if with_usage else [finish, DONE]


def deepseek_stream() -> list[tuple[bytes, str]]:
    """DeepSeek's reasoner: `reasoning_content` deltas, then `content` deltas."""
    thoughts = ["Let me ", "think: 思考"]
    parts = [(event(_chat({"role": "assistant", "content": None, "reasoning_content": ""})), "")]
    parts += [(event(_chat({"content": None, "reasoning_content": piece})), piece) for piece in thoughts]
    parts += [(event(_chat({"content": piece, "reasoning_content": None})), piece) for piece in TEXT]
    return parts


def deepseek_tail(with_usage: bool) -> list[bytes]:
    usage = {"prompt_tokens": 9, "completion_tokens": 30, "total_tokens": 39,
             "prompt_cache_hit_tokens": 0, "prompt_cache_miss_tokens": 9}
    finish = _chat({"content": ""}, "stop")
    return [event({**finish, "usage": usage}) if with_usage else event(finish), DONE]


ANTHROPIC_START_USAGE = {"input_tokens": 30, "cache_read_input_tokens": 10, "cache_creation_input_tokens": 0,
                         "output_tokens": 1}


def _block_delta(index: int, delta: dict) -> bytes:
    return _anthropic("content_block_delta", {"index": index, "delta": delta})


def anthropic_stream() -> list[tuple[bytes, str]]:
    """Anthropic Messages: message_start (the prompt's usage), a thinking block (its signature is not
    text), a text block and a tool_use block streamed as partial JSON."""
    start = {"message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude",
                         "stop_reason": None, "usage": ANTHROPIC_START_USAGE}}
    thinking_block = {"index": 0, "content_block": {"type": "thinking", "thinking": ""}}
    parts = [(_anthropic("message_start", start), ""), (_anthropic("content_block_start", thinking_block), "")]
    parts.append((_block_delta(0, {"type": "thinking_delta", "thinking": "Plan: 先想"}), "Plan: 先想"))
    parts.append((_block_delta(0, {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA"}), ""))
    parts.append((_anthropic("ping", {}), ""))
    parts += [(_block_delta(1, {"type": "text_delta", "text": piece}), piece) for piece in TEXT]
    parts.append((_block_delta(2, {"type": "input_json_delta", "partial_json": '{"q": "x"}'}), '{"q": "x"}'))
    return parts


def anthropic_tail() -> list[bytes]:
    return [_anthropic("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 33}}),
            _anthropic("message_stop", {})]


STREAMS = {"openai": openai_stream, "deepseek": deepseek_stream, "anthropic": anthropic_stream}


def text_of(parts: list[tuple[bytes, str]]) -> str:
    return "".join(text for _, text in parts)

"""Anthropic Messages answers: the message object and its SSE event sequence.

Anthropic differs from every OpenAI-style dialect in ways accounting depends on: input_tokens excludes
cache reads and writes, usage arrives in message_start (input side) and message_delta (cumulative output),
thinking is a content block, and there is no [DONE] (facts: anthropic.yaml usage.stream). When the
request declares tools and the last user turn is not a tool_result, the answer ends with tool_use blocks
(agent_traffic.py says which and how many; each input an instance of the tool's input_schema, streamed
block after block as input_json_delta pieces) and stop_reason tool_use
(https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from aiohttp import web

from tollway.emulator.openai_answers import SSE_HEADERS, Answer, drop_connection, full_text
from tollway.emulator.pacing import REASONING, wait_until
from tollway.emulator.usage_shapes import anthropic_usage

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal"}
SIGNATURE = "emulator-signature"


def _tool_id() -> str:
    return f"toolu_{uuid.uuid4().hex[:24]}"


def message_json(answer: Answer) -> dict[str, Any]:
    """The non-streamed message."""
    schedule = answer.schedule
    content: list[dict[str, Any]] = []
    if schedule.emitted_reasoning:
        content.append({"type": "thinking", "thinking": full_text(schedule, REASONING), "signature": SIGNATURE})
    content.append({"type": "text", "text": full_text(schedule, "content")})
    for call in answer.calls:
        content.append({"type": "tool_use", "id": _tool_id(), "name": call.name, "input": call.arguments})
    return {"id": _message_id(), "type": "message", "role": "assistant", "model": answer.model, "content": content,
            "stop_reason": "tool_use" if answer.calls else STOP_REASONS[schedule.finish_reason],
            "stop_sequence": None,
            "usage": anthropic_usage(answer.final_counts)}


def _message_id() -> str:
    return f"msg_{uuid.uuid4().hex[:24]}"


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, **data}) + b"\n\n"


async def write_message(request: web.Request, answer: Answer, headers: dict[str, str]) -> web.StreamResponse:
    await wait_until(answer.start, answer.schedule.done_at)
    if answer.schedule.cut:
        drop_connection(request)
        return web.StreamResponse()
    return web.Response(body=orjson.dumps(message_json(answer)), headers={**headers,
                                                                           "Content-Type": "application/json"})


async def write_message_stream(request: web.Request, answer: Answer, headers: dict[str, str]) -> web.StreamResponse:
    """message_start, per block (start, deltas, stop), message_delta with cumulative usage, message_stop."""
    resp = web.StreamResponse(status=200, headers={**headers, **SSE_HEADERS})
    await resp.prepare(request)
    schedule = answer.schedule
    first_at = schedule.pieces[0].ready_at if schedule.pieces else schedule.done_at
    await wait_until(answer.start, first_at)
    start_usage = anthropic_usage(answer.counts(0, 0))
    start_usage["output_tokens"] = min(1, schedule.emitted)
    message: dict[str, Any] = {"id": _message_id(), "type": "message", "role": "assistant", "content": [],
                               "model": answer.model, "stop_reason": None, "stop_sequence": None, "usage": start_usage}
    await resp.write(_event("message_start", {"message": message}))
    index, open_kind, pinged = -1, None, False
    for piece in schedule.pieces:
        await wait_until(answer.start, piece.ready_at)
        if piece.kind != open_kind:
            if open_kind is not None:
                await resp.write(_close_block(index, open_kind))
            index, open_kind = index + 1, piece.kind
            await resp.write(_open_block(index, piece.kind))
            if not pinged:
                await resp.write(_event("ping", {}))
                pinged = True
        delta = {"type": "thinking_delta", "thinking": piece.text} if piece.kind == REASONING else \
            {"type": "text_delta", "text": piece.text}
        await resp.write(_event("content_block_delta", {"index": index, "delta": delta}))
    if schedule.cut:
        drop_connection(request)
        return resp
    await wait_until(answer.start, schedule.done_at)
    if open_kind != "content":  # every message ends with a text block, even an empty one
        if open_kind is not None:
            await resp.write(_close_block(index, open_kind))
        index, open_kind = index + 1, "content"
        await resp.write(_open_block(index, "content"))
    await resp.write(_close_block(index, open_kind))
    for call in answer.calls:
        index += 1
        block = {"type": "tool_use", "id": _tool_id(), "name": call.name, "input": {}}
        await resp.write(_event("content_block_start", {"index": index, "content_block": block}))
        for fragment in call.pieces():
            await resp.write(_event("content_block_delta", {"index": index, "delta": {"type": "input_json_delta",
                                                                                      "partial_json": fragment}}))
        await resp.write(_event("content_block_stop", {"index": index}))
    final = anthropic_usage(answer.final_counts)
    usage = {key: final[key] for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
                                          "output_tokens")}
    stop_reason = "tool_use" if answer.calls else STOP_REASONS[schedule.finish_reason]
    await resp.write(_event("message_delta", {"delta": {"stop_reason": stop_reason,
                                                        "stop_sequence": None}, "usage": usage}))
    await resp.write(_event("message_stop", {}))
    await resp.write_eof()
    return resp


def _open_block(index: int, kind: str) -> bytes:
    block = {"type": "thinking", "thinking": "", "signature": ""} if kind == REASONING else {"type": "text", "text": ""}
    return _event("content_block_start", {"index": index, "content_block": block})


def _close_block(index: int, kind: str) -> bytes:
    events = b""
    if kind == REASONING:
        events += _event("content_block_delta", {"index": index,
                                                 "delta": {"type": "signature_delta", "signature": SIGNATURE}})
    return events + _event("content_block_stop", {"index": index})

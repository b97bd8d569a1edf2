"""Chat-completion and text-completion answers of the OpenAI-compatible dialects, plain and streamed.

The byte stream is the point: a gateway forwards it and parses only the usage, a benchmark times every
chunk, so each dialect's chunk sequence (role chunk, reasoning field, where usage rides, [DONE]) is
reproduced as the facts in dialects.py describe it. A chat request that declares function tools, and
whose last message is not a tool result, is answered with one call to the first tool, its arguments
streamed in pieces (https://platform.openai.com/docs/guides/function-calling, streaming).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from tollway.emulator.dialects import Dialect
from tollway.emulator.pacing import REASONING, Piece, Schedule, wait_until
from tollway.emulator.usage_shapes import Counts, llamacpp_timings, usage_body

SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
KEEPALIVE_COMMENT = b": keep-alive\n\n"
TOOL_ARGUMENTS = ('{"city', '": "Par', 'is"}')  # a call's arguments, as they stream


def tool_to_call(body: dict) -> str | None:
    """The first declared function, when the last message is not a tool result."""
    names = [mapping_get(t, "function", "name") for t in body.get("tools") or []]
    messages = body.get("messages") or []
    last_role = messages[-1].get("role") if messages and isinstance(messages[-1], dict) else None
    return names[0] if names and names[0] and last_role != "tool" else None


def mapping_get(value: Any, *keys: str) -> Any:
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


@dataclass(frozen=True)
class Answer:
    """Everything needed to write one answer."""

    dialect: Dialect
    endpoint: str  # "chat" or "completions"
    model: str
    schedule: Schedule
    prompt: int
    cached: int
    cache_write: int
    start: float  # loop time at arrival
    keepalive_s: float
    include_usage: bool = False
    continuous_usage: bool = False
    tool: str | None = None  # the function this answer calls (chat only)
    cache_write_1h: int = 0  # of cache_write (Anthropic's 1-hour cache writes)

    def counts(self, reasoning: int, content: int) -> Counts:
        return Counts(self.prompt, reasoning + content, self.cached, self.cache_write, reasoning, self.cache_write_1h)

    @property
    def final_counts(self) -> Counts:
        return self.counts(self.schedule.emitted_reasoning, self.schedule.emitted_content)


def _extras(answer: Answer, counts: Counts) -> dict[str, Any]:
    """Top-level fields a dialect adds beside the standard ones."""
    name = answer.dialect.name
    if name == "deepseek":
        return {"system_fingerprint": "fp_tollway_emulator"}
    if name == "openai":
        return {"service_tier": "default", "system_fingerprint": None}
    if name == "glm":
        return {"request_id": f"{int(answer.start * 1000)}-emulator"}
    if name == "llamacpp":
        ttft_ms = answer.schedule.pieces[0].ready_at * 1000 if answer.schedule.pieces else 0.0
        done_ms = answer.schedule.done_at * 1000
        return {"timings": llamacpp_timings(counts, ttft_ms, max(0.0, done_ms - ttft_ms))}
    return {}


def full_text(schedule: Schedule, kind: str) -> str:
    return "".join(piece.text for piece in schedule.pieces if piece.kind == kind)


def answer_json(answer: Answer) -> dict[str, Any]:
    """The non-streamed body."""
    dialect, schedule, counts = answer.dialect, answer.schedule, answer.final_counts
    content = full_text(schedule, "content")
    if answer.endpoint == "completions":
        choice: dict[str, Any] = {"index": 0, "text": content, "logprobs": None,
                                  "finish_reason": schedule.finish_reason}
        obj = "text_completion"
    else:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if dialect.reasoning_field and schedule.emitted_reasoning:
            message[dialect.reasoning_field] = full_text(schedule, REASONING)
        if dialect.name == "openai":
            message.update({"refusal": None, "annotations": []})
        finish = schedule.finish_reason
        if answer.tool:
            message["tool_calls"] = [{"id": _call_id(), "type": "function",
                                      "function": {"name": answer.tool, "arguments": "".join(TOOL_ARGUMENTS)}}]
            finish = "tool_calls"
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        obj = "chat.completion"
    body = {"id": dialect.new_id(), "object": obj, "created": int(time.time()), "model": answer.model,
            "choices": [choice], "usage": usage_body(dialect.name, counts)}
    body.update(_extras(answer, counts))
    return body


async def write_plain(request: web.Request, answer: Answer, headers: dict[str, str]) -> web.StreamResponse:
    """Wait for the whole answer, then send it; DeepSeek sends blank lines while a long wait lasts."""
    schedule = answer.schedule
    if answer.dialect.keepalive and schedule.done_at >= answer.keepalive_s:
        resp = web.StreamResponse(status=200, headers={**headers, "Content-Type": "application/json"})
        await resp.prepare(request)
        await _keepalive_until(resp, answer, schedule.done_at, b"\n")
    else:
        resp = None
        await wait_until(answer.start, schedule.done_at)
    if schedule.cut:
        drop_connection(request)
        return resp or web.StreamResponse()
    payload = orjson.dumps(answer_json(answer))
    if resp is None:
        return web.Response(body=payload, status=200, headers={**headers, "Content-Type": "application/json"})
    await resp.write(payload)
    await resp.write_eof()
    return resp


async def _keepalive_until(resp: web.StreamResponse, answer: Answer, offset: float, payload: bytes) -> None:
    tick = answer.keepalive_s
    while tick <= offset:
        await wait_until(answer.start, tick)
        await resp.write(payload)
        tick += answer.keepalive_s
    await wait_until(answer.start, offset)


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def drop_connection(request: web.Request) -> None:
    """Close the socket mid-answer, without the chunked-encoding terminator: what a crashed upstream does."""
    transport = request.transport
    if transport is not None:
        transport.abort()


class ChunkWriter:
    """Builds one stream's chunks; every chunk shares id, created and model as the dialects do."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.dialect = answer.dialect
        self.id = answer.dialect.new_id()
        self.created = int(time.time())
        self.object = "text_completion" if answer.endpoint == "completions" else "chat.completion.chunk"

    def chunk(self, choices: list[dict[str, Any]], usage: Any = ..., **extra: Any) -> bytes:
        body: dict[str, Any] = {"id": self.id, "object": self.object, "created": self.created,
                                "model": self.answer.model, "choices": choices}
        if self.dialect.name == "deepseek":
            body["system_fingerprint"] = "fp_tollway_emulator"
        if usage is not ...:
            body["usage"] = usage
        body.update(extra)
        return b"data: " + orjson.dumps(body) + b"\n\n"

    def choice(self, delta: dict[str, Any] | None, text: str = "", finish: str | None = None) -> dict[str, Any]:
        if self.answer.endpoint == "completions":
            return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        return {"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}

    def role_chunk(self) -> bytes:
        delta: dict[str, Any] = {"role": "assistant", "content": self.dialect.role_chunk_content}
        if self.dialect.name == "openai":
            delta["refusal"] = None
        return self.chunk([self.choice(delta)], **self._chunk_usage(0, 0))

    def piece_chunk(self, piece: Piece, reasoning_so_far: int, content_so_far: int) -> bytes:
        if piece.kind == REASONING:
            field = self.dialect.reasoning_field
            assert field is not None  # reasoning is scheduled only for a dialect that shows it (pipeline.py)
            delta: dict[str, Any] = {field: piece.text}
            if self.dialect.name == "deepseek":
                delta["content"] = None
        else:
            delta = {"content": piece.text}
        if self.dialect.role_style == "every_delta":
            delta = {"role": "assistant", **delta}
        return self.chunk([self.choice(delta, piece.text)], **self._chunk_usage(reasoning_so_far, content_so_far))

    def _chunk_usage(self, reasoning: int, content: int) -> dict[str, Any]:
        """The usage key of a non-final chunk: cumulative, zero (Ollama completions), null, or absent."""
        answer = self.answer
        if answer.continuous_usage:
            return {"usage": usage_body(self.dialect.name, answer.counts(reasoning, content))}
        if answer.endpoint == "completions" and self.dialect.completions_zero_usage and answer.include_usage:
            return {"usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}
        if self.dialect.null_usage_on_chunks and answer.include_usage:
            return {"usage": None}
        return {}

    def finish_chunk(self) -> bytes:
        answer, dialect = self.answer, self.dialect
        usage = usage_body(dialect.name, answer.final_counts)
        delta = {"content": ""} if dialect.finish_delta_content else {}
        choice = self.choice(delta, "", "tool_calls" if answer.tool else answer.schedule.finish_reason)
        if dialect.stream_usage == "in_choice":
            choice["usage"] = usage
            return self.chunk([choice])
        if dialect.stream_usage == "finish_chunk":
            return self.chunk([choice], usage)
        return self.chunk([choice], **self._chunk_usage(answer.schedule.emitted_reasoning,
                                                        answer.schedule.emitted_content))

    def tool_chunks(self) -> list[bytes]:
        """The call's announcement (id, name), then its arguments piece by piece."""
        first = {"index": 0, "id": _call_id(), "type": "function", "function": {"name": self.answer.tool,
                                                                                 "arguments": ""}}
        chunks = [self.chunk([self.choice({"tool_calls": [first]})])]
        for piece in TOOL_ARGUMENTS:
            chunks.append(self.chunk([self.choice({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})]))
        return chunks

    def usage_chunk(self) -> bytes | None:
        """The extra `choices: []` chunk, for dialects that send one and when it is due."""
        answer, dialect = self.answer, self.dialect
        due = dialect.stream_usage == "final_always" or (
            dialect.stream_usage == "final_if_asked" and answer.include_usage)
        if not due:
            return None
        counts = answer.final_counts
        extra = _extras(answer, counts) if dialect.name == "llamacpp" else {}
        return self.chunk([], usage_body(dialect.name, counts), **extra)


async def write_stream(request: web.Request, answer: Answer, headers: dict[str, str]) -> web.StreamResponse:
    """Send the answer as server-sent events, paced by its schedule."""
    resp = web.StreamResponse(status=200, headers={**headers, **SSE_HEADERS})
    await resp.prepare(request)
    writer = ChunkWriter(answer)
    schedule = answer.schedule
    first_at = schedule.pieces[0].ready_at if schedule.pieces else schedule.done_at
    if answer.dialect.keepalive and first_at >= answer.keepalive_s:
        await _keepalive_until(resp, answer, first_at, KEEPALIVE_COMMENT)
    await wait_until(answer.start, first_at)
    role_due = bool(schedule.pieces) or not schedule.cut  # the role chunk rides with the first token
    if answer.endpoint == "chat" and answer.dialect.role_style == "separate" and role_due:
        await resp.write(writer.role_chunk())
    reasoning = content = 0
    for piece in schedule.pieces:
        await wait_until(answer.start, piece.ready_at)
        if piece.kind == REASONING:
            reasoning += piece.tokens
        else:
            content += piece.tokens
        await resp.write(writer.piece_chunk(piece, reasoning, content))
    if schedule.cut:
        drop_connection(request)
        return resp
    await wait_until(answer.start, schedule.done_at)
    if answer.tool:
        for chunk in writer.tool_chunks():
            await resp.write(chunk)
    await resp.write(writer.finish_chunk())
    usage_chunk = writer.usage_chunk()
    if usage_chunk is not None:
        await resp.write(usage_chunk)
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp

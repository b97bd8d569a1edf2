"""Chat-completion and text-completion answers of the OpenAI-compatible dialects, plain and streamed.

The byte stream is the point: a gateway forwards it and parses only the usage, a benchmark times every
chunk, so each dialect's chunk sequence (role chunk, reasoning field, where usage rides, [DONE]) is
reproduced as the facts in dialects.py describe it. A chat request that declares function tools, and
whose last message is not a tool result, is answered with calls to the first of them (agent_traffic.py
says how many), each call's arguments streamed in pieces interleaved by index; `n` choices stream
interleaved by choice index; logprobs ride on each content chunk
(https://platform.openai.com/docs/guides/function-calling, streaming;
https://platform.openai.com/docs/api-reference/chat/object, choices[].logprobs).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from tollway.emulator.agent_traffic import NO_PLAN, AgentPlan, LogprobCounter, ToolCall
from tollway.emulator.dialects import Dialect
from tollway.emulator.pacing import REASONING, Piece, Schedule, wait_until
from tollway.emulator.usage_shapes import Counts, llamacpp_timings, usage_body

SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
KEEPALIVE_COMMENT = b": keep-alive\n\n"


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
    cache_write_1h: int = 0  # of cache_write (Anthropic's 1-hour cache writes)
    agent: AgentPlan = NO_PLAN  # tool calls, choices, logprobs, structured output

    def counts(self, reasoning: int, content: int) -> Counts:
        """Usage so far; every one of `n` choices is generated (and billed) in full."""
        n = self.agent.choices
        return Counts(self.prompt, (reasoning + content) * n, self.cached, self.cache_write, reasoning * n,
                      self.cache_write_1h)

    @property
    def calls(self) -> tuple[ToolCall, ...]:
        return self.agent.calls

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
        choices = [choice]
    else:
        choices = [_chat_choice(answer, index, content) for index in range(answer.agent.choices)]
        obj = "chat.completion"
    body = {"id": dialect.new_id(), "object": obj, "created": int(time.time()), "model": answer.model,
            "choices": choices, "usage": usage_body(dialect.name, counts)}
    body.update(_extras(answer, counts))
    return body


def _chat_choice(answer: Answer, index: int, content: str) -> dict[str, Any]:
    dialect, schedule, agent = answer.dialect, answer.schedule, answer.agent
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if dialect.reasoning_field and schedule.emitted_reasoning:
        message[dialect.reasoning_field] = full_text(schedule, REASONING)
    if dialect.name == "openai":
        message.update({"refusal": None, "annotations": []})
    finish = schedule.finish_reason
    if answer.calls:
        message["tool_calls"] = [{"id": _call_id(), "type": "function",
                                  "function": {"name": call.name, "arguments": call.arguments_json}}
                                 for call in answer.calls]
        finish = "tool_calls"
    logprobs = None
    if agent.logprobs:
        counter = LogprobCounter(agent.seed + index, agent.top_logprobs)
        for piece in schedule.pieces:
            if piece.kind != REASONING:
                counter.entries_for(piece.text, piece.tokens)
        logprobs = {"content": counter.entries, "refusal": None}
    return {"index": index, "message": message, "logprobs": logprobs, "finish_reason": finish}


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

    def choice(self, delta: dict[str, Any] | None, text: str = "", finish: str | None = None, index: int = 0,
               logprobs: Any = None) -> dict[str, Any]:
        if self.answer.endpoint == "completions":
            return {"index": index, "text": text, "logprobs": None, "finish_reason": finish}
        return {"index": index, "delta": delta or {}, "logprobs": logprobs, "finish_reason": finish}

    def role_chunk(self, index: int = 0) -> bytes:
        delta: dict[str, Any] = {"role": "assistant", "content": self.dialect.role_chunk_content}
        if self.dialect.name == "openai":
            delta["refusal"] = None
        return self.chunk([self.choice(delta, index=index)], **self._chunk_usage(0, 0))

    def piece_chunk(self, piece: Piece, reasoning_so_far: int, content_so_far: int, index: int = 0,
                    counter: LogprobCounter | None = None) -> bytes:
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
        logprobs = None
        if counter is not None and piece.kind != REASONING:
            logprobs = {"content": counter.entries_for(piece.text, piece.tokens), "refusal": None}
        return self.chunk([self.choice(delta, piece.text, index=index, logprobs=logprobs)],
                          **self._chunk_usage(reasoning_so_far, content_so_far))

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

    def finish_chunk(self, index: int = 0, last: bool = True) -> bytes:
        """One choice's finish; usage rides only on the last choice's (where the dialect sends it there)."""
        answer, dialect = self.answer, self.dialect
        usage = usage_body(dialect.name, answer.final_counts)
        delta = {"content": ""} if dialect.finish_delta_content else {}
        choice = self.choice(delta, "", "tool_calls" if answer.calls else answer.schedule.finish_reason, index)
        if not last:
            return self.chunk([choice], **self._chunk_usage(answer.schedule.emitted_reasoning,
                                                            answer.schedule.emitted_content))
        if dialect.stream_usage == "in_choice":
            choice["usage"] = usage
            return self.chunk([choice])
        if dialect.stream_usage == "finish_chunk":
            return self.chunk([choice], usage)
        return self.chunk([choice], **self._chunk_usage(answer.schedule.emitted_reasoning,
                                                        answer.schedule.emitted_content))

    def tool_chunks(self, choice: int = 0) -> list[bytes]:
        """Each call's announcement (index, id, name), then the arguments piece by piece, interleaved by
        call index (round r carries every call's r-th piece), as parallel calls stream."""
        chunks = []
        for index, call in enumerate(self.answer.calls):
            first = {"index": index, "id": _call_id(), "type": "function",
                     "function": {"name": call.name, "arguments": ""}}
            chunks.append(self.chunk([self.choice({"tool_calls": [first]}, index=choice)]))
        pieces = [call.pieces() for call in self.answer.calls]
        for round_ in range(max((len(p) for p in pieces), default=0)):
            for index, fragments in enumerate(pieces):
                if round_ < len(fragments):
                    delta = {"tool_calls": [{"index": index, "function": {"arguments": fragments[round_]}}]}
                    chunks.append(self.chunk([self.choice(delta, index=choice)]))
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
    choices = range(answer.agent.choices if answer.endpoint == "chat" else 1)
    if answer.endpoint == "chat" and answer.dialect.role_style == "separate" and role_due:
        for index in choices:
            await resp.write(writer.role_chunk(index))
    agent = answer.agent
    counters = [LogprobCounter(agent.seed + index, agent.top_logprobs) if agent.logprobs else None
                for index in choices]
    reasoning = content = 0
    for piece in schedule.pieces:
        await wait_until(answer.start, piece.ready_at)
        if piece.kind == REASONING:
            reasoning += piece.tokens
        else:
            content += piece.tokens
        for index in choices:
            await resp.write(writer.piece_chunk(piece, reasoning, content, index, counters[index]))
    if schedule.cut:
        drop_connection(request)
        return resp
    await wait_until(answer.start, schedule.done_at)
    for index in choices:
        for chunk in writer.tool_chunks(index) if answer.calls else ():
            await resp.write(chunk)
    for index in choices:
        await resp.write(writer.finish_chunk(index, last=index == choices[-1]))
    usage_chunk = writer.usage_chunk()
    if usage_chunk is not None:
        await resp.write(usage_chunk)
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp

"""OpenAI Responses API answers (POST /v1/responses): the response object and its semantic event stream.

The Responses API is its own protocol, not a chat dialect: the answer is a list of output items
(a `reasoning` item when the model reasoned, a `message` with `output_text` parts, `function_call` items),
usage is input_tokens / output_tokens with input_tokens_details.cached_tokens and
output_tokens_details.reasoning_tokens, and a stream is a sequence of named events, each with a
`sequence_number`: response.created, response.in_progress, then per item output_item.added,
content_part.added, output_text.delta ... output_text.done, content_part.done (or
function_call_arguments.delta ... .done), output_item.done, and last response.completed (or
response.incomplete when max_output_tokens cut it). No [DONE]. Function tools are flat
(`{"type": "function", "name", "parameters"}`), a tool result comes back as a `function_call_output`
input item, and `text.format` json_schema asks for structured output.
Sources: https://platform.openai.com/docs/api-reference/responses/create ,
https://platform.openai.com/docs/api-reference/responses-streaming (retrieved 2026-12-07).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from aiohttp import web

from tollway.emulator.agent_traffic import LogprobCounter
from tollway.emulator.openai_answers import SSE_HEADERS, Answer, drop_connection, full_text
from tollway.emulator.pacing import REASONING, wait_until
from tollway.emulator.usage_shapes import Counts

INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def usage(counts: Counts) -> dict[str, Any]:
    return {"input_tokens": counts.prompt, "input_tokens_details": {"cached_tokens": counts.cached},
            "output_tokens": counts.completion, "output_tokens_details": {"reasoning_tokens": counts.reasoning},
            "total_tokens": counts.prompt + counts.completion}


class ResponseBuilder:
    """One response's ids and echoed request fields, shared by the whole body and every event."""

    def __init__(self, answer: Answer, body: dict) -> None:
        self.answer, self.body = answer, body
        self.id = f"resp_{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.reasoning_id = f"rs_{uuid.uuid4().hex}"
        self.message_id = f"msg_{uuid.uuid4().hex}"
        self.call_ids = [(f"fc_{uuid.uuid4().hex}", f"call_{uuid.uuid4().hex[:24]}") for _ in answer.calls]
        self.sequence = 0

    @property
    def status(self) -> str:
        return "incomplete" if self.answer.schedule.finish_reason in INCOMPLETE else "completed"

    def response(self, status: str, output: list[dict[str, Any]], counts: Counts | None) -> dict[str, Any]:
        body, finish = self.body, self.answer.schedule.finish_reason
        fmt = body["text"].get("format") if isinstance(body.get("text"), dict) else None
        return {
            "id": self.id, "object": "response", "created_at": self.created, "status": status, "error": None,
            "incomplete_details": {"reason": INCOMPLETE[finish]} if status == "incomplete" else None,
            "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
            "model": self.answer.model, "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"), "summary": None},
            "store": body.get("store", True), "temperature": body.get("temperature", 1.0),
            "text": {"format": fmt or {"type": "text"}}, "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [], "top_p": body.get("top_p", 1.0), "truncation": "disabled",
            "usage": usage(counts) if counts is not None else None, "user": None, "metadata": body.get("metadata") or {},
        }

    def reasoning_item(self) -> dict[str, Any]:
        return {"id": self.reasoning_id, "type": "reasoning", "summary": []}

    def text_part(self, text: str, logprobs: list[dict[str, Any]]) -> dict[str, Any]:
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs}

    def message_item(self, status: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": self.message_id, "type": "message", "status": status, "role": "assistant", "content": parts}

    def call_item(self, index: int, status: str, arguments: str) -> dict[str, Any]:
        item_id, call_id = self.call_ids[index]
        return {"id": item_id, "type": "function_call", "status": status, "arguments": arguments,
                "call_id": call_id, "name": self.answer.calls[index].name}

    def output(self) -> list[dict[str, Any]]:
        """The finished items, in order: reasoning, the message, the calls."""
        answer, schedule = self.answer, self.answer.schedule
        items = [self.reasoning_item()] if schedule.emitted_reasoning else []
        items.append(self.message_item("completed", [self.text_part(full_text(schedule, "content"),
                                                                    self.logprobs())]))
        items += [self.call_item(i, "completed", call.arguments_json) for i, call in enumerate(answer.calls)]
        return items

    def logprobs(self) -> list[dict[str, Any]]:
        agent = self.answer.agent
        if not agent.logprobs:
            return []
        counter = LogprobCounter(agent.seed, agent.top_logprobs)
        for piece in self.answer.schedule.pieces:
            if piece.kind != REASONING:
                counter.entries_for(piece.text, piece.tokens)
        return counter.entries

    def event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def write_response(request: web.Request, answer: Answer, headers: dict[str, str],
                         body: dict) -> web.StreamResponse:
    await wait_until(answer.start, answer.schedule.done_at)
    if answer.schedule.cut:
        drop_connection(request)
        return web.StreamResponse()
    builder = ResponseBuilder(answer, body)
    payload = builder.response(builder.status, builder.output(), answer.final_counts)
    return web.Response(body=orjson.dumps(payload), headers={**headers, "Content-Type": "application/json"})


async def write_response_stream(request: web.Request, answer: Answer, headers: dict[str, str],
                                body: dict) -> web.StreamResponse:
    """The semantic events, paced by the schedule; the calls' argument deltas interleave by output index."""
    resp = web.StreamResponse(status=200, headers={**headers, **SSE_HEADERS})
    await resp.prepare(request)
    builder, schedule = ResponseBuilder(answer, body), answer.schedule
    started = builder.response("in_progress", [], None)
    await resp.write(builder.event("response.created", response=started))
    await resp.write(builder.event("response.in_progress", response=started))
    first_at = schedule.pieces[0].ready_at if schedule.pieces else schedule.done_at
    await wait_until(answer.start, first_at)
    index = 0
    if schedule.emitted_reasoning:
        await resp.write(builder.event("response.output_item.added", output_index=0, item=builder.reasoning_item()))
        await resp.write(builder.event("response.output_item.done", output_index=0, item=builder.reasoning_item()))
        index = 1
    text = await _stream_text(request, resp, builder, index)
    if schedule.cut:
        drop_connection(request)
        return resp
    await wait_until(answer.start, schedule.done_at)
    await _stream_calls(resp, builder, index + 1)
    output = ([builder.reasoning_item()] if schedule.emitted_reasoning else []) + [
        builder.message_item("completed", [builder.text_part(text, builder.logprobs())])] + [
        builder.call_item(i, "completed", call.arguments_json) for i, call in enumerate(answer.calls)]
    final = builder.response(builder.status, output, answer.final_counts)
    done = "response.completed" if builder.status == "completed" else "response.incomplete"
    await resp.write(builder.event(done, response=final))
    await resp.write_eof()
    return resp


async def _stream_text(request: web.Request, resp: web.StreamResponse, builder: ResponseBuilder, index: int) -> str:
    """The message item: added, its output_text part, one delta per piece; closed unless the stream is cut."""
    answer, item_id = builder.answer, builder.message_id
    agent = answer.agent
    counter = LogprobCounter(agent.seed, agent.top_logprobs) if agent.logprobs else None
    await resp.write(builder.event("response.output_item.added", output_index=index,
                                   item=builder.message_item("in_progress", [])))
    await resp.write(builder.event("response.content_part.added", item_id=item_id, output_index=index,
                                   content_index=0, part=builder.text_part("", [])))
    text = ""
    for piece in answer.schedule.pieces:
        if piece.kind == REASONING:
            continue
        await wait_until(answer.start, piece.ready_at)
        text += piece.text
        logprobs = counter.entries_for(piece.text, piece.tokens) if counter else []
        await resp.write(builder.event("response.output_text.delta", item_id=item_id, output_index=index,
                                       content_index=0, delta=piece.text, logprobs=logprobs))
    if answer.schedule.cut:
        return text
    logprobs = counter.entries if counter else []
    part = builder.text_part(text, logprobs)
    await resp.write(builder.event("response.output_text.done", item_id=item_id, output_index=index,
                                   content_index=0, text=text, logprobs=logprobs))
    await resp.write(builder.event("response.content_part.done", item_id=item_id, output_index=index,
                                   content_index=0, part=part))
    await resp.write(builder.event("response.output_item.done", output_index=index,
                                   item=builder.message_item("completed", [part])))
    return text


async def _stream_calls(resp: web.StreamResponse, builder: ResponseBuilder, first_index: int) -> None:
    calls = builder.answer.calls
    for i in range(len(calls)):
        await resp.write(builder.event("response.output_item.added", output_index=first_index + i,
                                       item=builder.call_item(i, "in_progress", "")))
    pieces = [call.pieces() for call in calls]
    for round_ in range(max((len(p) for p in pieces), default=0)):
        for i, fragments in enumerate(pieces):
            if round_ < len(fragments):
                await resp.write(builder.event("response.function_call_arguments.delta", item_id=builder.call_ids[i][0],
                                               output_index=first_index + i, delta=fragments[round_]))
    for i, call in enumerate(calls):
        await resp.write(builder.event("response.function_call_arguments.done", item_id=builder.call_ids[i][0],
                                       output_index=first_index + i, name=call.name, arguments=call.arguments_json))
        await resp.write(builder.event("response.output_item.done", output_index=first_index + i,
                                       item=builder.call_item(i, "completed", call.arguments_json)))

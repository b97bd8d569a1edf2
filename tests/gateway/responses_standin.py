"""A minimal OpenAI Responses upstream for the fast-path tests: `POST /v1/responses`, non-streamed and
streamed, in the documented shapes (https://platform.openai.com/docs/api-reference/responses ,
https://platform.openai.com/docs/api-reference/responses-streaming, retrieved 2026-12-07), on a real
socket in its own thread. It records each request body and can be told to fail: an HTTP 500, a 400 for the
request, a stream whose first event after `response.created` is an `error` event (before any token), or a
stream cut after its third text delta."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import web

MODEL = "gpt-5.4-mini"
WORDS = ["Hello", " from", " the", " Responses", " stand-in", "."]
USAGE = {"input_tokens": 40, "input_tokens_details": {"cached_tokens": 16}, "output_tokens": 9,
         "output_tokens_details": {"reasoning_tokens": 3}, "total_tokens": 49}


class ResponsesStandIn:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail: str | None = None  # "status", "bad_request", "error_event" or "cut"
        self._count = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    def __enter__(self) -> "ResponsesStandIn":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(5)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/responses", self._responses)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(body)
        if self.fail == "status":
            return web.json_response({"error": {"message": "The server had an error", "type": "server_error",
                                                "code": "server_error", "param": None}}, status=500)
        if self.fail == "bad_request":
            return web.json_response({"error": {"message": "Invalid value for 'reasoning.effort': 'extreme'.",
                                                "type": "invalid_request_error", "code": "invalid_value",
                                                "param": "reasoning.effort"}}, status=400)
        self._count += 1
        rid, item_id = f"resp_standin{self._count:04d}", f"msg_standin{self._count:04d}"
        tool = body.get("tools") and not any(i.get("type") == "function_call_output" for i in _items(body))
        item = _call_item(self._count) if tool else _message_item(item_id, "".join(WORDS))
        done = _response(rid, body, [item], "completed")
        if not body.get("stream"):
            return web.json_response(done)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        seq = iter(range(1000))

        async def send(kind: str, **fields: Any) -> None:
            data = json.dumps({"type": kind, "sequence_number": next(seq), **fields}, separators=(",", ":"))
            await resp.write(f"event: {kind}\ndata: {data}\n\n".encode())

        await send("response.created", response=_response(rid, body, [], "in_progress"))
        if self.fail == "error_event":
            await send("error", code="server_error", message="The server had an error", param=None)
            await resp.write_eof()
            return resp
        await send("response.in_progress", response=_response(rid, body, [], "in_progress"))
        if tool:
            await send("response.output_item.added", output_index=0, item={**item, "arguments": "",
                                                                            "status": "in_progress"})
            for piece in ('{"city"', ':"Paris"}'):
                await send("response.function_call_arguments.delta", item_id=item["id"], output_index=0, delta=piece)
            await send("response.function_call_arguments.done", item_id=item["id"], output_index=0,
                       arguments=item["arguments"])
        else:
            await send("response.output_item.added", output_index=0,
                       item={**item, "status": "in_progress", "content": []})
            await send("response.content_part.added", item_id=item_id, output_index=0, content_index=0,
                       part={"type": "output_text", "text": "", "annotations": []})
            for word in WORDS:
                await send("response.output_text.delta", item_id=item_id, output_index=0, content_index=0,
                           delta=word, logprobs=[])
                if self.fail == "cut" and word == WORDS[2]:
                    request.transport.close()  # the upstream dies mid-answer
                    return resp
            await send("response.output_text.done", item_id=item_id, output_index=0, content_index=0,
                       text="".join(WORDS), logprobs=[])
            await send("response.content_part.done", item_id=item_id, output_index=0, content_index=0,
                       part=item["content"][0])
        await send("response.output_item.done", output_index=0, item=item)
        await send("response.completed", response=done)
        await resp.write_eof()
        return resp


def _items(body: dict) -> list[dict]:
    return body["input"] if isinstance(body.get("input"), list) else []


def _message_item(item_id: str, text: str) -> dict[str, Any]:
    return {"type": "message", "id": item_id, "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def _call_item(n: int) -> dict[str, Any]:
    return {"type": "function_call", "id": f"fc_standin{n:04d}", "call_id": f"call_standin{n:04d}",
            "name": "get_weather", "arguments": '{"city":"Paris"}', "status": "completed"}


def _response(rid: str, body: dict, output: list, status: str) -> dict[str, Any]:
    return {"id": rid, "object": "response", "created_at": 1_780_000_000, "status": status, "error": None,
            "incomplete_details": None, "instructions": body.get("instructions"), "model": MODEL,
            "output": output, "parallel_tool_calls": True, "previous_response_id": None,
            "store": body.get("store", True), "tool_choice": "auto", "tools": body.get("tools", []),
            "usage": USAGE if status == "completed" else None}

"""The streaming client against a scripted server on a real loopback socket.

The emulator sends its role-only chunk together with the first token; real servers (vLLM, llama.cpp)
send it at once. This server does that and other things real servers do, with exact timing, to pin down
what the client records.
"""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import orjson
from aiohttp import web

from tollway.bench.record import RATE_LIMITED, SERVER_ERROR, STREAM_CUT, STREAM_ERROR, TIMEOUT
from tollway.bench.sse_client import StreamingClient, request_trace
from tollway.bench.workload import RequestSpec

SPEC = RequestSpec(index=0, messages=({"role": "user", "content": "hi"},), output_tokens=3)
SECRET = "sk-do-not-print-31337"


def _event(obj: dict) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _delta(text: str, finish: str | None = None) -> dict:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


async def role_first(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    await resp.write(_event({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}))
    await asyncio.sleep(0.2)
    for index, text in enumerate(["a", "b", "c"]):
        await resp.write(_event(_delta(text, "stop" if index == 2 else None)))
        await asyncio.sleep(0.05)
    # Kimi puts usage inside the choice of the finish chunk
    await resp.write(_event({"choices": [{"index": 0, "delta": {}, "usage": {"prompt_tokens": 5,
                                                                           "completion_tokens": 3}}]}))
    await resp.write(b"data: [DONE]\n\n")
    return resp


async def cut(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    await resp.write(_event(_delta("a")))
    await asyncio.sleep(0.05)
    request.transport.close()  # the connection drops mid-answer
    return resp


async def error_event(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    await resp.write(_event(_delta("a")))
    await resp.write(b"event: error\ndata: {\"error\": {\"message\": \"overloaded\"}}\n\n")
    return resp


async def limited(request: web.Request) -> web.Response:
    return web.json_response({"error": {"message": f"slow down, key {request.headers['Authorization'][7:]}"}},
                             status=429, headers={"Retry-After": "3"})


async def unavailable(request: web.Request) -> web.Response:
    return web.json_response({"error": {"message": "busy"}}, status=503)


async def stall(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    await resp.write(_event(_delta("a")))
    await asyncio.sleep(1.0)  # longer than the client's timeout; short so the server shuts down soon
    return resp


async def close_after_answer(request: web.Request) -> web.StreamResponse:
    """Like llama-server: a complete streamed answer, then the keep-alive connection is dropped unannounced."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    await resp.write(_event(_delta("a", "stop")))
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    request.transport.close()
    return resp


async def whole_json(request: web.Request) -> web.Response:
    return web.json_response({"choices": [{"message": {"content": "abc"}, "finish_reason": "stop"}],
                              "usage": {"prompt_tokens": 5, "completion_tokens": 3}})


ROUTES = {"/role/chat/completions": role_first, "/cut/chat/completions": cut,
          "/error/chat/completions": error_event, "/limited/chat/completions": limited,
          "/unavailable/chat/completions": unavailable, "/stall/chat/completions": stall,
          "/json/chat/completions": whole_json, "/closer/chat/completions": close_after_answer}


async def _send(path: str, timeout_s: float = 5.0, count: int = 1):
    app = web.Application()
    for route, handler in ROUTES.items():
        app.router.add_post(route, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        async with aiohttp.ClientSession(trace_configs=[request_trace()]) as session:
            client = StreamingClient(session, f"http://127.0.0.1:{port}{path}", "m", SECRET, timeout_s, True)
            records = [await client.send(SPEC, measured=True) for _ in range(count)]
            return records[0] if count == 1 else records
    finally:
        await runner.cleanup()


def send(path: str, timeout_s: float = 5.0, count: int = 1):
    return asyncio.run(_send(path, timeout_s, count))


def test_ttft_is_the_first_content_event_not_the_role_chunk():
    record = send("/role/chat/completions")
    assert record.ok and record.done and record.finish_reason == "stop"
    ttft_s = (record.content_ns[0] - record.origin_ns) / 1e9
    assert 0.2 <= ttft_s < 0.3
    assert len(record.content_ns) == 3 and record.events == 5
    assert (record.prompt_tokens, record.completion_tokens) == (5, 3)  # usage inside the choice


def test_a_stream_that_breaks_off_is_a_stream_cut():
    record = send("/cut/chat/completions")
    assert record.error == STREAM_CUT and len(record.content_ns) == 1


def test_an_error_event_inside_the_stream_is_a_stream_error():
    record = send("/error/chat/completions")
    assert record.error == STREAM_ERROR and "overloaded" in record.error_detail


def test_429_records_retry_after_and_never_the_key():
    record = send("/limited/chat/completions")
    assert record.error == RATE_LIMITED and record.status == 429 and record.retry_after == "3"
    assert "slow down" in record.error_detail and SECRET not in record.error_detail


def test_5xx_is_a_server_error():
    assert send("/unavailable/chat/completions").error == SERVER_ERROR


def test_a_stalled_stream_times_out():
    record = send("/stall/chat/completions", timeout_s=0.5)
    assert record.error == TIMEOUT
    assert 0.5 <= (record.end_ns - record.origin_ns) / 1e9 < 2.0


def test_a_pooled_connection_the_server_dropped_is_resent_not_failed():
    records = send("/closer/chat/completions", count=4)
    assert [r.error for r in records] == [None] * 4
    assert [r.stale_connection_retries for r in records] == [0, 1, 1, 1]


def test_a_server_that_ignores_stream_true_is_read_as_one_event():
    record = send("/json/chat/completions")
    assert record.ok and len(record.content_ns) == 1 and record.completion_tokens == 3


def test_request_body_asks_for_usage_and_exact_length():
    app_bodies = []

    async def capture(request: web.Request) -> web.StreamResponse:
        app_bodies.append(await request.json())
        return await role_first(request)

    ROUTES["/capture/chat/completions"] = capture
    try:
        send("/capture/chat/completions")
    finally:
        del ROUTES["/capture/chat/completions"]
    (body,) = app_bodies
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (body["max_tokens"], body["min_tokens"], body["ignore_eos"]) == (3, 3, True)

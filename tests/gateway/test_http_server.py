"""The hot-path HTTP/1.1 server, over real sockets: the HTTP edge cases clients hit, and the ledger after each.

`tollway serve` runs as users start it, in front of the emulator. Raw sockets speak HTTP where a library
would hide what is tested (pipelining, Expect, chunked uploads, garbage); the openai SDK where it fits.
"""

from __future__ import annotations

import signal
import socket
import threading
import time

import orjson
import pytest

from tests.gateway.raw_http import Conversation, Reply, get, post
from tests.gateway.support import PROVIDER_KEYS, chat, emulator_config

pytestmark = pytest.mark.slow

LIMIT = 3000


@pytest.fixture
def setup(emulator_factory, gateway_factory):
    emu = emulator_factory({"models": {"deepseek-flash": {"output_tokens": 6},
                                       "qwen3.5-plus": {"output_tokens": 6}}})
    gw = gateway_factory(emulator_config(emu, server={"max_body_bytes": LIMIT}), env=PROVIDER_KEYS)
    return emu, gw


def test_keep_alive_serves_many_requests_on_one_connection(setup):
    _, gw = setup
    conv = Conversation(gw.port)
    for i in range(3):
        conv.send(post("/v1/chat/completions", chat(f"hi {i}"), f"ka-{i}"))
        reply = conv.replies_done(i + 1)[i]
        assert reply.status == 200 and reply.headers["x-request-id"] == f"ka-{i}"
        assert reply.json()["usage"]["completion_tokens"] == 6
        assert "connection" not in reply.headers and "date" in reply.headers
    assert not conv.closed
    conv.close()
    assert [gw.row(f"ka-{i}")["status"] for i in range(3)] == ["ok"] * 3


def test_the_openai_sdk_reuses_its_connection(setup):
    _, gw = setup
    client = gw.client()
    for i in range(3):
        raw = client.chat.completions.with_raw_response.create(**chat(f"sdk {i}"),
                                                               extra_headers={"x-request-id": f"sdk-{i}"})
        assert raw.parse().usage.completion_tokens == 6
    stream = client.chat.completions.create(**chat("sdk stream"), stream=True, stream_options={"include_usage": True},
                                            extra_headers={"x-request-id": "sdk-stream"})
    chunks = list(stream)
    assert chunks[-1].usage.completion_tokens == 6
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert gw.row("sdk-stream")["status"] == "ok" and gw.row("sdk-stream")["streamed"] == 1


def test_pipelined_requests_are_answered_in_order(setup):
    _, gw = setup
    conv = Conversation(gw.port)
    conv.send(b"".join([post("/v1/chat/completions", chat(f"p{i}", stream=bool(i % 2)), f"pipe-{i}")
                        for i in range(5)] + [get("/healthz"), get("/metrics"),
                                              post("/v1/embeddings", {"model": "x", "input": "a"}, "pipe-emb")]))
    replies = conv.replies_done(8)
    assert [r.headers.get("x-request-id") for r in replies[:5]] == [f"pipe-{i}" for i in range(5)]
    assert [r.status for r in replies[:5]] == [200] * 5
    assert replies[1].headers["transfer-encoding"] == "chunked" and b"data: [DONE]" in replies[1].body
    assert replies[5].status == 200 and orjson.loads(replies[5].body)["status"] == "ok"
    assert replies[6].status == 200 and b"tollway_" in replies[6].body, "then aiohttp answers, in turn"
    assert replies[7].headers["x-request-id"] == "pipe-emb" and replies[7].status == 404, "unknown model, in turn"
    conv.close()


def test_chunked_request_body(setup):
    _, gw = setup
    raw = orjson.dumps(chat("sent in chunks"))
    pieces = [raw[:10], raw[10:25], raw[25:]]
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    conv = Conversation(gw.port)
    conv.send(b"POST /v1/chat/completions?api-version=1 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
              b"x-request-id: chunked-up\r\n\r\n")
    for i in range(0, len(body), 7):  # and in small reads
        conv.send(body[i:i + 7])
    reply = conv.replies_done(1)[0]
    assert reply.status == 200, reply.body
    assert gw.row("chunked-up")["status"] == "ok"


def test_expect_100_continue(setup):
    _, gw = setup
    raw = orjson.dumps(chat("after the go-ahead"))
    conv = Conversation(gw.port)
    conv.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nx-request-id: expect\r\n"
              b"Content-Length: %d\r\n\r\n" % len(raw))
    conv.read_until(lambda: bool(conv.replies) and conv.replies[0].complete)
    assert conv.replies[0].status == 100, "the server asks for the body before it is sent"
    conv.send(raw)
    replies = conv.replies_done(2)
    assert replies[1].status == 200 and replies[1].headers["x-request-id"] == "expect"


def test_expect_100_continue_over_the_limit_is_refused_before_the_body(setup):
    _, gw = setup
    conv = Conversation(gw.port)
    conv.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nx-request-id: big-expect\r\n"
              b"Content-Length: %d\r\n\r\n" % (LIMIT + 1))
    reply = conv.replies_done(1)[0]
    assert reply.status == 413
    assert conv.server_closed()


def assert_too_large(reply: Reply) -> None:
    assert reply.status == 413
    error = reply.json()["error"]
    assert error["code"] == "request_too_large" and error["type"] == "invalid_request_error"
    assert f"limit of {LIMIT} bytes (server.max_body_bytes)" in error["message"]


def test_body_over_the_limit_is_413_and_closes(setup):
    _, gw = setup
    conv = Conversation(gw.port)
    conv.send(post("/v1/chat/completions", chat("x" * LIMIT), "too-big"))
    assert_too_large(conv.replies_done(1)[0])
    assert conv.server_closed()
    row = gw.row("too-big")
    assert (row["status"], row["http_status"]) == ("client_error", 413)


def test_chunked_body_over_the_limit_is_cut_while_reading(setup):
    _, gw = setup
    conv = Conversation(gw.port)
    conv.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
              b"x-request-id: too-big-chunked\r\n\r\n")
    piece = b"y" * 1000
    for _ in range(4):  # 4000 bytes > LIMIT, and no end chunk: the answer must not wait for one
        conv.send(b"%x\r\n%s\r\n" % (len(piece), piece))
    assert_too_large(conv.replies_done(1)[0])
    assert conv.server_closed()
    assert gw.row("too-big-chunked")["http_status"] == 413


def test_an_upload_still_sending_reads_its_413_not_a_reset(setup):
    _, gw = setup
    conv = Conversation(gw.port)
    conv.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nx-request-id: still-sending\r\n"
              b"Content-Length: 2000000\r\n\r\n" + b"z" * 100_000)
    time.sleep(0.5)  # answered by now; had the server closed, the rest would draw a reset and fail the send
    conv.send(b"z" * 1_900_000)  # the whole body goes out, as an HTTP client sends it before reading
    assert_too_large(conv.replies_done(1)[0])
    assert conv.server_closed()


def test_a_big_body_in_the_same_read_as_its_head_is_not_taken_for_headers(emulator_factory, gateway_factory):
    emu = emulator_factory({})
    gw = gateway_factory(emulator_config(emu, server={"max_body_bytes": 1_000_000}), env=PROVIDER_KEYS)
    conv = Conversation(gw.port)
    for i in range(2):  # 300 kB bodies: each arrives in reads of up to 256 kB, head included
        conv.send(post("/v1/chat/completions", chat("x" * 300_000, max_tokens=4), f"big-{i}"))
        assert conv.replies_done(i + 1)[i].status == 200, conv.replies[i].body[:300]


def test_endless_headers_are_431_and_close(setup):
    _, gw = setup
    conv = Conversation(gw.port)
    conv.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n" + b"x-filler: " + b"f" * 70_000)
    reply = conv.replies_done(1)[0]
    assert reply.status == 431 and reply.json()["error"]["code"] == "headers_too_large"
    assert conv.server_closed()


def test_garbage_is_400_and_closes(setup):
    _, gw = setup
    conv = Conversation(gw.port)
    conv.send(b"HELLO THERE\r\n\r\n")
    reply = conv.replies_done(1)[0]
    assert reply.status == 400
    assert reply.json()["error"]["code"] == "malformed_http"
    assert conv.server_closed()


def test_one_connection_mixing_hot_and_aiohttp_paths(setup):
    _, gw = setup
    conv = Conversation(gw.port)
    steps = [(post("/v1/chat/completions", chat("one"), "mix-1"), 200), (get("/healthz"), 200),
             (get("/metrics"), 200), (post("/v1/chat/completions", chat("two", stream=True), "mix-2"), 200),
             (get("/v1/models"), 200), (get("/no/such/path"), 404),
             (post("/v1/chat/completions", chat("three"), "mix-3"), 200)]
    for i, (request, status) in enumerate(steps):
        conv.send(request)
        assert conv.replies_done(i + 1)[i].status == status, (request, conv.replies[i].body)
    replies = conv.replies
    assert b"tollway_" in replies[2].body, "/metrics is the observer's"
    assert b"data: [DONE]" in replies[3].body and replies[3].headers["x-request-id"] == "mix-2"
    assert replies[6].headers["x-request-id"] == "mix-3"
    assert not conv.closed
    conv.close()
    assert [gw.row(f"mix-{i}")["status"] for i in (1, 2, 3)] == ["ok"] * 3


def test_listing_models_first_keeps_the_connection_on_the_lean_server(setup):
    _, gw = setup
    conv = Conversation(gw.port)
    for i, request in enumerate([get("/v1/models"), get("/readyz"), post("/v1/chat/completions", chat(), "lean")]):
        conv.send(request)
        reply = conv.replies_done(i + 1)[i]
        assert reply.status == 200
        assert "server" not in reply.headers, "aiohttp (which names itself in Server) never took the connection"
    assert [m["id"] for m in conv.replies[0].json()["data"]] == ["chat", "gpt-4o-mini"]
    conv.close()


def test_http10_stream_is_unchunked_and_closes(setup):
    _, gw = setup
    conv = Conversation(gw.port)
    conv.send(post("/v1/chat/completions", chat("old client", stream=True), "http10", version="1.0"))
    assert conv.server_closed()
    head, _, body = conv.raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding" not in head
    assert body.startswith(b"data: ") and body.rstrip().endswith(b"data: [DONE]")
    assert gw.row("http10")["status"] == "ok"


def _stream_under_way(emulator_factory, gateway_factory, request_id: str, tpot_ms: int, tokens: int):
    """A gateway, and a raw connection on which a slow stream has sent its first event."""
    emu = emulator_factory({"models": {"deepseek-flash": {"ttft_ms": 50, "tpot_ms": tpot_ms, "output_tokens": tokens}}})
    gw = gateway_factory(emulator_config(emu), env=PROVIDER_KEYS)
    conv = Conversation(gw.port)
    conv.send(post("/v1/chat/completions", chat(f"story {request_id}", stream=True), request_id))
    conv.read_until(lambda: b"data: " in conv.raw)
    return gw, conv


def test_client_hanging_up_mid_stream_leaves_one_cancelled_row(emulator_factory, gateway_factory):
    gw, conv = _stream_under_way(emulator_factory, gateway_factory, "hang-up", tpot_ms=40, tokens=60)
    conv.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conv.close()  # a reset, as a killed client leaves it
    row = gw.row("hang-up")
    assert (row["status"], row["http_status"], row["error"]) == ("cancelled", 499, "client disconnected")
    time.sleep(0.5)
    assert [r["id"] for r in gw.rows()].count("hang-up") == 1


def test_sigterm_during_a_stream_lets_it_finish_and_writes_its_row(emulator_factory, gateway_factory):
    gw, conv = _stream_under_way(emulator_factory, gateway_factory, "drain", tpot_ms=30, tokens=40)
    codes: list[int] = []
    stopper = threading.Thread(target=lambda: codes.append(gw.terminate(signal.SIGTERM)))
    stopper.start()
    reply = conv.replies_done(1)[0]
    stopper.join(30)
    assert reply.status == 200 and reply.body.rstrip().endswith(b"data: [DONE]")
    assert reply.body.count(b"data: ") >= 40
    assert codes == [0]
    row = gw.row("drain")
    assert (row["status"], row["completion_tokens"]) == ("ok", 40)

"""The hot-path server's connection logic in process, where sockets cannot show it: idle timeouts, write
flow control, a client gone mid-stream, header rendering and lookup. A fake transport records writes."""

from __future__ import annotations

import asyncio

import pytest

import tollway.gateway.http_server as http_server
from tests.gateway.support import FakeTransport, fake_gateway
from tollway.gateway.exchange import LowerCaseHeaders, render_head
from tollway.gateway.http_server import HotPathServer

Settings = fake_gateway(1000)


class StreamingLife:
    """Stands in for RequestLife: streams `blocks`, recording what each write did."""

    blocks = [b"data: 1\n\n", b"data: 2\n\n"]
    outcome: list = []

    def __init__(self, gw, x, endpoint) -> None:
        self.x = x

    async def handle(self) -> None:
        try:
            sink = await self.x.start_stream({"Content-Type": "text/event-stream"})
            for block in self.blocks:
                await sink.write(block)
                StreamingLife.outcome.append("wrote")
        except ConnectionResetError:
            StreamingLife.outcome.append("client gone")


REQUEST = b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}"


def connect(server: HotPathServer) -> tuple[http_server.HttpConnection, FakeTransport]:
    conn, transport = server(), FakeTransport()
    conn.connection_made(transport)
    return conn, transport


@pytest.fixture
def streaming(monkeypatch):
    monkeypatch.setattr(http_server, "RequestLife", StreamingLife)
    StreamingLife.outcome = []
    return StreamingLife


def test_idle_keep_alive_connections_are_closed(monkeypatch):
    async def scenario() -> None:
        monkeypatch.setattr(http_server, "IDLE_TIMEOUT_S", 0.1)
        server = HotPathServer(Settings, None)  # type: ignore[arg-type]
        _, idle = connect(server)
        busy, busy_transport = connect(server)
        busy.idle_since = None  # as while a request is served
        await asyncio.sleep(0.25)
        assert idle.closed and not busy_transport.closed
        await server.shutdown(0.1)

    asyncio.run(scenario())


def test_a_paused_transport_holds_the_stream_until_it_drains(streaming):
    async def scenario() -> None:
        server = HotPathServer(Settings, None)  # type: ignore[arg-type]
        conn, transport = connect(server)
        conn.pause_writing()
        conn.data_received(REQUEST)
        await asyncio.sleep(0.05)
        assert streaming.outcome == [], "the first write waits for the transport to drain"
        assert b"data: 1" in transport.written
        conn.resume_writing()
        await asyncio.sleep(0.05)
        assert streaming.outcome == ["wrote", "wrote"]
        assert transport.written.endswith(b"\r\n0\r\n\r\n") and not transport.closed, "last chunk, keep-alive"

    asyncio.run(scenario())


def test_a_client_gone_while_paused_ends_the_stream(streaming):
    async def scenario() -> None:
        server = HotPathServer(Settings, None)  # type: ignore[arg-type]
        conn, _ = connect(server)
        conn.pause_writing()
        conn.data_received(REQUEST)
        await asyncio.sleep(0.05)
        conn.connection_lost(ConnectionResetError())
        await asyncio.sleep(0.05)
        assert streaming.outcome == ["client gone"]
        assert conn not in server.connections

    asyncio.run(scenario())


def test_writes_after_the_client_left_raise_connection_reset(streaming):
    async def scenario() -> None:
        server = HotPathServer(Settings, None)  # type: ignore[arg-type]
        conn, transport = connect(server)
        conn.connection_lost(None)
        conn.data_received(REQUEST)  # bytes already read before the loss was seen
        await asyncio.sleep(0.05)
        assert streaming.outcome == ["client gone"]
        assert transport.written == b""

    asyncio.run(scenario())


def test_render_head_refuses_a_header_value_with_a_line_break():
    with pytest.raises(ValueError, match="line break"):
        render_head(200, {"x-evil": "a\r\nSet-Cookie: b"}, "Content-Length: 0\r\n")
    head = render_head(404, {"x-a": "1"}, "Content-Length: 0\r\n").decode()
    assert head.startswith("HTTP/1.1 404 Not Found\r\nDate: ") and head.endswith("x-a: 1\r\n\r\n")


def test_lower_case_headers_find_any_spelling():
    headers = LowerCaseHeaders({"x-session-id": "s1", "authorization": "Bearer k"})
    assert headers.get("X-Session-Id") == "s1" and headers.get("authorization") == "Bearer k"
    assert headers.get("api-key", "") == "" and headers.get("Missing") is None

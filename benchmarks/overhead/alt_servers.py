"""The same minimal endpoint on four Python HTTP server stacks, to choose tollway's by measurement.

Each reads the POSTed body, decodes it with orjson (a gateway must look at `model`), and answers the fake
upstream's 64-token completion. What differs is only the server: aiohttp's, uvicorn (uvloop + httptools,
plain ASGI), granian (Rust HTTP, RSGI interface), and a raw asyncio Protocol on httptools.

    python alt_servers.py aiohttp|uvicorn|raw PORT      (granian is started through its own CLI on `rsgi_app`)
"""

from __future__ import annotations

import asyncio
import sys

import httptools
import orjson

from fake_upstream import PLAIN

HEADERS_END = PLAIN.index(b"\r\n\r\n")
BODY = PLAIN[HEADERS_END + 4:]


def _answer(raw: bytes) -> bytes:
    request = orjson.loads(raw)
    if not isinstance(request, dict) or "model" not in request:
        raise ValueError("no model")
    return BODY


def run_aiohttp(port: int) -> None:
    from aiohttp import web

    async def chat(request: web.Request) -> web.Response:
        return web.Response(body=_answer(await request.read()), content_type="application/json")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/health", health)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


async def asgi_app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = _answer(b"".join(chunks)) if scope["method"] == "POST" else b"ok"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def rsgi_app(scope, proto) -> None:
    if scope.method == "POST":
        proto.response_bytes(200, [("content-type", "application/json")], _answer(await proto()))
    else:
        proto.response_bytes(200, [("content-type", "text/plain")], b"ok")


class RawProtocol(asyncio.Protocol):
    """httptools straight onto the transport: the least a Python server can do per request."""

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._body: list[bytes] = []
        self._transport = None

    def connection_made(self, transport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_message_begin(self) -> None:
        self._body = []

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._parser.get_method() == b"POST":
            self._transport.write(PLAIN[:HEADERS_END + 4] + _answer(b"".join(self._body)))
        else:
            self._transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def run_raw(port: int) -> None:
    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(RawProtocol, "127.0.0.1", port, backlog=4096)
        await server.serve_forever()

    asyncio.run(serve())


def run_uvicorn(port: int) -> None:
    import uvicorn

    uvicorn.run(asgi_app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", access_log=False,
                log_level="warning", lifespan="off")


if __name__ == "__main__":
    import uvloop

    uvloop.install()
    {"aiohttp": run_aiohttp, "uvicorn": run_uvicorn, "raw": run_raw}[sys.argv[1]](int(sys.argv[2]))

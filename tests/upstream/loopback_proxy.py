"""Test servers for the egress-proxy tests: an HTTP proxy (CONNECT and absolute-form) and a TLS upstream.

The proxy sends every host to 127.0.0.1 (the tests name upstreams `*.test`, which resolve nowhere), so a
request that arrives proves it went through the proxy: the gateway never resolved the name itself.
Both run on one event loop in a background thread, beside the gateway's real process.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from urllib.parse import urlsplit

ANSWER = {"id": "chatcmpl-tls", "object": "chat.completion", "created": 1, "model": "m",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "through the tunnel"},
                       "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}}


class LoopbackProxy:
    """A forward proxy for tests: records each connection's first request head, checks credentials."""

    def __init__(self, authorization: str | None = None) -> None:
        self.authorization = authorization
        self.heads: list[str] = []
        self.port = 0

    async def start(self) -> None:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        head = await client_r.readuntil(b"\r\n\r\n")
        self.heads.append(head.decode("latin-1"))
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ")
        if self.authorization and f"\r\nProxy-Authorization: {self.authorization}\r\n" not in self.heads[-1]:
            client_w.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n"
                           b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            client_w.close()
            return
        port = int(target.rsplit(":", 1)[1]) if method == "CONNECT" else urlsplit(target).port
        up_r, up_w = await asyncio.open_connection("127.0.0.1", port)
        if method == "CONNECT":
            client_w.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:  # forward the head without the proxy's own header (origin servers accept the absolute form)
            lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"proxy-authorization:")]
            up_w.write(b"\r\n".join(lines))
        await asyncio.gather(_pipe(client_r, up_w), _pipe(up_r, client_w))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


class TlsUpstream:
    """An OpenAI-shaped chat endpoint over TLS: answers every POST with ANSWER, records request heads."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.heads: list[str] = []
        self.port = 0

    async def start(self) -> None:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.context)
        self.port = server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = json.dumps(ANSWER).encode()
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                text = head.decode("latin-1")
                self.heads.append(text)
                length = next((int(ln.split(":", 1)[1]) for ln in text.split("\r\n")
                               if ln.lower().startswith("content-length:")), 0)
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%b"
                             % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            writer.close()


class BackgroundLoop:
    """An event loop in a daemon thread, to run test servers beside real processes."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

"""A lean pooled HTTP/1.1 client for calling upstreams, built on httptools' parser.

Why not aiohttp's client: measured side by side (docs/performance.md), it spends about two thirds of a
bare pass-through proxy's CPU per request on machinery tollway does not use (cookies, redirects,
tracing signals, multidict headers, content decoding). An LLM upstream call is one POST with a JSON body
and a response read whole or relayed chunk by chunk; this client does exactly that over keep-alive
connections (TLS via the event loop), with httptools doing the parsing (including chunked transfer
encoding). It does not follow redirects, decode gzip (tollway asks for identity), or use HTTP proxies.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import AsyncIterator
from urllib.parse import urlsplit

import httptools


class UpstreamConnectionError(Exception):
    """Could not connect (refused, DNS, TLS) or the connection broke; the request may be retried elsewhere."""


class UpstreamProtocolError(UpstreamConnectionError):
    """The upstream's bytes were not valid HTTP, or it closed before the answer was complete."""


_SSL_CONTEXT: ssl.SSLContext | None = None


def _ssl_context() -> ssl.SSLContext:
    global _SSL_CONTEXT
    if _SSL_CONTEXT is None:
        _SSL_CONTEXT = ssl.create_default_context()
    return _SSL_CONTEXT


class Response:
    """An upstream answer: status and headers at once, the body read whole or chunk by chunk."""

    __slots__ = ("status", "headers", "_conn", "_finished")

    def __init__(self, status: int, headers: dict[str, str], conn: "_Connection") -> None:
        self.status = status
        self.headers = headers  # lower-case names
        self._conn = conn
        self._finished = False

    async def read(self) -> bytes:
        parts = [chunk async for chunk in self.iter_chunks()]
        return b"".join(parts)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while True:
            chunk = await conn.next_body_chunk()
            if chunk is None:
                self._finished = True
                conn.release()
                return
            yield chunk

    def close(self) -> None:
        """Abandon the answer if it is not read to the end: a half-read connection is never reused."""
        if not self._finished:
            self._finished = True
            self._conn.abort()


class _Connection(asyncio.Protocol):
    """One keep-alive connection; httptools calls the on_* methods as bytes are parsed."""

    def __init__(self, pool: "_HostPool") -> None:
        self._pool = pool
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._headers: dict[str, str] = {}
        self._header_name = b""
        self._headers_done: asyncio.Future | None = None
        self._body: deque[bytes] = deque()
        self._body_waiter: asyncio.Future | None = None
        self._complete = False
        self._broken: Exception | None = None
        self.reusable = False
        self.used = False  # has served a request before: may have been closed by the upstream meanwhile

    # --- asyncio.Protocol -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(f"invalid HTTP from upstream: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._pool.forget(self)
        if not self._complete:
            self._fail(UpstreamProtocolError("upstream closed the connection before the answer was complete"))

    # --- httptools callbacks ----------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        if self._headers_done is not None and not self._headers_done.done():
            self._headers_done.set_result(self._parser.get_status_code())

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._wake()

    def on_message_complete(self) -> None:
        self._complete = True
        self.reusable = self._parser.should_keep_alive()
        self._wake()

    # --- used by the pool and Response --------------------------------------------------------------
    async def send(self, request: bytes) -> Response:
        self.used = True
        self._headers = {}
        self._body.clear()
        self._complete = False
        self._broken = None
        self._parser = httptools.HttpResponseParser(self)
        self._headers_done = asyncio.get_running_loop().create_future()
        assert self._transport is not None
        self._transport.write(request)
        try:
            status = await self._headers_done
        except BaseException:  # cancelled (a hedge loser, a client gone) or broken: never leave it open
            self.abort()
            raise
        return Response(status, self._headers, self)

    async def next_body_chunk(self) -> bytes | None:
        """Everything received since the last call, as one piece: a socket read that carried many HTTP
        chunks (one per SSE event) becomes one write to the client, not one per event."""
        while not self._body:
            if self._complete:
                return None
            if self._broken is not None:
                raise self._broken
            self._body_waiter = asyncio.get_running_loop().create_future()
            await self._body_waiter
        if len(self._body) == 1:
            return self._body.popleft()
        joined = b"".join(self._body)
        self._body.clear()
        return joined

    def release(self) -> None:
        if self.reusable and self._complete:
            self._pool.give_back(self)
        else:
            self.abort()

    def abort(self) -> None:
        self.reusable = False
        if self._transport is not None:
            self._transport.close()

    def _wake(self) -> None:
        waiter = self._body_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: Exception) -> None:
        self._broken = exc
        if self._headers_done is not None and not self._headers_done.done():
            self._headers_done.set_exception(exc)
        self._wake()


class _HostPool:
    """Idle keep-alive connections to one (scheme, host, port)."""

    def __init__(self, host: str, port: int, tls: bool, max_idle: int = 256) -> None:
        self.host, self.port, self.tls = host, port, tls
        self._idle: list[_Connection] = []
        self._max_idle = max_idle
        self.host_header = host if port in (80, 443) else f"{host}:{port}"

    async def connection(self, connect_timeout: float) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if conn.reusable and conn._transport is not None and not conn._transport.is_closing():
                return conn
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_timeout):
                _, conn = await loop.create_connection(lambda: _Connection(self), self.host, self.port,
                                                       ssl=_ssl_context() if self.tls else None)
        except TimeoutError:
            raise UpstreamConnectionError(f"connect timeout after {connect_timeout:g}s") from None
        except OSError as exc:
            raise UpstreamConnectionError(f"cannot connect: {exc.strerror or exc}") from None
        return conn

    def give_back(self, conn: _Connection) -> None:
        if len(self._idle) < self._max_idle:
            self._idle.append(conn)
        else:
            conn.abort()

    def forget(self, conn: _Connection) -> None:
        if conn in self._idle:
            self._idle.remove(conn)

    def close(self) -> None:
        for conn in self._idle:
            conn.abort()
        self._idle.clear()


Target = tuple[_HostPool, bytes]


class HttpClient:
    """POST JSON to upstreams over pooled keep-alive connections."""

    def __init__(self) -> None:
        self._pools: dict[tuple[str, int, bool], _HostPool] = {}

    async def post(self, target: "Target", body: bytes, connect_timeout: float) -> Response:
        """POST `body` to a target made once by `target()` (callers cache it: building it costs more than sending)."""
        pool, head = target
        request = head + str(len(body)).encode() + b"\r\n\r\n" + body
        while True:
            conn = await pool.connection(connect_timeout)
            reused = conn.used
            try:
                return await conn.send(request)
            except UpstreamProtocolError:
                conn.abort()
                if not reused:
                    raise
                # an idle keep-alive connection the upstream had closed: try once more on a fresh one

    def target(self, url: str, headers: dict[str, str]) -> "Target":
        """The connection pool and the request head (up to Content-Length) for POSTs to `url` with `headers`."""
        parts = urlsplit(url)
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        host = parts.hostname or ""
        pool = self._pools.get((host, port, tls))
        if pool is None:
            pool = self._pools[(host, port, tls)] = _HostPool(host, port, tls)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"POST {path} HTTP/1.1", f"Host: {pool.host_header}", "Connection: keep-alive"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
        return pool, ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()

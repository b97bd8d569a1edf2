"""A lean pooled HTTP/1.1 client for calling upstreams, built on httptools' parser.

Why not aiohttp's client: measured side by side (docs/performance.md), it spends about two thirds of a
bare pass-through proxy's CPU per request on machinery tollway does not use (cookies, redirects,
tracing signals, multidict headers, content decoding). An LLM upstream call is one POST with a JSON body
and a response read whole or relayed chunk by chunk; this client does exactly that over keep-alive
connections (TLS via the event loop), with httptools doing the parsing (including chunked transfer
encoding). It does not follow redirects or decode gzip (tollway asks for identity); an egress proxy from
HTTPS_PROXY / HTTP_PROXY / NO_PROXY is honoured (upstream/proxy.py).

Why it looks the way it does: a streamed answer arrives as one HTTP chunk per SSE event, and httptools
calls back once per chunk and once per header. Those callbacks are bound C methods (`list.append`,
`dict.__setitem__`), not Python functions, and the waiting task is woken once per socket read, not
once per chunk; headers stay raw bytes until someone asks for one.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from urllib.parse import urlsplit

import httptools

from tollway.upstream.deadlines import DeadlineHeap
from tollway.upstream.proxy import Proxy, ProxyRules, absolute_form_head, connect_through


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
    """An upstream answer: status at once, headers decoded on first use, the body read whole or piece by piece."""

    __slots__ = ("status", "_raw_headers", "_headers", "_conn", "_finished")

    def __init__(self, status: int, raw_headers: dict[bytes, bytes], conn: "_Connection") -> None:
        self.status = status
        self._raw_headers = raw_headers
        self._headers: dict[str, str] | None = None
        self._conn = conn
        self._finished = False

    @property
    def headers(self) -> dict[str, str]:
        """Every header, lower-case names (decoded once, on first use)."""
        if self._headers is None:
            self._headers = {name.decode("latin-1").lower(): value.decode("latin-1")
                             for name, value in self._raw_headers.items()}
        return self._headers

    def header(self, name: str) -> str | None:
        """One header by its lower-case name, without decoding the others (an answer may carry twenty)."""
        if self._headers is not None:
            return self._headers.get(name)
        raw = self._raw_headers
        lower, title = _spellings(name)
        value = raw.get(lower)
        if value is None:
            value = raw.get(title)
        if value is None:
            for key, found in raw.items():
                if len(key) == len(lower) and key.lower() == lower:
                    value = found
                    break
            else:
                return None
        return value.decode("latin-1")

    async def read(self) -> bytes:
        """The whole body; the connection goes back to the pool. Woken once per read until the answer is
        complete (like `next_chunk`, it reads the connection's state directly)."""
        conn = self._conn
        try:
            while not conn._complete:
                if conn._broken is not None:
                    raise conn._broken
                conn._waiter = waiter = conn._loop.create_future()
                await waiter
        except BaseException:
            self.close()
            raise
        body = conn._body
        whole = body[0] if len(body) == 1 else b"".join(body)
        body.clear()
        self._finished = True
        conn.release()
        return whole

    def set_deadline(self, when: float | None) -> None:
        """Fail whatever waits on this answer with TimeoutError at loop time `when` (None: no deadline).
        Replaces the deadline given to `HttpClient.post`; cheap enough to move on every read."""
        self._conn.set_deadline(when)

    async def next_chunk(self) -> bytes | None:
        """Everything received since the last call, as one piece, or None at the end: a socket read that
        carried many HTTP chunks (one per SSE event) becomes one write to the client, not one per event.
        (It reads the connection's state directly: one coroutine per read, not two, on a path taken
        once per token of every paced stream.)"""
        conn = self._conn
        body = conn._body
        while not body:
            if conn._complete:
                self._finished = True
                conn.release()
                return None
            if conn._broken is not None:
                raise conn._broken
            conn._waiter = waiter = conn._loop.create_future()
            await waiter
        chunk = body[0] if len(body) == 1 else b"".join(body)
        body.clear()  # in place: the parser appends to this very list
        return chunk

    def close(self) -> None:
        """Abandon the answer if it is not read to the end: a half-read connection is never reused."""
        if not self._finished:
            self._finished = True
            self._conn.abort()


_SPELLINGS: dict[str, tuple[bytes, bytes]] = {}


def _spellings(name: str) -> tuple[bytes, bytes]:
    """A header name as bytes, lower case and Title-Case (the two ways servers send it)."""
    found = _SPELLINGS.get(name)
    if found is None:
        found = _SPELLINGS[name] = (name.encode("latin-1"), name.title().encode("latin-1"))
    return found


class _Connection(asyncio.Protocol):
    """One keep-alive connection; httptools fills `_raw_headers` and `_body` as bytes are parsed."""

    def __init__(self, pool: "_HostPool") -> None:
        self._pool = pool
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._body: list[bytes] = []
        self.on_body = self._body.append  # httptools calls it once per HTTP chunk: keep it in C
        self._new_parser()
        self._status = 0
        self._waiter: asyncio.Future | None = None
        self._complete = False
        self._broken: Exception | None = None
        self._deadline: list | None = None
        self.reusable = False
        self.used = False  # has served a request before: may have been closed by the upstream meanwhile

    def _new_parser(self) -> None:
        """A fresh header dict per answer (a Response keeps its own) and a parser bound to it."""
        self._raw_headers: dict[bytes, bytes] = {}
        self.on_header = self._raw_headers.__setitem__
        self._parser = httptools.HttpResponseParser(self)

    # --- asyncio.Protocol -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(f"invalid HTTP from upstream: {exc}"))
            return
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._pool.forget(self)
        if not self._complete:
            self._fail(UpstreamProtocolError("upstream closed the connection before the answer was complete"))

    # --- httptools callbacks (on_header and on_body are bound C methods, set above) -------------------
    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_message_complete(self) -> None:
        self._complete = True
        self.reusable = self._parser.should_keep_alive()

    # --- used by HttpClient and Response --------------------------------------------------------------
    async def send(self, request: bytes, deadline: float | None) -> Response:
        """Write the request and wait for the answer's status and headers."""
        if self.used:
            self._new_parser()
            self._body.clear()
            self._status = 0
            self._complete = False
            self._broken = None
        self.used = True
        if deadline is not None:
            self.set_deadline(deadline)
        assert self._transport is not None
        self._transport.write(request)
        try:
            while not self._status:
                if self._broken is not None:
                    raise self._broken
                self._waiter = self._loop.create_future()
                await self._waiter
        except BaseException:  # cancelled (a hedge loser, a client gone) or broken: never leave it open
            self.abort()
            raise
        return Response(self._status, self._raw_headers, self)

    def set_deadline(self, when: float | None) -> None:
        deadlines = self._pool.deadlines
        if self._deadline is not None:
            deadlines.cancel(self._deadline)
            self._deadline = None
        if when is not None:
            self._deadline = deadlines.add(when, self._expire)

    def _expire(self) -> None:
        self._deadline = None
        self._fail(TimeoutError("upstream deadline passed"))
        self.abort()

    def release(self) -> None:
        if self._deadline is not None:
            self.set_deadline(None)
        if self.reusable and self._complete:
            self._pool.give_back(self)
        else:
            self.abort()

    def abort(self) -> None:
        self.reusable = False
        if self._deadline is not None:
            self.set_deadline(None)
        if self._transport is not None:
            self._transport.close()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _fail(self, exc: Exception) -> None:
        if self._broken is None:  # the first cause wins: a deadline's abort must not turn into "closed"
            self._broken = exc
        self.reusable = False
        self._wake()


class _HostPool:
    """Idle keep-alive connections to one (scheme, host, port)."""

    def __init__(self, host: str, port: int, tls: bool, deadlines: DeadlineHeap, max_idle: int = 256,
                 proxy: Proxy | None = None) -> None:
        self.host, self.port, self.tls, self.proxy = host, port, tls, proxy
        self.deadlines = deadlines
        self._idle: list[_Connection] = []
        self._max_idle = max_idle
        self.host_header = host if port in (80, 443) else f"{host}:{port}"

    def idle_connection(self) -> _Connection | None:
        """A kept-alive connection that still looks open, if there is one (no await: the usual case)."""
        while self._idle:
            conn = self._idle.pop()
            transport = conn._transport
            if conn.reusable and transport is not None and not transport.is_closing():
                return conn
        return None

    async def new_connection(self, connect_timeout: float, deadline: float | None) -> _Connection:
        """A fresh connection within connect_timeout; TimeoutError if the call's deadline comes first."""
        loop = asyncio.get_running_loop()
        limit = loop.time() + connect_timeout
        by_deadline = deadline is not None and deadline < limit
        try:
            async with asyncio.timeout_at(deadline if by_deadline else limit):
                tls = _ssl_context() if self.tls else None
                if self.proxy is not None:
                    conn = await connect_through(self.proxy, self.host, self.port, tls, lambda: _Connection(self))
                else:
                    _, conn = await loop.create_connection(lambda: _Connection(self), self.host, self.port, ssl=tls)
        except TimeoutError:
            if by_deadline:
                raise TimeoutError("deadline passed while connecting") from None
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

    def __init__(self, proxies: ProxyRules | None = None) -> None:
        self._pools: dict[tuple[str, int, bool], _HostPool] = {}
        self._deadlines = DeadlineHeap()
        self.proxies = ProxyRules.from_environment() if proxies is None else proxies
        if self.proxies.describe():
            logging.getLogger("tollway.upstream").info("upstream calls go through a proxy: %s (NO_PROXY and "
                                                       "loopback direct)", self.proxies.describe())

    async def post(self, target: "Target", body: bytes, connect_timeout: float,
                   deadline: float | None = None) -> Response:
        """POST `body` to a target made once by `target()` (callers cache it: building it costs more than sending).

        With a `deadline` (loop time), connecting, waiting and reading the answer raise TimeoutError once
        it passes (the connection is closed); `Response.set_deadline` moves or clears it.
        """
        pool, head = target
        request = b"%b%d\r\n\r\n%b" % (head, len(body), body)
        while True:
            conn = pool.idle_connection() or await pool.new_connection(connect_timeout, deadline)
            reused = conn.used
            try:
                return await conn.send(request, deadline)
            except UpstreamProtocolError:
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
            proxy = self.proxies.for_url(tls, host, port)
            pool = self._pools[(host, port, tls)] = _HostPool(host, port, tls, self._deadlines, proxy=proxy)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request_line, proxy_lines = f"POST {path} HTTP/1.1", list[str]()
        if pool.proxy is not None and not tls:  # plain http through a proxy: it needs the whole URL
            request_line, proxy_lines = absolute_form_head(pool.proxy, pool.host_header, path)
        lines = [request_line, f"Host: {pool.host_header}", "Connection: keep-alive", *proxy_lines]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
        return pool, ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()

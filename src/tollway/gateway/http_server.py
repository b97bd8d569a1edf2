"""The hot-path HTTP/1.1 server: an asyncio Protocol on httptools serving the OpenAI endpoints.

aiohttp's server costs ~0.08 ms per request in Request/StreamResponse objects, header handling and its
chunked writer; this server parses with httptools straight into a `RawExchange` (exchange.py) and writes
each answer with one `transport.write`. It serves POST /v1/chat/completions, /v1/completions and
/v1/embeddings (the path without its query string) to RequestLife, and answers GET /v1/models, /healthz
and /readyz itself (Gateway.simple_answer), so that a client listing models first stays on this path.

The operational paths (metrics, admin, dashboard) stay on the aiohttp application; an unknown path or a
wrong method is refused here, OpenAI-shaped, with its ledger row (edge.py). The first request on a
connection for an operational path switches the connection to aiohttp for good: an aiohttp
RequestHandler is made from the AppRunner's `web.Server` on the same transport, and this protocol keeps
parsing and hands it each later request re-serialised (one head with Content-Length, the body
de-chunked). Re-serialising, rather than giving aiohttp the transport and the bytes as they came, keeps
pipelined requests exact (httptools does not say where in a read one message ends, so raw bytes cannot
be split at a message boundary, while parsed messages can be replayed in order), and means aiohttp only
ever sees well-formed HTTP: malformed input, an oversized head or body is found by this parser and its
refusal handed to aiohttp as one more request, answered in turn (edge.hand_over). aiohttp's app serves
the hot routes too (through AiohttpExchange) for clients that mix paths on one connection.

`Upgrade` (h2c, websocket) is declined, never honoured: the request is parsed again without it, so a
body is always read as a body and never as a smuggled request of its own.

HTTP/1.1 as clients use it: keep-alive (HTTP/1.0 and `Connection: close` honoured), Content-Length and
chunked request bodies, pipelined requests answered in order, `Expect: 100-continue`, the body limit
enforced while reading (413, then close), malformed HTTP answered 400 and closed, write flow control for
streams, idle keep-alive connections closed after IDLE_TIMEOUT_S, a Date header cached per second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Iterable

import httptools

from tollway.core.errors import GatewayError, body_too_large
from tollway.gateway import edge
from tollway.gateway.edge import HOT_PATHS, SIMPLE_GETS
from tollway.gateway.exchange import LowerCaseHeaders, RawExchange
from tollway.gateway.handler import RequestLife

if TYPE_CHECKING:
    from aiohttp import web

    from tollway.gateway.app import Gateway

log = logging.getLogger("tollway.gateway")

IDLE_TIMEOUT_S = 75.0  # aiohttp's keep-alive default, which these connections had before
MAX_HEAD_BYTES = 65536  # request line and headers; httptools itself sets no limit
LINGER_S = 2.0  # how long a refused upload may keep sending after our answer, before the close
_MAX_QUEUED = 32  # pipelined requests waiting on one connection before it stops reading
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class HotPathServer:
    """The protocol factory for `loop.create_server`, and the registry of its connections for shutdown."""

    def __init__(self, gateway: "Gateway", aiohttp_server: "web.Server", aiohttp_paths: Iterable[str] = ()) -> None:
        """`aiohttp_paths`: the canonical paths of the aiohttp application's routes, which it is sent."""
        self.gateway = gateway  # each request takes `gateway.services` as it starts: a reload swaps that record
        self.aiohttp_server = aiohttp_server
        self.max_body_bytes = gateway.config.server.max_body_bytes
        self.for_aiohttp = edge.aiohttp_path_test(aiohttp_paths)
        self.connections: set[HttpConnection] = set()
        self.closing = False
        self._sweeper: asyncio.TimerHandle | None = None

    def __call__(self) -> "HttpConnection":
        if self._sweeper is None:
            self._sweep()
        return HttpConnection(self)

    def _sweep(self) -> None:
        """Close keep-alive connections idle for IDLE_TIMEOUT_S; one timer for all, not one per request."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for conn in [c for c in self.connections if c.idle_since is not None and now - c.idle_since > IDLE_TIMEOUT_S]:
            conn.transport.close()
        self._sweeper = loop.call_later(IDLE_TIMEOUT_S / 5, self._sweep)

    async def shutdown(self, timeout: float) -> None:
        """Let requests in flight finish (up to `timeout`), closing each connection as it goes idle;
        connections aiohttp owns are left to the AppRunner's own shutdown."""
        self.closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self.connections):
            conn.close_when_done()
        deadline = time.monotonic() + timeout
        while any(c.aiohttp is None for c in self.connections) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for conn in [c for c in self.connections if c.aiohttp is None]:
            conn.abort()


class HttpConnection(asyncio.Protocol):
    """One client connection: parse requests, serve them one at a time, in order."""

    def __init__(self, server: HotPathServer) -> None:
        self.server = server
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.parser = httptools.HttpRequestParser(self)
        self.lost = self.paused = False
        self.idle_since: float | None = None
        self.aiohttp: asyncio.Protocol | None = None  # set when aiohttp serves this connection from now on
        self._to_aiohttp = False
        self._url = b""
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._body_size = 0
        self._incoming: RawExchange | list | None = None  # the message being read (a list: one for aiohttp)
        self._queue: deque[RawExchange | bytes] = deque()
        self._task: asyncio.Task | None = None
        self._drain: asyncio.Future | None = None
        self._discard = self._eof = self._reading_paused = self._continue_owed = False
        self._head_bytes = 0  # read while no request head was complete: bounded by MAX_HEAD_BYTES
        self._upgrading = self._replaying_head = False
        self._progress = 0  # heads and messages completed: a read that completes none is all head

    # --- the transport's side ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)
        self.idle_since = asyncio.get_running_loop().time()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.server.connections.discard(self)
        if self._drain is not None and not self._drain.done():
            self._drain.set_exception(ConnectionResetError("the client disconnected"))
        if self.aiohttp is not None:
            self.aiohttp.connection_lost(exc)

    def eof_received(self) -> bool:
        """The client stopped sending: finish what it asked for, then close."""
        if self.aiohttp is not None:
            self.aiohttp.eof_received()
        self._eof = True
        return self._task is not None or bool(self._queue) or self.aiohttp is not None

    def pause_writing(self) -> None:
        self.paused = True
        if self.aiohttp is not None:
            self.aiohttp.pause_writing()

    def resume_writing(self) -> None:
        self.paused = False
        if self._drain is not None:
            if not self._drain.done():
                self._drain.set_result(None)
            self._drain = None
        if self.aiohttp is not None:
            self.aiohttp.resume_writing()

    async def drained(self) -> None:
        if self.paused:
            if self._drain is None:
                self._drain = asyncio.get_running_loop().create_future()
            await self._drain

    def data_received(self, data: bytes) -> None:
        if self._discard:
            return
        progress = self._progress
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._decline_upgrade(data[exc.args[0]:] if exc.args else b"")
            return
        except httptools.HttpParserError as exc:
            self._malformed(str(exc) or type(exc).__name__)
            return
        if self._progress == progress and self._incoming is None and not self._discard:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._discard = True
                self._fail(GatewayError(431, f"The request line and headers are larger than {MAX_HEAD_BYTES} bytes.",
                                        "invalid_request_error", "headers_too_large"))

    # --- httptools' callbacks ---

    def on_message_begin(self) -> None:
        self._url, self._raw_headers, self._body, self._body_size, self._incoming = b"", [], [], 0, None
        self._upgrading = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._discard:
            return
        self._head_bytes, self._progress = 0, self._progress + 1
        parser = self.parser
        if parser.should_upgrade():  # the parser stops at the head: its body is read again (_decline_upgrade)
            self._upgrading = True
            return
        method, path = parser.get_method(), self._url.partition(b"?")[0]
        keep_alive, http11 = parser.should_keep_alive(), parser.get_http_version() == "1.1"
        # reversed: the first of repeated headers wins, as with aiohttp's headers.get
        # values without trailing whitespace, which is not part of a field value (RFC 9110 §5.5)
        headers = LowerCaseHeaders({name.decode("latin-1").lower(): value.decode("latin-1").rstrip(" \t")
                                    for name, value in reversed(self._raw_headers)})
        endpoint: str | None = None
        refusal: GatewayError | None = None
        if not self._to_aiohttp:
            if method == b"POST":
                endpoint = HOT_PATHS.get(path)
            elif method == b"GET":
                endpoint = SIMPLE_GETS.get(path)
            if endpoint is None and not self.server.for_aiohttp(path):
                refusal = edge.refusal_for(method, path)
        if endpoint is None and refusal is None:
            self._to_aiohttp = True
            self._incoming = [method, parser.get_http_version(), keep_alive, http11]
        elif refusal is not None:  # a wrong method on an API path is answered in that API's shape
            self._incoming = RawExchange(self, HOT_PATHS.get(path), headers, keep_alive, http11, refusal)
        else:
            self._incoming = RawExchange(self, endpoint, headers, keep_alive, http11)
        length = dict.get(headers, "content-length")
        if length is not None and length.isdigit() and int(length) > self.server.max_body_bytes:
            self._too_large()
        elif "expect" in headers and headers["expect"].lower() == "100-continue":
            if self._task is None and not self._queue and self.aiohttp is None:
                self.transport.write(_CONTINUE)
            else:
                self._continue_owed = True

    def on_body(self, body: bytes) -> None:
        if self._discard:
            return
        self._body_size += len(body)
        if self._body_size > self.server.max_body_bytes:
            self._too_large()
        else:
            self._body.append(body)

    def on_message_complete(self) -> None:
        if self._discard or self._upgrading:
            return
        incoming, self._incoming = self._incoming, None
        self._progress += 1
        if isinstance(incoming, RawExchange):
            incoming.body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
            self._enqueue(incoming)
        elif incoming is not None:
            method, version, keep_alive, _ = incoming
            self._enqueue(edge.reserialised(method, self._url, version, keep_alive, self._raw_headers,
                                            b"".join(self._body)))

    # --- serving, in order ---

    def _enqueue(self, item: RawExchange | bytes) -> None:
        if self._task is None and not self._queue:
            self._start(item)
            return
        self._queue.append(item)
        if len(self._queue) >= _MAX_QUEUED and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()

    def _start(self, item: RawExchange | bytes) -> None:
        self.idle_since = None
        if isinstance(item, bytes):
            self._feed_aiohttp(item)
        else:
            self._task = asyncio.get_running_loop().create_task(self._serve(item))

    async def _serve(self, x: RawExchange) -> None:
        try:
            if x.error is not None:
                await RequestLife(self.server.gateway.services, x, edge.REFUSAL_ENDPOINT,
                                  answer_as=x.endpoint).refuse(x.error)
            elif x.endpoint == "/v1/models":  # per key: the answer needs the request's headers
                x.respond(*await self.server.gateway.models_answer(x))
            elif x.endpoint[0] == "/":  # type: ignore[index]
                x.respond(*self.server.gateway.simple_answer(x.endpoint))  # type: ignore[arg-type]
            else:
                await RequestLife(self.server.gateway.services, x, x.endpoint).handle()  # type: ignore[arg-type]
        except asyncio.CancelledError:
            self.abort()
            raise
        except Exception:
            log.exception("unexpected error serving %s", x.endpoint)
            x.keep_alive = False
        x.finish()
        self._task = None
        self._next(x)

    def _next(self, done: RawExchange) -> None:
        if self.lost:
            return
        if not done.keep_alive or self.server.closing or (self._eof and not self._queue):
            self._close()
            return
        while self._queue and self._task is None:
            self._start(self._queue.popleft())
        if self._reading_paused and len(self._queue) < _MAX_QUEUED // 4:
            self._reading_paused = False
            self.transport.resume_reading()
        if self._task is None and self.aiohttp is None:
            self.idle_since = asyncio.get_running_loop().time()
            if self._continue_owed and self._incoming is not None:
                self._continue_owed = False
                self.transport.write(_CONTINUE)

    def _feed_aiohttp(self, message: bytes) -> None:
        if self.aiohttp is None:
            self.aiohttp = self.server.aiohttp_server()
            self.aiohttp.connection_made(self.transport)
            if self.paused:
                self.aiohttp.pause_writing()
        self.aiohttp.data_received(message)

    # --- ending early ---

    def _too_large(self) -> None:
        """Answer 413 in turn (a hot request still authenticates first, and gets its ledger row), then close."""
        self._discard = True
        incoming, self._incoming = self._incoming, None
        if isinstance(incoming, RawExchange):
            incoming.too_large, incoming.keep_alive = True, False
            self._enqueue(incoming)
        else:
            self._fail(body_too_large(self.server.max_body_bytes))

    def _malformed(self, reason: str) -> None:
        self._discard = True
        self._fail(GatewayError(400, f"Malformed HTTP request: {reason}.", "invalid_request_error",
                                "malformed_http"))

    def _fail(self, error: GatewayError) -> None:
        """Answer `error` after everything before it, then close. Where aiohttp answers on this connection
        the error is handed to it as one more request, so its answers and ours stay in order."""
        answer_as = edge.answering_endpoint(self._url)
        if self._to_aiohttp:
            self._enqueue(edge.hand_over(error, self._given_request_id(), answer_as))
            return
        self._enqueue(RawExchange(self, answer_as, LowerCaseHeaders(), False, True, error))

    def _given_request_id(self) -> str | None:
        for name, value in self._raw_headers:
            if name.lower() == b"x-request-id":
                return value.decode("latin-1")
        return None

    def _decline_upgrade(self, rest: bytes) -> None:
        """The gateway upgrades to nothing (h2c, websocket): parse the request again without its Upgrade,
        so its body is read as its body, never as a request of its own (RFC 9110 §7.8 lets a server
        ignore Upgrade). CONNECT, which has no HTTP/1.1 meaning here, is refused."""
        method = self.parser.get_method()
        if method == b"CONNECT" or self._replaying_head:
            self._discard = True
            self._fail(edge.method_not_allowed(method, self._url, "GET, POST") if method == b"CONNECT" else
                       GatewayError(400, "Malformed HTTP request: an upgrade that cannot be declined.",
                                    "invalid_request_error", "malformed_http"))
            return
        head = edge.head_without_upgrade(method, self._url, self.parser.get_http_version(), self._raw_headers)
        self.parser = httptools.HttpRequestParser(self)
        self._replaying_head = True
        try:
            self.data_received(head + rest)
        finally:
            self._replaying_head = False

    def _close(self) -> None:
        """Close; after a refused body, close lingering: send FIN and keep discarding what the client still
        sends for a while, so it reads our answer instead of a reset (closing on unread data sends RST)."""
        if not self._discard or not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_S, self.transport.close)

    def close_when_done(self) -> None:
        """For shutdown: close now if idle, else after the answer in progress."""
        if self.aiohttp is None and self._task is None and not self._queue:
            self.transport.close()

    def abort(self) -> None:
        if self._task is not None and not self._task.done() and self._task is not asyncio.current_task():
            self._task.cancel()
        self.transport.abort()

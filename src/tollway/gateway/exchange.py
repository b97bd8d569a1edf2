"""What a request's lifecycle needs from an HTTP server, and its two implementations.

`RequestLife` (handler.py) talks to its client only through an exchange: the request headers (a mapping
with lower-case names), the body, one `respond` for a whole answer, or `start_stream` for a sink the
stream relay writes blocks into. `RawExchange` is the hot-path server's (http_server.py): it writes
HTTP/1.1 framing straight to the transport, one write per answer or per streamed block.
`AiohttpExchange` is for hot requests on a connection aiohttp already owns (one that asked for /metrics
or /admin first). Keeping the lifecycle off aiohttp's Request/StreamResponse is what lets the hot path
skip aiohttp's per-request objects.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Mapping, Protocol

from tollway.core.errors import body_too_large, internal_error

if TYPE_CHECKING:
    from aiohttp import web

    from tollway.core.errors import GatewayError
    from tollway.gateway.http_server import HttpConnection

_STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n" for s in HTTPStatus}
_LAST_CHUNK = b"0\r\n\r\n"


class StreamSink(Protocol):
    """Where a streamed answer goes. `write` raises ConnectionResetError once the client is gone."""

    async def write(self, data: bytes) -> None: ...


class Exchange(Protocol):
    """One request and its answer, as RequestLife sees them."""

    @property
    def headers(self) -> Mapping[str, str]:
        """The request headers, read-only: each server keeps its own mapping (aiohttp's case-insensitive
        proxy, or LowerCaseHeaders)."""
        ...

    async def read_body(self) -> bytes:
        """The whole body; raises GatewayError(413) above server.max_body_bytes."""
        ...

    def respond(self, status: int, headers: dict[str, str], body: bytes) -> None:
        """Answer with a complete body (the server adds Content-Length, Date and framing)."""
        ...

    async def start_stream(self, headers: dict[str, str]) -> StreamSink:
        """Begin a 200 streamed answer; raises ConnectionResetError if the client is already gone."""
        ...

    def client_gone(self) -> bool:
        """The client closed its connection: an answer would reach no one."""
        ...


class LowerCaseHeaders(dict[str, str]):
    """Request headers keyed by lower-case name; `get` lower-cases the name it is asked for.

    The raw server stores names lower-cased once, so lookups by the usual lower-case constants
    (authorization, x-tollway-residency) are plain dict hits; a configured name in another case
    (a sticky_header of "X-Session-Id") still finds its header, as aiohttp's case-insensitive
    headers did."""

    __slots__ = ()

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        value = dict.get(self, name)
        if value is None and not name.islower():
            return dict.get(self, name.lower(), default)
        return default if value is None else value


class AiohttpExchange:
    """The exchange for a hot request served by aiohttp; `response` is what the aiohttp handler returns."""

    __slots__ = ("request", "headers", "response", "_limit")

    def __init__(self, request: "web.Request", max_body_bytes: int) -> None:
        self.request = request
        self.headers = request.headers  # case-insensitive already
        self.response: "web.StreamResponse | None" = None
        self._limit = max_body_bytes

    async def read_body(self) -> bytes:
        from aiohttp import web

        length = self.request.content_length
        if length is not None and length > self._limit:
            raise body_too_large(self._limit)
        try:
            raw = await self.request.read()
        except web.HTTPRequestEntityTooLarge:
            raise body_too_large(self._limit) from None
        if len(raw) > self._limit:
            raise body_too_large(self._limit)
        return raw

    def respond(self, status: int, headers: dict[str, str], body: bytes) -> None:
        from aiohttp import web

        self.response = web.Response(status=status, body=body, headers=headers)

    async def start_stream(self, headers: dict[str, str]) -> StreamSink:
        """aiohttp's StreamResponse is the sink: its write raises ClientConnectionResetError, a
        ConnectionResetError, when the client has gone."""
        from aiohttp import web

        response = web.StreamResponse(headers=headers)
        self.response = response
        await response.prepare(self.request)
        return response

    def client_gone(self) -> bool:
        transport = self.request.transport
        return transport is None or transport.is_closing()


_date_cache: list = [0, ""]


def _date_line() -> str:
    now = int(time.time())
    if now != _date_cache[0]:
        _date_cache[0], _date_cache[1] = now, f"Date: {formatdate(now, usegmt=True)}\r\n"
    return _date_cache[1]


def render_head(status: int, headers: dict[str, str], framing: str) -> bytes:
    """Status line, Date, the framing lines (Content-Length / Transfer-Encoding / Connection), headers."""
    text = "".join([_STATUS_LINES.get(status) or f"HTTP/1.1 {status} Unknown\r\n", _date_line(), framing,
                    *[f"{name}: {value}\r\n" for name, value in headers.items()], "\r\n"])
    if text.count("\n") != len(headers) + 3 + framing.count("\n"):
        raise ValueError(f"a response header value contains a line break: {headers!r}")
    return text.encode()


class RawExchange:
    """One request on the raw server and its answer: RequestLife's exchange and its stream sink."""

    __slots__ = ("conn", "endpoint", "headers", "body", "keep_alive", "http11", "too_large", "error", "state",
                 "_head")

    def __init__(self, conn: "HttpConnection", endpoint: str | None, headers: LowerCaseHeaders,
                 keep_alive: bool, http11: bool, error: GatewayError | None = None) -> None:
        self.conn = conn
        self.endpoint = endpoint
        self.headers = headers
        self.body = b""
        self.keep_alive = keep_alive
        self.http11 = http11
        self.too_large = False
        self.error = error  # answered without a RequestLife (a malformed request, a non-hot body too large)
        self.state = 0  # 0 unanswered, 1 stream head not yet sent, 2 streaming, 3 answered
        self._head = b""

    def client_gone(self) -> bool:
        return self.conn.lost

    async def read_body(self) -> bytes:
        if self.too_large:
            raise body_too_large(self.conn.server.max_body_bytes)
        return self.body

    def respond(self, status: int, headers: dict[str, str], body: bytes) -> None:
        conn = self.conn
        if conn.lost:
            self.state = 3
            return
        if not self.keep_alive or conn.server.closing:
            framing = f"Content-Length: {len(body)}\r\nConnection: close\r\n"
        else:
            framing = f"Content-Length: {len(body)}\r\n" if self.http11 else \
                f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n"
        conn.transport.write(render_head(status, headers, framing) + body)
        self.state = 3

    async def start_stream(self, headers: dict[str, str]) -> "RawExchange":
        """The head is sent with the first block (one write instead of two)."""
        if self.conn.lost:
            raise ConnectionResetError("the client disconnected")
        if self.http11:
            framing = "Transfer-Encoding: chunked\r\n" + ("Connection: close\r\n" if not self.keep_alive else "")
        else:  # HTTP/1.0 has no chunking: the body runs until the connection closes
            self.keep_alive = False
            framing = "Connection: close\r\n"
        self._head = render_head(200, headers, framing)
        self.state = 1
        return self

    async def write(self, data: bytes) -> None:
        """Send one block of a stream; ConnectionResetError once the client is gone."""
        conn = self.conn
        if conn.lost:
            raise ConnectionResetError("the client disconnected")
        if not data:
            return
        frame = b"%x\r\n%b\r\n" % (len(data), data) if self.http11 else data
        if self.state == 1:
            frame, self.state, self._head = self._head + frame, 2, b""
        conn.transport.write(frame)
        if conn.paused:
            await conn.drained()

    def finish(self) -> None:
        """End a stream (last chunk), or answer 500 if nothing answered (a bug, already logged)."""
        if self.state == 0:
            self.keep_alive = False
            self.respond(*internal_error().rendered({}))
        elif self.state in (1, 2) and not self.conn.lost:
            tail = _LAST_CHUNK if self.http11 else b""
            self.conn.transport.write(self._head + tail if self.state == 1 else tail)
            self.state = 3

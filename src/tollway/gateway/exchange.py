"""What a request's lifecycle needs from an HTTP server, and the aiohttp side of it.

`RequestLife` (handler.py) talks to its client only through an exchange: the request headers (a mapping
with lower-case names), the body, one `respond` for a whole answer, or `start_stream` for a sink the
stream relay writes blocks into. Two servers implement it: the raw httptools server (http_server.py),
which serves the OpenAI endpoints, and `AiohttpExchange` below, for hot requests that arrive on a
connection aiohttp already owns (one that asked for /metrics or /admin first). Keeping the lifecycle off
aiohttp's Request/StreamResponse is what lets the hot path skip aiohttp's per-request objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Protocol

from tollway.gateway.errors import body_too_large

if TYPE_CHECKING:
    from aiohttp import web


class StreamSink(Protocol):
    """Where a streamed answer goes. `write` raises ConnectionResetError once the client is gone."""

    async def write(self, data: bytes) -> None: ...


class Exchange(Protocol):
    """One request and its answer, as RequestLife sees them."""

    headers: Mapping[str, str]

    async def read_body(self) -> bytes:
        """The whole body; raises GatewayError(413) above server.max_body_bytes."""
        ...

    def respond(self, status: int, headers: dict[str, str], body: bytes) -> None:
        """Answer with a complete body (the server adds Content-Length, Date and framing)."""
        ...

    async def start_stream(self, headers: dict[str, str]) -> StreamSink:
        """Begin a 200 streamed answer; raises ConnectionResetError if the client is already gone."""
        ...


class LowerCaseHeaders(dict):
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

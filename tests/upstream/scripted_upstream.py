"""A loopback upstream that answers each request with a script of writes, pauses and hang-ups.

The relay and the upstream client are tested against real sockets: what matters is how bytes arrive
(one read or many, a marker split across reads, a connection closed mid-chunk), and only a real
server produces those. Each request takes the next script; a script is a list of
bytes (written), floats (seconds to wait), CLOSE (hang up) or HANG (never answer).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

CLOSE = "close"
HANG = "hang"


def sse_head(chunked: bool = True) -> bytes:
    framing = b"Transfer-Encoding: chunked\r\n" if chunked else b"Connection: close\r\n"
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Request-Id: abc\r\n" + framing + b"\r\n"


def http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def event(payload: dict | str, separator: bytes = b"\n\n") -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return b"data: " + data.encode() + separator


def sse_script(events: list[bytes], *, finish: bool = True) -> list:
    """A chunked SSE answer, one HTTP chunk (and one write, 2 ms apart) per event."""
    script: list = [sse_head()]
    for piece in events:
        script += [http_chunk(piece), 0.002]
    if finish:
        script.append(b"0\r\n\r\n")
    return script


def json_answer(status: int, body: bytes, extra_headers: bytes = b"") -> bytes:
    reason = {200: b"OK", 400: b"Bad Request", 429: b"Too Many Requests", 500: b"Internal Server Error"}[status]
    return (b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s"
            % (status, reason, extra_headers, len(body), body))


@dataclass
class ScriptedUpstream:
    scripts: list[list] = field(default_factory=list)
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    closed_by_client: int = 0
    port: int = 0
    _server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> "ScriptedUpstream":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    self.closed_by_client += 1
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                self.requests.append(head + await reader.readexactly(length))
                if not await self._play(self.scripts.pop(0), reader, writer):
                    return
        finally:
            writer.close()

    async def _play(self, script: list, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Run one script; False when the connection is to be closed."""
        try:
            for step in script:
                if isinstance(step, bytes):
                    writer.write(step)
                    await writer.drain()
                elif isinstance(step, float):
                    await asyncio.sleep(step)
                elif step == CLOSE:
                    return False
                elif step == HANG:
                    if not await reader.read(1):  # nothing comes: wait until the client hangs up
                        self.closed_by_client += 1
                    return False
        except ConnectionError:
            self.closed_by_client += 1
            return False
        return True

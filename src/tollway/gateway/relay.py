"""Relaying an upstream SSE stream to the client, byte for byte, while catching its usage.

Events are forwarded as they arrive, undecoded; only an event that carries a non-null `usage` is parsed.
tollway always asks the upstream for usage, so when the client did not ask for it, the usage-only final
chunk (`choices: []`) is dropped from the client's stream. Dialects that put usage on the last content
chunk (DeepSeek) or inside choices[0] (Kimi) are forwarded untouched: the content is the client's.
A stream that ends without `[DONE]` and without usage was cut; the client gets an error event and the
ledger row says so.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
import orjson
from aiohttp import web

from tollway.gateway.http_client import UpstreamConnectionError
from tollway.gateway.upstream import OpenStream, split_events
from tollway.protocol.usage import Usage, usage_from_chunk

_DATA_PREFIX = b"data:"


@dataclass(slots=True)
class RelayResult:
    usage: Usage | None
    data_events: int
    first_write_at: float | None
    error: str = ""
    client_gone: bool = False
    system_fingerprint: str = ""


class StreamRelay:
    def __init__(self, dialect: str, client_wants_usage: bool, between_chunks_s: float) -> None:
        self._dialect = dialect
        self._keep_usage_chunk = client_wants_usage
        self._between_chunks_s = between_chunks_s
        self._usage: Usage | None = None
        self._done = False
        self._data_events = 0
        self._first_write_at: float | None = None
        self._fingerprint = ""

    async def run(self, opened: OpenStream, response: web.StreamResponse) -> RelayResult:
        upstream = opened.response
        error = ""
        try:
            await self._forward(opened.events, response)
            error = await self._pump(opened, response)
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            return self._result("client disconnected", client_gone=True)
        finally:
            upstream.close()
        if not error and not self._done and self._usage is None:
            error = "upstream stream ended before it finished"
        if error:
            await self._send_error(response, error)
        return self._result(error)

    async def _pump(self, opened: OpenStream, response: web.StreamResponse) -> str:
        loop = asyncio.get_running_loop()
        separator = opened.separator
        events, buffer = split_events(opened.rest, separator)
        if events:
            await self._forward(events, response)
        try:
            async with asyncio.timeout(self._between_chunks_s) as deadline:
                async for chunk in opened.response.iter_chunks():
                    deadline.reschedule(loop.time() + self._between_chunks_s)
                    buffer += chunk
                    events, buffer = split_events(buffer, separator)
                    if events:
                        await self._forward(events, response)
        except TimeoutError:
            return f"upstream sent nothing for {self._between_chunks_s:g}s"
        except UpstreamConnectionError as exc:
            return f"upstream stream broke: {exc}"
        if buffer.strip():
            await self._forward([buffer + separator], response)
        return ""

    async def _forward(self, events: list[bytes], response: web.StreamResponse) -> None:
        out = []
        for event in events:
            if self._keep(event):
                out.append(event)
        if out:
            await response.write(b"".join(out))
            if self._first_write_at is None:
                self._first_write_at = asyncio.get_running_loop().time()

    def _keep(self, event: bytes) -> bool:
        """Note usage and [DONE]; say whether the client should get this event."""
        if event.startswith(b":"):
            return True
        self._data_events += 1
        if event.startswith((b"data: [DONE]", b"data:[DONE]")):
            self._done = True
            self._data_events -= 1
            return True
        if b'"usage"' not in event or b'"usage":null' in event or b'"usage": null' in event:
            return True
        chunk = _parse_event(event)
        if chunk is None:
            return True
        usage = usage_from_chunk(self._dialect, chunk)
        if usage is not None:
            self._usage = usage
            self._fingerprint = str(chunk.get("system_fingerprint") or "")
            if not self._keep_usage_chunk and chunk.get("choices") == []:
                self._data_events -= 1
                return False
        return True

    async def _send_error(self, response: web.StreamResponse, message: str) -> None:
        body = orjson.dumps({"error": {"message": f"The stream was interrupted: {message}.",
                                       "type": "upstream_error", "code": "stream_interrupted", "param": None}})
        try:
            await response.write(b"data: " + body + b"\n\n")
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            pass

    def _result(self, error: str, client_gone: bool = False) -> RelayResult:
        return RelayResult(self._usage, self._data_events, self._first_write_at, error, client_gone,
                           self._fingerprint)


def _parse_event(event: bytes) -> dict | None:
    """The JSON of an event's data line(s), or None if it is not JSON."""
    data = b"".join(line[len(_DATA_PREFIX):].strip() for line in event.split(b"\n") if line.startswith(_DATA_PREFIX))
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None

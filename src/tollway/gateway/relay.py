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
from tollway.gateway.upstream import OpenStream
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
            await self._forward(b"".join(opened.events), opened.separator, response)
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
        """Relay reads as they come. The silence timer is pushed back lazily (at most every quarter
        interval, not per chunk): a stream may be silent for between 1 and 1.25 x between_chunks_s."""
        loop = asyncio.get_running_loop()
        separator, interval = opened.separator, self._between_chunks_s
        buffer = await self._forward_complete(opened.rest, separator, response)
        try:
            async with asyncio.timeout(interval * 1.25) as timer:
                rearm_at = loop.time() + interval * 0.25
                async for chunk in opened.response.iter_chunks():
                    now = loop.time()
                    if now >= rearm_at:
                        timer.reschedule(now + interval * 1.25)
                        rearm_at = now + interval * 0.25
                    buffer = await self._forward_complete(buffer + chunk if buffer else chunk, separator, response)
        except TimeoutError:
            return f"upstream sent nothing for {interval:g}s"
        except UpstreamConnectionError as exc:
            return f"upstream stream broke: {exc}"
        if buffer.strip():
            await self._forward(buffer + separator, separator, response)
        return ""

    async def _forward_complete(self, buffer: bytes, separator: bytes, response: web.StreamResponse) -> bytes:
        """Forward every complete event in `buffer` as one block; return the unfinished rest."""
        end = buffer.rfind(separator)
        if end < 0:
            return buffer
        cut = end + len(separator)
        if cut == len(buffer):
            await self._forward(buffer, separator, response)
            return b""
        await self._forward(buffer[:cut], separator, response)
        return buffer[cut:]

    async def _forward(self, block: bytes, separator: bytes, response: web.StreamResponse) -> None:
        """Note what the block says (events, usage, [DONE]) with byte searches; split it only for usage."""
        if not block:
            return
        self._data_events += block.count(separator + b"data:") + block.startswith(b"data:")
        if block.endswith((b"data: [DONE]" + separator, b"data:[DONE]" + separator)):
            self._done = True
            self._data_events -= 1
        if block.count(b'"usage"') > block.count(b'"usage":null') + block.count(b'"usage": null'):
            block = self._take_usage(block, separator)
            if not block:
                return
        await response.write(block)
        if self._first_write_at is None:
            self._first_write_at = asyncio.get_running_loop().time()

    def _take_usage(self, block: bytes, separator: bytes) -> bytes:
        """Read the usage from the block's events; drop a usage-only chunk the client did not ask for."""
        kept = []
        for event in block.split(separator):
            if not event:
                continue
            if b'"usage"' in event and self._usage_event_dropped(event):
                self._data_events -= 1
                continue
            kept.append(event + separator)
        return b"".join(kept)

    def _usage_event_dropped(self, event: bytes) -> bool:
        chunk = _parse_event(event)
        if chunk is None:
            return False
        usage = usage_from_chunk(self._dialect, chunk)
        if usage is None:
            return False
        self._usage = usage
        self._fingerprint = str(chunk.get("system_fingerprint") or "")
        return not self._keep_usage_chunk and chunk.get("choices") == []

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

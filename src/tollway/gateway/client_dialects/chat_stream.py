"""Reading the canonical chat stream as a client dialect's sink: the SSE blocks the relay writes are split
into chat chunks (one event per read, the usual case, without splitting), and each chunk is handed to the
dialect's own translation; `[DONE]`, or the stream's end without it, closes the client's stream once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from tollway.gateway.exchange import StreamSink


class ChatStreamTranslator:
    """The shared half of a translating sink; a dialect supplies `_translate` (one chat chunk to its events),
    `_error_event` (its shape of a mid-stream error) and `_close_stream` (the events that close its stream,
    once)."""

    __slots__ = ("_sink", "_ended")

    def __init__(self, sink: "StreamSink") -> None:
        self._sink = sink
        self._ended = False

    async def write(self, data: bytes) -> None:
        if data.startswith(b"data: {") and data.find(b"\n") == len(data) - 2:  # one event, the usual read
            try:
                chunk = orjson.loads(data[6:])
            except orjson.JSONDecodeError:
                return
            translated = self._chunk(chunk) if type(chunk) is dict else b""
            if translated:
                await self._sink.write(translated)
            return
        out: list[bytes] = []
        for line in data.split(b"\n"):
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                out.append(self._close_stream())
                continue
            try:
                chunk = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            if isinstance(chunk, dict):
                out.append(self._chunk(chunk))
        joined = b"".join(out)
        if joined:
            await self._sink.write(joined)

    async def end(self) -> None:
        if not self._ended:
            await self._sink.write(self._close_stream())

    def _chunk(self, chunk: dict) -> bytes:
        """One chat chunk to the client's events; an error chunk (a stream cut after its first event) ends
        the client's stream with the dialect's own error event, and nothing follows it."""
        if self._ended:
            return b""
        error = chunk.get("error")
        if error is not None and "choices" not in chunk:
            self._ended = True
            message = error.get("message") if isinstance(error, dict) else error
            return self._error_event(str(message))
        return self._translate(chunk)

    def _translate(self, chunk: dict) -> bytes:
        raise NotImplementedError

    def _error_event(self, message: str) -> bytes:
        raise NotImplementedError

    def _close_stream(self) -> bytes:
        raise NotImplementedError

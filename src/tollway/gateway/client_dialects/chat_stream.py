"""Reading the canonical chat stream as a client dialect's sink: the SSE blocks the relay writes are split
into chat chunks (one event per read, the usual case, without splitting), and each chunk is handed to the
dialect's own translation; `[DONE]`, or the stream's end without it, closes the client's stream once.

The usual event of a stream, one more piece of text while the dialect has a text block open, takes a
short path: the content's JSON string literal is cut out of the chunk's bytes (`content_span` for the
first such chunk, then the bytes around its literal for the next ones) and written into the dialect's event
template as it is, with no parse of the chunk and no encode of the event. Any chunk the cut does not
recognise with certainty (spaced JSON, other delta fields with values, a finish reason, usage, several
choices, an escaped quote in the text) takes the parsing path, so the short path never changes what the
client reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from tollway.gateway.exchange import StreamSink


_CONTENT_DELTA = b'"delta":{"content":"'
_BACKSLASH = 92
_QUOTE = 34


def content_span(event: bytes) -> tuple[int, int] | None:
    """(start, end) of the JSON string literal (quotes included: event[start:end]) of a compact chat chunk
    whose one choice's delta is only text (`{"content": "..."}`, other delta keys allowed only as null),
    unfinished, without usage; None for any other chunk."""
    at = event.find(_CONTENT_DELTA)
    if at < 0:
        return None
    start = at + len(_CONTENT_DELTA) - 1
    end = event.find(b'"', start + 1)
    while end > 0 and event[end - 1] == _BACKSLASH:  # an escaped quote, unless the backslash is escaped too
        slashes = 1
        while event[end - 1 - slashes] == _BACKSLASH:
            slashes += 1
        if not slashes & 1:
            break
        end = event.find(b'"', end + 1)
    if end < 0:
        return None
    close = event.find(b"}", end)
    rest = event[end + 1:close]
    if close < 0 or (rest and (rest.count(b":") != rest.count(b":null") or b"{" in rest or b"[" in rest)):
        return None
    if b'"finish_reason":null' not in event or event.count(b'"delta"') != 1:
        return None
    usage = event.find(b'"usage"')
    if usage >= 0 and not event.startswith(b'"usage":null', usage):
        return None
    return start, end + 1


class ChatStreamTranslator:
    """The shared half of a translating sink; a dialect supplies `_translate` (one chat chunk to its events),
    `_text_delta` (its event for one more piece of the open text block, from the piece's JSON literal),
    `_error_event` (its shape of a mid-stream error) and `_close_stream` (the events that close its stream,
    once). `_text_open` says a text block is open, so a text-only chunk may take the short path."""

    __slots__ = ("_sink", "_ended", "_text_open", "_prefix", "_suffix")

    def __init__(self, sink: "StreamSink") -> None:
        self._sink = sink
        self._ended = False
        self._text_open = False
        # the bytes around the text of the last text-only chunk content_span read: an upstream writes every
        # chunk of a stream alike (same id, created, model, fields), so the next ones are recognised by
        # these two and a literal between them without a quote, which leaves no other reading of the chunk
        self._prefix = b""
        self._suffix = b""

    async def write(self, data: bytes) -> None:
        if data.startswith(b"data: {") and data.find(b"\n") == len(data) - 2:  # one event, the usual read
            translated = self._one_event(data[:-2])
        else:  # several events in one read: one write for all they become
            out: list[bytes] = []
            append = out.append
            for line in data.split(b"\n"):
                if not line:
                    continue
                if self._text_open:  # _one_event's short path, inline: a fast upstream's reads hold dozens
                    prefix, suffix = self._prefix, self._suffix
                    if prefix and line.startswith(prefix) and line.endswith(suffix):
                        start, end = len(prefix), len(line) - len(suffix)
                        if end >= start and line.find(b'"', start, end) < 0 and line[end - 1] != _BACKSLASH:
                            if end > start:
                                append(self._text_delta(line[start - 1:end + 1]))
                            continue
                if line.startswith(b"data: {"):
                    append(self._one_event(line))
                elif line.startswith(b"data:"):
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        append(self._close_stream())
                    elif payload.startswith(b"{"):
                        append(self._one_event(b"data: " + payload))
            translated = b"".join(out)
        if translated:
            await self._sink.write(translated)

    def _one_event(self, event: bytes) -> bytes:
        """One `data: {...}` line to the client's events."""
        if self._text_open:
            prefix, suffix = self._prefix, self._suffix
            if prefix and event.startswith(prefix) and event.endswith(suffix):
                start, end = len(prefix), len(event) - len(suffix)
                if end >= start and event.find(b'"', start, end) < 0 and event[end - 1] != _BACKSLASH:
                    return self._text_delta(event[start - 1:end + 1]) if end > start else b""
            span = content_span(event)
            if span is not None:
                start, end = span
                self._prefix, self._suffix = event[:start + 1], event[end - 1:]
                return self._text_delta(event[start:end]) if end - start > 2 else b""  # "" writes nothing
        try:
            chunk = orjson.loads(event[6:])
        except orjson.JSONDecodeError:
            return b""
        return self._chunk(chunk) if type(chunk) is dict else b""

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
            self._text_open = False
            message = error.get("message") if isinstance(error, dict) else error
            return self._error_event(str(message))
        return self._translate(chunk)

    def _translate(self, chunk: dict) -> bytes:
        raise NotImplementedError

    def _text_delta(self, literal: bytes) -> bytes:
        raise NotImplementedError

    def _error_event(self, message: str) -> bytes:
        raise NotImplementedError

    def _close_stream(self) -> bytes:
        raise NotImplementedError

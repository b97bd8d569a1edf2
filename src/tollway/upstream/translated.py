"""A translating dialect's stream, read as if the upstream spoke Chat Completions.

`TranslatedResponse` wraps the upstream Response: each `next_chunk` splits what arrived into complete
events, hands each to the dialect's StreamTranslator and returns the canonical events it produced, so
opening the stream (preamble, first token) and the relay (usage, [DONE], the client's writes) work on
canonical bytes unchanged. Pass-through dialects never get here: their bytes are not split or parsed.
A translator's WireRefusal (an `error` event, a safety block) becomes an UpstreamFailure while the
stream is still being opened (so the walk moves on invisibly) and a broken stream after that.
"""

from __future__ import annotations

from collections.abc import Callable

from tollway.providers.dialect import StreamTranslator, WireRefusal
from tollway.providers.failure import Failure
from tollway.upstream.http_client import Response, UpstreamConnectionError


class TranslatedStreamFailure(Exception):
    """A refusal met while the stream is being opened; calls.py turns it into an UpstreamFailure."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.describe())
        self.failure = failure


def refusing(rule: Callable[[bytes], bool]) -> Callable[[bytes], bool]:
    """A preamble rule whose WireRefusal (an upstream error event before the first token) fails the
    attempt over like a translated stream's: for a stream relayed in the client's own dialect."""

    def is_preamble(event: bytes) -> bool:
        try:
            return rule(event)
        except WireRefusal as exc:
            raise TranslatedStreamFailure(Failure(exc.kind, exc.message, exc.status)) from None

    return is_preamble


class TranslatedResponse:
    """The upstream Response with its SSE events translated (the attributes the call path reads)."""

    __slots__ = ("_response", "_translator", "_buffer", "_separator", "_ended", "opened", "_quick", "_many")

    def __init__(self, response: Response, translator: StreamTranslator) -> None:
        self._response = response
        self._translator = translator
        # a translator's short path for a read holding one usual event (`feed_read`: its chat chunk, or None
        # for the general path), tried before the read is split
        self._quick = getattr(translator, "feed_read", None)
        # ... and its `feed_many` for the events of a read that holds several (comments and empty ones
        # skipped by it), so its short path runs in one loop
        self._many = getattr(translator, "feed_many", None)
        self._buffer = b""
        self._separator = b""
        self._ended = False
        self.opened = False  # set once the first canonical event went out; refusals then break the stream

    @property
    def reported_prompt(self):
        """The translator's prompt-only report (Anthropic's message_start), for a cut stream's estimate."""
        return self._translator.reported_prompt

    @property
    def status(self) -> int:
        return self._response.status

    def header(self, name: str) -> str | None:
        return self._response.header(name)

    def set_deadline(self, deadline: float | None) -> None:
        self._response.set_deadline(deadline)

    def close(self) -> None:
        self._response.close()

    async def read(self) -> bytes:
        return await self._response.read()

    async def next_chunk(self) -> bytes | None:
        """The canonical events for the next upstream read(s); None at the end (after the translator's
        final usage chunk and [DONE], when the upstream finished)."""
        next_read, feed = self._response.next_chunk, self._translator.feed
        quick = self._quick
        while not self._ended:
            raw = await next_read()
            if quick is not None and not self._buffer and raw is not None:
                out = quick(raw)  # the translator's short path for a read of one usual event
                if out is not None:
                    return out
            if raw is None:
                self._ended = True
                try:
                    tail = self._translator.feed(self._buffer.strip()) if self._buffer.strip() else b""
                    return (tail + self._translator.finish()) or None
                except (WireRefusal, ValueError) as exc:
                    raise self._failure(exc) from None
            separator = self._separator
            try:
                if (separator and not self._buffer and raw.endswith(separator)
                        and raw.find(separator) == len(raw) - len(separator) and raw[:1] != b":"):
                    event = raw[:-len(separator)]  # the usual read: one whole event
                    out = feed(event if separator == b"\n\n" else event.replace(b"\r\n", b"\n"))
                else:
                    out = self._feed(raw)
            except (WireRefusal, ValueError) as exc:
                raise self._failure(exc) from None
            if out:
                return out
        return None

    def _feed(self, raw: bytes) -> bytes:
        buffer = self._buffer + raw if self._buffer else raw
        if not self._separator:
            newline = buffer.find(b"\n")
            if newline < 0:
                self._buffer = buffer
                return b""
            self._separator = b"\r\n\r\n" if newline and buffer[newline - 1] == 13 else b"\n\n"
        separator, feed, crlf = self._separator, self._translator.feed, self._separator == b"\r\n\r\n"
        width = len(separator)
        if buffer.endswith(separator) and buffer.find(separator) == len(buffer) - width:  # one whole event
            self._buffer = b""
            if buffer.startswith(b":"):
                return b""
            event = buffer[:-width]
            return feed(event.replace(b"\r\n", b"\n") if crlf else event)
        if self._many is not None:  # the translator takes the read's events in one call
            events = buffer.split(separator)
            self._buffer = events.pop()  # the unfinished rest
            return self._many([e.replace(b"\r\n", b"\n") for e in events] if crlf else events)
        out: list[bytes] = []
        start = 0
        while (end := buffer.find(separator, start)) >= 0:
            event, start = buffer[start:end], end + width
            if event and not event.startswith(b":"):
                out.append(feed(event.replace(b"\r\n", b"\n") if crlf else event))
        self._buffer = buffer[start:]
        return b"".join(out)

    def _failure(self, exc: Exception) -> Exception:
        """A refusal before the stream opened fails the attempt over; after, it breaks the stream."""
        if isinstance(exc, WireRefusal):
            if self.opened:
                return UpstreamConnectionError(f"upstream error event: {exc.message}")
            return TranslatedStreamFailure(Failure(exc.kind, exc.message, exc.status))
        return UpstreamConnectionError(f"upstream sent an event tollway cannot read: {exc}")  # not the dialect's JSON

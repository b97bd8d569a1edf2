"""A translating dialect's stream, read as if the upstream spoke Chat Completions.

`TranslatedResponse` wraps the upstream Response: each `next_chunk` splits what arrived into complete
events, hands each to the dialect's StreamTranslator and returns the canonical events it produced, so
opening the stream (preamble, first token) and the relay (usage, [DONE], the client's writes) work on
canonical bytes unchanged. Pass-through dialects never get here: their bytes are not split or parsed.
A translator's WireRefusal (an `error` event, a safety block) becomes an UpstreamFailure while the
stream is still being opened (so the walk moves on invisibly) and a broken stream after that.
"""

from __future__ import annotations

from tollway.providers.dialect import StreamTranslator, WireRefusal
from tollway.providers.failure import Failure
from tollway.upstream.http_client import Response, UpstreamConnectionError


class TranslatedStreamFailure(Exception):
    """A refusal met while the stream is being opened; calls.py turns it into an UpstreamFailure."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.describe())
        self.failure = failure


class TranslatedResponse:
    """The upstream Response with its SSE events translated (the attributes the call path reads)."""

    __slots__ = ("_response", "_translator", "_buffer", "_separator", "_ended", "opened")

    def __init__(self, response: Response, translator: StreamTranslator) -> None:
        self._response = response
        self._translator = translator
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
        while not self._ended:
            raw = await self._response.next_chunk()
            if raw is None:
                self._ended = True
                tail = self._translate(self._buffer.strip()) if self._buffer.strip() else b""
                return (tail + self._guard(self._translator.finish)) or None
            out = self._feed(raw)
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
        separator, out, start = self._separator, b"", 0
        while (end := buffer.find(separator, start)) >= 0:
            event, start = buffer[start:end], end + len(separator)
            if event and not event.startswith(b":"):
                out += self._translate(event.replace(b"\r\n", b"\n") if separator == b"\r\n\r\n" else event)
        self._buffer = buffer[start:]
        return out

    def _translate(self, event: bytes) -> bytes:
        return self._guard(lambda: self._translator.feed(event))

    def _guard(self, step) -> bytes:
        try:
            return step()
        except WireRefusal as refusal:
            if self.opened:
                raise UpstreamConnectionError(f"upstream error event: {refusal.message}") from None
            raise TranslatedStreamFailure(Failure(refusal.kind, refusal.message, refusal.status)) from None
        except ValueError as exc:  # an event that is not the dialect's JSON
            raise UpstreamConnectionError(f"upstream sent an event tollway cannot read: {exc}") from None

"""Relaying an upstream SSE stream to the client, byte for byte, while catching its usage.

Events are forwarded as they arrive, undecoded; only an event that carries a non-null `usage` is parsed.
tollway always asks the upstream for usage, so when the client did not ask for it, the usage-only final
chunk (`choices: []`) is dropped from the client's stream. Dialects that put usage on the last content
chunk (DeepSeek) or inside choices[0] (Kimi) are forwarded untouched: the content is the client's.
A stream that ends without `[DONE]` and without usage was cut; the client gets an error event and the
ledger row says so.

A stream that ends without usage (cut by the client or the upstream, or a server that reports none) is
estimated from the text it relayed. The blocks handed to the client are kept by reference as they go
(an append, no copy, no parse) and parsed only in that case; a stream with usage never parses them.
Past _KEPT_BYTES_MAX bytes read, each read has the oldest kept blocks (twice its size) parsed into a
character tally and dropped: a very long stream holds bounded memory, pays the parse in small steps
instead of one pause of the event loop, and still gets the same estimate.

Cost model: each socket read's complete events go to the client as one write, and the relay looks at a
read with a handful of byte searches (counts of event starts, the `[DONE]` tail, `"usage"` markers); it
cuts out and parses only the event(s) around a non-null usage. Nothing else is split, joined or decoded
unless the stream ends without usage.

The sink is anything with `async write(data: bytes)` that raises ConnectionResetError (or a subclass)
once the client is gone, so the relay does not depend on the HTTP server in front of it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Protocol

import orjson

from tollway.core.usage import Usage
from tollway.providers.dialect import Dialect, StreamUsageReader
from tollway.providers.estimates import TextTally, estimated_usage, tally_chunk_text
from tollway.upstream.calls import OpenStream
from tollway.upstream.http_client import UpstreamConnectionError

_DATA_PREFIX = b"data:"
_USAGE_KEY = b'"usage"'
_NULL_USAGE = (b'"usage":null', b'"usage": null')
_WALK_ALL_MARKERS = 4
_SMALL_BLOCK = 4096
_KEPT_BYTES_MAX = 4 * 1024 * 1024  # bytes read before kept blocks are tallied and dropped as the stream goes


class Sink(Protocol):
    async def write(self, data: bytes) -> None: ...


class RelayedText:
    """The data blocks a stream handed to the client, kept to count their text only if the stream ends
    without usage. `blocks` are whole events (the relay writes nothing else); `tally` holds the text of
    blocks already folded away. The deque is never replaced: the relay appends to it through a bound
    method."""

    __slots__ = ("blocks", "tally", "separator")

    def __init__(self, separator: bytes = b"\n\n") -> None:
        self.blocks: deque[bytes] = deque()
        self.tally = TextTally()
        self.separator = separator

    def fold(self, budget: int | None = None) -> None:
        """Tally the completion text of the kept blocks, oldest first, and let them go: all of them, or
        blocks until `budget` bytes have been tallied."""
        blocks, separator, tally = self.blocks, self.separator, self.tally
        while blocks and (budget is None or budget > 0):
            block = blocks.popleft()
            if budget is not None:
                budget -= len(block)
            for event in block.split(separator):
                if event.startswith(b"data: {") and b"\n" not in event:  # the usual event: one JSON line
                    try:
                        chunk = orjson.loads(event[6:])
                    except orjson.JSONDecodeError:
                        continue
                elif event:
                    chunk = _parse_event(event)
                else:
                    continue
                tally_chunk_text(tally, chunk)


@dataclass(slots=True)
class RelayResult:
    usage: Usage | None
    data_events: int
    first_write_at: float | None
    error: str = ""
    client_gone: bool = False
    system_fingerprint: str = ""
    relayed: RelayedText = field(default_factory=RelayedText)
    reported_prompt: Usage | None = None  # Anthropic's message_start usage, when no final usage followed

    def estimated_usage(self, prompt_text: str) -> Usage:
        """The usage to record when the stream ended without one: the completion counted from the text
        relayed to the client (core/usage.py's rule), the prompt as reported or counted from its text."""
        self.relayed.fold()
        return estimated_usage(prompt_text, self.relayed.tally, self.reported_prompt)


class StreamRelay:
    def __init__(self, dialect: Dialect, client_wants_usage: bool, between_chunks_s: float,
                 error_event: Callable[[str], bytes] | None = None,
                 usage_reader: StreamUsageReader | None = None) -> None:
        # the dialect's reading of usage events (one per stream), or the caller's for a stream in another
        # wire format than the dialect's chat stream (a client's same-dialect fast path)
        self._usage_reader = usage_reader if usage_reader is not None else dialect.stream_usage()
        self._error_event = error_event  # ... which ends a cut stream with its own error event
        self._keep_usage_chunk = client_wants_usage
        self._between_chunks_s = between_chunks_s
        self._done = False
        self._data_events = 0
        self._first_write_at: float | None = None
        self._fingerprint = ""
        self._relayed = RelayedText()
        self._separator = b"\n\n"
        self._event_start = b"\n\ndata:"
        self._done_marks = (b"data: [DONE]\n\n", b"data:[DONE]\n\n")
        self._response: object = None

    async def run(self, opened: OpenStream, sink: Sink) -> RelayResult:
        error = ""
        self._response = opened.response
        self._use_separator(opened.separator)
        try:
            error = await self._pump(opened, sink)
        except ConnectionResetError:
            return self._result("client disconnected", client_gone=True)
        finally:
            opened.response.close()
        if not error and not self._done and self._usage_reader.usage is None:
            error = "upstream stream ended before it finished"
        if error:
            await self._send_error(sink, error)
        return self._result(error)

    def _use_separator(self, separator: bytes) -> None:
        self._separator = separator
        self._relayed.separator = separator
        self._event_start = separator + _DATA_PREFIX
        self._done_marks = (b"data: [DONE]" + separator, b"data:[DONE]" + separator)

    async def _pump(self, opened: OpenStream, sink: Sink) -> str:
        """Relay reads as they come; what opening the stream already read goes out as the first write.
        The silence deadline is pushed back lazily (at most every quarter interval, not per read): a
        stream may be silent for between 1 and 1.25 x between_chunks_s.

        Each block is kept once its write returned (a block the client never took is not its text). The
        bytes read are counted in a local; past _KEPT_BYTES_MAX, every read has twice its size of the
        oldest kept blocks tallied and dropped, so the kept bytes shrink from the cap plus one read."""
        loop = asyncio.get_running_loop()
        interval = self._between_chunks_s
        response = opened.response
        separator = self._separator
        first = opened.events[0] if len(opened.events) == 1 else b"".join(opened.events)
        buffer = first + opened.rest if opened.rest else first
        next_chunk = response.next_chunk
        keep = self._relayed.blocks.append
        read = len(buffer)
        try:
            now = loop.time()
            response.set_deadline(now + interval * 1.25)
            rearm_at = now + interval * 0.25
            while True:
                # forward every complete event as one block; keep the unfinished rest for the next read
                if buffer.endswith(separator):
                    await self._forward(buffer, sink)
                    keep(buffer)
                    buffer = b""
                else:
                    end = buffer.rfind(separator)
                    if end >= 0:
                        end += len(separator)
                        block = buffer[:end]
                        await self._forward(block, sink)
                        keep(block)
                        buffer = buffer[end:]
                chunk = await next_chunk()
                if chunk is None:
                    break
                read += len(chunk)
                if read > _KEPT_BYTES_MAX:
                    self._relayed.fold(2 * len(chunk))
                now = loop.time()
                if now >= rearm_at:
                    response.set_deadline(now + interval * 1.25)
                    rearm_at = now + interval * 0.25
                buffer = buffer + chunk if buffer else chunk
        except TimeoutError:
            return f"upstream sent nothing for {interval:g}s"
        except UpstreamConnectionError as exc:
            return f"upstream stream broke: {exc}"
        if buffer.strip():
            block = buffer + separator
            await self._forward(block, sink)
            keep(block)
        return ""

    async def _forward(self, block: bytes, sink: Sink) -> None:
        """Note what the block says (events, usage, [DONE]) with byte searches; cut out only usage events."""
        self._data_events += block.count(self._event_start) + block.startswith(_DATA_PREFIX)
        if block.endswith(self._done_marks):
            self._done = True
            self._data_events -= 1
        markers = block.count(_USAGE_KEY)
        if markers:
            # `"usage":null` rides on every chunk of some dialects (OpenAI): in a small block (a read per
            # token) or among many markers, the nulls are counted in one more scan; a few markers in a
            # large block (a whole answer in one read) are told apart one by one, from the end
            nulls_counted = markers > _WALK_ALL_MARKERS or len(block) < _SMALL_BLOCK
            candidates = markers - block.count(_NULL_USAGE[0]) if nulls_counted else markers
            if candidates:
                block = self._take_usage(block, candidates, nulls_counted)
                if not block:
                    return
        await sink.write(block)
        if self._first_write_at is None:
            self._first_write_at = asyncio.get_running_loop().time()

    def _take_usage(self, block: bytes, candidates: int, nulls_counted: bool) -> bytes:
        """Read the usage from the events that carry one; drop a usage-only chunk the client did not ask for.

        Usage rides at the end of a stream, so the `candidates` markers (all markers, or those not
        followed by `:null` when `nulls_counted`) are found from the end backwards; the events before
        them are never looked at. When several events carry usage (vLLM's continuous usage stats), the
        last one wins, as it would read forwards.
        """
        separator = self._separator
        width = len(separator)
        found: list[tuple[int, int]] = []  # (start, end) of events with a non-null usage, last first
        at = len(block)
        while candidates:
            at = block.rfind(_USAGE_KEY, 0, at)
            if at < 0:
                break
            null = block.startswith(_NULL_USAGE[0], at)
            if null and nulls_counted:
                continue  # not among the candidates
            candidates -= 1
            if null or block.startswith(_NULL_USAGE[1], at):
                continue
            start = block.rfind(separator, 0, at)
            start = 0 if start < 0 else start + width
            if found and found[-1][0] == start:
                continue  # another marker in an event already taken (Kimi: top level and choices[0])
            end = block.find(separator, at)
            found.append((start, len(block) if end < 0 else end + width))
        kept: list[bytes] = []
        kept_from = 0
        for start, end in reversed(found):
            if self._usage_event_dropped(block[start:end]):
                self._data_events -= 1
                kept.append(block[kept_from:start])
                kept_from = end
        if not kept:
            return block
        kept.append(block[kept_from:])
        return b"".join(kept)

    def _usage_event_dropped(self, event: bytes) -> bool:
        """Read a usage event through the dialect; True when it is a usage-only chunk the client did not
        ask for. A prompt-only report (Anthropic's message_start) is kept apart by the reader: it is not
        the stream's usage, and a stream cut before the final one is estimated."""
        chunk = _parse_event(event)
        if chunk is None or not self._usage_reader.observe(chunk):
            return False
        self._fingerprint = str(chunk.get("system_fingerprint") or "")
        return not self._keep_usage_chunk and chunk.get("choices") == []

    async def _send_error(self, sink: Sink, message: str) -> None:
        text = f"The stream was interrupted: {message}."
        if self._error_event is not None:
            event = self._error_event(text)
        else:
            event = b"data: " + orjson.dumps({"error": {"message": text, "type": "upstream_error",
                                                       "code": "stream_interrupted", "param": None}}) + b"\n\n"
        try:
            await sink.write(event)
        except ConnectionResetError:
            pass

    def _result(self, error: str, client_gone: bool = False) -> RelayResult:
        usage = self._usage_reader.usage
        reported = None
        if usage is None:  # a translated stream's prompt report was read by its translator, not seen here
            reported = self._usage_reader.reported_prompt or getattr(self._response, "reported_prompt", None)
        return RelayResult(usage, self._data_events, self._first_write_at, error, client_gone,
                           self._fingerprint, self._relayed, reported)


def _parse_event(event: bytes) -> dict | None:
    """The JSON of an event's data line(s), or None if it is not JSON."""
    text = event.strip()
    if text.startswith(_DATA_PREFIX) and b"\n" not in text:
        data = text[len(_DATA_PREFIX):]  # the usual event: one data line
    else:
        data = b"".join(line[len(_DATA_PREFIX):].strip() for line in text.split(b"\n")
                        if line.startswith(_DATA_PREFIX))
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None

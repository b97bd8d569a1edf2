"""One streaming chat-completion request over aiohttp, timed event by event.

Why measure SSE ourselves: the OpenAI SDK hides when bytes arrive. Here every read from the socket is
stamped with time.perf_counter_ns() as it is handed to us, and every SSE event completed by that read gets
that stamp, so TTFT and ITL are arrival times, not parse times. Token counts are taken from the server's
`usage` (requested with stream_options.include_usage), never from counting chunks.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson

from tollway.bench.record import (
    BAD_RESPONSE,
    CONNECTION,
    STREAM_CUT,
    STREAM_ERROR,
    TIMEOUT,
    RequestRecord,
    error_kind_for_status,
)
from tollway.bench.workload import RequestSpec

DETAIL_LIMIT = 300
DRAIN_AFTER_DONE_S = 1.0
STALE_CONNECTION_RETRIES = 3


def request_trace() -> aiohttp.TraceConfig:
    """The trace every bench session needs: when a request was written, and on which kind of connection.

    Pass the result to ClientSession(trace_configs=[...]); StreamingClient reads both marks from the
    request's trace context.

    Written: each body chunk is stamped as aiohttp hands it to the socket, the last stamp winning, so the
    latency clock starts when the server can have the whole request. on_request_chunk_sent is the hook
    that marks this: aiohttp calls it right before the chunk's transport.write, in the same event-loop
    step (the headers are buffered and go out with the first chunk). on_request_headers_sent would be
    too early: it fires before the headers are even serialised, and on Python before 3.12 the body is
    written later, from a task of its own. A stamp taken before session.post also counts the client's
    own work (building the request, taking a pooled connection, that task's wait for the event loop),
    which grows with concurrency and would read as server latency.

    Reused: some servers (llama-server among them) close a keep-alive connection right after a
    streamed answer without saying so. The next request written to it fails at once, before the server
    saw it; that is a stale pooled connection, not a server failure, so it is retried on a new
    connection (the time it took stays in the request's latency).
    """
    trace = aiohttp.TraceConfig()

    async def on_reuse(session, context, params) -> None:  # noqa: ANN001  (aiohttp's callback signature)
        if isinstance(context.trace_request_ctx, dict):
            context.trace_request_ctx["reused"] = True

    async def on_chunk_sent(session, context, params) -> None:  # noqa: ANN001
        if isinstance(context.trace_request_ctx, dict):
            context.trace_request_ctx["written_ns"] = time.perf_counter_ns()

    trace.on_connection_reuseconn.append(on_reuse)
    trace.on_request_chunk_sent.append(on_chunk_sent)
    return trace


class SseParser:
    """Incremental text/event-stream parser: feed bytes, get back (event name, data) per finished event."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        buffer = self._buffer + data
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        events = []
        while True:
            end = buffer.find(b"\n\n")
            if end < 0:
                break
            block, buffer = buffer[:end], buffer[end + 2:]
            event = _parse_block(block)
            if event is not None:
                events.append(event)
        self._buffer = buffer
        return events


def _parse_block(block: bytes) -> tuple[str, bytes] | None:
    name, data_lines = "message", []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            data_lines.append(line[6:] if line[5:6] == b" " else line[5:])
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode("utf-8", "replace")
    if not data_lines:
        return None  # comments (": keep-alive") and empty blocks carry nothing
    return name, b"\n".join(data_lines)


def has_generated_text(choice: dict[str, Any]) -> bool:
    """Whether a streamed choice carries generated output (text, reasoning or a tool call).

    The role-only first chunk ({"delta": {"role": "assistant", "content": ""}}) does not, which is why
    TTFT is not measured to the first event.
    """
    delta = choice.get("delta")
    if isinstance(delta, dict):
        for key in ("content", "reasoning_content", "reasoning", "tool_calls"):
            if delta.get(key):
                return True
    return bool(choice.get("text"))


class StreamingClient:
    """Sends requests of a workload to one target and returns a RequestRecord for each."""

    def __init__(self, session: aiohttp.ClientSession, url: str, model: str, api_key: str | None,
                 timeout_s: float, exact_output: bool, extra_body: dict[str, Any] | None = None) -> None:
        self.session = session
        self.url = url
        self.model = model
        self.timeout_s = timeout_s
        self.exact_output = exact_output
        self.extra_body = extra_body or {}
        self._api_key = api_key
        self._headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    def body(self, spec: RequestSpec) -> dict[str, Any]:
        """The JSON body for `spec`: streamed, with usage, and an exact output length where allowed."""
        body: dict[str, Any] = {"model": self.model, "messages": list(spec.messages), "stream": True,
                                "stream_options": {"include_usage": True}}
        if spec.output_tokens:
            body["max_tokens"] = spec.output_tokens
            if self.exact_output:
                body["min_tokens"] = spec.output_tokens
                body["ignore_eos"] = True
        body.update(self.extra_body)
        return body

    async def send(self, spec: RequestSpec, measured: bool, scheduled_ns: int | None = None) -> RequestRecord:
        """Send `spec` and wait for the whole answer; never raises for a failed request.

        The session must carry request_trace(): it stamps sent_ns when the request is written.
        """
        payload = orjson.dumps(self.body(spec))
        record = RequestRecord(index=spec.index, measured=measured, requested_output_tokens=spec.output_tokens,
                               scheduled_ns=scheduled_ns)
        record.due_ns = scheduled_ns if scheduled_ns is not None else time.perf_counter_ns()
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._send_with_fresh_connection_retry(payload, record)
        except TimeoutError:
            record.fail(TIMEOUT, f"no complete answer within {self.timeout_s:g}s")
        except aiohttp.ClientError as exc:
            kind = STREAM_CUT if record.status == 200 else CONNECTION
            record.fail(kind, self._redact(f"{type(exc).__name__}: {exc}"))
        except OSError as exc:
            record.fail(CONNECTION, self._redact(f"{type(exc).__name__}: {exc}"))
        except Exception as exc:  # noqa: BLE001  one odd response must not end an hour-long run
            record.fail(BAD_RESPONSE, self._redact(f"{type(exc).__name__}: {exc}"))
        if not record.end_ns:
            record.end_ns = time.perf_counter_ns()
        record.origin_ns = scheduled_ns if scheduled_ns is not None else (record.sent_ns or record.due_ns)
        return record

    async def _send_with_fresh_connection_retry(self, payload: bytes, record: RequestRecord) -> None:
        for attempt in range(STALE_CONNECTION_RETRIES + 1):
            context = {"reused": False}
            try:
                await self._exchange(payload, record, context)
                return
            except aiohttp.ClientConnectionError:
                if attempt == STALE_CONNECTION_RETRIES or not context["reused"] or record.status is not None:
                    raise
                record.stale_connection_retries += 1
            finally:
                if not record.sent_ns:  # the first write: a stale connection's retry stays in the latency
                    record.sent_ns = context.get("written_ns", 0)

    async def _exchange(self, payload: bytes, record: RequestRecord, context: dict) -> None:
        async with self.session.post(self.url, data=payload, headers=self._headers,
                                     trace_request_ctx=context) as resp:
            record.response_ns = time.perf_counter_ns()
            record.status = resp.status
            if resp.status != 200:
                record.retry_after = resp.headers.get("Retry-After")
                detail = (await resp.content.read(2048)).decode("utf-8", "replace")
                record.end_ns = time.perf_counter_ns()
                record.fail(error_kind_for_status(resp.status), self._redact(f"HTTP {resp.status}: {detail}"))
                return
            if "event-stream" not in resp.headers.get("Content-Type", ""):
                await self._read_whole(resp, record)
                return
            await self._read_stream(resp, record)

    async def _read_stream(self, resp: aiohttp.ClientResponse, record: RequestRecord) -> None:
        parser = SseParser()
        async for data in resp.content.iter_any():
            arrived = time.perf_counter_ns()
            for name, payload in parser.feed(data):
                self._on_event(record, name, payload, arrived)
                if record.done or record.error:
                    record.end_ns = arrived
                    await self._drain(resp)
                    return
        record.end_ns = time.perf_counter_ns()
        if record.finish_reason is None:
            record.fail(STREAM_CUT, "the stream ended before a finish_reason or [DONE]")

    async def _drain(self, resp: aiohttp.ClientResponse) -> None:
        """Read what follows [DONE] so the connection can be reused (a reconnect would skew TTFT)."""
        try:
            async with asyncio.timeout(DRAIN_AFTER_DONE_S):
                await resp.content.read()
        except (TimeoutError, aiohttp.ClientError):
            pass

    def _on_event(self, record: RequestRecord, name: str, payload: bytes, arrived: int) -> None:
        if payload.strip() == b"[DONE]":
            record.done = True
            return
        record.events += 1
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            record.fail(BAD_RESPONSE, self._redact(f"an SSE event is not JSON: {payload[:120]!r}"))
            return
        if not isinstance(obj, dict):
            record.fail(BAD_RESPONSE, "an SSE event is not a JSON object")
            return
        if name == "error" or obj.get("error"):
            record.fail(STREAM_ERROR, self._redact(f"error event: {str(obj.get('error', obj))}"))
            return
        self._on_chunk(record, obj, arrived)

    def _on_chunk(self, record: RequestRecord, obj: dict[str, Any], arrived: int) -> None:
        usage = obj.get("usage")
        carried_text = False
        for choice in obj.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            carried_text = carried_text or has_generated_text(choice)
            if choice.get("finish_reason"):
                record.finish_reason = choice["finish_reason"]
            if isinstance(choice.get("usage"), dict):
                usage = choice["usage"]
        if carried_text:
            record.content_ns.append(arrived)
        if isinstance(usage, dict):
            record.set_usage(usage)

    async def _read_whole(self, resp: aiohttp.ClientResponse, record: RequestRecord) -> None:
        """A server that ignored stream=true: the whole answer is one 'event' at its arrival time."""
        raw = await resp.read()
        record.end_ns = time.perf_counter_ns()
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            record.fail(BAD_RESPONSE, self._redact(f"neither SSE nor JSON: {raw[:120]!r}"))
            return
        choices = obj.get("choices") if isinstance(obj, dict) else None
        if not choices:
            record.fail(BAD_RESPONSE, "a JSON response without choices")
            return
        record.content_ns.append(record.end_ns)
        record.finish_reason = choices[0].get("finish_reason") or "stop"
        record.done = True
        if isinstance(obj.get("usage"), dict):
            record.set_usage(obj["usage"])

    def _redact(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return text[:DETAIL_LIMIT]

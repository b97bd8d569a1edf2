"""A loopback OpenAI-compatible upstream (vLLM-shaped) that records how many requests it serves at once.

A cap on requests in flight is a promise about the upstream, so it is measured there: every chat request
holds for `hold_s` before it is answered (a whole reply, or a stream of a few events), and counts from
the moment its body arrived until its last byte was written or its client hung up. The peak over a run
is what a test asserts on; polling a gauge could miss a peak, this cannot. It runs its own event loop in
a thread of the test process and is reached over real sockets like any provider.
"""

from __future__ import annotations

import asyncio
import json
import threading
from contextlib import contextmanager
from typing import Iterator

HEAD_END = b"\r\n\r\n"


class CountingUpstream:
    """Serves /v1/chat/completions and /metrics; `peak` and `current` count chat requests being served."""

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self.current = 0
        self.peak = 0
        self.served = 0
        self.hung_up = 0  # requests whose client left before the answer (a cancelled hedge loser)
        self.port = 0
        self._lock = threading.Lock()  # the test thread resets while the server thread counts

    def reset(self) -> None:
        with self._lock:
            self.peak = self.current
            self.served = self.hung_up = 0

    @contextmanager
    def running(self) -> Iterator["CountingUpstream"]:
        loop = asyncio.new_event_loop()
        started = threading.Event()
        stop = asyncio.Event()

        async def serve() -> None:
            server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            started.set()
            async with server:
                await stop.wait()

        thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
        thread.start()
        started.wait(10)
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(stop.set)
            thread.join(10)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request of a keep-alive connection; False when the client closed it."""
        try:
            head = await reader.readuntil(HEAD_END)
        except asyncio.IncompleteReadError:
            return False
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines if line)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        path = request_line.split(" ")[1]
        if path.endswith("/metrics"):
            text = b'vllm:num_requests_waiting{model_name="local"} 0.0\n'
            writer.write(_head(200, "text/plain; version=0.0.4", len(text)) + text)
        elif path.endswith("/chat/completions"):
            await self._chat(json.loads(body), reader, writer)
        else:
            writer.write(_head(404, "application/json", 2) + b"{}")
        await writer.drain()
        return True

    async def _chat(self, body: dict, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
        try:
            if await _client_left_within(reader, self.hold_s):
                with self._lock:
                    self.hung_up += 1
                raise ConnectionResetError("client hung up")
            with self._lock:  # counted before the answer is written: a client that has it sees the count
                self.served += 1
            if body.get("stream"):
                writer.write(_stream_answer(body["model"]))
            else:
                answer = json.dumps(_completion(body["model"])).encode()
                writer.write(_head(200, "application/json", len(answer)) + answer)
            await writer.drain()
        finally:
            with self._lock:
                self.current -= 1


async def _client_left_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Wait `seconds`, watching the connection: True as soon as the client closes it."""
    try:
        data = await asyncio.wait_for(reader.read(1), seconds)
    except TimeoutError:
        return False
    return data == b""


def _head(status: int, content_type: str, length: int) -> bytes:
    reason = {200: "OK", 404: "Not Found"}[status]
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
            .encode())


USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


def _completion(model: str) -> dict:
    return {"id": "cmpl-1", "object": "chat.completion", "created": 0, "model": model, "usage": USAGE,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "one two three"}}]}


def _stream_answer(model: str) -> bytes:
    """A whole SSE answer in one write: three words, a finish, the usage, [DONE]."""
    def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> dict:
        return {"id": "cmpl-1", "object": "chat.completion.chunk", "created": 0, "model": model, "usage": usage,
                "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]}

    events = [chunk({"role": "assistant", "content": "one"}), chunk({"content": " two"}), chunk({"content": " three"}),
              chunk({}, "stop"), chunk({}, usage=USAGE)]
    data = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n\r\n" % len(data)) + data

"""A fake OpenAI-compatible upstream built to never be the bottleneck: raw asyncio Protocol + httptools.

Every gateway in the overhead benchmark talks to this process, so its own cost must be a small fraction of
theirs. Answers are precomputed bytes: a non-streamed chat completion with 64 output tokens and usage, or
an SSE stream of a role chunk, 64 one-token chunks, a finish chunk, a usage chunk (when the request asks
for `stream_options.include_usage`, as OpenAI does) and `[DONE]`, each event its own HTTP chunk.

The same answer is also precomputed in Anthropic Messages (any POST path ending in `/messages`: message_start,
a text block of 64 deltas, message_delta with usage, message_stop) and OpenAI Responses shapes (ending in
`/responses`: created, in_progress, the item and part added, 64 output_text deltas, the done events,
completed with usage), for the translation rows (translation_rows.py).

Routes: any POST path ending in `/chat/completions`, `/messages` or `/responses`; `GET /health`;
`GET /stats` (requests served);
`POST /control` with `{"ttft_ms": x, "tpot_ms": y}` to pace streams (0 = everything at once), so the
open-loop phase can measure time to first token separately from the whole answer.

    python fake_upstream.py --port 9000
"""

from __future__ import annotations

import argparse
import asyncio
import json

import httptools

OUTPUT_TOKENS = 64
PROMPT_TOKENS = 24
_CREATED = 1_700_000_000


def _chunk(delta: dict, finish: str | None = None) -> dict:
    return {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": _CREATED, "model": "fake-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _usage() -> dict:
    return {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": OUTPUT_TOKENS,
            "total_tokens": PROMPT_TOKENS + OUTPUT_TOKENS}


def _event(payload: dict | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def build_answers() -> tuple[bytes, list[bytes], bytes]:
    """The non-streamed response (headers and body), the stream's HTTP chunks, and the usage chunk."""
    words = [f" w{i}" for i in range(OUTPUT_TOKENS)]
    body = json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": _CREATED, "model": "fake-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(words)}, "finish_reason": "stop"}],
        "usage": _usage(),
    }, separators=(",", ":")).encode()
    plain = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    events = [_event(_chunk({"role": "assistant", "content": ""}))]
    events += [_event(_chunk({"content": w})) for w in words]
    events.append(_event(_chunk({}, "stop")))
    usage_event = _event({**_chunk({}), "choices": [], "usage": _usage()})
    return plain, [_http_chunk(e) for e in events], _http_chunk(usage_event)


def _named(kind: str, payload: dict) -> bytes:
    data = json.dumps({"type": kind, **payload}, separators=(",", ":")).encode()
    return f"event: {kind}\ndata: ".encode() + data + b"\n\n"


def _plain(body: dict) -> bytes:
    data = json.dumps(body, separators=(",", ":")).encode()
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(data)) + data


def build_messages_answers() -> tuple[bytes, list[bytes]]:
    """The answer in Anthropic Messages shapes: the non-streamed response, and the stream's HTTP chunks."""
    words = [f" w{i}" for i in range(OUTPUT_TOKENS)]
    usage = {"input_tokens": PROMPT_TOKENS, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
             "output_tokens": OUTPUT_TOKENS}
    message = {"id": "msg_bench", "type": "message", "role": "assistant", "model": "fake-claude",
               "content": [{"type": "text", "text": "".join(words)}], "stop_reason": "end_turn",
               "stop_sequence": None, "usage": usage}
    events = [_named("message_start", {"message": {**message, "content": [], "stop_reason": None,
                                                   "usage": {**usage, "output_tokens": 1}}}),
              _named("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
              _named("ping", {})]
    events += [_named("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": w}}) for w in words]
    events += [_named("content_block_stop", {"index": 0}),
               _named("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                        "usage": {"output_tokens": OUTPUT_TOKENS}}),
               _named("message_stop", {})]
    return _plain(message), [_http_chunk(e) for e in events]


def build_responses_answers() -> tuple[bytes, list[bytes]]:
    """The answer in OpenAI Responses shapes: the non-streamed response, and the stream's HTTP chunks."""
    words = [f" w{i}" for i in range(OUTPUT_TOKENS)]
    item = {"type": "message", "id": "msg_bench", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": "".join(words), "annotations": []}]}
    usage = {"input_tokens": PROMPT_TOKENS, "input_tokens_details": {"cached_tokens": 0},
             "output_tokens": OUTPUT_TOKENS, "output_tokens_details": {"reasoning_tokens": 0},
             "total_tokens": PROMPT_TOKENS + OUTPUT_TOKENS}
    done = {"id": "resp_bench", "object": "response", "created_at": _CREATED, "status": "completed", "error": None,
            "incomplete_details": None, "model": "fake-model", "output": [item], "usage": usage}
    shell = {**done, "status": "in_progress", "output": [], "usage": None}
    seq = iter(range(1000))

    def event(kind: str, **fields) -> bytes:
        return _named(kind, {"sequence_number": next(seq), **fields})

    events = [event("response.created", response=shell), event("response.in_progress", response=shell),
              event("response.output_item.added", output_index=0, item={**item, "status": "in_progress",
                                                                          "content": []}),
              event("response.content_part.added", item_id="msg_bench", output_index=0, content_index=0,
                    part={"type": "output_text", "text": "", "annotations": []})]
    events += [event("response.output_text.delta", item_id="msg_bench", output_index=0, content_index=0, delta=w,
                     logprobs=[]) for w in words]
    events += [event("response.output_text.done", item_id="msg_bench", output_index=0, content_index=0,
                     text="".join(words), logprobs=[]),
               event("response.content_part.done", item_id="msg_bench", output_index=0, content_index=0,
                     part=item["content"][0]),
               event("response.output_item.done", output_index=0, item=item),
               event("response.completed", response=done)]
    return _plain(done), [_http_chunk(e) for e in events]


STREAM_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")
STREAM_TAIL = _http_chunk(_event("[DONE]")) + b"0\r\n\r\n"
PLAIN, STREAM_CHUNKS, USAGE_CHUNK = build_answers()
MESSAGES_PLAIN, MESSAGES_CHUNKS = build_messages_answers()
RESPONSES_PLAIN, RESPONSES_CHUNKS = build_responses_answers()
_END = b"0\r\n\r\n"


def _small(status: bytes, body: bytes) -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body)


class Pacing:
    """Shared, changeable at run time through POST /control."""

    ttft_s = 0.0
    tpot_s = 0.0
    served = 0


class UpstreamProtocol(asyncio.Protocol):
    """One client connection; requests on it are answered in order (no pipelining is expected)."""

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []
        self._busy: asyncio.Task | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._transport.write(_small(b"400 Bad Request", b'{"error":"bad request"}'))
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._busy is not None:
            self._busy.cancel()

    def on_url(self, url: bytes) -> None:
        self._url = url

    def on_message_begin(self) -> None:
        self._url, self._body = b"", []

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        method = self._parser.get_method()
        body = b"".join(self._body)
        if method == b"POST" and self._url.endswith(b"/chat/completions"):
            Pacing.served += 1
            self._answer_chat(body)
        elif method == b"POST" and self._url.endswith(b"/messages"):
            Pacing.served += 1
            self._answer_own(body, MESSAGES_PLAIN, MESSAGES_CHUNKS)
        elif method == b"POST" and self._url.endswith(b"/responses"):
            Pacing.served += 1
            self._answer_own(body, RESPONSES_PLAIN, RESPONSES_CHUNKS)
        elif method == b"POST" and self._url == b"/control":
            self._transport.write(_small(b"200 OK", _control(body)))
        elif self._url == b"/stats":
            self._transport.write(_small(b"200 OK", b'{"served":%d}' % Pacing.served))
        elif self._url in (b"/health", b"/v1/models"):
            self._transport.write(_small(b"200 OK", b'{"status":"ok","data":[]}'))
        else:
            self._transport.write(_small(b"404 Not Found", b'{"error":"not found"}'))

    def _answer_chat(self, body: bytes) -> None:
        if b'"stream":true' not in body and b'"stream": true' not in body:
            self._transport.write(PLAIN)
            return
        with_usage = b"include_usage" in body
        if Pacing.ttft_s == 0 and Pacing.tpot_s == 0:
            tail = (USAGE_CHUNK + STREAM_TAIL) if with_usage else STREAM_TAIL
            self._transport.write(STREAM_HEAD + b"".join(STREAM_CHUNKS) + tail)
            return
        self._busy = asyncio.get_running_loop().create_task(self._paced(with_usage))

    def _answer_own(self, body: bytes, plain: bytes, chunks: list[bytes]) -> None:
        """An answer in the Messages or Responses shape (their streams carry usage without asking)."""
        if b'"stream":true' not in body and b'"stream": true' not in body:
            self._transport.write(plain)
        elif Pacing.ttft_s == 0 and Pacing.tpot_s == 0:
            self._transport.write(STREAM_HEAD + b"".join(chunks) + _END)
        else:
            self._busy = asyncio.get_running_loop().create_task(self._paced(False, chunks, _END))

    async def _paced(self, with_usage: bool, chunks: list[bytes] | None = None, tail: bytes | None = None) -> None:
        write = self._transport.write
        write(STREAM_HEAD)
        await asyncio.sleep(Pacing.ttft_s)
        for index, chunk in enumerate(chunks or STREAM_CHUNKS):
            if index > 1 and Pacing.tpot_s:  # the role chunk and the first token arrive together
                await asyncio.sleep(Pacing.tpot_s)
            write(chunk)
        write(tail if tail is not None else (USAGE_CHUNK + STREAM_TAIL) if with_usage else STREAM_TAIL)


def _control(body: bytes) -> bytes:
    settings = json.loads(body or b"{}")
    Pacing.ttft_s = float(settings.get("ttft_ms", 0)) / 1000
    Pacing.tpot_s = float(settings.get("tpot_ms", 0)) / 1000
    return json.dumps({"ttft_ms": Pacing.ttft_s * 1000, "tpot_ms": Pacing.tpot_s * 1000}).encode()


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, host, port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

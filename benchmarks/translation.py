"""Micro-benchmark: CPU per request of the translation path (Anthropic Messages, Gemini) beside the
pass-through chat path, in process, with no sockets.

Streamed: a 64-token answer arriving one event per read (a role/start event, 64 text deltas, the
finish and usage events), opened by the call path's first-event reader and relayed by StreamRelay to a
sink that drops the bytes. The pass-through run is an OpenAI stream; the translated runs also turn the
request into the dialect's body and every event into chat chunks. Non-streamed: what the call path and
the handler do with a complete answer (request transform, answer transform, the handler's parse and
usage read) beside the pass-through's parse and usage read.

    .venv/bin/python benchmarks/translation.py [--rounds 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import orjson

from tollway.providers.openai_compatible import is_role_preamble
from tollway.providers.registry import DIALECTS
from tollway.upstream.calls import _read_first_event
from tollway.upstream.relay import StreamRelay
from tollway.upstream.translated import TranslatedResponse

TOKENS = 64
REQUEST = orjson.dumps({"model": "m", "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 256,
                        "messages": [{"role": "system", "content": "You are terse."},
                                     {"role": "user", "content": "Tell me about Paris " * 20}]})


def openai_stream() -> list[bytes]:
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    events = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    events += [{**head, "choices": [{"index": 0, "delta": {"content": f" tok{i}"}, "finish_reason": None}]}
               for i in range(TOKENS)]
    events += [{**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
               {**head, "choices": [], "usage": {"prompt_tokens": 120, "completion_tokens": TOKENS,
                                                 "total_tokens": 120 + TOKENS}}]
    return [b"data: " + orjson.dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]


def anthropic_stream() -> list[bytes]:
    def event(payload: dict) -> bytes:
        return f"event: {payload['type']}\n".encode() + b"data: " + orjson.dumps(payload) + b"\n\n"
    usage = {"input_tokens": 20, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 0, "output_tokens": 1}
    events = [event({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                                                          "model": "claude", "content": [], "usage": usage}}),
              event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
              event({"type": "ping"})]
    events += [event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f" tok{i}"}})
               for i in range(TOKENS)]
    events += [event({"type": "content_block_stop", "index": 0}),
               event({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                      "usage": {"output_tokens": TOKENS}}),
               event({"type": "message_stop"})]
    return events


def gemini_stream() -> list[bytes]:
    events = [{"candidates": [{"content": {"role": "model", "parts": [{"text": f" tok{i}"}]}, "index": 0}],
               "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": i + 1}, "modelVersion": "g",
               "responseId": "r"} for i in range(TOKENS)]
    events[-1]["candidates"][0]["finishReason"] = "STOP"
    return [b"data: " + orjson.dumps(e) + b"\r\n\r\n" for e in events]


class FakeResponse:
    """An upstream answer whose reads are the given events, one per read."""

    status = 200

    def __init__(self, reads: list[bytes]) -> None:
        self._reads = iter(reads)

    async def next_chunk(self) -> bytes | None:
        return next(self._reads, None)

    def set_deadline(self, deadline: float | None) -> None:
        pass

    def close(self) -> None:
        pass

    def header(self, name: str) -> str | None:
        return None


class DropSink:
    async def write(self, data: bytes) -> None:
        pass


async def one_stream(dialect_name: str, reads: list[bytes]) -> None:
    dialect = DIALECTS[dialect_name]
    response: object = FakeResponse(reads)
    is_preamble = dialect.is_preamble
    if not dialect.transforms.passthrough:
        dialect.transforms.request("chat", REQUEST, 4096)
        response = TranslatedResponse(response, dialect.transforms.stream())  # type: ignore[arg-type]
        is_preamble = is_role_preamble
    opened = await _read_first_event(response, is_preamble)  # type: ignore[arg-type]
    result = await StreamRelay(dialect, False, 30.0).run(opened, DropSink())
    assert result.usage is not None and result.usage.completion_tokens == TOKENS, result


async def many_streams(dialect_name: str, reads: list[bytes], count: int) -> None:
    """`count` streams in one turn of the loop's runner: the loop's start-up is not the relay's cost."""
    for _ in range(count):
        await one_stream(dialect_name, reads)


def plain_answers() -> dict[str, bytes]:
    text = "".join(f" tok{i}" for i in range(TOKENS))
    return {
        "openai": orjson.dumps({"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 120, "completion_tokens": TOKENS, "total_tokens": 120 + TOKENS}}),
        "anthropic": orjson.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
                                   "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                                   "usage": {"input_tokens": 120, "output_tokens": TOKENS}}),
        "gemini": orjson.dumps({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                                                "finishReason": "STOP"}],
                                "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": TOKENS}}),
    }


def one_plain(dialect_name: str, body: bytes) -> None:
    dialect = DIALECTS[dialect_name]
    if not dialect.transforms.passthrough:
        dialect.transforms.request("chat", REQUEST, 4096)
        body = dialect.transforms.response("chat", body)
    usage = dialect.usage_from_body(orjson.loads(body))
    assert usage is not None and usage.completion_tokens == TOKENS


def cpu_us(run, rounds: int, repeats: int = 5) -> float:
    """The best of `repeats` runs of `rounds` calls: the machine is shared, the least disturbed run is
    the closest to the code's own cost."""
    run()  # warm
    best = float("inf")
    for _ in range(repeats):
        began = time.process_time()
        for _ in range(rounds):
            run()
        best = min(best, (time.process_time() - began) / rounds * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3000)
    rounds = parser.parse_args().rounds
    try:
        import uvloop  # the gateway's own loop
        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    streams = {"openai": openai_stream(), "anthropic": anthropic_stream(), "gemini": gemini_stream()}
    answers = plain_answers()
    results: dict[str, dict[str, float]] = {"streamed": {}, "non-streamed": {}}
    for name, reads in streams.items():
        results["streamed"][name] = cpu_us(lambda: loop.run_until_complete(many_streams(name, reads, 100)),
                                           rounds // 100) / 100
    for name, body in answers.items():
        results["non-streamed"][name] = cpu_us(lambda: one_plain(name, body), rounds * 5)
    for mode, by_dialect in results.items():
        base = by_dialect["openai"]
        for name, value in by_dialect.items():
            print(f"{mode:13} {name:10} {value:8.1f} us/request  {value / base:5.2f}x the pass-through path")
    print(json.dumps(results))


if __name__ == "__main__":
    main()

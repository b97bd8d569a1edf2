"""Micro-benchmark: CPU per request of the client dialects (Anthropic Messages, OpenAI Responses), in
process, no sockets.

What the Messages endpoint adds to a chat request: the body turned into the canonical chat request
(beside parsing a chat body of the same content), a chat completion turned into a Message, and a
64-token chat stream (a chunk per token, then usage and [DONE]) turned into Anthropic's events, each
event written to a sink that drops it, as the relay hands them over one read at a time.

    .venv/bin/python benchmarks/client_dialects.py [--rounds 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import timeit

import orjson

from tollway.core.request import parse_request
from tollway.core.usage import Usage
from tollway.gateway.client_dialects.anthropic_answer import MessagesEventSink
from tollway.gateway.client_dialects.anthropic_messages import MESSAGES
from tollway.gateway.client_dialects.openai_responses import RESPONSES
from tollway.gateway.client_dialects.openai_responses_answer import ResponsesEventSink

TOKENS = 64
PROMPT = "Hello there " * 20
MESSAGES_BODY = orjson.dumps({"model": "chat", "max_tokens": 256, "system": "Be brief.",
                              "messages": [{"role": "user", "content": PROMPT}]})
RESPONSES_BODY = orjson.dumps({"model": "chat", "max_output_tokens": 256, "instructions": "Be brief.",
                               "input": PROMPT})
CHAT_BODY = orjson.dumps({"model": "chat", "max_tokens": 256, "messages": [
    {"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}]})
COMPLETION = orjson.dumps({"id": "x", "object": "chat.completion", "choices": [
    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "tok " * TOKENS}}],
    "usage": {"prompt_tokens": 60, "completion_tokens": TOKENS}})
USAGE = Usage(60, 0, 0, TOKENS)
EVENTS = [b"data: " + orjson.dumps({"id": "x", "choices": [{"index": 0, "delta": {"content": f"tok{i} "},
                                                            "finish_reason": None}]}) + b"\n\n"
          for i in range(TOKENS)]
EVENTS.append(b"data: " + orjson.dumps({"id": "x", "choices": [], "usage": {"prompt_tokens": 60,
                                                                           "completion_tokens": TOKENS}})
              + b"\n\ndata: [DONE]\n\n")


class _Drop:
    async def write(self, data: bytes) -> None:
        pass


async def _stream(make=MessagesEventSink) -> None:
    sink = make(_Drop(), "chat", lambda chunk: USAGE)
    for event in EVENTS:
        await sink.write(event)
    await sink.end()


def _best_us(work, rounds: int) -> float:
    return min(timeit.repeat(work, number=rounds, repeat=5)) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20000)
    rounds = parser.parse_args().rounds
    loop = asyncio.new_event_loop()
    print(f"parse a chat body:                     {_best_us(lambda: parse_request('chat', CHAT_BODY), rounds):6.1f} µs")
    print(f"Messages body -> canonical request:    {_best_us(lambda: MESSAGES.canonical(MESSAGES_BODY), rounds):6.1f} µs")
    print(f"chat completion -> Message:            {_best_us(lambda: MESSAGES.answer(COMPLETION, USAGE, 'chat'), rounds):6.1f} µs")
    stream_rounds = max(1, rounds // 10)
    print(f"{TOKENS}-token chat stream -> events:       "
          f"{_best_us(lambda: loop.run_until_complete(_stream()), stream_rounds):6.1f} µs")
    print(f"Responses body -> canonical request:   {_best_us(lambda: RESPONSES.canonical(RESPONSES_BODY), rounds):6.1f} µs")
    print(f"chat completion -> Response:           {_best_us(lambda: RESPONSES.answer(COMPLETION, USAGE, 'chat'), rounds):6.1f} µs")
    print(f"{TOKENS}-token chat stream -> Responses events: "
          f"{_best_us(lambda: loop.run_until_complete(_stream(ResponsesEventSink)), stream_rounds):6.1f} µs")


if __name__ == "__main__":
    main()

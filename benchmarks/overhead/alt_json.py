"""The JSON work on tollway's hot path, timed on orjson, msgspec and the standard library.

Per request a gateway decodes the client's body once, encodes the upstream body once, and decodes usage:
from the final SSE chunk of a stream, or from a whole non-streamed answer. msgspec can also decode into a
typed Struct that names only `usage`, skipping everything else in the answer.
"""

from __future__ import annotations

import json
import timeit

import msgspec
import orjson

from fake_upstream import PLAIN, USAGE_CHUNK

REQUEST = json.dumps({
    "model": "chat", "max_tokens": 256, "temperature": 0.2, "stream": True,
    "messages": [{"role": "system", "content": "You are a concise assistant. " * 4},
                 {"role": "user", "content": "Summarise the plot of Hamlet in three sentences, please."}],
}).encode()
ANSWER = PLAIN[PLAIN.index(b"\r\n\r\n") + 4:]
USAGE_EVENT = USAGE_CHUNK.split(b"\r\n")[1].removeprefix(b"data: ").strip()


class _Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _WithUsage(msgspec.Struct):
    usage: _Usage | None = None


_msgspec_decoder = msgspec.json.Decoder()
_msgspec_usage = msgspec.json.Decoder(_WithUsage)
_msgspec_encoder = msgspec.json.Encoder()
_parsed_request = orjson.loads(REQUEST)


def _upstream_body(dumps) -> bytes:
    body = {**_parsed_request, "model": "gpt-4o-mini", "stream_options": {"include_usage": True}}
    out = dumps(body)
    return out if isinstance(out, bytes) else out.encode()


OPERATIONS = {
    f"decode the client request ({len(REQUEST)} B)": {
        "orjson": lambda: orjson.loads(REQUEST), "msgspec": lambda: _msgspec_decoder.decode(REQUEST),
        "json (stdlib)": lambda: json.loads(REQUEST)},
    "encode the upstream request": {
        "orjson": lambda: _upstream_body(orjson.dumps), "msgspec": lambda: _upstream_body(_msgspec_encoder.encode),
        "json (stdlib)": lambda: _upstream_body(json.dumps)},
    f"usage from a stream's final chunk ({len(USAGE_EVENT)} B)": {
        "orjson": lambda: orjson.loads(USAGE_EVENT)["usage"], "msgspec": lambda: _msgspec_usage.decode(USAGE_EVENT).usage,
        "json (stdlib)": lambda: json.loads(USAGE_EVENT)["usage"]},
    f"usage from a non-streamed answer ({len(ANSWER)} B)": {
        "orjson": lambda: orjson.loads(ANSWER)["usage"], "msgspec": lambda: _msgspec_usage.decode(ANSWER).usage,
        "json (stdlib)": lambda: json.loads(ANSWER)["usage"]},
}


def _microseconds(fn, repeat: int = 5, number: int = 20_000) -> float:
    return min(timeit.repeat(fn, repeat=repeat, number=number)) / number * 1e6


def run(quick: bool = False) -> list[str]:
    number = 2_000 if quick else 20_000
    libraries = ["orjson", "msgspec", "json (stdlib)"]
    lines = ["| operation | " + " | ".join(f"{lib} µs" for lib in libraries) + " |",
             "| --- | " + " | ".join("---:" for _ in libraries) + " |"]
    for operation, fns in OPERATIONS.items():
        cells = [f"{_microseconds(fns[lib], number=number):.2f}" for lib in libraries]
        lines.append(f"| {operation} | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    print("\n".join(run()))

"""Helpers for the upstream tests: a routed deployment as the calls read it, a recording sink, and one
stream per dialect with the usage the relay must catch from it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from tests.upstream.scripted_upstream import event
from tollway.core.usage import Usage
from tollway.providers.dialect import Dialect
from tollway.providers.registry import DIALECTS
from tollway.upstream.http_client import HttpClient


@dataclass
class Deployment:
    """What calls.call/open_stream read from a routed deployment."""

    url: str
    dialect_name: str = "openai"
    name: str = "d"
    max_output: int = 256  # a translating dialect's output limit when the request names none
    connect_s: float = 2.0
    response_s: float = 5.0
    first_byte_s: float = 5.0
    between_chunks_s: float = 5.0
    targets: dict = field(default_factory=dict)
    keys: None = None  # no provider keys: the calls send no auth header

    @property
    def dialect(self) -> Dialect:
        return DIALECTS[self.dialect_name]

    def target(self, endpoint: str, client: HttpClient, key: object = None) -> object:
        if endpoint not in self.targets:
            self.targets[endpoint] = client.target(self.url, {"Content-Type": "application/json"})
        return self.targets[endpoint]


class GoneAfter:
    """A client that hangs up after `writes` writes, as the HTTP server's sink reports it."""

    def __init__(self, writes: int) -> None:
        self.left = writes
        self.writes: list[bytes] = []

    async def write(self, data: bytes) -> None:
        if self.left == 0:
            raise ConnectionResetError("client went away")
        self.left -= 1
        self.writes.append(data)


class RecordingSink:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.writes.append(data)

    @property
    def body(self) -> bytes:
        return b"".join(self.writes)


def chunk(delta: dict, finish: str | None = None, **extra: object) -> dict:
    return {"id": "c1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


def usage_only(usage: dict, **extra: object) -> dict:
    return {"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [], "usage": usage, **extra}


def spaced(payload: dict) -> bytes:
    """An event written with Python's default JSON separators (`"usage": null`), as some servers do."""
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"
U = {"prompt_tokens": 20, "completion_tokens": 3, "total_tokens": 23}
ROLE = event(chunk({"role": "assistant", "content": ""}))
WORDS = [event(chunk({"content": w})) for w in ("a", "b", "c")]

# dialect -> (events, the usage the relay must catch, index of the usage-only event dropped if not asked)
STREAMS: dict[str, tuple[list[bytes], Usage, int | None]] = {
    "openai": ([event({**chunk({"role": "assistant", "content": ""}), "usage": None}),
                *[event({**chunk({"content": w}), "usage": None}) for w in "abc"],
                event({**chunk({}, "stop"), "usage": None}),
                event(usage_only({**U, "prompt_tokens_details": {"cached_tokens": 16}}, system_fingerprint="fp_1")),
                DONE], Usage(prompt_tokens=20, cached_tokens=16, completion_tokens=3), 5),
    "deepseek": ([ROLE, *WORDS, event({**chunk({"content": ""}, "stop"), "usage": {**U, "prompt_cache_hit_tokens": 8,
                                                                                   "prompt_cache_miss_tokens": 12}}),
                  DONE], Usage(prompt_tokens=20, cached_tokens=8, completion_tokens=3), None),
    "qwen": ([ROLE, *WORDS, event(chunk({}, "stop")),
              event(usage_only({**U, "prompt_tokens_details": {"cached_tokens": 4, "cache_creation_input_tokens": 6}})),
              DONE], Usage(prompt_tokens=20, cached_tokens=4, cache_write_tokens=6, completion_tokens=3), 5),
    "kimi": ([ROLE, *WORDS, event({"id": "c1", "object": "chat.completion.chunk", "usage": None, "choices": [
                {"index": 0, "delta": {}, "finish_reason": "stop", "usage": {**U, "cached_tokens": 5}}]}),
              DONE], Usage(prompt_tokens=20, cached_tokens=5, completion_tokens=3), None),
    "glm": ([ROLE, *WORDS, event({**chunk({}, "stop"), "usage": U}), DONE],
            Usage(prompt_tokens=20, completion_tokens=3), None),
    "vllm": ([ROLE, *[event({**chunk({"content": w}), "usage": {**U, "completion_tokens": i + 1}})
                      for i, w in enumerate("abc")],
              event(usage_only({**U, "completion_tokens": 4})), DONE], Usage(prompt_tokens=20, completion_tokens=4), 4),
    "sglang": ([ROLE, *WORDS, event(chunk({}, "stop")), event(usage_only({**U, "reasoning_tokens": 2})), DONE],
               Usage(prompt_tokens=20, completion_tokens=3, reasoning_tokens=2), 5),
    "lmdeploy": ([spaced({**chunk({"content": w}), "usage": None}) for w in "abc"]
                 + [spaced(usage_only(U)), DONE], Usage(prompt_tokens=20, completion_tokens=3), 3),
    "llamacpp": ([ROLE, *WORDS, event(chunk({}, "stop")), event(usage_only(U, timings={"cache_n": 7})), DONE],
                 Usage(prompt_tokens=20, cached_tokens=7, completion_tokens=3), 5),
    "ollama": ([event({"object": "text_completion", "choices": [{"index": 0, "text": w}],
                       "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}) for w in "abc"]
               + [event({"object": "text_completion", "choices": [], "usage": U}), DONE],
               Usage(prompt_tokens=20, completion_tokens=3), 3),
}  # translating dialects (anthropic, gemini) reach the relay as canonical chunks: test_relay_translated.py

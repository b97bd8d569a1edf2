"""The stream relay over a real socket: usage caught for every dialect, the usage-only chunk dropped or
kept, everything else forwarded byte for byte, however the bytes are split into reads."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import pytest

from tests.gateway.relay_scripted_upstream import ScriptedUpstream, event, sse_script
from tollway.core.usage import Usage
from tollway.providers.dialect import Dialect
from tollway.providers.registry import DIALECTS
from tollway.upstream import calls
from tollway.upstream.http_client import HttpClient
from tollway.upstream.relay import RelayResult, StreamRelay


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

    @property
    def dialect(self) -> Dialect:
        return DIALECTS[self.dialect_name]

    def target(self, endpoint: str, client: HttpClient) -> object:
        if endpoint not in self.targets:
            self.targets[endpoint] = client.target(self.url, {"Content-Type": "application/json"})
        return self.targets[endpoint]


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


async def relay_once(events: list[bytes], dialect: str, wants_usage: bool,
                     script: list | None = None) -> tuple[RelayResult, RecordingSink, ScriptedUpstream]:
    async with ScriptedUpstream([script or sse_script(events)]) as server:
        client = HttpClient()
        dep = Deployment(server.url, dialect)
        loop = asyncio.get_running_loop()
        opened = await calls.open_stream(client, dep, "chat", b'{"stream":true}', loop.time() + 10)
        sink = RecordingSink()
        result = await StreamRelay(dep.dialect, wants_usage, dep.between_chunks_s).run(opened, sink)
        await client.close()
        return result, sink, server


def data_events(events: list[bytes]) -> int:
    return sum(1 for e in events if e.startswith(b"data:") and e != DONE)


@pytest.mark.parametrize("wants_usage", [False, True], ids=["usage-not-asked", "usage-asked"])
@pytest.mark.parametrize("dialect", sorted(STREAMS))
def test_usage_is_caught_and_the_stream_forwarded(dialect: str, wants_usage: bool) -> None:
    events, expected, usage_only_at = STREAMS[dialect]
    result, sink, _ = asyncio.run(relay_once(events, dialect, wants_usage))
    assert result.error == "" and not result.client_gone
    assert result.usage == expected
    dropped = usage_only_at is not None and not wants_usage
    forwarded = [e for i, e in enumerate(events) if not (dropped and i == usage_only_at)]
    assert sink.body == b"".join(forwarded)
    assert result.data_events == data_events(forwarded)
    assert result.first_write_at is not None


def test_fingerprint_comes_from_the_usage_chunk() -> None:
    result, _, _ = asyncio.run(relay_once(STREAMS["openai"][0], "openai", False))
    assert result.system_fingerprint == "fp_1"


def test_crlf_separated_stream() -> None:
    events = [e.replace(b"\n\n", b"\r\n\r\n") for e in STREAMS["qwen"][0]]
    result, sink, _ = asyncio.run(relay_once(events, "qwen", False))
    assert result.error == "" and result.usage == STREAMS["qwen"][1]
    assert sink.body == b"".join(events[:5] + events[6:])


def test_whole_stream_in_one_read_is_one_write() -> None:
    events, expected, _ = STREAMS["openai"]
    body = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"
    script = [b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + body]
    result, sink, _ = asyncio.run(relay_once(events, "openai", False, script))
    assert result.usage == expected
    assert sink.writes == [b"".join(events[:5] + events[6:])]


def test_events_split_anywhere_across_reads_relay_the_same() -> None:
    """The usage marker, the separator and [DONE] cut mid-way: each cut point gives the same output."""
    events, expected, _ = STREAMS["openai"]
    whole = b"".join(events)
    tail_from = whole.index(b'"usage":{')  # the cuts that matter most: around the usage event and [DONE]
    cuts = [5, len(events[0]) - 1, len(events[0]) + 1, *range(tail_from - 12, len(whole), 7)]

    async def main() -> None:
        for cut in cuts:
            pieces = [whole[:cut], whole[cut:]]
            script = [b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"]
            for piece in pieces:
                script += [b"%x\r\n%s\r\n" % (len(piece), piece), 0.003]
            script.append(b"0\r\n\r\n")
            result, sink, _ = await relay_once(events, "openai", False, script)
            assert result.error == "", cut
            assert result.usage == expected, cut
            assert sink.body == b"".join(events[:5] + events[6:]), cut
            assert result.data_events == 5, cut

    asyncio.run(main())


def test_usage_only_chunk_alone_in_a_read_is_not_written_at_all() -> None:
    events, _, _ = STREAMS["qwen"]
    result, sink, _ = asyncio.run(relay_once(events, "qwen", False))
    assert all(b'"usage"' not in w for w in sink.writes)
    assert all(w for w in sink.writes), "an empty write reached the client"
    assert result.data_events == 5


def test_usage_only_chunk_with_a_second_usage_inside_is_dropped_once() -> None:
    """Groq-style: the final chunk carries usage at the top level and again under x_groq."""
    events = [ROLE, *WORDS, event(usage_only(U, x_groq={"id": "req_1", "usage": {**U, "queue_time": 0.01}})), DONE]
    result, sink, _ = asyncio.run(relay_once(events, "openai", False))
    assert result.usage == Usage(prompt_tokens=20, completion_tokens=3)
    assert sink.body == b"".join(events[:4] + events[5:])
    assert result.data_events == 4


def one_read_script(events: list[bytes]) -> list:
    body = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"
    return [b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + body]


@pytest.mark.parametrize("dialect", sorted(STREAMS))
def test_a_long_stream_arriving_in_one_read_is_relayed_the_same(dialect: str) -> None:
    """A fast upstream's whole answer in one read (kilobytes, the usage markers near its end)."""
    events, expected, usage_only_at = STREAMS[dialect]
    filler = [event(chunk({"content": f" word{i}"})) for i in range(60)]
    at = 1 if dialect != "lmdeploy" else 0
    long_events = events[:at] + filler + events[at:]
    dropped_at = None if usage_only_at is None else usage_only_at + len(filler)
    result, sink, _ = asyncio.run(relay_once(long_events, dialect, False, one_read_script(long_events)))
    assert result.error == "" and result.usage == expected
    forwarded = [e for i, e in enumerate(long_events) if i != dropped_at]
    assert sink.body == b"".join(forwarded)
    assert len(sink.body) > 4096 and len(sink.writes) <= 2
    assert result.data_events == data_events(forwarded)

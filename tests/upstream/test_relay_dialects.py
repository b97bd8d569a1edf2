"""The stream relay over a real socket: usage caught for every dialect, the usage-only chunk dropped or
kept, everything else forwarded byte for byte, however the bytes are split into reads."""

from __future__ import annotations

import asyncio

import pytest

from tests.upstream.scripted_upstream import ScriptedUpstream, event, sse_script
from tests.upstream.support import DONE, ROLE, STREAMS, WORDS, Deployment, RecordingSink, U, chunk, usage_only
from tollway.core.usage import Usage
from tollway.upstream import calls
from tollway.upstream.http_client import HttpClient
from tollway.upstream.relay import RelayResult, StreamRelay


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

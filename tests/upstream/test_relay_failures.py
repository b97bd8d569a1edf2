"""How streams and calls fail, over real sockets: cut streams, silence, a client gone, deadlines, stale
keep-alive connections. Timing bounds are generous but tied to the configured delays."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.upstream.scripted_upstream import (
    CLOSE,
    HANG,
    ScriptedUpstream,
    event,
    http_chunk,
    json_answer,
    sse_head,
    sse_script,
)
from tests.upstream.support import (
    DONE,
    ROLE,
    STREAMS,
    WORDS,
    Deployment,
    GoneAfter,
    RecordingSink,
    U,
    chunk,
    usage_only,
)
from tollway.providers.failure import FailureKind
from tollway.providers.registry import DIALECTS
from tollway.upstream import calls
from tollway.upstream.calls import UpstreamFailure
from tollway.upstream.http_client import HttpClient
from tollway.upstream.relay import StreamRelay

STREAM_BODY = b'{"stream":true}'


async def open_and_relay(server: ScriptedUpstream, dep: Deployment, sink=None, wants_usage: bool = False):
    client = HttpClient()
    try:
        loop = asyncio.get_running_loop()
        opened = await calls.open_stream(client, dep, "chat", STREAM_BODY, loop.time() + 10)
        sink = sink or RecordingSink()
        started = time.monotonic()
        result = await StreamRelay(dep.dialect, wants_usage, dep.between_chunks_s).run(opened, sink)
        return result, sink, time.monotonic() - started
    finally:
        await client.close()


def test_stream_cut_without_done_or_usage_ends_with_an_error_event() -> None:
    async def main():
        async with ScriptedUpstream([sse_script([ROLE, *WORDS])]) as server:
            return await open_and_relay(server, Deployment(server.url))

    result, sink, _ = asyncio.run(main())
    assert result.error == "upstream stream ended before it finished"
    assert result.usage is None and result.data_events == 4 and not result.client_gone
    assert sink.body.startswith(b"".join([ROLE, *WORDS]))
    assert sink.writes[-1].startswith(b'data: {"error":{"message":"The stream was interrupted: upstream stream ended')
    assert b'"code":"stream_interrupted"' in sink.writes[-1]


def test_connection_closed_mid_stream_is_a_broken_stream() -> None:
    script = sse_script([ROLE, *WORDS], finish=False) + [b"1f\r\ndata: {\"half", CLOSE]

    async def main():
        async with ScriptedUpstream([script]) as server:
            return await open_and_relay(server, Deployment(server.url))

    result, sink, _ = asyncio.run(main())
    assert result.error == "upstream stream broke: upstream closed the connection before the answer was complete"
    assert b'"code":"stream_interrupted"' in sink.writes[-1]
    assert b'"half' not in sink.body, "a half event reached the client"


def test_silence_longer_than_between_chunks_ends_the_stream_and_closes_the_connection() -> None:
    script = sse_script([ROLE, *WORDS], finish=False) + [HANG]

    async def main():
        async with ScriptedUpstream([script]) as server:
            result = await open_and_relay(server, Deployment(server.url, between_chunks_s=0.3))
            await asyncio.sleep(0.05)
            return result, server.closed_by_client

    (result, sink, elapsed), closed = asyncio.run(main())
    assert result.error == "upstream sent nothing for 0.3s"
    assert 0.3 <= elapsed < 0.3 * 1.25 + 0.25, elapsed
    assert closed == 1, "the silent upstream's connection was left open"
    assert b"The stream was interrupted: upstream sent nothing for 0.3s." in sink.writes[-1]


def test_a_slow_but_steady_stream_outlives_its_silence_timer() -> None:
    """Gaps of 0.05 s under a 0.25 s silence timer, 0.6 s in all: the timer is pushed back as reads come."""
    events = [ROLE, *[event(chunk({"content": str(i)})) for i in range(9)], event(usage_only(U)), DONE]
    script = [sse_head()]
    for piece in events:
        script += [http_chunk(piece), 0.05]
    script.append(b"0\r\n\r\n")

    async def main():
        async with ScriptedUpstream([script]) as server:
            return await open_and_relay(server, Deployment(server.url, between_chunks_s=0.25))

    result, sink, elapsed = asyncio.run(main())
    assert result.error == "", result.error
    assert elapsed > 0.25 * 1.25 + 0.1, "the stream did not outlast one silence timer span"
    assert sink.body == b"".join(events[:-2] + events[-1:])


def test_client_gone_mid_stream_closes_the_upstream_connection() -> None:
    script = sse_script([ROLE, *WORDS], finish=False) + [0.05, http_chunk(event(chunk({"content": "d"}))), HANG]

    async def main():
        async with ScriptedUpstream([script]) as server:
            result = await open_and_relay(server, Deployment(server.url), sink=GoneAfter(1))
            await asyncio.sleep(0.2)
            return result, server.closed_by_client

    (result, sink, _), closed = asyncio.run(main())
    assert result.client_gone and result.error == "client disconnected"
    assert len(sink.writes) == 1
    assert closed == 1


def test_keep_alives_and_a_role_preamble_do_not_open_the_stream() -> None:
    """Cut after the preamble: the walker may still fail over, the client has seen nothing."""
    script = sse_script([b": keep-alive\n\n", ROLE, b": ping\n\n"])

    async def main():
        async with ScriptedUpstream([script]) as server:
            return await open_and_relay(server, Deployment(server.url))

    with pytest.raises(UpstreamFailure) as failed:
        asyncio.run(main())
    assert failed.value.failure.kind is FailureKind.STREAM_CUT
    assert failed.value.failure.message == "stream ended before its first token"


def test_the_first_substantive_event_opens_the_stream_with_what_came_before() -> None:
    preamble = [b": keep-alive\n\n", ROLE, b": ping\n\n"]

    async def main():
        async with ScriptedUpstream([sse_script([*preamble, *WORDS, event(usage_only(U)), DONE])]) as server:
            client = HttpClient()
            loop = asyncio.get_running_loop()
            opened = await calls.open_stream(client, Deployment(server.url), "chat", STREAM_BODY, loop.time() + 5)
            sink = RecordingSink()
            result = await StreamRelay(DIALECTS["openai"], False, 5.0).run(opened, sink)
            await client.close()
            return opened, result, sink

    opened, result, sink = asyncio.run(main())
    assert opened.early_comments == 2
    assert opened.events == [ROLE, WORDS[0]]
    assert sink.body == b"".join([ROLE, *WORDS, DONE])  # comments before the first token are not forwarded
    assert result.usage is not None and result.error == ""


@pytest.mark.parametrize("deadline_s, expected", [(5.0, "no first token within 0.3s"),
                                                  (0.3, "request deadline reached")])
def test_no_first_token_times_out_and_closes_the_connection(deadline_s: float, expected: str) -> None:
    async def main():
        async with ScriptedUpstream([[sse_head(), HANG]]) as server:
            client = HttpClient()
            dep = Deployment(server.url, first_byte_s=0.3 if deadline_s > 1 else 5.0)
            loop = asyncio.get_running_loop()
            started = time.monotonic()
            try:
                await calls.open_stream(client, dep, "chat", STREAM_BODY, loop.time() + deadline_s)
            except UpstreamFailure as exc:
                failure = exc.failure
            elapsed = time.monotonic() - started
            await asyncio.sleep(0.05)
            await client.close()
            return failure, elapsed, server.closed_by_client

    failure, elapsed, closed = asyncio.run(main())
    assert failure.kind is FailureKind.TIMEOUT and failure.message == expected
    assert 0.3 <= elapsed < 0.3 + 0.25, elapsed
    assert closed == 1


def test_non_streamed_answer_that_stalls_mid_body_times_out() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":"

    async def main():
        async with ScriptedUpstream([[head, HANG]]) as server:
            client = HttpClient()
            loop = asyncio.get_running_loop()
            started = time.monotonic()
            with pytest.raises(UpstreamFailure) as failed:
                await calls.call(client, Deployment(server.url, response_s=0.3), "chat", b"{}", loop.time() + 5)
            elapsed = time.monotonic() - started
            await asyncio.sleep(0.05)
            await client.close()
            return failed.value.failure, elapsed, server.closed_by_client

    failure, elapsed, closed = asyncio.run(main())
    assert failure.kind is FailureKind.TIMEOUT and failure.message == "no complete answer within 0.3s"
    assert 0.3 <= elapsed < 0.3 + 0.25, elapsed
    assert closed == 1


def test_deadline_passes_while_streamed_answer_is_still_relayed_only_by_silence_timer() -> None:
    """Opening's deadline stops at the first token: a stream longer than first_byte_s is not cut by it."""
    events = [ROLE, *WORDS, event(usage_only(U)), DONE]
    script = [sse_head(), http_chunk(events[0] + events[1]), 0.4]
    for piece in events[2:]:
        script += [http_chunk(piece), 0.01]
    script.append(b"0\r\n\r\n")

    async def main():
        async with ScriptedUpstream([script]) as server:
            return await open_and_relay(server, Deployment(server.url, first_byte_s=0.2, between_chunks_s=1.0))

    result, sink, _ = asyncio.run(main())
    assert result.error == "" and result.usage is not None
    assert sink.body == b"".join(events[:4] + events[5:])


def test_stream_error_status_is_classified_with_retry_after() -> None:
    body = b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}'

    async def main():
        async with ScriptedUpstream([[json_answer(429, body, b"Retry-After: 7\r\n")]]) as server:
            return await open_and_relay(server, Deployment(server.url))

    with pytest.raises(UpstreamFailure) as failed:
        asyncio.run(main())
    assert failed.value.failure.kind is FailureKind.RATE_LIMITED
    assert failed.value.failure.status == 429 and failed.value.failure.retry_after_s == 7


def test_usage_asked_keeps_the_usage_chunk_in_a_long_real_stream() -> None:
    events, expected, _ = STREAMS["openai"]

    async def main():
        async with ScriptedUpstream([sse_script(events)]) as server:
            return await open_and_relay(server, Deployment(server.url), wants_usage=True)

    result, sink, _ = asyncio.run(main())
    assert result.usage == expected and sink.body == b"".join(events)

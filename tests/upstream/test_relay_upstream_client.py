"""The upstream HTTP client over real sockets (keep-alive, stale connections, headers, bad HTTP) and the
deadline heap it times calls with."""

from __future__ import annotations

import asyncio

import pytest

from tests.processes import free_port
from tests.upstream.scripted_upstream import CLOSE, ScriptedUpstream, http_chunk, json_answer
from tests.upstream.support import Deployment
from tollway.providers.failure import FailureKind
from tollway.upstream import calls
from tollway.upstream.calls import UpstreamFailure
from tollway.upstream.deadlines import DeadlineHeap
from tollway.upstream.http_client import HttpClient

ANSWER = b'{"id":"x","usage":{"prompt_tokens":1,"completion_tokens":2}}'


def call_all(scripts: list[list], count: int, dep_kwargs: dict | None = None):
    async def main():
        async with ScriptedUpstream(scripts) as server:
            client = HttpClient()
            dep = Deployment(server.url, **(dep_kwargs or {}))
            loop = asyncio.get_running_loop()
            replies = [await calls.call(client, dep, "chat", b'{"n":%d}' % i, loop.time() + 5) for i in range(count)]
            await client.close()
            return replies, server

    return asyncio.run(main())


def test_calls_reuse_one_keep_alive_connection() -> None:
    replies, server = call_all([[json_answer(200, ANSWER)] for _ in range(3)], 3)
    assert [r.body for r in replies] == [ANSWER] * 3
    assert replies[0].content_type == "application/json"
    assert server.connections == 1
    assert [r.split(b"\r\n\r\n", 1)[1] for r in server.requests] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    assert b"Content-Length: 7\r\n" in server.requests[0]


def test_a_kept_alive_connection_the_upstream_dropped_is_retried_on_a_fresh_one() -> None:
    """The second request finds its idle connection closed by the upstream: it is resent, not failed."""
    replies, server = call_all([[json_answer(200, ANSWER)], [CLOSE], [json_answer(200, b'{"second":1}')]], 2)
    assert [r.body for r in replies] == [ANSWER, b'{"second":1}']
    assert server.connections == 2
    assert len(server.requests) == 3


def test_chunked_answer_is_read_whole() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n"
    script = [head, http_chunk(ANSWER[:10]), 0.01, http_chunk(ANSWER[10:]), b"0\r\n\r\n"]
    replies, _ = call_all([script], 1)
    assert replies[0].body == ANSWER
    assert replies[0].content_type == "application/json; charset=utf-8"


def test_headers_are_found_whatever_their_case() -> None:
    head = (b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nX-RateLimit-Remaining: 9\r\nRETRY-AFTER: 3\r\n"
            b"Content-Length: 2\r\n\r\nok")

    async def main():
        async with ScriptedUpstream([[head]]) as server:
            client = HttpClient()
            target = client.target(server.url, {"Authorization": "Bearer sk-test"})
            response = await client.post(target, b"{}", 1.0)
            found = (response.header("content-type"), response.header("x-ratelimit-remaining"),
                     response.header("retry-after"), response.header("x-missing"))
            body = await response.read()
            headers = dict(response.headers)
            await client.close()
            return found, body, headers, server.requests[0]

    found, body, headers, request = asyncio.run(main())
    assert found == ("text/plain", "9", "3", None)
    assert body == b"ok"
    assert headers["x-ratelimit-remaining"] == "9" and headers["retry-after"] == "3"
    assert request.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n") and b"Authorization: Bearer sk-test\r\n" in request


def test_error_status_is_classified_from_the_body_and_retry_after() -> None:
    body = b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}'
    with pytest.raises(UpstreamFailure) as failed:
        call_all([[json_answer(429, body, b"retry-after: 2\r\n")]], 1)
    assert failed.value.failure.kind is FailureKind.RATE_LIMITED
    assert failed.value.failure.retry_after_s == 2


def test_bytes_that_are_not_http_are_a_server_failure() -> None:
    with pytest.raises(UpstreamFailure) as failed:
        call_all([[b"SSH-2.0-OpenSSH_9.2\r\n\r\n"]], 1)
    assert failed.value.failure.kind is FailureKind.SERVER
    assert "invalid HTTP from upstream" in failed.value.failure.message


def test_a_refused_connection_is_a_connect_failure() -> None:
    async def main():
        client = HttpClient()
        dep = Deployment(f"http://127.0.0.1:{free_port()}/v1/chat/completions")
        try:
            await calls.call(client, dep, "chat", b"{}", asyncio.get_running_loop().time() + 5)
        finally:
            await client.close()

    with pytest.raises(UpstreamFailure) as failed:
        asyncio.run(main())
    assert failed.value.failure.kind is FailureKind.CONNECT
    assert "cannot connect" in failed.value.failure.message


def test_many_calls_leave_no_deadlines_behind() -> None:
    """Each call's deadline is cancelled when its answer is read; the heap keeps only what is in flight."""
    async def main():
        async with ScriptedUpstream([[json_answer(200, ANSWER)] for _ in range(400)]) as server:
            client = HttpClient()
            dep = Deployment(server.url)
            loop = asyncio.get_running_loop()
            for _ in range(400):
                await calls.call(client, dep, "chat", b"{}", loop.time() + 300)
            held = len(client._deadlines)
            await client.close()
            return held

    assert asyncio.run(main()) <= 2 * 64 + 1


def test_an_answered_call_leaves_no_deadline_on_its_idle_connection() -> None:
    async def main():
        async with ScriptedUpstream([[json_answer(200, ANSWER)], [json_answer(200, ANSWER)]]) as server:
            client = HttpClient()
            dep = Deployment(server.url, response_s=0.1)
            loop = asyncio.get_running_loop()
            await calls.call(client, dep, "chat", b"{}", loop.time() + 5)
            await asyncio.sleep(0.25)  # past the first call's deadline, the connection idle in the pool
            await calls.call(client, dep, "chat", b"{}", loop.time() + 5)
            await client.close()
            return server.connections

    assert asyncio.run(main()) == 1


# --- the deadline heap on its own ------------------------------------------------------------------------------

def test_deadlines_fire_in_order_and_cancelled_ones_never() -> None:
    async def main():
        heap, fired = DeadlineHeap(), []
        loop = asyncio.get_running_loop()
        now = loop.time()
        heap.add(now + 0.06, lambda: fired.append("c"))
        heap.add(now + 0.02, lambda: fired.append("a"))
        cancelled = heap.add(now + 0.03, lambda: fired.append("never"))
        heap.add(now + 0.04, lambda: fired.append("b"))
        heap.cancel(cancelled)
        heap.cancel(cancelled)  # twice is harmless
        await asyncio.sleep(0.1)
        return fired, len(heap)

    assert asyncio.run(main()) == (["a", "b", "c"], 0)


def test_a_deadline_added_earlier_than_the_armed_one_fires_first_and_on_time() -> None:
    async def main():
        heap, fired = DeadlineHeap(), {}
        loop = asyncio.get_running_loop()
        start = loop.time()
        heap.add(start + 5.0, lambda: fired.setdefault("late", loop.time() - start))
        heap.add(start + 0.05, lambda: fired.setdefault("early", loop.time() - start))
        await asyncio.sleep(0.2)
        return fired

    fired = asyncio.run(main())
    assert list(fired) == ["early"]
    assert 0.049 <= fired["early"] < 0.15


def test_cancelled_deadlines_are_swept_so_memory_follows_what_is_pending() -> None:
    async def main():
        heap = DeadlineHeap()
        now = asyncio.get_running_loop().time()
        pending = [heap.add(now + 300, lambda: None) for _ in range(10)]
        for i in range(20_000):
            heap.cancel(heap.add(now + 300 + i, lambda: None))
        sizes = len(heap)
        for entry in pending:
            heap.cancel(entry)
        return sizes

    assert asyncio.run(main()) <= 2 * 64 + 10 + 1


def test_a_heap_used_again_in_a_new_event_loop_still_fires() -> None:
    heap, fired = DeadlineHeap(), []

    async def schedule(label: str, wait_s: float) -> None:
        loop = asyncio.get_running_loop()
        heap.add(loop.time() + 0.02, lambda: fired.append(label))
        await asyncio.sleep(wait_s)

    asyncio.run(schedule("first loop", 0.0))  # armed in a loop that then closes before it is due
    asyncio.run(schedule("second loop", 0.1))
    assert "second loop" in fired

"""Translated streams over a real socket: an Anthropic or Gemini event stream opened by calls.open_stream and
relayed by StreamRelay reaches the client as Chat Completions chunks, with the exact usage caught, however
the upstream's bytes are split into reads; an error event before the first token fails over, after it
breaks the stream."""

from __future__ import annotations

import asyncio
import json

import orjson
import pytest

from tests.upstream.scripted_upstream import ScriptedUpstream, http_chunk, sse_head
from tests.upstream.support import Deployment, RecordingSink
from tollway.core.usage import CacheSplitUsage, Usage
from tollway.providers.failure import FailureKind
from tollway.upstream import calls
from tollway.upstream.calls import UpstreamFailure
from tollway.upstream.http_client import HttpClient
from tollway.upstream.relay import RelayResult, StreamRelay


def anthropic_event(payload: dict) -> bytes:
    return f"event: {payload['type']}\n".encode() + b"data: " + json.dumps(payload).encode() + b"\n\n"


ANTHROPIC = [anthropic_event(e) for e in (
    {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
                                          "content": [], "usage": {"input_tokens": 12, "cache_read_input_tokens": 100,
                                                                   "cache_creation_input_tokens": 30,
                                                                   "cache_creation": {"ephemeral_5m_input_tokens": 10,
                                                                                      "ephemeral_1h_input_tokens": 20},
                                                                   "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1",
                                                                  "name": "get_weather", "input": {}}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"ci'}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": 'ty": "Paris"}'}},
    {"type": "content_block_stop", "index": 1},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 9}},
    {"type": "message_stop"},
)]
ANTHROPIC_USAGE = CacheSplitUsage(prompt_tokens=142, cached_tokens=100, cache_write_tokens=30, completion_tokens=9,
                                  cache_write_1h_tokens=20)

GEMINI = [b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in (
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "hmm", "thought": True}]}}],
     "usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": 0, "thoughtsTokenCount": 3}, "responseId": "r1"},
    {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hello"}]}}],
     "usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": 1, "thoughtsTokenCount": 3}, "responseId": "r1"},
    {"candidates": [{"content": {"role": "model", "parts": [{"text": " there"}]}, "finishReason": "STOP"}],
     "usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": 2, "thoughtsTokenCount": 3,
                       "cachedContentTokenCount": 32, "totalTokenCount": 55}, "responseId": "r1"},
)]
GEMINI_USAGE = Usage(prompt_tokens=50, cached_tokens=32, completion_tokens=5, reasoning_tokens=3)


def script(events: list[bytes], split_at: int | None = None) -> list:
    whole = b"".join(events)
    if split_at is None:
        pieces = events
    else:
        pieces = [whole[:split_at], whole[split_at:]]
    out: list = [sse_head()]
    for piece in pieces:
        out += [http_chunk(piece), 0.002]
    return [*out, b"0\r\n\r\n"]


async def relay(dialect: str, scripted: list, wants_usage: bool = True) -> tuple[RelayResult, list[dict], bytes]:
    async with ScriptedUpstream([scripted]) as server:
        client = HttpClient()
        dep = Deployment(server.url, dialect)
        loop = asyncio.get_running_loop()
        payload = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True})
        try:
            opened = await calls.open_stream(client, dep, "chat", payload, loop.time() + 10)  # type: ignore[arg-type]
            sink = RecordingSink()
            result = await StreamRelay(dep.dialect, wants_usage, dep.between_chunks_s).run(opened, sink)
        finally:
            await client.close()
        body = b"".join(sink.writes)
        chunks = [orjson.loads(line[6:]) for line in body.split(b"\n\n") if line.startswith(b"data: {")]
        return result, chunks, body


def deltas(chunks: list[dict], key: str) -> str:
    return "".join(c["choices"][0]["delta"].get(key) or "" for c in chunks if c.get("choices"))


@pytest.mark.parametrize("split_at", [None, 7, 301, 555])
def test_an_anthropic_stream_reaches_the_client_as_chat_chunks(split_at) -> None:
    result, chunks, body = asyncio.run(relay("anthropic", script(ANTHROPIC, split_at)))
    assert result.error == "" and result.usage == ANTHROPIC_USAGE
    assert deltas(chunks, "content") == "Hello"
    calls_seen = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks
                  if c["choices"] and "tool_calls" in c["choices"][0]["delta"]]
    assert calls_seen[0]["id"] == "toolu_1" and calls_seen[0]["function"]["name"] == "get_weather"
    assert "".join(c["function"]["arguments"] for c in calls_seen) == '{"city": "Paris"}'
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]] \
        == ["tool_calls"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 142
    assert body.endswith(b"data: [DONE]\n\n") and all(c["object"] == "chat.completion.chunk" for c in chunks)


def test_the_usage_chunk_is_dropped_when_the_client_did_not_ask() -> None:
    result, chunks, body = asyncio.run(relay("anthropic", script(ANTHROPIC), wants_usage=False))
    assert result.usage == ANTHROPIC_USAGE and b'"usage"' not in body


@pytest.mark.parametrize("split_at", [None, 40, 333])
def test_a_gemini_stream_reaches_the_client_as_chat_chunks(split_at) -> None:
    result, chunks, body = asyncio.run(relay("gemini", script(GEMINI, split_at)))
    assert result.error == "" and result.usage == GEMINI_USAGE
    assert deltas(chunks, "reasoning_content") == "hmm" and deltas(chunks, "content") == "Hello there"
    assert body.endswith(b"data: [DONE]\n\n")


def test_an_anthropic_stream_cut_before_message_stop_is_reported_cut() -> None:
    cut = script(ANTHROPIC[:5])[:-1] + ["close"]
    result, chunks, _ = asyncio.run(relay("anthropic", cut))
    assert result.usage is None and result.error
    assert deltas(chunks, "content") == "Hello"


def test_an_overloaded_error_event_before_the_first_token_fails_over() -> None:
    events = [ANTHROPIC[0], anthropic_event({"type": "error", "error": {"type": "overloaded_error",
                                                                        "message": "Overloaded"}})]
    with pytest.raises(UpstreamFailure) as failed:
        asyncio.run(relay("anthropic", script(events)))
    assert failed.value.failure.kind is FailureKind.SERVER and failed.value.failure.status == 529


def test_an_error_event_after_the_first_token_breaks_the_stream() -> None:
    events = [*ANTHROPIC[:5], anthropic_event({"type": "error", "error": {"type": "overloaded_error",
                                                                          "message": "Overloaded"}})]
    result, chunks, body = asyncio.run(relay("anthropic", script(events)))
    assert "Overloaded" in result.error and deltas(chunks, "content") == "Hello"
    assert b"stream_interrupted" in body


def test_a_gemini_safety_block_is_a_content_refusal() -> None:
    blocked = [b'data: {"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":9}}\r\n\r\n']
    with pytest.raises(UpstreamFailure) as failed:
        asyncio.run(relay("gemini", script(blocked)))
    assert failed.value.failure.kind is FailureKind.CONTENT_FILTER


def test_anthropic_beta_is_forwarded_from_the_client_and_the_body_is_translated() -> None:
    async def main() -> bytes:
        answer = b'{"id":"msg_1","type":"message","model":"c","content":[{"type":"text","text":"hi"}],' \
                 b'"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}}'
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(answer)
        async with ScriptedUpstream([[head + answer]]) as server:
            client = HttpClient()
            try:
                payload = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
                reply = await calls.call(client, Deployment(server.url, "anthropic"), "chat", payload,  # type: ignore[arg-type]
                                         asyncio.get_running_loop().time() + 10,
                                         client_headers={"anthropic-beta": "context-1m-2025-08-07",
                                                         "authorization": "Bearer client-secret"})
            finally:
                await client.close()
            assert orjson.loads(reply.body)["choices"][0]["message"]["content"] == "hi"
            return server.requests[0]

    sent = asyncio.run(main())
    head, _, body = sent.partition(b"\r\n\r\n")
    assert b"\r\nanthropic-beta: context-1m-2025-08-07\r\n" in head
    assert b"client-secret" not in head, "only the dialect's forwarded headers go upstream"
    assert orjson.loads(body)["max_tokens"] == 256 and "messages" in orjson.loads(body)


def test_a_pass_through_dialect_forwards_no_client_header() -> None:
    async def main() -> bytes:
        answer = b'{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}'
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(answer)
        async with ScriptedUpstream([[head + answer]]) as server:
            client = HttpClient()
            try:
                await calls.call(client, Deployment(server.url, "openai"), "chat", b"{}",  # type: ignore[arg-type]
                                 asyncio.get_running_loop().time() + 10, client_headers={"anthropic-beta": "x"})
            finally:
                await client.close()
            return server.requests[0]

    assert b"anthropic-beta" not in asyncio.run(main())


@pytest.mark.parametrize("dialect", ["anthropic", "gemini"])
@pytest.mark.parametrize("body", [
    {"messages": [{"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": 5}}]}]},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "x", "cache_control": 3}, 7]}]},
    {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": "f"}]},
    {"messages": "hello"},
    {"messages": [{"role": "user", "content": {"text": "x"}}]},
], ids=["arguments-not-text", "odd-part", "function-not-object", "messages-not-list", "content-object"])
def test_odd_shapes_are_the_clients_400_not_a_crash(dialect, body) -> None:
    """Whatever a client sends, the transform's refusal is a classified client error, never an exception."""
    async def main() -> None:
        client = HttpClient()
        try:
            await calls.call(client, Deployment("http://127.0.0.1:9/v1", dialect), "chat",  # type: ignore[arg-type]
                             orjson.dumps({"model": "m", **body}), asyncio.get_running_loop().time() + 5)
        finally:
            await client.close()

    with pytest.raises(UpstreamFailure) as refused:
        asyncio.run(main())
    assert refused.value.failure.kind is FailureKind.CLIENT_ERROR and refused.value.failure.status == 400
    assert "deployment 'd'" in refused.value.failure.message

"""Streams that end without usage are estimated from the text the relay handed the client, over real sockets:
cut by the upstream, cut by the client, or complete but usage-less, for OpenAI, DeepSeek and Anthropic."""

from __future__ import annotations

import asyncio
import json

import pytest

import tollway.upstream.relay as relay_module
from tests.upstream.estimate_streams import (
    ANTHROPIC_START_USAGE,
    STREAMS,
    anthropic_tail,
    deepseek_tail,
    documented_estimate,
    openai_tail,
    text_of,
)
from tests.upstream.scripted_upstream import CLOSE, ScriptedUpstream, http_chunk, sse_head, sse_script
from tests.upstream.support import Deployment, GoneAfter
from tollway.core.usage import Usage
from tollway.providers.registry import DIALECTS
from tollway.upstream import calls
from tollway.upstream.http_client import HttpClient
from tollway.upstream.relay import StreamRelay

PROMPT = "What is the weather in Paris?"  # 29 ASCII characters: 8 tokens by the documented rule
TAILS = {"openai": openai_tail, "deepseek": deepseek_tail}


class Recording:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.writes.append(data)


async def relay(script: list, dialect: str, sink) -> object:
    async with ScriptedUpstream([script]) as server:
        client = HttpClient()
        try:
            loop = asyncio.get_running_loop()
            opened = await calls.open_stream(client, Deployment(server.url, dialect), "chat", b"{}",
                                                loop.time() + 10)
            return await StreamRelay(DIALECTS[dialect], False, 5.0).run(opened, sink)
        finally:
            await client.close()


def expected_prompt(dialect: str) -> dict:
    """The prompt side of the estimate: Anthropic reported it in message_start; the others are counted."""
    if dialect == "anthropic":
        read = ANTHROPIC_START_USAGE["cache_read_input_tokens"]
        return {"prompt_tokens": ANTHROPIC_START_USAGE["input_tokens"] + read, "cached_tokens": read}
    return {"prompt_tokens": documented_estimate(PROMPT), "cached_tokens": 0}


def assert_estimate(usage: Usage, dialect: str, relayed_text: str) -> None:
    assert usage.source == "estimated"
    assert usage.completion_tokens == documented_estimate(relayed_text)
    prompt = expected_prompt(dialect)
    assert (usage.prompt_tokens, usage.cached_tokens) == (prompt["prompt_tokens"], prompt["cached_tokens"])


@pytest.mark.parametrize("dialect", sorted(STREAMS))
def test_stream_cut_by_the_upstream_is_estimated_from_the_complete_events_relayed(dialect: str) -> None:
    parts = STREAMS[dialect]()
    half = b'40\r\ndata: {"choices":[{"delta":{"content":"lost'
    script = sse_script([e for e, _ in parts], finish=False) + [half, CLOSE]
    sink = Recording()
    result = asyncio.run(relay(script, dialect, sink))
    assert result.error.startswith("upstream stream broke") and result.usage is None
    assert b"lost" not in b"".join(sink.writes), "the half event reached the client"
    assert_estimate(result.estimated_usage(PROMPT), dialect, text_of(parts))


def translated_text(event: bytes) -> str:
    """The text of a chunk a translating dialect's stream (Anthropic) sent the client."""
    delta = json.loads(event[6:])["choices"][0]["delta"]
    return (delta.get("content") or "") + (delta.get("reasoning_content") or "")


@pytest.mark.parametrize("dialect", sorted(STREAMS))
def test_stream_cut_by_the_client_is_estimated_from_what_the_client_was_sent(dialect: str) -> None:
    parts = STREAMS[dialect]()
    text_by_event = dict(parts)
    sink = GoneAfter(3)
    script = [sse_head()] + [step for e, _ in parts for step in (http_chunk(e), 0.02)] + [CLOSE]  # a read per event
    result = asyncio.run(relay(script, dialect, sink))
    assert result.client_gone and result.usage is None
    sent = b"".join(sink.writes)
    sent_events = [e + b"\n\n" for e in sent.split(b"\n\n") if e]
    sent_text = "".join(text_by_event[e] if e in text_by_event else translated_text(e) for e in sent_events)
    assert 0 < len(sent_text) < len(text_of(parts)), "the cut was not mid-way"
    assert_estimate(result.estimated_usage(PROMPT), dialect, sent_text)


@pytest.mark.parametrize("dialect", sorted(TAILS))
def test_complete_stream_without_usage_is_estimated_from_its_text(dialect: str) -> None:
    parts = STREAMS[dialect]()
    result = asyncio.run(relay(sse_script([e for e, _ in parts] + TAILS[dialect](False)), dialect, Recording()))
    assert result.error == "" and result.usage is None
    assert_estimate(result.estimated_usage(PROMPT), dialect, text_of(parts))


@pytest.mark.parametrize("dialect", sorted(STREAMS))
def test_a_stream_with_usage_never_parses_its_text(dialect: str, monkeypatch) -> None:
    def parsed(*_: object) -> None:
        raise AssertionError("a stream that ended with usage had its text parsed")

    monkeypatch.setattr(relay_module, "tally_chunk_text", parsed)
    tail = anthropic_tail() if dialect == "anthropic" else TAILS[dialect](True)
    result = asyncio.run(relay(sse_script([e for e, _ in STREAMS[dialect]()] + tail), dialect, Recording()))
    assert result.error == "" and result.usage is not None and result.usage.source == "reported"


def test_anthropic_usage_joins_message_start_and_message_delta() -> None:
    script = sse_script([e for e, _ in STREAMS["anthropic"]()] + anthropic_tail())
    result = asyncio.run(relay(script, "anthropic", Recording()))
    assert result.error == ""
    assert result.usage == Usage(prompt_tokens=40, cached_tokens=10, completion_tokens=33)


def test_anthropic_stream_cut_after_message_start_is_an_estimate_not_a_report() -> None:
    """message_start says output_tokens 1: taken as the answer's usage, a cut stream would bill 1 token."""
    parts = STREAMS["anthropic"]()
    result = asyncio.run(relay(sse_script([e for e, _ in parts], finish=False) + [CLOSE], "anthropic", Recording()))
    assert result.usage is None and result.error
    assert_estimate(result.estimated_usage(PROMPT), "anthropic", text_of(parts))


def test_kept_blocks_past_the_cap_are_tallied_and_let_go(monkeypatch) -> None:
    """A long stream's kept blocks stay bounded (the cap plus one read), and the estimate is the same as with
    everything kept."""
    cap = 600
    monkeypatch.setattr(relay_module, "_KEPT_BYTES_MAX", cap)
    parts = STREAMS["openai"]() * 8
    script = sse_script([e for e, _ in parts], finish=False) + [http_chunk(b"data: {\"cut"), CLOSE]
    result = asyncio.run(relay(script, "openai", Recording()))
    relayed = sum(len(e) for e, _ in parts)
    assert sum(map(len, result.relayed.blocks)) < relayed / 4, "the kept blocks were not let go"
    assert result.relayed.tally.ascii_chars > 0, "nothing was folded: the cap was not passed"
    assert_estimate(result.estimated_usage(PROMPT), "openai", text_of(parts))

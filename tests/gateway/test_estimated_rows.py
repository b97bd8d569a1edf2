"""Estimated usage end to end: `tollway serve` as a process, a scripted upstream (or the emulator) on a real
socket, a raw-socket client. A stream cut by the upstream or the client, or one without usage, leaves a row
whose completion_tokens is the documented estimate of the text actually relayed, marked `estimated`, and
costed at the deployment's price; a non-streamed estimate says so in a header."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
from contextlib import contextmanager
from decimal import Decimal
from typing import Iterator

import pytest

from tests.upstream.estimate_streams import (
    STREAMS,
    deepseek_tail,
    documented_estimate,
    openai_tail,
    text_of,
)
from tests.upstream.scripted_upstream import CLOSE, ScriptedUpstream, http_chunk, json_answer, sse_head

pytestmark = pytest.mark.slow

PROMPT = "What is the weather in Paris?"
PRICE = {"input": "2.00", "output": "8.00", "cached_input": "0.50"}  # USD per million tokens
# The gateway's config takes no Anthropic-dialect provider, so its streams are covered at the relay
# (test_relay_estimates.py); here the OpenAI and DeepSeek dialects.
KINDS = {"openai": "openai", "deepseek": "deepseek"}
TAILS = {"openai": openai_tail, "deepseek": deepseek_tail}


@contextmanager
def upstream_in_a_thread() -> Iterator[ScriptedUpstream]:
    """A ScriptedUpstream served by its own event loop, so the test can block on a gateway process."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = ScriptedUpstream()
    asyncio.run_coroutine_threadsafe(server.__aenter__(), loop).result(5)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(_stop(server), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


async def _stop(server: ScriptedUpstream) -> None:
    """Stop listening and end the connections the gateway still keeps alive."""
    await server.__aexit__(None)
    serving = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in serving:
        task.cancel()
    await asyncio.gather(*serving, return_exceptions=True)


def gateway_config(port: int) -> dict:
    """One route group per dialect, each one deployment on the scripted upstream, with a fixed price."""
    timeouts = {"connect_s": 2, "first_byte_s": 5, "between_chunks_s": 5, "response_s": 5}
    return {
        "retry": {"max_attempts": 1, "retries_per_deployment": 0},
        "providers": {name: {"kind": kind, "base_url": f"http://127.0.0.1:{port}/v1", "timeouts": timeouts}
                      for name, kind in KINDS.items()},
        "deployments": {f"{name}-dep": {"provider": name, "model": f"{name}-model", "price": PRICE} for name in KINDS},
        "route_groups": {name: {"deployments": [f"{name}-dep"]} for name in KINDS},
    }


@pytest.fixture
def setup(gateway_factory):
    with upstream_in_a_thread() as upstream:
        yield upstream, gateway_factory(gateway_config(upstream.port))


def request_bytes(model: str, request_id: str, stream: bool) -> bytes:
    body = json.dumps({"model": model, "stream": stream, "messages": [{"role": "user", "content": PROMPT}]}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            b"x-request-id: %s\r\nContent-Length: %d\r\n\r\n%s" % (request_id.encode(), len(body), body))


def read_until(sock: socket.socket, marker: bytes, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    received = b""
    while marker not in received:
        data = sock.recv(65536)
        if not data:
            break
        received += data
    return received


def expected_cost(prompt: int, cached: int, completion: int) -> Decimal:
    rates = {key: Decimal(value) for key, value in PRICE.items()}
    return ((prompt - cached) * rates["input"] + cached * rates["cached_input"]
            + completion * rates["output"]) / 1_000_000


def assert_estimated_row(row: dict, relayed_text: str) -> None:
    completion = documented_estimate(relayed_text)
    prompt, cached = documented_estimate(PROMPT), 0
    assert row["usage_source"] == "estimated"
    assert (row["prompt_tokens"], row["cached_tokens"], row["completion_tokens"]) == (prompt, cached, completion)
    assert Decimal(row["cost_usd"]) == expected_cost(prompt, cached, completion)


def paced(events: list[bytes], gap: float = 0.02) -> list:
    return [step for event in events for step in (http_chunk(event), gap)]


@pytest.mark.parametrize("dialect", sorted(KINDS))
def test_stream_cut_by_the_upstream(setup, dialect: str) -> None:
    upstream, gw = setup
    parts = STREAMS[dialect]()
    upstream.scripts.append([sse_head(), *paced([e for e, _ in parts]),
                             b'40\r\ndata: {"choices":[{"delta":{"content":"never relayed', CLOSE])
    with socket.create_connection(("127.0.0.1", gw.port)) as sock:
        sock.sendall(request_bytes(dialect, f"cut-up-{dialect}", stream=True))
        received = read_until(sock, b"0\r\n\r\n")
    assert b"stream_interrupted" in received and b"never relayed" not in received
    row = gw.row(f"cut-up-{dialect}")
    assert row["status"] == "stream_error"
    assert_estimated_row(row, text_of(parts))


def marker_index(parts: list[tuple[bytes, str]]) -> int:
    """The part whose text is `, wor`: the client hangs up once it has seen it."""
    return next(i for i, (_, text) in enumerate(parts) if text == ", wor")


@pytest.mark.parametrize("dialect", sorted(KINDS))
def test_stream_cut_by_the_client(setup, dialect: str) -> None:
    """The client reads up to a marker and resets the connection while the upstream pauses; the gateway
    finds it gone at its next write. What was relayed is exactly the parts up to the marker."""
    upstream, gw = setup
    parts = STREAMS[dialect]()
    seen = marker_index(parts) + 1
    events = [e for e, _ in parts]
    upstream.scripts.append([sse_head(), *paced(events[:seen]), 1.0, *paced(events[seen:]), CLOSE])
    sock = socket.create_connection(("127.0.0.1", gw.port))
    sock.sendall(request_bytes(dialect, f"cut-client-{dialect}", stream=True))
    assert b', wor"' in read_until(sock, b', wor"')
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
    sock.close()
    row = gw.row(f"cut-client-{dialect}")
    assert (row["status"], row["http_status"]) == ("cancelled", 499)
    assert_estimated_row(row, text_of(parts[:seen]))


def test_client_gone_before_the_first_token_is_billed_for_the_prompt(setup) -> None:
    """The upstream read the prompt (its first event came), the client had left: nothing was relayed."""
    upstream, gw = setup
    parts = STREAMS["openai"]()
    upstream.scripts.append([sse_head(), 1.0, *paced([e for e, _ in parts]), CLOSE])
    sock = socket.create_connection(("127.0.0.1", gw.port))
    sock.sendall(request_bytes("openai", "gone-early", stream=True))
    time.sleep(0.3)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    row = gw.row("gone-early")
    assert (row["status"], row["http_status"]) == ("cancelled", 499)
    assert_estimated_row(row, "")


@pytest.mark.parametrize("dialect", sorted(TAILS))
def test_complete_stream_without_usage(setup, dialect: str) -> None:
    upstream, gw = setup
    parts = STREAMS[dialect]()
    upstream.scripts.append([sse_head(), *paced([e for e, _ in parts] + TAILS[dialect](False), 0.002), b"0\r\n\r\n"])
    with socket.create_connection(("127.0.0.1", gw.port)) as sock:
        sock.sendall(request_bytes(dialect, f"no-usage-{dialect}", stream=True))
        received = read_until(sock, b"0\r\n\r\n")
    assert b"data: [DONE]" in received and b"stream_interrupted" not in received
    row = gw.row(f"no-usage-{dialect}")
    assert row["status"] == "ok"
    assert_estimated_row(row, text_of(parts))


def chat_answer(content: str, usage: dict | None) -> bytes:
    body = {"id": "c1", "object": "chat.completion", "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}
    if usage is not None:
        body["usage"] = usage
    return json.dumps(body).encode()


def test_non_streamed_answer_without_usage_is_marked_estimated(setup) -> None:
    upstream, gw = setup
    content = "Sunny, 21 °C."  # 12 ASCII characters and one other
    upstream.scripts.append([json_answer(200, chat_answer(content, None))])
    raw = gw.client().chat.completions.with_raw_response.create(
        model="openai", messages=[{"role": "user", "content": PROMPT}])
    assert raw.parse().choices[0].message.content == content
    completion, prompt = documented_estimate(content), documented_estimate(PROMPT)
    assert completion == 3 + 1
    assert raw.headers["x-tollway-cost-estimated"] == "true"
    assert Decimal(raw.headers["x-tollway-cost-usd"]) == expected_cost(prompt, 0, completion)
    row = gw.row(raw.headers["x-request-id"])
    assert row["status"] == "ok"
    assert_estimated_row(row, content)


def test_non_streamed_answer_with_usage_is_not_marked(setup) -> None:
    upstream, gw = setup
    usage = {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}
    upstream.scripts.append([json_answer(200, chat_answer("Sunny.", usage))])
    raw = gw.client().chat.completions.with_raw_response.create(
        model="openai", messages=[{"role": "user", "content": PROMPT}])
    raw.parse()
    assert "x-tollway-cost-estimated" not in raw.headers
    assert Decimal(raw.headers["x-tollway-cost-usd"]) == expected_cost(11, 0, 5)
    assert gw.row(raw.headers["x-request-id"])["usage_source"] == "reported"


def sse_text(received: bytes) -> str:
    """The content and reasoning text of every chat chunk a client received."""
    text = []
    for line in received.split(b"\n"):
        if not line.startswith(b"data: {"):
            continue
        chunk = json.loads(line[len(b"data: "):])
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text += [delta.get("reasoning_content") or "", delta.get("content") or ""]
    return "".join(text)


@pytest.mark.parametrize("dialect, model", [("openai", "gpt-x"), ("deepseek", "deepseek-flash")])
def test_emulator_stream_cut_mid_way(emulator_factory, gateway_factory, dialect: str, model: str) -> None:
    """The emulator's cut_stream fault: the connection drops after 5 tokens, with no finish or usage."""
    emu = emulator_factory({"models": {model: {"output_tokens": 40, "faults": [{"kind": "cut_stream",
                                                                                "after_tokens": 5}]}}})
    config = {"retry": {"max_attempts": 1, "retries_per_deployment": 0},
              "providers": {"up": {"kind": dialect, "base_url": emu.base_url(dialect), "api_key_env": "UP_KEY"}},
              "deployments": {"dep": {"provider": "up", "model": model, "price": PRICE}},
              "route_groups": {"chat": {"deployments": ["dep"]}}}
    gw = gateway_factory(config, env={"UP_KEY": "sk-up-test-secret"})
    with socket.create_connection(("127.0.0.1", gw.port)) as sock:
        sock.sendall(request_bytes("chat", f"emu-cut-{dialect}", stream=True))
        received = read_until(sock, b"0\r\n\r\n")
    assert b"stream_interrupted" in received
    relayed = sse_text(received)
    assert relayed, "no text reached the client before the cut"
    row = gw.row(f"emu-cut-{dialect}")
    assert row["status"] == "stream_error"
    assert_estimated_row(row, relayed)


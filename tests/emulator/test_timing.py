"""Configured TTFT and TPOT are honoured (measured over real sockets), and DeepSeek's keep-alives."""

from __future__ import annotations

import time

import openai

from tests.emulator.support import chat_body, post, stream


def _stream_times(base_url: str, **create) -> tuple[list[float], str]:
    sdk = openai.OpenAI(base_url=base_url, api_key="k", max_retries=0)
    times, text = [], ""
    start = time.monotonic()
    for chunk in sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True,
                                             **create):
        if chunk.choices and chunk.choices[0].delta.content:
            times.append(time.monotonic() - start)
            text += chunk.choices[0].delta.content
    return times, text


def test_cli_ttft_and_tpot_are_honoured_within_a_few_percent(emulator_factory) -> None:
    emu = emulator_factory(ttft_ms=200, tpot_ms=20, output_tokens=21)
    _stream_times(emu.base_url("vllm"), max_tokens=1)  # warm the connection path
    times, _ = _stream_times(emu.base_url("vllm"))
    assert len(times) == 21
    gaps = sorted(b - a for a, b in zip(times, times[1:]))
    # the schedule never sends early, so lower bounds are exact; upper bounds allow for a busy machine
    assert 0.200 <= times[0] <= 0.250, times[0]
    assert 0.018 <= gaps[len(gaps) // 2] <= 0.022, gaps  # median inter-token gap
    assert 0.600 <= times[-1] <= 0.660, times[-1]  # ttft + 20 * tpot


def test_tokens_per_chunk_keeps_the_token_clock(emulator) -> None:
    emulator.set_profile("m", {"ttft_ms": 100, "tpot_ms": 20, "output_tokens": 9, "tokens_per_chunk": 4})
    times, text = _stream_times(emulator.base_url("openai"))
    assert len(times) == 3  # 4 + 4 + 1 tokens
    # chunks leave when their last token is ready: 100 + 3*20, 100 + 7*20, 100 + 8*20 ms
    assert 0.160 <= times[0] <= 0.220 and 0.240 <= times[1] <= 0.300 and 0.260 <= times[2] <= 0.320


def test_non_stream_waits_for_the_whole_answer(emulator) -> None:
    emulator.set_profile("m", {"ttft_ms": 100, "tpot_ms": 10, "output_tokens": 11})
    start = time.monotonic()
    reply = post(f"{emulator.base_url('qwen')}/chat/completions", chat_body())
    elapsed = time.monotonic() - start
    assert reply.status == 200 and 0.200 <= elapsed <= 0.270, elapsed


def test_deepseek_sends_keepalive_comments_while_queued(emulator) -> None:
    emulator.set_profile("m", {"ttft_ms": 350, "keepalive_ms": 100, "output_tokens": 2})
    result = stream(f"{emulator.base_url('deepseek')}/chat/completions", chat_body())
    assert result.comments == ["keep-alive"] * 3
    assert result.chunks[-1]["usage"]["completion_tokens"] == 2
    plain = post(f"{emulator.base_url('deepseek')}/chat/completions", chat_body())
    assert plain.status == 200 and plain.body["usage"]["completion_tokens"] == 2  # leading blank lines parse
    sdk = openai.OpenAI(base_url=emulator.base_url("deepseek"), api_key="k", max_retries=0)
    reply = sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "tok0 tok1"
    other = stream(f"{emulator.base_url('openai')}/chat/completions", chat_body())
    assert other.comments == []

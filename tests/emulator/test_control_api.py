"""The /_emulator/ control API: stats, request log, live profile replacement, reset."""

from __future__ import annotations

import threading
import time
import urllib.request

import pytest

from tests.emulator.support import chat_body, post
from tests.fixtures.emulator import EmulatorError


def test_stats_count_requests_and_statuses_per_model(emulator) -> None:
    emulator.set_profile("flaky", {"faults": [{"kind": "server_error", "every": 2}]})
    for _ in range(3):
        post(f"{emulator.base_url('openai')}/chat/completions", chat_body(model="flaky"))
    post(f"{emulator.base_url('qwen')}/chat/completions", chat_body(model="steady"))
    stats = emulator.stats()
    assert stats["flaky"] == {"requests": 3, "by_status": {"200": 2, "500": 1}, "in_flight": 0}
    assert stats["steady"] == {"requests": 1, "by_status": {"200": 1}, "in_flight": 0}


def test_in_flight_during_a_slow_request(emulator) -> None:
    emulator.set_profile("slow", {"ttft_ms": 500})
    thread = threading.Thread(target=post, args=(f"{emulator.base_url('openai')}/chat/completions",
                                                 chat_body(model="slow")))
    thread.start()
    time.sleep(0.2)
    assert emulator.stats()["slow"]["in_flight"] == 1
    thread.join()
    assert emulator.stats()["slow"]["in_flight"] == 0


def test_request_log_keeps_bodies_and_headers_but_not_the_key(emulator) -> None:
    body = chat_body(model="logged", max_tokens=3, temperature=0.2)
    post(f"{emulator.base_url('deepseek')}/chat/completions", body,
         {"Authorization": "Bearer sk-very-secret", "X-Tollway-Route": "r1", "User-Agent": "probe/1"})
    post(f"{emulator.base_url('deepseek')}/chat/completions", chat_body(model="other"))
    entries = emulator.requests("logged")
    assert len(entries) == 1
    entry = entries[0]
    assert entry["body"] == body and entry["path"] == "/deepseek/v1/chat/completions"
    assert entry["dialect"] == "deepseek" and entry["auth"] == "bearer"
    assert entry["headers"]["x-tollway-route"] == "r1" and entry["headers"]["user-agent"] == "probe/1"
    assert "sk-very-secret" not in str(emulator.requests())


def test_request_log_limit_keeps_the_newest(emulator) -> None:
    for n in range(4):
        post(f"{emulator.base_url('openai')}/chat/completions", chat_body(model="seq", max_tokens=n + 1))
    assert [e["body"]["max_tokens"] for e in emulator.requests("seq", limit=2)] == [3, 4]
    with pytest.raises(EmulatorError, match="limit must be a positive integer"):
        emulator.requests("seq", limit=0)


def test_put_profile_validates_and_takes_effect(emulator) -> None:
    answer = emulator.set_profile("org/model-7b", {"output_tokens": 2, "api_key": "sk-hidden"})
    assert answer["profile"]["output_tokens"] == 2 and answer["profile"]["api_key"] == "***"
    reply = post(f"{emulator.base_url('vllm')}/chat/completions", chat_body(model="org/model-7b"),
                 {"Authorization": "Bearer sk-hidden"})
    assert reply.body["usage"]["completion_tokens"] == 2
    with pytest.raises(EmulatorError) as info:
        emulator.set_profile("m", {"faults": [{"kind": "stall"}]})
    assert "400" in str(info.value) and "profile for model 'm'" in str(info.value)
    assert "faults[0]: Value error, kind stall needs stall_s" in str(info.value)
    with pytest.raises(EmulatorError, match="ttft_ms: Input should be greater than or equal to 0"):
        emulator.set_profile("m", {"ttft_ms": -5})
    with pytest.raises(EmulatorError, match="a profile must be a mapping"):
        emulator.set_profile("m", [1, 2])


def test_put_inherits_the_default_profile(emulator_factory) -> None:
    emu = emulator_factory({"default": {"output_tokens": 4}})
    emu.set_profile("x", {"reasoning_tokens": 1})
    reply = post(f"{emu.base_url('deepseek')}/chat/completions", chat_body(model="x"))
    assert reply.body["usage"]["completion_tokens"] == 5


def test_reset_clears_counters_and_log_and_optionally_profiles(emulator) -> None:
    emulator.set_profile("m", {"output_tokens": 1})
    post(f"{emulator.base_url('openai')}/chat/completions", chat_body())
    emulator.reset()
    assert emulator.stats() == {} and emulator.requests() == []
    assert post(f"{emulator.base_url('openai')}/chat/completions", chat_body()).body["usage"][
        "completion_tokens"] == 1
    emulator.reset(profiles=True)
    assert post(f"{emulator.base_url('openai')}/chat/completions", chat_body()).body["usage"][
        "completion_tokens"] == 16


def test_get_models_shows_live_profiles(emulator) -> None:
    emulator.set_profile("shown", {"ttft_ms": 12})
    with urllib.request.urlopen(f"{emulator.url}/_emulator/models") as resp:
        import json
        data = json.loads(resp.read())
    assert data["models"]["shown"]["ttft_ms"] == 12 and data["default"]["output_tokens"] == 16

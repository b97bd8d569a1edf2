"""Strategies, filters, residency and the classifier through a real gateway and emulator, with the openai SDK."""

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import openai
import pytest

from tests.routing.support import emulator_and_gateway, provider

pytestmark = pytest.mark.slow

PRICE = {"input": "1.00", "output": "1.00"}
GATEWAY = {
    "server": {"request_deadline_s": 20},
    "retry": {"max_attempts": 4, "retries_per_deployment": 0, "backoff_base_s": 0.01, "backoff_max_s": 0.02},
    "providers": {"deepseek": provider("deepseek", "cn"), "qwen": provider("qwen", "sg"),
                  "openai": provider("openai", "us"), "mistral": provider("openai", "eu", kind="openai")},
    "deployments": {
        "cheap-text": {"provider": "deepseek", "model": "m-cheap", "context_window": 4000,
                       "capabilities": ["tools", "json"], "price": {"input": "0.10", "output": "0.40"}},
        "vision-mid": {"provider": "qwen", "model": "m-vision", "context_window": 4000,
                       "capabilities": ["vision", "tools", "json"], "price": {"input": "0.50", "output": "1.50"}},
        "long-big": {"provider": "openai", "model": "m-long", "context_window": 200000,
                     "capabilities": ["vision", "tools", "json"], "price": {"input": "2.00", "output": "8.00"}},
        "eu-model": {"provider": "mistral", "model": "m-eu", "context_window": 32000, "capabilities": ["tools"],
                     "price": {"input": "1.00", "output": "3.00"}},
        "fast-a": {"provider": "openai", "model": "fast-a", "price": PRICE},
        "fast-b": {"provider": "openai", "model": "fast-b", "price": PRICE},
        "fast-c": {"provider": "openai", "model": "fast-c", "price": PRICE},
        "grader": {"provider": "qwen", "model": "qwen3-8b", "price": {"input": "0.01", "output": "0.02"}},
    },
    "route_groups": {
        "cheap": {"strategy": "cheapest", "deployments": ["long-big", "vision-mid", "cheap-text"]},
        "fast": {"strategy": "fastest", "deployments": ["fast-a", "fast-b", "fast-c"], "explore": 0,
                 "expected_output_tokens": 8},  # the emulator's answer length
        "ab": {"strategy": "weighted", "deployments": ["cheap-text", "vision-mid"],
               "weights": {"cheap-text": 80, "vision-mid": 20}},
        "auto": {"strategy": "tiers", "deployments": ["cheap-text", "vision-mid", "long-big"],
                 "tiers": {"low": ["cheap-text"], "high": ["long-big"], "default": ["vision-mid"]},
                 "complexity": {"classifier": "model", "deployment": "grader", "timeout_ms": 2000}},
        "eu": {"residency": ["eu"], "deployments": ["cheap-text", "eu-model"]},
    },
}
FAST = {"fast-a": 20, "fast-b": 150, "fast-c": 300}
EMULATOR = {"default": {"output_tokens": 8},
            "models": {**{name: {"ttft_ms": ttft} for name, ttft in FAST.items()}, "qwen3-8b": {"output_tokens": 3}}}
IMAGE = [{"type": "text", "text": "what is in it"},
         {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with emulator_and_gateway(tmp_path_factory.mktemp("strategies"), EMULATOR, GATEWAY) as (emu, gw, _):
        gw.sdk = gw.client()  # one client (one connection pool) for the module: making one costs ~50 ms
        yield emu, gw


def send(gw, model, content="Hello there", stream=False, **extra):
    raw = gw.sdk.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": content}], stream=stream, **extra)
    parsed = raw.parse()
    if stream:
        list(parsed)
    return raw.headers


def test_cheapest_picks_the_cheapest_capable_deployment_for_text_image_and_long_context(live):
    emu, gw = live
    text = send(gw, "cheap")
    assert text["x-tollway-deployment"] == "cheap-text"
    assert text["x-tollway-route"].startswith("cheapest: cheap-text $")
    image = send(gw, "cheap", IMAGE)
    assert image["x-tollway-deployment"] == "vision-mid"
    assert emu.requests("m-vision")[-1]["body"]["messages"][0]["content"] == IMAGE
    long = send(gw, "cheap", "lorem ipsum " * 1500)  # ~4500 tokens: only long-big's window fits
    assert long["x-tollway-deployment"] == "long-big"
    row = gw.row(long["x-request-id"])
    assert [a["deployment"] for a in row["attempts"]] == ["long-big"]
    assert Decimal(row["cost_usd"]) == (Decimal(row["prompt_tokens"]) * 2 + Decimal(row["completion_tokens"]) * 8) / 10 ** 6


def test_a_request_no_deployment_can_handle_gets_a_400_naming_the_capability(live):
    emu, gw = live
    before = emu.stats()
    with pytest.raises(openai.BadRequestError) as caught:
        send(gw, "eu", IMAGE, extra_headers={"x-request-id": "no-vision"})
    assert caught.value.body["code"] == "unsupported_capability"
    assert "image input" in caught.value.body["message"]
    assert emu.stats() == before, "nothing was sent upstream"


def test_fastest_follows_an_injected_slowdown_within_a_few_requests(live):
    emu, gw = live
    served = [send(gw, "fast", stream=True)["x-tollway-deployment"] for _ in range(9)]  # 3 samples each
    assert sorted(set(served)) == ["fast-a", "fast-b", "fast-c"]
    assert [send(gw, "fast", stream=True)["x-tollway-deployment"] for _ in range(3)] == ["fast-a"] * 3
    emu.set_profile("fast-a", {"ttft_ms": 900, "output_tokens": 8})
    try:
        after = [send(gw, "fast", stream=True)["x-tollway-deployment"] for _ in range(6)]
    finally:
        emu.set_profile("fast-a", {"ttft_ms": FAST["fast-a"], "output_tokens": 8})
    switched = after.index("fast-b")
    assert switched <= 2, f"still on the slowed deployment after {switched} requests: {after}"
    assert after[switched:] == ["fast-b"] * (6 - switched)
    assert "fastest: fast-b" in send(gw, "fast", stream=True)["x-tollway-route"]


def test_weighted_splits_within_tolerance_and_each_user_keeps_their_arm(live):
    _, gw = live
    with ThreadPoolExecutor(8) as pool:
        arms = list(pool.map(lambda i: send(gw, "ab", user=f"user-{i}")["x-tollway-deployment"], range(400)))
    share = arms.count("vision-mid") / len(arms)
    assert 0.12 < share < 0.28, share  # 20% +- 4 standard deviations of a binomial over 400
    for i in range(0, 400, 40):
        assert {send(gw, "ab", user=f"user-{i}")["x-tollway-deployment"] for _ in range(4)} == {arms[i]}
    assert "sticky by user" in send(gw, "ab", user="someone")["x-tollway-route"]


def test_residency_header_and_group_policy_restrict_where_requests_go(live):
    emu, gw = live
    headers = send(gw, "eu")
    assert headers["x-tollway-deployment"] == "eu-model"
    row = gw.row(headers["x-request-id"])
    assert [a["jurisdiction"] for a in row["attempts"]] == ["eu"] and row["jurisdiction"] == "eu"
    before = emu.stats()
    with pytest.raises(openai.APIStatusError) as caught:
        send(gw, "cheap", extra_headers={"x-tollway-residency": "eu,self-hosted", "x-request-id": "blocked"})
    assert caught.value.status_code == 503
    assert caught.value.body["code"] == "residency_unavailable"
    assert "x-tollway-residency: eu, self-hosted" in caught.value.body["message"]
    assert emu.stats() == before, "a refused request is sent nowhere"
    row = gw.row("blocked")
    assert row["status"] == "error" and row["http_status"] == 503 and row["attempts"] == []


def test_tiers_with_a_model_classifier_record_its_cost_and_fall_back_to_the_heuristic(live):
    emu, gw = live
    headers = send(gw, "auto", "hi, how are you?")
    assert headers["x-tollway-deployment"] == "cheap-text"
    assert "tiers: low -> cheap-text (heuristic; model not used: grader gave no grade)" in headers["x-tollway-route"]
    grading = emu.requests("qwen3-8b")[-1]["body"]
    assert grading["max_tokens"] == 3 and "hi, how are you?" in grading["messages"][-1]["content"]
    row = gw.row(headers["x-request-id"])
    overhead, answer = row["attempts"]
    assert overhead["outcome"] == "routing_overhead" and overhead["deployment"] == "grader"
    assert (overhead["completion_tokens"], overhead["jurisdiction"]) == (3, "sg")
    overhead_cost = Decimal(overhead["cost_usd"])
    assert overhead_cost == (Decimal(overhead["prompt_tokens"]) * Decimal("0.01") + 3 * Decimal("0.02")) / 10 ** 6
    answer_cost = (Decimal(row["prompt_tokens"]) * Decimal("0.10") + Decimal(row["completion_tokens"]) * Decimal("0.40")) / 10 ** 6
    assert Decimal(row["cost_usd"]) == answer_cost + overhead_cost
    assert headers["x-tollway-attempts"] == "1", "the classifier call is not an attempt at answering"
    hard = "Prove step by step that this recurrence terminates, then analyze and compare:\n```python\ndef f(n):\n  return f(n-1)\n```"
    assert send(gw, "auto", hard)["x-tollway-deployment"] == "long-big"


def test_the_route_header_is_on_streams_and_errors_too(live):
    _, gw = live
    assert send(gw, "cheap", stream=True)["x-tollway-route"].startswith("cheapest:")
    started = time.monotonic()
    with pytest.raises(openai.BadRequestError):
        gw.sdk.chat.completions.create(model="cheap", messages=[{"role": "user", "content": "x"}],
                                            extra_headers={"x-tollway-residency": ","})
    assert time.monotonic() - started < 5

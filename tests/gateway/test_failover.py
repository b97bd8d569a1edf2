"""Each failover trigger of the gateway, driven through the emulator's injected faults."""

import time

import openai
import pytest

from tests.gateway.support import PROVIDER_KEYS, chat, emulator_config
from tests.processes import free_port

pytestmark = pytest.mark.slow


def served(gw, **request):
    raw = gw.client().chat.completions.with_raw_response.create(**{**chat(), **request})
    raw.parse()
    return raw.headers["x-tollway-deployment"], int(raw.headers["x-tollway-attempts"]), raw.headers["x-request-id"]


def start(emulator_factory, gateway_factory, models: dict, **config):
    emu = emulator_factory({"models": models})
    return emu, gateway_factory(emulator_config(emu, **config), env=PROVIDER_KEYS)


def test_short_retry_after_is_honoured_on_the_same_deployment(emulator_factory, gateway_factory):
    emu, gw = start(emulator_factory, gateway_factory,
                    {"deepseek-flash": {"faults": [{"kind": "rate_limit", "retry_after_s": 1, "first": 1}]}})
    began = time.monotonic()
    deployment, attempts, rid = served(gw)
    assert (deployment, attempts) == ("ds-flash", 2)
    assert time.monotonic() - began >= 1.0, "waited for Retry-After"
    assert [a["outcome"] for a in gw.row(rid)["attempts"]] == ["retry", "ok"]


def test_long_retry_after_moves_on(emulator_factory, gateway_factory):
    emu, gw = start(emulator_factory, gateway_factory,
                    {"deepseek-flash": {"faults": [{"kind": "rate_limit", "retry_after_s": 30}]}})
    deployment, attempts, rid = served(gw)
    assert (deployment, attempts) == ("qwen-plus", 2)
    assert gw.row(rid)["attempts"][0]["kind"] == "rate_limited"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried_then_failed_over(emulator_factory, gateway_factory, status):
    emu, gw = start(emulator_factory, gateway_factory,
                    {"deepseek-flash": {"faults": [{"kind": "server_error", "status": status, "first": 2}]}})
    deployment, attempts, rid = served(gw)
    assert (deployment, attempts) == ("qwen-plus", 3)
    row = gw.row(rid)
    assert [(a["deployment"], a["outcome"], a["status"]) for a in row["attempts"]] == [
        ("ds-flash", "retry", status), ("ds-flash", "failover", status), ("qwen-plus", "ok", None)]


def test_connect_error_fails_over(emulator_factory, gateway_factory):
    emu = emulator_factory({})
    config = emulator_config(emu)
    config["providers"]["deepseek"]["base_url"] = f"http://127.0.0.1:{free_port()}/v1"
    gw = gateway_factory(config, env=PROVIDER_KEYS)
    deployment, attempts, rid = served(gw)
    assert deployment == "qwen-plus"
    assert gw.row(rid)["attempts"][0]["kind"] == "connect_error"


@pytest.mark.parametrize("stream", [False, True])
def test_hang_before_first_byte_times_out_and_fails_over(emulator_factory, gateway_factory, stream):
    emu, gw = start(emulator_factory, gateway_factory, {"deepseek-flash": {"faults": [{"kind": "hang"}]}},
                    timeouts={"connect_s": 1, "first_byte_s": 0.5, "between_chunks_s": 1, "response_s": 0.5},
                    retry={"retries_per_deployment": 0})
    if stream:
        raw = gw.client().chat.completions.with_raw_response.create(**chat(), stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        deployment, rid = raw.headers["x-tollway-deployment"], raw.headers["x-request-id"]
    else:
        deployment, _, rid = served(gw)
    assert deployment == "qwen-plus"
    assert gw.row(rid)["attempts"][0]["kind"] == "timeout"


def test_stream_cut_before_first_token_fails_over_invisibly(emulator_factory, gateway_factory):
    emu, gw = start(emulator_factory, gateway_factory,
                    {"deepseek-flash": {"faults": [{"kind": "cut_stream", "after_tokens": 0}]}},
                    retry={"retries_per_deployment": 0})
    raw = gw.client().chat.completions.with_raw_response.create(**chat(), stream=True)
    chunks = list(raw.parse())
    assert chunks and raw.headers["x-tollway-deployment"] == "qwen-plus"
    assert gw.row(raw.headers["x-request-id"])["status"] == "ok"


@pytest.mark.parametrize("fault", [{"kind": "cut_stream", "after_tokens": 3},
                                   {"kind": "stall", "after_tokens": 3, "stall_s": 5}])
def test_stream_broken_after_first_byte_ends_with_error_event_and_ledger_says_so(emulator_factory, gateway_factory, fault):
    emu, gw = start(emulator_factory, gateway_factory, {"deepseek-flash": {"output_tokens": 20, "faults": [fault]}},
                    timeouts={"connect_s": 1, "first_byte_s": 2, "between_chunks_s": 0.5, "response_s": 2})
    raw = gw.client().chat.completions.with_raw_response.create(**chat(), stream=True)
    received = []
    with pytest.raises(openai.APIError, match="stream was interrupted"):
        for chunk in raw.parse():
            received.append(chunk)
    assert received, "the client got the first tokens before the break"
    row = gw.row(raw.headers["x-request-id"])
    assert row["status"] == "stream_error" and row["deployment"] == "ds-flash"
    assert row["usage_source"] == "estimated" and row["completion_tokens"] > 0


def test_context_length_error_moves_to_a_larger_context_deployment(emulator_factory, gateway_factory):
    emu, gw = start(emulator_factory, gateway_factory, {"deepseek-flash": {"context_window": 50}},
                    group=["ds-flash", "ds-pro", "qwen-plus", "kimi-big"])
    deployment, attempts, rid = served(gw, messages=[{"role": "user", "content": "word " * 400}])
    assert (deployment, attempts) == ("kimi-big", 2)
    outcomes = [(a["deployment"], a["outcome"]) for a in gw.row(rid)["attempts"]]
    assert outcomes == [("ds-flash", "failover"), ("ds-pro", "skipped"), ("qwen-plus", "skipped"), ("kimi-big", "ok")]


def test_content_filter_refusal_moves_to_another_provider(emulator_factory, gateway_factory):
    emu, gw = start(emulator_factory, gateway_factory, {"qwen3.5-plus": {"faults": [{"kind": "content_filter"}]}},
                    group=["qwen-plus", "ds-flash"])
    deployment, attempts, rid = served(gw)
    assert (deployment, attempts) == ("ds-flash", 2)
    assert gw.row(rid)["attempts"][0]["kind"] == "content_filter"


def test_empty_balance_is_not_retried_on_that_provider(emulator_factory, gateway_factory):
    emu, gw = start(emulator_factory, gateway_factory,
                    {"deepseek-flash": {"faults": [{"kind": "insufficient_balance"}]}},
                    group=["ds-flash", "ds-pro", "qwen-plus"])
    deployment, attempts, rid = served(gw)
    assert (deployment, attempts) == ("qwen-plus", 2)
    assert emu.stats()["deepseek-flash"]["requests"] == 1, "a 402 is never retried"
    assert emu.stats().get("deepseek-v4-pro", {}).get("requests", 0) == 0, "nor sent to the same provider's other model"
    # the provider stays ruled out for the next request too (breaker forced open)
    deployment, _, _ = served(gw)
    assert deployment == "qwen-plus" and emu.stats()["deepseek-flash"]["requests"] == 1


def test_breaker_opens_after_failures_and_closes_after_a_good_probe(emulator_factory, gateway_factory):
    emu, gw = start(emulator_factory, gateway_factory,
                    {"deepseek-flash": {"faults": [{"kind": "server_error", "status": 500}]}},
                    breaker={"consecutive_failures": 3, "open_s": 1.0})
    for _ in range(2):
        assert served(gw)[0] == "qwen-plus"
    failures = emu.stats()["deepseek-flash"]["requests"]
    assert failures == 3, "two tries on the first request, one on the second, then the breaker opened"
    deployment, attempts, rid = served(gw)
    assert deployment == "qwen-plus" and attempts == 1
    assert gw.row(rid)["attempts"][0] == {**gw.row(rid)["attempts"][0], "outcome": "skipped", "error": "circuit breaker open"}
    assert emu.stats()["deepseek-flash"]["requests"] == failures
    emu.set_profile("deepseek-flash", {})
    time.sleep(1.1)
    assert served(gw)[0] == "ds-flash", "the half-open probe succeeded"
    assert served(gw)[0] == "ds-flash", "and the breaker is closed again"

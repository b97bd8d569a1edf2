"""A Qwen explicit-cache answer, through the gateway as users start it, is billed at the explicit-cache rates
of the deployment's region: hits at 10% of input, writes at 125% (an implicit hit would cost 20%)."""

from decimal import Decimal

import pytest

from tests.gateway.support import PROVIDER_KEYS, chat, emulator_config

pytestmark = pytest.mark.slow

SINGAPORE = {"input": Decimal("2.00"), "output": Decimal("6.00")}  # qwen3.8-max, international list


def qwen_config(emu, **provider) -> dict:
    config = emulator_config(emu, group=["qw-max"])
    config["providers"]["qwen"].update(provider)
    config["deployments"]["qw-max"] = {"provider": "qwen", "model": "qwen3.8-max", "context_window": 100000}
    return config


def test_explicit_cache_answer_is_billed_at_the_explicit_rates(emulator_factory, gateway_factory):
    emu = emulator_factory({"models": {"qwen3.8-max": {"output_tokens": 9, "cache_hit_ratio": 0.5,
                                                       "cache_write_ratio": 0.25}}})
    gw = gateway_factory(qwen_config(emu, region="ap-southeast-1"), env=PROVIDER_KEYS)
    reply = gw.client().chat.completions.create(**chat("word " * 3000), extra_headers={"x-request-id": "q-1"})
    details = reply.usage.prompt_tokens_details.model_extra
    assert details["cache_type"] == "ephemeral", "the emulator answered as DashScope's explicit cache does"
    row = gw.row("q-1")
    prompt, cached, written = row["prompt_tokens"], row["cached_tokens"], row["cache_write_tokens"]
    assert cached == reply.usage.prompt_tokens_details.cached_tokens > 0
    assert written == details["cache_creation_input_tokens"] > 0
    rate_in, rate_out = SINGAPORE["input"], SINGAPORE["output"]
    expected = ((prompt - cached - written) * rate_in + cached * rate_in * Decimal("0.1")
                + written * rate_in * Decimal("1.25") + row["completion_tokens"] * rate_out) / 1_000_000
    implicit = expected + cached * rate_in * Decimal("0.1") / 1_000_000  # what a 20% hit would have cost
    assert Decimal(row["cost_usd"]) == expected
    assert Decimal(row["cost_usd"]) < implicit


def test_a_deployment_whose_region_is_unknown_is_reported_unpriced(emulator_factory, gateway_factory):
    emu = emulator_factory({"models": {"qwen3.8-max": {"output_tokens": 3}}})
    gw = gateway_factory(qwen_config(emu), env=PROVIDER_KEYS)  # emulator URL, no region: no regional price
    gw.client().chat.completions.create(**chat(), extra_headers={"x-request-id": "q-2"})
    row = gw.row("q-2")
    assert row["status"] == "ok" and row["completion_tokens"] == 3
    assert "no price known for deployments qw-max (region not known; priced in ap-southeast-1: set the " \
           "provider's region:)" in gw.log_text()

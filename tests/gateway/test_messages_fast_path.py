"""The same-dialect fast path: `POST /v1/messages` to an Anthropic deployment goes as the client's own
Messages body (the deployment's model name put in), and the upstream's answer and events come back as it
wrote them; a deployment of another dialect in the same plan still gets the translated request. With the
anthropic SDK, through `tollway serve`, to the emulator: tools, cache reads and both cache writes billed
exactly, failover before the first event, a cut stream ending with Anthropic's error event, one row each."""

from __future__ import annotations

import json
from decimal import Decimal

import anthropic
import httpx
import pytest

from tests.gateway.support import AN_KEY, CLAUDE, PROVIDER_KEYS, emulator_config, with_claude

pytestmark = pytest.mark.slow

# the catalog's claude-fable-5.1: $10 in, $12.50 5-minute write, $20 1-hour write, $0.25 read, $50 out (per 1M)
RATES = {"in": Decimal("10.00"), "w5m": Decimal("12.50"), "w1h": Decimal("20.00"), "read": Decimal("0.25"),
         "out": Decimal("50.00")}
CACHED = {"api_key": AN_KEY, "output_tokens": 8, "cache_hit_ratio": 0.5, "cache_write_ratio": 0.3,
          "cache_write_1h_share": 0.5}
WEATHER = {"name": "get_weather", "description": "Weather in a city", "cache_control": {"type": "ephemeral"},
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
SYSTEM = [{"type": "text", "text": "You answer about weather. " * 40,
           "cache_control": {"type": "ephemeral", "ttl": "1h"}}]


def sdk(gw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key="client-key", max_retries=0)


def billed(usage) -> Decimal:
    """Anthropic's bill for a Message's usage, by hand: uncached input, reads, 5-minute and 1-hour writes, output."""
    split = usage.cache_creation
    return (usage.input_tokens * RATES["in"] + usage.cache_read_input_tokens * RATES["read"]
            + split.ephemeral_5m_input_tokens * RATES["w5m"] + split.ephemeral_1h_input_tokens * RATES["w1h"]
            + usage.output_tokens * RATES["out"]) / 1_000_000


def gateway(emulator_factory, gateway_factory, claude: dict, group: list[str], **config):
    emu = emulator_factory({"models": {CLAUDE: claude, "deepseek-flash": {"output_tokens": 12}}})
    cfg = with_claude(emulator_config(emu, group=["ds-flash"], **config), emu)
    cfg["route_groups"]["claude"] = {"deployments": group}
    return emu, gateway_factory(cfg, env={**PROVIDER_KEYS, "AN_KEY": AN_KEY})


@pytest.fixture
def cached_claude(emulator_factory, gateway_factory):
    return gateway(emulator_factory, gateway_factory, CACHED, ["claude", "ds-flash"])


def test_a_message_with_tools_goes_natively_and_its_cache_usage_is_billed_exactly(cached_claude):
    emu, gw = cached_claude
    body = {"model": "claude", "max_tokens": 256, "system": SYSTEM, "tools": [WEATHER],
            "tool_choice": {"type": "auto"}, "messages": [{"role": "user", "content": "Weather in Paris?"}]}
    raw = sdk(gw).messages.with_raw_response.create(**body, extra_headers={"x-request-id": "fp-1",
                                                                          "anthropic-beta": "context-1m-2025-08-07"})
    message = raw.parse()
    assert message.model == CLAUDE and message.stop_reason == "tool_use"
    call = [b for b in message.content if b.type == "tool_use"][0]
    assert call.name == "get_weather" and call.input == {"city": "Paris"}
    usage = message.usage
    assert usage.cache_read_input_tokens > 0 and usage.cache_creation.ephemeral_1h_input_tokens > 0
    assert usage.cache_creation.ephemeral_5m_input_tokens > 0
    sent = emu.requests(CLAUDE)[-1]
    assert sent["path"] == "/anthropic/v1/messages" and sent["body"] == {**body, "model": CLAUDE}, \
        "the client's body as it sent it: cache_control, input_schema and tool_choice untouched"
    assert sent["headers"].get("anthropic-beta") == "context-1m-2025-08-07"
    row = gw.row("fp-1")
    assert (row["endpoint"], row["status"], row["deployment"], row["streamed"]) == ("messages", "ok", "claude", 0)
    assert row["prompt_tokens"] == (usage.input_tokens + usage.cache_read_input_tokens
                                    + usage.cache_creation_input_tokens)
    assert (row["cached_tokens"], row["cache_write_tokens"], row["completion_tokens"]) == (
        usage.cache_read_input_tokens, usage.cache_creation_input_tokens, usage.output_tokens)
    assert Decimal(row["cost_usd"]) == billed(usage) == Decimal(raw.headers["x-tollway-cost-usd"])
    assert [a["outcome"] for a in row["attempts"]] == ["ok"] and len(gw.rows()) == 1


def test_a_streamed_tool_use_is_relayed_as_anthropic_wrote_it_and_billed_exactly(cached_claude):
    emu, gw = cached_claude
    kinds, pieces = [], []
    with sdk(gw).messages.stream(model="claude", max_tokens=256, system=SYSTEM, tools=[WEATHER],
                                 messages=[{"role": "user", "content": "Weather in Paris?"}],
                                 extra_headers={"x-request-id": "fp-2"}) as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                pieces.append(event.delta.partial_json)
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert final.model == CLAUDE and final.stop_reason == "tool_use"
    assert len(pieces) == 3 and json.loads("".join(pieces)) == {"city": "Paris"}
    assert emu.requests(CLAUDE)[-1]["body"]["stream"] is True
    row = gw.row("fp-2")
    assert (row["endpoint"], row["status"], row["streamed"], row["usage_source"]) == ("messages", "ok", 1, "reported")
    assert (row["cached_tokens"], row["cache_write_tokens"], row["completion_tokens"]) == (
        final.usage.cache_read_input_tokens, final.usage.cache_creation_input_tokens, final.usage.output_tokens)
    assert Decimal(row["cost_usd"]) == billed(final.usage) > 0
    raw = httpx.post(f"{gw.url}/v1/messages", headers={"x-api-key": "client-key"}, timeout=10,
                     json={"model": "claude", "max_tokens": 64, "stream": True,
                           "messages": [{"role": "user", "content": "Hi"}]}).text
    assert "event: ping\ndata: {\"type\":\"ping\"}" in raw, "the SDK skips pings; the bytes are Anthropic's own"


@pytest.mark.parametrize("fault", [{"kind": "overloaded"}, {"kind": "cut_stream", "after_tokens": 0}])
def test_a_failing_anthropic_deployment_fails_over_to_a_deepseek_one_that_gets_the_translated_request(
        emulator_factory, gateway_factory, fault):
    emu, gw = gateway(emulator_factory, gateway_factory, {"api_key": AN_KEY, "output_tokens": 8, "faults": [fault]},
                      ["claude", "ds-flash"], retry={"retries_per_deployment": 0})
    with sdk(gw).messages.stream(model="claude", max_tokens=64, system="Be brief.",
                                 messages=[{"role": "user", "content": "Hello"}],
                                 extra_headers={"x-request-id": "fo-1"}) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop" and final.content[0].text
    assert final.model == "claude", "the translated stream names the model asked for"
    assert final.usage.output_tokens == 12
    sent = emu.requests("deepseek-flash")[-1]
    assert sent["path"].endswith("/chat/completions")
    assert sent["body"]["messages"] == [{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": "Hello"}]
    row = gw.row("fo-1")
    assert (row["endpoint"], row["status"], row["deployment"]) == ("messages", "ok", "ds-flash")
    assert [a["outcome"] for a in row["attempts"]] == ["failover", "ok"]
    assert Decimal(row["cost_usd"]) > 0


def test_a_non_streamed_message_fails_over_on_overload(emulator_factory, gateway_factory):
    emu, gw = gateway(emulator_factory, gateway_factory,
                      {"api_key": AN_KEY, "output_tokens": 8, "faults": [{"kind": "overloaded"}]},
                      ["claude", "ds-flash"], retry={"retries_per_deployment": 0})
    message = sdk(gw).messages.create(model="claude", max_tokens=64, messages=[{"role": "user", "content": "Hello"}],
                                      extra_headers={"x-request-id": "fo-2"})
    assert message.model == "claude" and message.content[0].text and message.usage.output_tokens == 12
    row = gw.row("fo-2")
    assert (row["endpoint"], row["deployment"], [a["outcome"] for a in row["attempts"]]) == (
        "messages", "ds-flash", ["failover", "ok"])


def test_a_native_stream_cut_after_its_first_event_ends_with_anthropics_error_event(emulator_factory,
                                                                                      gateway_factory):
    _, gw = gateway(emulator_factory, gateway_factory,
                    {"api_key": AN_KEY, "output_tokens": 20, "faults": [{"kind": "cut_stream", "after_tokens": 3}]},
                    ["claude"], retry={"retries_per_deployment": 0})
    kinds = []
    with pytest.raises(anthropic.APIStatusError, match="stream was interrupted") as cut:
        with sdk(gw).messages.stream(model="claude", max_tokens=64, messages=[{"role": "user", "content": "Hi"}],
                                     extra_headers={"x-request-id": "cut-1"}) as stream:
            for event in stream:
                kinds.append(event.type)
    assert cut.value.body["type"] == "error" and cut.value.body["error"]["type"] == "api_error"
    assert kinds[0] == "message_start" and "content_block_delta" in kinds and "message_stop" not in kinds
    row = gw.row("cut-1")
    assert (row["endpoint"], row["status"], row["http_status"], row["deployment"]) == (
        "messages", "stream_error", 200, "claude")
    assert row["usage_source"] == "estimated" and row["completion_tokens"] > 0


def test_the_upstreams_refusal_of_a_native_request_is_the_clients_400_in_anthropics_shape(emulator_factory,
                                                                                         gateway_factory):
    _, gw = gateway(emulator_factory, gateway_factory,
                    {"api_key": AN_KEY, "output_tokens": 8, "faults": [{"kind": "context_length"}]}, ["claude"])
    with pytest.raises(anthropic.BadRequestError) as refused:
        sdk(gw).messages.create(model="claude", max_tokens=64, messages=[{"role": "user", "content": "Hi"}],
                                extra_headers={"x-request-id": "bad-1"})
    assert refused.value.body["type"] == "error" and refused.value.body["error"]["type"] == "invalid_request_error"
    assert "exceed context limit" in refused.value.body["error"]["message"], "Anthropic's own words, passed on"
    row = gw.row("bad-1")
    assert (row["endpoint"], row["http_status"]) == ("messages", 400)


def test_a_hedge_from_a_slow_anthropic_deployment_is_served_translated_and_both_attempts_are_rowed(
        emulator_factory, gateway_factory):
    emu = emulator_factory({"models": {CLAUDE: {"api_key": AN_KEY, "output_tokens": 8, "ttft_ms": 3000},
                                       "deepseek-flash": {"output_tokens": 12}}})
    cfg = with_claude(emulator_config(emu, group=["ds-flash"]), emu)
    cfg["route_groups"]["claude"] = {"deployments": ["claude", "ds-flash"],
                                     "hedge": {"after_ms": 200, "budget_percent": 100}}
    gw = gateway_factory(cfg, env={**PROVIDER_KEYS, "AN_KEY": AN_KEY})
    with sdk(gw).messages.stream(model="claude", max_tokens=64, messages=[{"role": "user", "content": "Hello"}],
                                 extra_headers={"x-request-id": "hedge-1"}) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert final.model == "claude" and final.usage.output_tokens == 12, "the DeepSeek hedge won, translated"
    assert emu.requests(CLAUDE)[-1]["body"]["model"] == CLAUDE, "the Anthropic attempt went natively"
    row = gw.row("hedge-1")
    assert (row["endpoint"], row["status"], row["deployment"]) == ("messages", "ok", "ds-flash")
    loser = next(a for a in row["attempts"] if a["outcome"] == "cancelled")
    assert (loser["deployment"], loser["kind"]) == ("claude", "hedge_loser")

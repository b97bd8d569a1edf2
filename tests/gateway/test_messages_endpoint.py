"""`POST /v1/messages` and `/v1/messages/count_tokens` with the real anthropic SDK, through `tollway serve`
to an emulated DeepSeek (OpenAI dialect, translated both ways) and an emulated Anthropic upstream:
answers, streams, a streamed tool-use round trip, count_tokens, errors in Anthropic's shape, a virtual
key presented as x-api-key with its budget, and one ledger row each with the exact cost."""

from __future__ import annotations

import json
from decimal import Decimal

import anthropic
import httpx
import pytest

from tests.accounting.support import ENV, Admin, budget_config, request_cost
from tests.gateway.support import CLAUDE, PROVIDER_KEYS, emulator_config, expected_cost

pytestmark = pytest.mark.slow

WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def sdk(gw, key: str = "client-key") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)


def assert_row_matches(row: dict, usage, streamed: int) -> None:
    assert (row["endpoint"], row["status"], row["http_status"], row["streamed"]) == ("messages", "ok", 200, streamed)
    assert row["prompt_tokens"] == (usage.input_tokens + (usage.cache_read_input_tokens or 0)
                                    + (usage.cache_creation_input_tokens or 0))
    assert row["cached_tokens"] == (usage.cache_read_input_tokens or 0)
    assert row["completion_tokens"] == usage.output_tokens
    assert Decimal(row["cost_usd"]) == expected_cost(row) > 0


@pytest.mark.parametrize("group", ["chat", "claude"])
def test_messages_create_is_answered_in_anthropic_shape_with_one_exact_row(claude_and_deepseek, group):
    emu, gw = claude_and_deepseek
    raw = sdk(gw).messages.with_raw_response.create(
        model=group, max_tokens=64, system=[{"type": "text", "text": "Be brief."}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "Hello there"}]}],
        stop_sequences=["\n\nHuman:"], metadata={"user_id": "u-7"}, extra_body={"temperature": 0.5},
        extra_headers={"x-request-id": f"m-{group}"})
    message = raw.parse()
    # a translated answer names the model asked for; an Anthropic upstream's is relayed as it wrote it
    assert message.type == "message" and message.role == "assistant"
    assert message.model == (group if group == "chat" else CLAUDE)
    assert message.id.startswith("msg_") and message.stop_reason == "end_turn"
    assert message.content[0].type == "text" and message.content[0].text
    assert message.usage.output_tokens == (12 if group == "chat" else 8)
    row = gw.row(f"m-{group}")
    assert_row_matches(row, message.usage, streamed=0)
    assert raw.headers["x-tollway-cost-usd"] == row["cost_usd"]
    assert row["requested_model"] == group and len(gw.rows()) == 1
    counted = [line for line in httpx.get(f"{gw.url}/metrics").text.splitlines()
               if line.startswith("tollway_requests_total{") and f'"{group}"' in line and 'status="ok"' in line]
    assert len(counted) == 1 and float(counted[0].rsplit(" ", 1)[1]) == 1, "the metrics count it"
    if group == "chat":
        assert message.usage.cache_read_input_tokens > 0, "DeepSeek's cache hits are Anthropic's cache reads"
        sent = emu.requests("deepseek-flash")[-1]["body"]
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
        assert (sent["stop"], sent["user"], sent["max_tokens"]) == (["\n\nHuman:"], "u-7", 64)
    else:  # the same-dialect fast path: the client's body itself, with the deployment's model name
        sent = emu.requests(CLAUDE)[-1]
        assert sent["path"] == "/anthropic/v1/messages"
        assert sent["body"] == {"model": CLAUDE, "max_tokens": 64, "system": [{"type": "text", "text": "Be brief."}],
                                "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello there"}]}],
                                "stop_sequences": ["\n\nHuman:"], "metadata": {"user_id": "u-7"}, "temperature": 0.5}


@pytest.mark.parametrize("group", ["chat", "claude"])
def test_messages_stream_is_the_anthropic_event_sequence(claude_and_deepseek, group):
    _, gw = claude_and_deepseek
    kinds = []
    with sdk(gw).messages.stream(model=group, max_tokens=64, messages=[{"role": "user", "content": "Hello"}],
                                 extra_headers={"x-request-id": f"s-{group}"}) as stream:
        for event in stream:
            kinds.append(event.type)
        text = stream.get_final_text()
        final = stream.get_final_message()
    assert text and final.stop_reason == "end_turn"
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_start" in kinds and "content_block_stop" in kinds and "message_delta" in kinds
    assert final.usage.output_tokens == (12 if group == "chat" else 8)
    assert_row_matches(gw.row(f"s-{group}"), final.usage, streamed=1)


@pytest.mark.parametrize("group", ["chat", "claude"])
def test_streamed_tool_use_round_trip(claude_and_deepseek, group):
    """The model calls the tool (its input arrives as input_json_delta), the client answers, the model replies."""
    _, gw = claude_and_deepseek
    client = sdk(gw)
    messages: list = [{"role": "user", "content": "What is the weather in Paris?"}]
    partial = []
    with client.messages.stream(model=group, max_tokens=64, messages=messages, tools=[WEATHER],
                                tool_choice={"type": "auto"}) as stream:
        for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                partial.append(event.delta.partial_json)
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    calls = [b for b in final.content if b.type == "tool_use"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].input == {"city": "Paris"}
    assert len(partial) > 1 and json.loads("".join(partial)) == {"city": "Paris"}
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id,
                                               "content": "18C and sunny"}]}]
    reply = client.messages.create(model=group, max_tokens=64, messages=messages, tools=[WEATHER])
    assert reply.stop_reason == "end_turn" and reply.content[0].text
    assert [r["status"] for r in gw.rows(wait_for=2)] == ["ok", "ok"]


def test_count_tokens_is_an_estimate_with_a_row_and_no_upstream_call(claude_and_deepseek):
    emu, gw = claude_and_deepseek
    before = len(emu.requests("deepseek-flash"))
    counted = sdk(gw).messages.count_tokens(model="chat", system="Be brief.",
                                            messages=[{"role": "user", "content": "Hello there, friend"}],
                                            extra_headers={"x-request-id": "ct-1"})
    # core/usage.py's rule: a token per 4 ASCII characters, rounded up, per text
    assert counted.input_tokens == 3 + 5
    assert len(emu.requests("deepseek-flash")) == before
    row = gw.row("ct-1")
    assert (row["endpoint"], row["status"], row["cost_usd"], row["deployment"]) == \
        ("messages.count_tokens", "ok", "0", "")


def test_errors_take_anthropic_shape_and_each_has_its_row(claude_and_deepseek):
    _, gw = claude_and_deepseek
    client = sdk(gw)
    with pytest.raises(anthropic.NotFoundError) as unknown:
        client.messages.create(model="no-such-model", max_tokens=8, messages=[{"role": "user", "content": "hi"}],
                               extra_headers={"x-request-id": "e-1"})
    assert unknown.value.body["type"] == "error" and unknown.value.body["error"]["type"] == "not_found_error"
    assert "no-such-model" in unknown.value.body["error"]["message"]
    reply = httpx.post(f"{gw.url}/v1/messages", headers={"x-api-key": "client-key", "x-request-id": "e-2"},
                       json={"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
    assert reply.status_code == 400
    assert reply.json() == {"type": "error", "error": {"type": "invalid_request_error",
                                                       "message": "max_tokens: Field required."}}
    with pytest.raises(anthropic.BadRequestError) as server_tool:
        client.messages.create(model="chat", max_tokens=8, messages=[{"role": "user", "content": "hi"}],
                               tools=[{"type": "web_search_20250305", "name": "web_search"}],
                               extra_headers={"x-request-id": "e-3"})
    assert "not supported" in server_tool.value.body["error"]["message"]
    assert "web_search_20250305" in server_tool.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as bad_block:
        client.messages.create(model="chat", max_tokens=8,
                               messages=[{"role": "user", "content": [{"type": "txt", "text": "hi"}]}])
    assert "messages[0].content[0]" in bad_block.value.body["error"]["message"]
    for rid, status in (("e-1", 404), ("e-2", 400), ("e-3", 400)):
        row = gw.row(rid)
        assert (row["endpoint"], row["http_status"], row["status"]) == ("messages", status, "client_error")


@pytest.fixture
def budgeted(emulator, gateway_factory):
    return gateway_factory(budget_config(emulator), env=ENV)


def test_a_virtual_key_sent_as_x_api_key_is_held_to_its_budget(budgeted):
    gw = budgeted
    admin = Admin(gw)
    key_id, secret = admin.create_key(name="small", daily_usd="0.2")
    client = sdk(gw, secret)  # the anthropic SDK sends x-api-key
    with pytest.raises(anthropic.AuthenticationError) as forged:
        sdk(gw, secret[:-4] + "zzzz").messages.create(model="chat", max_tokens=20,
                                                      messages=[{"role": "user", "content": "Hello there"}])
    assert forged.value.body["error"]["type"] == "authentication_error"
    costs = []
    for n in range(2):
        raw = client.messages.with_raw_response.create(model="chat", max_tokens=20,
                                                       messages=[{"role": "user", "content": "Hello there"}],
                                                       extra_headers={"x-request-id": f"b-{n}"})
        usage = raw.parse().usage
        costs.append(Decimal(raw.headers["x-tollway-cost-usd"]))
        assert costs[-1] == request_cost(usage.input_tokens + (usage.cache_read_input_tokens or 0),
                                         usage.output_tokens)
        assert gw.row(f"b-{n}")["key_id"] == key_id
    assert costs == [Decimal("0.039")] * 2, "the same cost as the chat endpoint's test of this budget"
    with pytest.raises(anthropic.RateLimitError) as refused:
        client.messages.create(model="chat", max_tokens=20, messages=[{"role": "user", "content": "Hello there"}],
                               extra_headers={"x-request-id": "b-3"})
    assert refused.value.body["error"]["type"] == "rate_limit_error"
    assert "budget" in refused.value.body["error"]["message"]
    row = gw.row("b-3")
    assert (row["endpoint"], row["http_status"], row["cost_usd"]) == ("messages", 429, "0")


def failing(emulator_factory, gateway_factory, fault: dict):
    emu = emulator_factory({"models": {"deepseek-flash": {"output_tokens": 20, "faults": [fault]}}})
    return gateway_factory(emulator_config(emu, retry={"retries_per_deployment": 0},
                                           timeouts={"connect_s": 1, "first_byte_s": 2, "between_chunks_s": 0.5,
                                                     "response_s": 2}), env=PROVIDER_KEYS)


def test_a_messages_stream_fails_over_until_its_first_event(emulator_factory, gateway_factory):
    gw = failing(emulator_factory, gateway_factory, {"kind": "cut_stream", "after_tokens": 0})
    with sdk(gw).messages.stream(model="chat", max_tokens=64, messages=[{"role": "user", "content": "Hi"}],
                                 extra_headers={"x-request-id": "fo-1"}) as stream:
        text = stream.get_final_text()
    assert text
    row = gw.row("fo-1")
    assert row["status"] == "ok" and row["deployment"] == "qwen-plus"
    assert [a["outcome"] for a in row["attempts"]] == ["failover", "ok"]


def test_a_messages_stream_cut_after_its_first_event_ends_with_an_error_event(emulator_factory, gateway_factory):
    gw = failing(emulator_factory, gateway_factory, {"kind": "cut_stream", "after_tokens": 3})
    kinds = []
    with pytest.raises(anthropic.APIStatusError, match="stream was interrupted"):
        with sdk(gw).messages.stream(model="chat", max_tokens=64, messages=[{"role": "user", "content": "Hi"}],
                                     extra_headers={"x-request-id": "cut-1"}) as stream:
            for event in stream:
                kinds.append(event.type)
    assert kinds[0] == "message_start" and "content_block_delta" in kinds and "message_stop" not in kinds
    row = gw.row("cut-1")
    assert (row["endpoint"], row["status"], row["http_status"]) == ("messages", "stream_error", 200)


def test_bad_bodies_too_large_bodies_and_count_tokens_errors_take_anthropic_shape(emulator, gateway_factory):
    gw = gateway_factory(emulator_config(emulator, server={"max_body_bytes": 4000}), env=PROVIDER_KEYS)
    post = lambda path, rid, **kw: httpx.post(f"{gw.url}{path}", headers={"x-api-key": "client-key",  # noqa: E731
                                                                          "x-request-id": rid}, **kw)
    cases = [
        (post("/v1/messages", "h-1", content=b"{not json"), 400, "invalid_request_error", "not valid JSON"),
        (post("/v1/messages", "h-2", json={"model": "chat", "max_tokens": 8,
                                           "messages": [{"role": "user", "content": "x" * 5000}]}),
         413, "request_too_large", "larger than the limit of 4000 bytes"),
        (post("/v1/messages/count_tokens", "h-3", json={"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
         404, "not_found_error", "'nope' does not exist"),
        (post("/v1/messages", "h-4", json={"model": "chat", "max_tokens": 8, "container": "c",
                                           "messages": [{"role": "user", "content": "x"}]}),
         400, "invalid_request_error", "'container' (code-execution containers) is not supported"),
    ]
    for reply, status, kind, words in cases:
        body = reply.json()
        assert (reply.status_code, body["type"], body["error"]["type"]) == (status, "error", kind), body
        assert words in body["error"]["message"]
    assert gw.row("h-3")["endpoint"] == "messages.count_tokens"
    for rid, status in (("h-1", 400), ("h-2", 413), ("h-4", 400)):
        assert (gw.row(rid)["endpoint"], gw.row(rid)["http_status"]) == ("messages", status)

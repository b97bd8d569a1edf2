"""`POST /v1/responses` with the real OpenAI SDK, through `tollway serve` to an emulated DeepSeek upstream
(translated to Chat Completions and back): create, stream, a function tool round trip, errors, one
ledger row each with the exact cost."""

from __future__ import annotations

import json
from decimal import Decimal

import openai
import pytest

from tests.gateway.support import PROVIDER_KEYS, emulator_config, expected_cost

pytestmark = pytest.mark.slow

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.fixture
def gw(emulator_factory, gateway_factory):
    emu = emulator_factory({"models": {"deepseek-flash": {"output_tokens": 12, "cache_hit_ratio": 0.5}}})
    return gateway_factory(emulator_config(emu, group=["ds-flash"]), env=PROVIDER_KEYS)


def test_responses_create_is_answered_with_usage_and_one_exact_row(gw):
    raw = gw.client().responses.with_raw_response.create(model="chat", instructions="Be brief.", input="Hello there",
                                                         max_output_tokens=64,
                                                         extra_headers={"x-request-id": "r-1"})
    response = raw.parse()
    assert response.object == "response" and response.status == "completed" and response.output_text
    assert response.usage.output_tokens == 12 and response.usage.input_tokens_details.cached_tokens > 0
    row = gw.row("r-1")
    assert (row["endpoint"], row["status"], row["streamed"]) == ("responses", "ok", 0)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (response.usage.input_tokens, 12)
    assert Decimal(row["cost_usd"]) == expected_cost(row) > 0 and raw.headers["x-tollway-cost-usd"] == row["cost_usd"]


def test_responses_stream_is_the_semantic_event_sequence(gw):
    kinds = []
    with gw.client().responses.stream(model="chat", input="Hello", extra_headers={"x-request-id": "r-2"}) as stream:
        for event in stream:
            kinds.append(event.type)
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds and "response.output_item.done" in kinds
    assert final.output_text and final.usage.output_tokens == 12
    row = gw.row("r-2")
    assert (row["endpoint"], row["status"], row["streamed"]) == ("responses", "ok", 1)
    assert Decimal(row["cost_usd"]) == expected_cost(row) > 0


def test_function_tool_round_trip_streamed(gw):
    client = gw.client()
    deltas = []
    with client.responses.stream(model="chat", input="What is the weather in Paris?", tools=[WEATHER]) as stream:
        for event in stream:
            if event.type == "response.function_call_arguments.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    calls = [item for item in final.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {"city": "Paris"}
    assert len(deltas) > 1 and "".join(deltas) == calls[0].arguments
    reply = client.responses.create(model="chat", tools=[WEATHER], input=[
        {"role": "user", "content": "What is the weather in Paris?"},
        {"type": "function_call", "call_id": calls[0].call_id, "name": "get_weather", "arguments": calls[0].arguments},
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "18C and sunny"}])
    assert reply.output_text and [r["status"] for r in gw.rows(wait_for=2)] == ["ok", "ok"]


def test_responses_errors_name_what_cannot_be_served(gw):
    client = gw.client()
    with pytest.raises(openai.BadRequestError) as stored:
        client.responses.create(model="chat", input="hi", conversation="conv_1",
                                extra_headers={"x-request-id": "re-1"})
    assert "conversation" in stored.value.body["message"] and "not supported" in stored.value.body["message"]
    with pytest.raises(openai.NotFoundError) as unknown:
        client.responses.create(model="chat", input="hi", previous_response_id="resp_1")
    assert unknown.value.body["param"] == "previous_response_id" and "resp_1" in unknown.value.body["message"]
    with pytest.raises(openai.BadRequestError) as builtin:
        client.responses.create(model="chat", input="hi", tools=[{"type": "web_search"}])
    assert "web_search" in builtin.value.body["message"] and builtin.value.body["param"] == "tools[0]"
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="nope", input="hi")
    row = gw.row("re-1")
    assert (row["endpoint"], row["http_status"], row["status"]) == ("responses", 400, "client_error")


def test_a_responses_stream_cut_after_its_first_event_ends_with_an_error_event(emulator_factory, gateway_factory):
    emu = emulator_factory({"models": {"deepseek-flash": {"output_tokens": 20,
                                                          "faults": [{"kind": "cut_stream", "after_tokens": 3}]}}})
    gw = gateway_factory(emulator_config(emu, retry={"retries_per_deployment": 0},
                                         timeouts={"connect_s": 1, "first_byte_s": 2, "between_chunks_s": 0.5,
                                                   "response_s": 2}), env=PROVIDER_KEYS)
    events = list(gw.client().responses.create(model="chat", input="Hi", stream=True,
                                               extra_headers={"x-request-id": "rc-1"}))
    kinds = [event.type for event in events]
    assert kinds[0] == "response.created" and "response.output_text.delta" in kinds
    assert kinds[-1] == "error" and "stream was interrupted" in events[-1].message, "the Responses API's error event"
    assert "response.completed" not in kinds
    row = gw.row("rc-1")
    assert (row["endpoint"], row["status"], row["http_status"]) == ("responses", "stream_error", 200)

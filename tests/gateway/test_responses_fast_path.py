"""The same-dialect fast path for `POST /v1/responses`: to an OpenAI deployment the client's own Responses
body goes to the upstream's /v1/responses (its model name put in, `previous_response_id` resolved from
tollway's store into the input), and the answer and events come back as the upstream wrote them. A plan
that moves on to a DeepSeek deployment sends it the translated request, the stored conversation included.
The upstream is a minimal stand-in speaking the documented shapes (responses_standin.py); the OpenAI SDK
is the client."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from tests.gateway.responses_standin import MODEL, USAGE, WORDS, ResponsesStandIn
from tests.gateway.support import PROVIDER_KEYS, emulator_config

pytestmark = pytest.mark.slow

OA_KEY = "sk-oa-test-0004"
# the catalog's gpt-5.4-mini: $0.75 in, $0.075 cached, $4.50 out (reasoning included), per 1M tokens
EXPECTED_COST = (Decimal(USAGE["input_tokens"] - 16) * Decimal("0.75") + 16 * Decimal("0.075")
                 + USAGE["output_tokens"] * Decimal("4.50")) / 1_000_000
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.fixture
def standin():
    with ResponsesStandIn() as server:
        yield server


@pytest.fixture
def setup(standin, emulator_factory, gateway_factory):
    emu = emulator_factory({"models": {"deepseek-flash": {"output_tokens": 12}}})
    config = emulator_config(emu, group=["ds-flash"], retry={"retries_per_deployment": 0})
    config["providers"]["oai"] = {"kind": "openai", "base_url": standin.base_url, "api_key_env": "OA_KEY",
                                  "jurisdiction": "us", "timeouts": config["providers"]["deepseek"]["timeouts"]}
    config["deployments"]["gpt"] = {"provider": "oai", "model": MODEL}
    config["route_groups"]["oai"] = {"deployments": ["gpt", "ds-flash"]}
    return standin, emu, gateway_factory(config, env={**PROVIDER_KEYS, "OA_KEY": OA_KEY})


def test_a_response_goes_natively_is_billed_exactly_and_continues_from_tollways_store(setup):
    standin, _, gw = setup
    client = gw.client()
    raw = client.responses.with_raw_response.create(model="oai", instructions="Be brief.", input="My name is Ada.",
                                                    max_output_tokens=64, extra_headers={"x-request-id": "n-1"})
    first = raw.parse()
    assert first.id == "resp_standin0001" and first.output_text == "".join(WORDS) and first.model == MODEL
    assert standin.bodies[-1] == {"model": MODEL, "instructions": "Be brief.", "input": "My name is Ada.",
                                  "max_output_tokens": 64}, "the client's body as it sent it"
    row = gw.row("n-1")
    assert (row["endpoint"], row["status"], row["deployment"], row["streamed"]) == ("responses", "ok", "gpt", 0)
    assert (row["prompt_tokens"], row["cached_tokens"], row["completion_tokens"], row["reasoning_tokens"]) == (
        40, 16, 9, 3)
    assert Decimal(row["cost_usd"]) == EXPECTED_COST == Decimal(raw.headers["x-tollway-cost-usd"])
    follow = client.responses.create(model="oai", input="What is my name?", previous_response_id=first.id)
    sent = standin.bodies[-1]
    assert "previous_response_id" not in sent, "tollway's store resolves it: the upstream gets the conversation"
    assert sent["input"] == [{"type": "message", "role": "user", "content": "My name is Ada."},
                             {"role": "assistant", "content": "".join(WORDS)},
                             {"type": "message", "role": "user", "content": "What is my name?"}]
    assert client.responses.retrieve(follow.id).output_text == follow.output_text, "kept in tollway's store"


def test_a_streamed_response_is_relayed_as_the_upstream_wrote_it_and_stored(setup):
    standin, _, gw = setup
    client = gw.client()
    kinds = []
    with client.responses.stream(model="oai", input="Hello", extra_headers={"x-request-id": "n-2"}) as stream:
        for event in stream:
            kinds.append(event.type)
        final = stream.get_final_response()
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds.count("response.output_text.delta") == len(WORDS) and kinds[-1] == "response.completed"
    assert final.id.startswith("resp_standin") and final.output_text == "".join(WORDS)
    assert standin.bodies[-1]["stream"] is True
    row = gw.row("n-2")
    assert (row["endpoint"], row["status"], row["streamed"], row["usage_source"]) == ("responses", "ok", 1, "reported")
    assert Decimal(row["cost_usd"]) == EXPECTED_COST
    assert client.responses.retrieve(final.id).output_text == final.output_text


def test_a_function_call_round_trip_goes_natively(setup):
    standin, _, gw = setup
    client = gw.client()
    with client.responses.stream(model="oai", input="Weather in Paris?", tools=[WEATHER]) as stream:
        deltas = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
        final = stream.get_final_response()
    call = [item for item in final.output if item.type == "function_call"][0]
    assert "".join(deltas) == call.arguments == '{"city":"Paris"}'
    reply = client.responses.create(model="oai", previous_response_id=final.id, tools=[WEATHER],
                                    input=[{"type": "function_call_output", "call_id": call.call_id,
                                            "output": "18C and sunny"}])
    assert reply.output_text
    sent = standin.bodies[-1]["input"]
    assert sent[1] == {"type": "function_call", "call_id": call.call_id, "name": "get_weather",
                       "arguments": '{"city":"Paris"}'}, "the call again, without the upstream's item id"
    assert sent[2] == {"type": "function_call_output", "call_id": call.call_id, "output": "18C and sunny"}


@pytest.mark.parametrize("fail", ["status", "error_event"])
def test_failover_to_deepseek_sends_it_the_translated_conversation(setup, fail):
    standin, emu, gw = setup
    client = gw.client()
    first = client.responses.create(model="oai", input="My name is Ada.")
    standin.fail = fail
    with client.responses.stream(model="oai", input="What is my name?", previous_response_id=first.id,
                                 extra_headers={"x-request-id": f"f-{fail}"}) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert final.output_text and final.usage.output_tokens == 12, "DeepSeek's answer, translated"
    sent = emu.requests("deepseek-flash")[-1]
    assert sent["path"].endswith("/chat/completions")
    assert sent["body"]["messages"] == [{"role": "user", "content": "My name is Ada."},
                                        {"role": "assistant", "content": "".join(WORDS)},
                                        {"role": "user", "content": "What is my name?"}]
    row = gw.row(f"f-{fail}")
    assert (row["endpoint"], row["status"], row["deployment"]) == ("responses", "ok", "ds-flash")
    assert [a["outcome"] for a in row["attempts"]] == ["failover", "ok"]
    assert client.responses.retrieve(final.id).previous_response_id == first.id


def test_the_upstreams_refusal_of_the_request_is_the_clients_400_in_openais_shape(setup):
    standin, emu, gw = setup
    standin.fail = "bad_request"
    before = len(emu.requests("deepseek-flash"))
    with pytest.raises(openai.BadRequestError) as refused:
        gw.client().responses.create(model="oai", input="Hi", reasoning={"effort": "extreme"},
                                     extra_headers={"x-request-id": "bad-1"})
    assert "Invalid value for 'reasoning.effort'" in refused.value.body["message"]
    assert len(emu.requests("deepseek-flash")) == before, "a bad request is not tried elsewhere"
    row = gw.row("bad-1")
    assert (row["endpoint"], row["http_status"], row["status"], row["deployment"]) == (
        "responses", 400, "client_error", "")


def test_a_native_stream_cut_midway_ends_with_an_error_event_and_an_estimated_row(setup):
    standin, _, gw = setup
    standin.fail = "cut"
    with gw.client().responses.stream(model="oai", input="Hello", extra_headers={"x-request-id": "cut-1"}) as stream:
        events = list(stream)
    assert [e.delta for e in events if e.type == "response.output_text.delta"] == WORDS[:3]
    assert events[-1].type == "error" and "stream was interrupted" in events[-1].message, \
        "the Responses API's error event (the SDK yields it as an event)"
    row = gw.row("cut-1")
    assert (row["endpoint"], row["status"], row["http_status"], row["deployment"]) == (
        "responses", "stream_error", 200, "gpt")
    assert row["usage_source"] == "estimated" and row["completion_tokens"] > 0, "counted from the relayed text"

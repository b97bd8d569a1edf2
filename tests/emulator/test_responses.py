"""The emulator's OpenAI Responses API: the response object, usage, the semantic event stream, function
calls (parallel, interleaved argument deltas), text.format structured output, and the OpenAI SDK on it."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest

from tests.emulator.support import post, stream
from tollway.emulator.tokens import output_text

WEATHER = {"type": "function", "name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": False}}
TIME = {"type": "function", "name": "get_time", "parameters": {
    "type": "object", "properties": {"zone": {"enum": ["UTC", "CET"]}}, "required": ["zone"]}}
PERSON = {"type": "object", "required": ["name", "age", "tags"], "additionalProperties": False,
          "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0, "maximum": 120},
                         "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1}}}


def url(emulator, dialect: str = "openai") -> str:
    return f"{emulator.url}/{dialect}/v1/responses"


def test_a_whole_response_with_cached_and_reasoning_usage(emulator):
    emulator.set_profile("r", {"output_tokens": 3, "reasoning_tokens": 2, "cache_hit_ratio": 0.5})
    body = post(url(emulator), {"model": "r", "input": "a" * 40, "instructions": "be brief"}).body
    # 40 chars: 10 + 4; instructions: 2 + 4 -> 20 prompt tokens, 10 cached
    assert body["object"] == "response" and body["id"].startswith("resp_") and body["status"] == "completed"
    assert [item["type"] for item in body["output"]] == ["reasoning", "message"]
    message = body["output"][1]
    assert message["role"] == "assistant" and message["status"] == "completed"
    assert message["content"] == [{"type": "output_text", "text": output_text(3), "annotations": [], "logprobs": []}]
    assert body["usage"] == {"input_tokens": 20, "input_tokens_details": {"cached_tokens": 10}, "output_tokens": 5,
                             "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 25}
    assert body["instructions"] == "be brief" and body["incomplete_details"] is None


def test_the_stream_is_the_semantic_event_sequence(emulator):
    emulator.set_profile("r", {"output_tokens": 4, "tokens_per_chunk": 2, "reasoning_tokens": 1})
    result = stream(url(emulator), {"model": "r", "input": "hi"})
    names = [name for name, _ in result.events]
    assert names == ["response.created", "response.in_progress",
                     "response.output_item.added", "response.output_item.done",  # the reasoning item
                     "response.output_item.added", "response.content_part.added",
                     "response.output_text.delta", "response.output_text.delta",
                     "response.output_text.done", "response.content_part.done", "response.output_item.done",
                     "response.completed"]
    assert all(data["type"] == name for name, data in result.events)
    assert [data["sequence_number"] for data in result.data] == list(range(len(names)))
    deltas = "".join(data["delta"] for name, data in result.events if name == "response.output_text.delta")
    assert deltas == output_text(4)
    final = result.data[-1]["response"]
    assert final["status"] == "completed" and final["output"][1]["content"][0]["text"] == deltas
    assert final["usage"]["output_tokens"] == 5 and final["usage"]["output_tokens_details"]["reasoning_tokens"] == 1
    assert result.data[0]["response"]["status"] == "in_progress" and result.data[0]["response"]["usage"] is None
    assert "[DONE]" not in result.data


def test_parallel_function_calls_whole_and_streamed(emulator):
    emulator.set_profile("agent", {"tool_calls": 2})
    body = post(url(emulator), {"model": "agent", "input": "weather and time?", "tools": [WEATHER, TIME]}).body
    calls = [item for item in body["output"] if item["type"] == "function_call"]
    assert [c["name"] for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}
    jsonschema.validate(json.loads(calls[1]["arguments"]), TIME["parameters"])
    assert all(c["call_id"].startswith("call_") and c["id"].startswith("fc_") for c in calls)
    result = stream(url(emulator), {"model": "agent", "input": "weather and time?", "tools": [WEATHER, TIME]})
    deltas = [d for name, d in result.events if name == "response.function_call_arguments.delta"]
    assert [d["output_index"] for d in deltas][:4] == [1, 2, 1, 2], "argument deltas interleave by output index"
    joined = {i: "".join(d["delta"] for d in deltas if d["output_index"] == i) for i in (1, 2)}
    done = {d["output_index"]: d for name, d in result.events if name == "response.function_call_arguments.done"}
    assert {i: done[i]["arguments"] for i in (1, 2)} == joined
    final = result.data[-1]["response"]
    assert [item["arguments"] for item in final["output"] if item["type"] == "function_call"] == [joined[1], joined[2]]


def test_a_function_call_output_gets_a_message_and_parallel_calls_can_be_turned_off(emulator):
    emulator.set_profile("agent", {"tool_calls": 2})
    items = [{"role": "user", "content": "weather?"},
             {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
             {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}]
    body = post(url(emulator), {"model": "agent", "input": items, "tools": [WEATHER, TIME]}).body
    assert [item["type"] for item in body["output"]] == ["message"]
    serial = post(url(emulator), {"model": "agent", "input": "w", "tools": [WEATHER, TIME],
                                  "parallel_tool_calls": False}).body
    assert [i["name"] for i in serial["output"] if i["type"] == "function_call"] == ["get_weather"]


def test_text_format_json_schema_and_logprobs(emulator):
    emulator.set_profile("json", {"output_tokens": 5, "tokens_per_chunk": 2})
    request = {"model": "json", "input": "who?", "text": {"format": {"type": "json_schema", "name": "person",
                                                                     "schema": PERSON, "strict": True}},
               "include": ["message.output_text.logprobs"], "top_logprobs": 2}
    body = post(url(emulator), request).body
    part = body["output"][0]["content"][0]
    jsonschema.validate(json.loads(part["text"]), PERSON)
    assert body["text"]["format"]["name"] == "person"
    assert "".join(e["token"] for e in part["logprobs"]) == part["text"] and len(part["logprobs"]) == 5
    assert all(len(e["top_logprobs"]) == 2 for e in part["logprobs"])
    result = stream(url(emulator), request)
    deltas = [d for name, d in result.events if name == "response.output_text.delta"]
    assert "".join(d["delta"] for d in deltas) == part["text"]
    assert [e for d in deltas for e in d["logprobs"]] == part["logprobs"]


def test_max_output_tokens_makes_it_incomplete(emulator):
    emulator.set_profile("long", {"output_tokens": 50})
    body = post(url(emulator), {"model": "long", "input": "go", "max_output_tokens": 16}).body
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["usage"]["output_tokens"] == 16
    result = stream(url(emulator), {"model": "long", "input": "go", "max_output_tokens": 16})
    assert result.events[-1][0] == "response.incomplete"


@pytest.mark.parametrize("body, field", [({"model": "m"}, "'input'"), ({"input": "x"}, "'model'"),
                                         ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
                                         ({"model": "m", "input": "x", "instructions": 3}, "instructions")])
def test_a_malformed_body_is_400_naming_the_field(emulator, body, field):
    reply = post(url(emulator), body)
    assert reply.status == 400 and field in reply.body["error"]["message"]
    assert reply.body["error"]["type"] == "invalid_request_error"


def test_the_openai_sdk_reads_it(emulator):
    emulator.set_profile("sdk", {"output_tokens": 3, "tool_calls": 2})
    client = openai.OpenAI(base_url=f"{emulator.url}/openai/v1", api_key="k", max_retries=0)
    reply = client.responses.create(model="sdk", input="hello")
    assert reply.output_text == output_text(3) and reply.usage.output_tokens == 3
    with client.responses.stream(model="sdk", input="weather?", tools=[WEATHER, TIME]) as events:
        final = events.get_final_response()
    calls = [item for item in final.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    parsed = client.responses.create(model="sdk", input="who?", text={"format": {
        "type": "json_schema", "name": "person", "schema": PERSON, "strict": True}})
    jsonschema.validate(json.loads(parsed.output_text), PERSON)

"""Agent traffic through `tollway serve` to an emulated OpenAI-dialect upstream (DeepSeek): parallel tool
calls, `n` choices, logprobs and JSON-schema output pass the chat path intact, streamed and not; the
/v1/messages and /v1/responses translations reassemble interleaved tool-call deltas per call; what a
client API cannot carry is a 400 naming it. One true row each."""

from __future__ import annotations

import json
from contextlib import ExitStack
from decimal import Decimal

import anthropic
import jsonschema
import pytest

from tests.accounting.support import start_gateway
from tests.fixtures.emulator import _start
from tests.gateway.support import PROVIDER_KEYS, emulator_config, expected_cost

pytestmark = pytest.mark.slow

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
           "additionalProperties": False}
TIME = {"type": "object", "properties": {"zone": {"type": "string", "enum": ["UTC", "CET", "JST"]},
                                         "offset": {"type": "integer", "minimum": -12, "maximum": 14}},
        "required": ["zone", "offset"], "additionalProperties": False}
PERSON = {"type": "object", "additionalProperties": False, "required": ["name", "age", "address", "tags"],
          "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0, "maximum": 120},
                         "address": {"type": "object", "required": ["city"], "properties": {
                             "city": {"type": "string"}, "zip": {"type": "string", "maxLength": 5}}},
                         "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 1}}}
CHAT_TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}},
              {"type": "function", "function": {"name": "get_time", "parameters": TIME}}]
SCHEMAS = {"get_weather": WEATHER, "get_time": TIME}


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    """One emulator and one gateway for the module (each test's rows are found by request id)."""
    with ExitStack() as stack:
        emu = _start(stack, tmp_path_factory.mktemp("agent-emu"), {"models": {"deepseek-flash": {
            "output_tokens": 6, "tokens_per_chunk": 2, "tool_calls": 2, "cache_hit_ratio": 0.5}}}, {})
        yield start_gateway(stack, tmp_path_factory.mktemp("agent-gw"), emulator_config(emu, group=["ds-flash"]),
                            env=PROVIDER_KEYS)


def assert_exact_row(gw, request_id: str, completion_tokens: int, streamed: int, endpoint: str = "chat") -> dict:
    row = gw.row(request_id)
    assert (row["endpoint"], row["status"], row["http_status"], row["streamed"]) == (endpoint, "ok", 200, streamed)
    assert row["completion_tokens"] == completion_tokens
    assert Decimal(row["cost_usd"]) == expected_cost(row) > 0
    return row


def check_calls(calls: list[tuple[str, str]]) -> None:
    """(name, arguments JSON) of each call: both tools, each with arguments valid against its schema."""
    assert [name for name, _ in calls] == ["get_weather", "get_time"]
    for name, arguments in calls:
        jsonschema.validate(json.loads(arguments), SCHEMAS[name])


def ask(content: str = "What is the weather and the time in Paris?") -> list[dict]:
    return [{"role": "user", "content": content}]


# ---- the chat path ------------------------------------------------------------------------------------

def test_parallel_tool_calls_pass_the_chat_path_whole(gw):
    reply = gw.client().chat.completions.create(model="chat", messages=ask(), tools=CHAT_TOOLS,
                                                extra_headers={"x-request-id": "ap-tools-1"})
    [choice] = reply.choices
    assert choice.finish_reason == "tool_calls"
    check_calls([(c.function.name, c.function.arguments) for c in choice.message.tool_calls])
    assert len({c.id for c in choice.message.tool_calls}) == 2
    assert_exact_row(gw, "ap-tools-1", reply.usage.completion_tokens, 0)


def test_parallel_tool_call_deltas_keep_their_interleaving_in_a_chat_stream(gw):
    stream = gw.client().chat.completions.create(model="chat", messages=ask(), tools=CHAT_TOOLS, stream=True,
                                                 stream_options={"include_usage": True},
                                                 extra_headers={"x-request-id": "ap-tools-2"})
    calls: dict[int, list[str]] = {}
    order, usage, finishes = [], None, []
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            finishes += [choice.finish_reason] if choice.finish_reason else []
            for delta in choice.delta.tool_calls or []:
                entry = calls.setdefault(delta.index, ["", ""])
                entry[0] += delta.function.name or "" if delta.function else ""
                if delta.function and delta.function.arguments:
                    entry[1] += delta.function.arguments
                    order.append(delta.index)
    assert order[:4] == [0, 1, 0, 1], "the upstream's interleaving reaches the client as it was"
    check_calls([(calls[i][0], calls[i][1]) for i in sorted(calls)])
    assert finishes == ["tool_calls"]
    assert_exact_row(gw, "ap-tools-2", usage.completion_tokens, 1)


def test_n_choices_pass_whole_and_streamed_and_are_billed_for_all(gw):
    client = gw.client()
    reply = client.chat.completions.create(model="chat", messages=ask("hi"), n=3,
                                           extra_headers={"x-request-id": "ap-n-1"})
    assert [c.index for c in reply.choices] == [0, 1, 2] and len({c.message.content for c in reply.choices}) == 1
    assert reply.usage.completion_tokens == 18
    assert_exact_row(gw, "ap-n-1", 18, 0)
    stream = client.chat.completions.create(model="chat", messages=ask("hi"), n=3, stream=True,
                                            stream_options={"include_usage": True},
                                            extra_headers={"x-request-id": "ap-n-2"})
    texts: dict[int, str] = {}
    usage = None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
    assert sorted(texts) == [0, 1, 2] and texts[0] == texts[1] == texts[2] == reply.choices[0].message.content
    assert usage.completion_tokens == 18
    assert_exact_row(gw, "ap-n-2", 18, 1)


def test_logprobs_pass_whole_and_streamed(gw):
    client = gw.client()
    reply = client.chat.completions.create(model="chat", messages=ask("hi"), logprobs=True, top_logprobs=2,
                                           extra_headers={"x-request-id": "ap-lp-1"})
    entries = reply.choices[0].logprobs.content
    assert "".join(e.token for e in entries) == reply.choices[0].message.content and len(entries) == 6
    assert all(e.bytes == list(e.token.encode()) and len(e.top_logprobs) == 2 for e in entries)
    stream = client.chat.completions.create(model="chat", messages=ask("hi"), logprobs=True, top_logprobs=2,
                                            stream=True, extra_headers={"x-request-id": "ap-lp-2"})
    streamed = [e for chunk in stream for c in chunk.choices if c.logprobs and c.logprobs.content
                for e in c.logprobs.content]
    assert [(e.token, e.logprob) for e in streamed] == [(e.token, e.logprob) for e in entries]
    assert_exact_row(gw, "ap-lp-1", 6, 0)
    assert_exact_row(gw, "ap-lp-2", 6, 1)


def test_json_schema_output_passes_whole_and_streamed(gw):
    client = gw.client()
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
    reply = client.chat.completions.create(model="chat", messages=ask("who?"), response_format=fmt,
                                           extra_headers={"x-request-id": "ap-json-1"})
    content = reply.choices[0].message.content
    jsonschema.validate(json.loads(content), PERSON)
    stream = client.chat.completions.create(model="chat", messages=ask("who?"), response_format=fmt, stream=True,
                                            extra_headers={"x-request-id": "ap-json-2"})
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == content
    assert_exact_row(gw, "ap-json-1", 6, 0)
    assert_exact_row(gw, "ap-json-2", 6, 1)


# ---- /v1/messages translated to the chat upstream -----------------------------------------------------

def messages_sdk(gw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key="client-key", max_retries=0)


ANTHROPIC_TOOLS = [{"name": "get_weather", "input_schema": WEATHER}, {"name": "get_time", "input_schema": TIME}]


def test_parallel_tool_use_through_messages_whole_and_streamed(gw):
    client = messages_sdk(gw)
    reply = client.messages.create(model="chat", max_tokens=64, messages=ask(), tools=ANTHROPIC_TOOLS,
                                   extra_headers={"x-request-id": "ap-msg-1"})
    uses = [b for b in reply.content if b.type == "tool_use"]
    assert reply.stop_reason == "tool_use"
    check_calls([(u.name, json.dumps(u.input)) for u in uses])
    assert_exact_row(gw, "ap-msg-1", reply.usage.output_tokens, 0, "messages")
    partial: dict[int, str] = {}
    names: dict[int, str] = {}
    with client.messages.stream(model="chat", max_tokens=64, messages=ask(), tools=ANTHROPIC_TOOLS,
                                extra_headers={"x-request-id": "ap-msg-2"}) as stream:
        for event in stream:
            if event.type == "content_block_start" and event.content_block.type == "tool_use":
                names[event.index] = event.content_block.name
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                partial[event.index] = partial.get(event.index, "") + event.delta.partial_json
        final = stream.get_final_message()
    assert sorted(names) == sorted(partial), "every tool_use block got its own input deltas"
    check_calls([(names[i], partial[i]) for i in sorted(names)])
    assert [b.input for b in final.content if b.type == "tool_use"] == [json.loads(partial[i]) for i in sorted(names)]
    assert_exact_row(gw, "ap-msg-2", final.usage.output_tokens, 1, "messages")


def test_a_forced_tool_through_messages_is_schema_shaped_output(gw):
    reply = messages_sdk(gw).messages.create(
        model="chat", max_tokens=64, messages=ask("who?"), tools=[{"name": "person", "input_schema": PERSON}],
        tool_choice={"type": "tool", "name": "person"})
    [use] = [b for b in reply.content if b.type == "tool_use"]
    jsonschema.validate(use.input, PERSON)
    single = messages_sdk(gw).messages.create(model="chat", max_tokens=64, messages=ask(), tools=ANTHROPIC_TOOLS,
                                              tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    assert [b.name for b in single.content if b.type == "tool_use"] == ["get_weather"]


@pytest.mark.parametrize("field, value", [("n", 2), ("logprobs", True), ("response_format", {"type": "json_object"})])
def test_chat_only_fields_on_messages_are_a_400_naming_them(gw, field, value):
    with pytest.raises(anthropic.BadRequestError) as caught:
        messages_sdk(gw).messages.create(model="chat", max_tokens=16, messages=ask("hi"), extra_body={field: value},
                                         extra_headers={"x-request-id": f"ap-msg-{field}"})
    body = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert f"'{field}'" in body["error"]["message"]
    rows = [r for r in gw.rows() if r["id"] == f"ap-msg-{field}"] or [gw.row(f"ap-msg-{field}")]
    assert [(r["status"], r["http_status"]) for r in rows] == [("client_error", 400)], "one row, saying what happened"


# ---- /v1/responses translated to the chat upstream ----------------------------------------------------

RESPONSES_TOOLS = [{"type": "function", "name": "get_weather", "parameters": WEATHER},
                   {"type": "function", "name": "get_time", "parameters": TIME}]


def test_parallel_function_calls_through_responses_whole_and_streamed(gw):
    client = gw.client()
    reply = client.responses.create(model="chat", input="weather and time?", tools=RESPONSES_TOOLS,
                                    extra_headers={"x-request-id": "ap-resp-1"})
    calls = [item for item in reply.output if item.type == "function_call"]
    check_calls([(c.name, c.arguments) for c in calls])
    assert len({c.call_id for c in calls}) == 2
    assert_exact_row(gw, "ap-resp-1", reply.usage.output_tokens, 0, "responses")
    deltas: dict[int, str] = {}
    with client.responses.stream(model="chat", input="weather and time?", tools=RESPONSES_TOOLS,
                                 extra_headers={"x-request-id": "ap-resp-2"}) as stream:
        for event in stream:
            if event.type == "response.function_call_arguments.delta":
                deltas[event.output_index] = deltas.get(event.output_index, "") + event.delta
        final = stream.get_final_response()
    calls = [item for item in final.output if item.type == "function_call"]
    check_calls([(c.name, c.arguments) for c in calls])
    assert sorted(deltas.values()) == sorted(c.arguments for c in calls), "each call's deltas rebuild its arguments"
    assert_exact_row(gw, "ap-resp-2", final.usage.output_tokens, 1, "responses")


def test_text_format_json_schema_through_responses(gw):
    client = gw.client()
    fmt = {"format": {"type": "json_schema", "name": "person", "schema": PERSON, "strict": True}}
    reply = client.responses.create(model="chat", input="who?", text=fmt)
    jsonschema.validate(json.loads(reply.output_text), PERSON)
    with client.responses.stream(model="chat", input="who?", text=fmt) as stream:
        final = stream.get_final_response()
    assert final.output_text == reply.output_text


@pytest.mark.parametrize("field, value", [("n", 2), ("top_logprobs", 2)])
def test_fields_responses_cannot_carry_are_a_400_naming_them(gw, field, value):
    with pytest.raises(Exception) as caught:
        gw.client().responses.create(model="chat", input="hi", extra_body={field: value},
                                     extra_headers={"x-request-id": f"ap-resp-{field}"})
    assert getattr(caught.value, "status_code", None) == 400
    error = caught.value.body
    assert error["param"] == field and f"'{field}'" in error["message"]
    assert gw.row(f"ap-resp-{field}")["http_status"] == 400


def test_logprobs_asked_for_through_responses_are_returned_or_refused(gw):
    """`include: ["message.output_text.logprobs"]` asks for the output text's logprobs; an answer that
    silently carries none would tell the client the model gave none."""
    try:
        reply = gw.client().responses.create(model="chat", input="hi", include=["message.output_text.logprobs"],
                                             extra_headers={"x-request-id": "ap-resp-include"})
    except Exception as exc:  # a refusal is an honest answer too, if it is a 400 naming the field
        assert getattr(exc, "status_code", None) == 400 and "include" in str(exc)
        return
    part = reply.output[-1].content[0]
    assert part.logprobs and "".join(e.token for e in part.logprobs) == part.text

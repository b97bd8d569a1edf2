"""The Responses client dialect's translation both ways, as pure functions."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tollway.core.errors import GatewayError
from tollway.core.usage import Usage
from tollway.gateway.client_dialects.openai_responses_answer import ResponsesEventSink, responses_answer
from tollway.gateway.client_dialects.openai_responses_request import chat_body


def test_input_items_become_chat_messages():
    chat = chat_body({
        "model": "m", "instructions": "Be brief.", "max_output_tokens": 50, "reasoning": {"effort": "low"},
        "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}},
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
        "tool_choice": {"type": "function", "name": "f"}, "store": False,
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "look"},
                                               {"type": "input_image", "image_url": "https://x/i.png"}]},
                  {"type": "reasoning", "id": "rs_1", "summary": []},
                  {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                  {"type": "function_call", "call_id": "c2", "name": "f", "arguments": "{}"},
                  {"type": "function_call_output", "call_id": "c1", "output": "1"},
                  {"type": "function_call_output", "call_id": "c2", "output": "2"}]})
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image_url", "image_url": {"url": "https://x/i.png"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "1"}, {"role": "tool", "tool_call_id": "c2", "content": "2"}]
    assert (chat["max_tokens"], chat["reasoning_effort"]) == (50, "low")
    assert chat["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True}}
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "f"}}


@pytest.mark.parametrize("bad, param", [({"previous_response_id": 5}, "previous_response_id"),
                                        ({"conversation": "c"}, "conversation"), ({"store": "no"}, "store"),
                                        ({"tools": [{"type": "file_search"}]}, "tools[0]"),
                                        ({"input": []}, "input"), ({"input": [{"type": "computer_call"}]}, "input[0].type"),
                                        ({"frequency_penalty": 1}, "frequency_penalty"),
                                        ({"text": {"format": {"type": "xml"}}}, "text.format")])
def test_bad_bodies_are_400s_naming_the_field(bad, param):
    with pytest.raises(GatewayError) as refused:
        chat_body({"model": "m", "input": "hi", **bad})
    assert refused.value.status == 400 and refused.value.param == param


def test_a_completion_cut_by_the_limit_is_an_incomplete_response():
    completion = orjson.dumps({"id": "c", "created": 5, "choices": [{"finish_reason": "length", "message": {
        "content": "par", "tool_calls": [{"id": "k", "function": {"name": "f", "arguments": "{}"}}]}}]})
    response = orjson.loads(responses_answer(completion, Usage(10, 4, 0, 3, 1), "grp"))
    assert (response["status"], response["incomplete_details"]) == ("incomplete", {"reason": "max_output_tokens"})
    assert [item["type"] for item in response["output"]] == ["message", "function_call"]
    assert response["usage"] == {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4},
                                 "output_tokens": 3, "output_tokens_details": {"reasoning_tokens": 1},
                                 "total_tokens": 13}


class Collect:
    def __init__(self) -> None:
        self.data = b""

    async def write(self, data: bytes) -> None:
        self.data += data


def test_a_chat_stream_becomes_numbered_semantic_events():
    sink = Collect()
    translated = ResponsesEventSink(sink, "grp", lambda chunk: Usage(9, 0, 0, 2))
    chunks = [{"id": "c", "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]},
              {"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [
                  {"index": 0, "id": "k", "function": {"name": "f", "arguments": '{"a"'}}]}, "finish_reason": None}]},
              {"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [
                  {"index": 0, "function": {"arguments": ":1}"}}]}, "finish_reason": "tool_calls"}]},
              {"id": "c", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}}]

    async def go() -> None:
        for chunk in chunks:
            await translated.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        await translated.write(b"data: [DONE]\n\n")
        await translated.end()
    asyncio.run(go())
    events = [orjson.loads(block.split(b"\ndata: ")[1]) for block in sink.data.split(b"\n\n") if block]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.done", "response.content_part.done",
        "response.output_item.done", "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done", "response.completed"]
    final = events[-1]["response"]
    assert final["output"][1]["arguments"] == '{"a":1}' and final["usage"]["output_tokens"] == 2

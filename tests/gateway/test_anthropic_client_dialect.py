"""The Messages client dialect's translation both ways, as pure functions: request to canonical chat body,
chat completion to a Message, a chat SSE stream to Anthropic's event sequence, errors to Anthropic's shape."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tollway.core.errors import GatewayError
from tollway.core.usage import Usage
from tollway.gateway.client_dialects.anthropic_answer import MessagesEventSink, message_answer
from tollway.gateway.client_dialects.anthropic_messages import MESSAGES, MESSAGES_COUNT_TOKENS
from tollway.gateway.client_dialects.anthropic_request import chat_body


def body(**extra) -> dict:
    return {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], **extra}


def test_request_turns_blocks_tools_and_tool_results_into_the_chat_body():
    chat = chat_body(body(
        system=[{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
        messages=[{"role": "user", "content": [
                      {"type": "text", "text": "look"},
                      {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}}]},
                  {"role": "assistant", "content": [
                      {"type": "thinking", "thinking": "hm", "signature": "sig"},
                      {"type": "text", "text": "calling"},
                      {"type": "tool_use", "id": "t1", "name": "f", "input": {"x": 1}}]},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "42"},
                                               {"type": "text", "text": "thanks"}]}],
        tools=[{"name": "f", "input_schema": {"type": "object"}}],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        stop_sequences=["END"], top_k=5, metadata={"user_id": "u"}, thinking={"type": "enabled", "budget_tokens": 1024}))
    assert chat["messages"] == [
        {"role": "system", "content": "AB"},
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}]},
        {"role": "assistant", "content": "calling",
         "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}}],
         "thinking_blocks": [{"type": "thinking", "thinking": "hm", "signature": "sig"}]},
        {"role": "tool", "tool_call_id": "t1", "content": "42"},
        {"role": "user", "content": [{"type": "text", "text": "thanks"}]}]
    assert chat["tools"] == [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert (chat["tool_choice"], chat["parallel_tool_calls"]) == ("required", False)
    assert (chat["stop"], chat["top_k"], chat["user"], chat["max_tokens"]) == (["END"], 5, "u", 10)
    assert chat["thinking"] == {"type": "enabled", "budget_tokens": 1024}


@pytest.mark.parametrize("bad, param, words", [
    ({"max_tokens": None}, "max_tokens", "Field required"),
    ({"max_tokens": "10"}, "max_tokens", "positive integer"),
    ({"messages": []}, "messages", "non-empty"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role", "'user', 'assistant' or 'system'"),
    ({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "messages[0].content[0]", "'audio'"),
    ({"messages": [{"role": "user", "content": [{"type": "document"}]}]}, "messages[0].content[0]", "not supported"),
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]", "not supported"),
    ({"tools": [{"name": "f"}]}, "tools[0].input_schema", "required"),
    ({"container": "c1"}, "container", "not supported"),
    ({"mcp_servers": []}, "mcp_servers", "not supported"),
    ({"service_tier": "auto"}, "service_tier", "not a Messages API parameter tollway knows"),
    ({"temperature": 1.5}, "temperature", "from 0 to 1"),
    ({"frequency_penalty": 1}, "frequency_penalty", "not a Messages API parameter"),
])
def test_bad_bodies_are_400s_naming_the_field(bad, param, words):
    given = body(**bad)
    if bad.get("max_tokens", 0) is None:
        del given["max_tokens"]
    with pytest.raises(GatewayError) as refused:
        chat_body(given)
    assert refused.value.status == 400 and refused.value.param == param and words in refused.value.message


def test_count_tokens_needs_no_max_tokens_and_counts_by_the_estimate_rule():
    creq = MESSAGES_COUNT_TOKENS.canonical(orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "abcdefgh"}]}))
    assert orjson.loads(MESSAGES_COUNT_TOKENS.count(creq)) == {"input_tokens": 2}


def test_a_completion_becomes_a_message_with_anthropic_usage():
    completion = orjson.dumps({"id": "chatcmpl-1", "choices": [{"finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "ok", "reasoning_content": "thought",
        "thinking_blocks": [{"type": "thinking", "thinking": "thought", "signature": "s1"}],
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":2}'}}]}}]})
    message = orjson.loads(message_answer(completion, Usage(100, 30, 20, 7), "grp"))
    assert message["id"] == "msg_chatcmpl-1" and message["model"] == "grp" and message["stop_reason"] == "tool_use"
    assert message["content"] == [{"type": "thinking", "thinking": "thought", "signature": "s1"},
                                  {"type": "text", "text": "ok"},
                                  {"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 2}}]
    assert message["usage"] == {"input_tokens": 50, "output_tokens": 7, "cache_creation_input_tokens": 20,
                                "cache_read_input_tokens": 30}


class Collect:
    def __init__(self) -> None:
        self.data = b""

    async def write(self, data: bytes) -> None:
        self.data += data


def events(data: bytes) -> list[tuple[str, dict]]:
    out = []
    for block in data.split(b"\n\n"):
        if block:
            name, payload = block.split(b"\n")
            out.append((name[7:].decode(), orjson.loads(payload[6:])))
    return out


def chunk(delta: dict | None = None, finish: str | None = None, usage: dict | None = None) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return b"data: " + orjson.dumps({"id": "c9", "choices": choices, "usage": usage}) + b"\n\n"


def run_stream(*blocks: bytes) -> list[tuple[str, dict]]:
    sink = Collect()
    translated = MessagesEventSink(sink, "grp", lambda c: Usage(c["usage"]["prompt_tokens"], 0, 0,
                                                                 c["usage"]["completion_tokens"]))

    async def go() -> None:
        for block in blocks:
            await translated.write(block)
        await translated.end()
    asyncio.run(go())
    return events(sink.data)


def test_a_chat_stream_becomes_the_anthropic_event_sequence():
    got = run_stream(chunk({"role": "assistant", "content": ""}), chunk({"reasoning_content": "th"}),
                     chunk({"content": "Hel"}) + chunk({"content": "lo"}),
                     chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": ""}}]}),
                     chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]}),
                     chunk({"tool_calls": [{"index": 0, "function": {"arguments": ':1}'}}]}),
                     chunk({}, "tool_calls"), chunk(usage={"prompt_tokens": 9, "completion_tokens": 4}),
                     b"data: [DONE]\n\n")
    assert [name for name, _ in got] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop"]
    assert got[1][1]["content_block"]["type"] == "thinking" and got[2][1]["delta"]["type"] == "thinking_delta"
    assert [e["delta"]["text"] for n, e in got if e.get("delta", {}).get("type") == "text_delta"] == ["Hel", "lo"]
    assert got[8][1]["content_block"] == {"type": "tool_use", "id": "c1", "name": "f", "input": {}}
    assert [e["delta"]["partial_json"] for _, e in got[9:11]] == ['{"a"', ":1}"]
    assert got[12][1]["delta"]["stop_reason"] == "tool_use"
    assert got[12][1]["usage"]["input_tokens"] == 9 and got[12][1]["usage"]["output_tokens"] == 4


def test_a_cut_stream_ends_with_an_error_event_and_nothing_after():
    got = run_stream(chunk({"content": "Hi"}),
                     b'data: {"error": {"message": "The stream was interrupted: upstream broke.", "type": "x"}}\n\n')
    assert [name for name, _ in got] == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert got[-1][1] == {"type": "error", "error": {"type": "api_error",
                                                    "message": "The stream was interrupted: upstream broke."}}


@pytest.mark.parametrize("status, kind", [(400, "invalid_request_error"), (401, "authentication_error"),
                                          (403, "permission_error"), (404, "not_found_error"),
                                          (413, "request_too_large"), (429, "rate_limit_error"), (500, "api_error"),
                                          (502, "api_error"), (503, "overloaded_error"), (529, "overloaded_error")])
def test_errors_take_anthropic_shape(status, kind):
    code, headers, data = MESSAGES.error(GatewayError(status, "why", "t", headers={"Retry-After": "1"}), {"a": "b"})
    assert code == status and headers["Retry-After"] == "1" and headers["a"] == "b"
    assert orjson.loads(data) == {"type": "error", "error": {"type": kind, "message": "why"}}

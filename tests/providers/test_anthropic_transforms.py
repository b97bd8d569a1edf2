"""Chat Completions <-> Anthropic Messages: what each field becomes, and the clear refusal of what has no
counterpart (shapes from https://docs.anthropic.com/en/api/messages and its streaming page)."""

from __future__ import annotations

import json

import orjson
import pytest

from tollway.core.usage import CacheSplitUsage
from tollway.providers.anthropic import DIALECT, anthropic_usage
from tollway.providers.anthropic_request import messages_request
from tollway.providers.anthropic_response import FINISH_REASONS, MessagesStream, chat_completion
from tollway.providers.dialect import UntranslatableRequest, WireRefusal
from tollway.providers.failure import FailureKind


def translate(body: dict, max_output: int = 4096) -> dict:
    return orjson.loads(messages_request(orjson.dumps({"model": "claude", **body}), max_output))


def test_system_prompt_leaves_the_messages_and_keeps_its_cache_breakpoint() -> None:
    sent = translate({"messages": [
        {"role": "system", "content": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]},
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": "hi"}]})
    assert sent["system"] == [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}},
                              {"type": "text", "text": "Answer in French."}]
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


def test_max_tokens_is_the_requests_or_the_deployments() -> None:
    assert translate({"messages": [{"role": "user", "content": "x"}]}, 777)["max_tokens"] == 777
    assert translate({"messages": [{"role": "user", "content": "x"}], "max_tokens": 50})["max_tokens"] == 50
    assert translate({"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 60})["max_tokens"] == 60


def test_sampling_stop_user_and_stream() -> None:
    sent = translate({"messages": [{"role": "user", "content": "x"}], "temperature": 0.2, "top_p": 0.9,
                      "stop": "END", "user": "u-1", "stream": True, "stream_options": {"include_usage": True}})
    assert (sent["temperature"], sent["top_p"], sent["stop_sequences"]) == (0.2, 0.9, ["END"])
    assert sent["metadata"] == {"user_id": "u-1"} and sent["stream"] is True and "stream_options" not in sent


def test_images_by_data_url_and_by_url() -> None:
    sent = translate({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]}]})
    blocks = sent["messages"][0]["content"]
    assert blocks[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}


TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


def test_tools_tool_calls_and_tool_results() -> None:
    sent = translate({"tools": TOOLS, "messages": [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "25C"}]})
    assert sent["tools"] == [{"name": "get_weather", "description": "Weather",
                              "input_schema": TOOLS[0]["function"]["parameters"]}]
    assistant, results = sent["messages"][1], sent["messages"][2]
    assert assistant["content"][0] == {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                       "input": {"city": "Paris"}}
    assert results == {"role": "user", "content": [  # consecutive tool results: one user turn
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "25C"}]}


@pytest.mark.parametrize("choice, parallel, expected", [
    ("auto", None, {"type": "auto"}),
    ("required", None, {"type": "any"}),
    ("none", None, {"type": "none"}),
    ({"type": "function", "function": {"name": "get_weather"}}, None, {"type": "tool", "name": "get_weather"}),
    ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
])
def test_tool_choice(choice, parallel, expected) -> None:
    body = {"tools": TOOLS, "messages": [{"role": "user", "content": "x"}], "tool_choice": choice}
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    assert translate(body)["tool_choice"] == expected


def test_reasoning_effort_becomes_a_thinking_budget_and_a_passthrough_thinking_wins() -> None:
    assert translate({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "medium"}, 8000)["thinking"] \
        == {"type": "enabled", "budget_tokens": 4096}
    assert translate({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "high",
                      "max_tokens": 2000})["thinking"] == {"type": "enabled", "budget_tokens": 1999}
    given = {"type": "enabled", "budget_tokens": 3000}
    assert translate({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "low",
                      "thinking": given})["thinking"] == given


def test_signed_thinking_goes_back_unchanged() -> None:
    thought = {"type": "thinking", "thinking": "Let me see", "signature": "sig-abc"}
    sent = translate({"messages": [{"role": "user", "content": "x"},
                                   {"role": "assistant", "content": "ok", "thinking_blocks": [thought]},
                                   {"role": "user", "content": "more"}]})
    assert sent["messages"][1]["content"][0] == thought


@pytest.mark.parametrize("extra, named", [
    ({"n": 2}, "'n'"), ({"logprobs": True}, "'logprobs'"), ({"presence_penalty": 0.5}, "'presence_penalty'"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}, "'response_format'"),
    ({"seed": 7}, "'seed'"),
])
def test_a_field_with_no_counterpart_is_refused_by_name(extra, named) -> None:
    with pytest.raises(UntranslatableRequest, match=named):
        translate({"messages": [{"role": "user", "content": "x"}], **extra})


def test_defaults_of_fields_without_counterpart_are_accepted() -> None:
    translate({"messages": [{"role": "user", "content": "x"}], "n": 1, "logprobs": False, "presence_penalty": 0,
               "response_format": {"type": "text"}})


@pytest.mark.parametrize("message, named", [
    ({"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}, "'input_audio' part"),
    ({"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{bad"}}]}, "not JSON"),
    ({"role": "tool", "content": "x"}, "tool_call_id"),
    ({"role": "function", "content": "x"}, "role 'function'"),
])
def test_messages_that_cannot_be_carried_are_refused(message, named) -> None:
    with pytest.raises(UntranslatableRequest, match=named):
        translate({"messages": [{"role": "user", "content": "x"}, message]})


ANSWER = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "content": [
    {"type": "thinking", "thinking": "Paris, then.", "signature": "sig-1"},
    {"type": "text", "text": "Checking."},
    {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Paris"}}],
    "stop_reason": "tool_use", "usage": {"input_tokens": 10, "cache_read_input_tokens": 1000,
                                         "cache_creation_input_tokens": 300,
                                         "cache_creation": {"ephemeral_5m_input_tokens": 100,
                                                            "ephemeral_1h_input_tokens": 200},
                                         "output_tokens": 40}}


def test_an_answer_becomes_a_chat_completion() -> None:
    body = orjson.loads(chat_completion(orjson.dumps(ANSWER)))
    message = body["choices"][0]["message"]
    assert message["content"] == "Checking." and message["reasoning_content"] == "Paris, then."
    assert message["thinking_blocks"] == [ANSWER["content"][0]]
    assert message["tool_calls"] == [{"id": "toolu_9", "type": "function",
                                      "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    usage = body["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["prompt_tokens_details"]["cached_tokens"]) == \
        (1310, 40, 1000)
    assert DIALECT.usage_from_body(body) == CacheSplitUsage(prompt_tokens=1310, cached_tokens=1000,
                                                            cache_write_tokens=300, completion_tokens=40,
                                                            cache_write_1h_tokens=200)


@pytest.mark.parametrize("stop, finish", sorted(FINISH_REASONS.items()))
def test_stop_reasons(stop, finish) -> None:
    assert orjson.loads(chat_completion(orjson.dumps({**ANSWER, "stop_reason": stop})))["choices"][0]["finish_reason"] \
        == finish


def test_documented_stop_reasons_map_as_specified() -> None:
    assert {k: FINISH_REASONS[k] for k in ("end_turn", "max_tokens", "tool_use", "stop_sequence", "refusal")} == \
        {"end_turn": "stop", "max_tokens": "length", "tool_use": "tool_calls", "stop_sequence": "stop",
         "refusal": "content_filter"}


def sse(payload: dict) -> bytes:
    return f"event: {payload['type']}\ndata: {json.dumps(payload)}".encode()


def test_a_stream_of_thinking_with_its_signature() -> None:
    stream = MessagesStream(anthropic_usage)
    out = b"".join(stream.feed(sse(e)) for e in (
        {"type": "message_start", "message": {"id": "m", "model": "c", "usage": {"input_tokens": 5, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 7}},
        {"type": "message_stop"})) + stream.finish()
    chunks = [orjson.loads(line[6:]) for line in out.split(b"\n\n") if line.startswith(b"data: {")]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert deltas[1] == {"reasoning_content": "hmm"}
    assert deltas[2]["thinking_blocks"][0]["signature"] == "sig"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 7 and out.endswith(b"data: [DONE]\n\n")
    assert stream.reported_prompt is not None and stream.reported_prompt.prompt_tokens == 5


def test_an_error_event_is_a_classified_refusal() -> None:
    stream = MessagesStream(anthropic_usage)
    with pytest.raises(WireRefusal) as refused:
        stream.feed(sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))
    assert refused.value.kind is FailureKind.SERVER and refused.value.status == 529


@pytest.mark.parametrize("status, body, kind", [
    (529, b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', FailureKind.SERVER),
    (402, b'{"type":"error","error":{"type":"billing_error","message":"x"}}', FailureKind.OUT_OF_FUNDS),
    (413, b'{"type":"error","error":{"type":"request_too_large","message":"Request too large"}}', FailureKind.CLIENT_ERROR),
    (403, b'{"type":"error","error":{"type":"permission_error","message":"no"}}', FailureKind.UPSTREAM_AUTH),
])
def test_error_statuses(status, body, kind) -> None:
    assert DIALECT.classify(status, body).kind is kind


def _delta_reads(pieces: list[str], kind: str = "text") -> list[bytes]:
    """A stream's reads, one event each, as Anthropic writes them (compact JSON)."""
    def event(payload: dict) -> bytes:
        return f"event: {payload['type']}\n".encode() + b"data: " + orjson.dumps(payload) + b"\n\n"
    field = "thinking" if kind == "thinking" else "text"
    block = {"type": kind, field: ""} | ({"signature": ""} if kind == "thinking" else {})
    reads = [event({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                                                         "model": "claude", "content": [],
                                                         "usage": {"input_tokens": 5, "output_tokens": 1}}}),
             event({"type": "content_block_start", "index": 0, "content_block": block})]
    reads += [event({"type": "content_block_delta", "index": 0, "delta": {"type": f"{kind}_delta", field: piece}})
              for piece in pieces]
    return reads + [event({"type": "content_block_stop", "index": 0}),
                    event({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 9}}),
                    event({"type": "message_stop"})]


def _chunks_of(reads: list[bytes], how: str) -> list[dict]:
    """read: feed_read first (a read of one event); event: feed (an event of a larger read); many: feed_many
    (all events of one read); reference: feed with nothing learnt from the deltas before."""
    stream = MessagesStream(anthropic_usage)
    out = b""
    if how == "many":  # the whole stream as one read's events
        out = stream.feed_many([read[:-2] for read in reads])
        reads = []
    for read in reads:
        if how == "reference":
            stream._quick_prefix = b""
        translated = stream.feed_read(read) if how == "read" else None
        out += translated if translated is not None else stream.feed(read[:-2])
    out += stream.finish()
    chunks = [orjson.loads(line[6:]) if line != b"data: [DONE]" else "[DONE]" for line in out.split(b"\n\n") if line]
    for chunk in chunks:
        if chunk != "[DONE]":
            chunk.pop("created")  # two streams may straddle a second
    return chunks


TEXTS = ["Hel", "lo", ' "quoted" ', "back\\slash\\", "\u00e9\u4e2d\U0001f600", "", "line\nbreak\t", "a\\", "\\\\"]


@pytest.mark.parametrize("kind", ["text", "thinking"])
def test_the_read_short_path_gives_the_chunks_the_event_path_gives(kind) -> None:
    """feed_read copies a delta's literal between the bytes around the last one: the chat chunks (and the
    text in them) are those of the event-by-event path, whatever the text holds."""
    reads = _delta_reads(TEXTS, kind)
    quick = _chunks_of(reads, "read")
    assert quick == _chunks_of(reads, "event") == _chunks_of(reads, "many") == _chunks_of(reads, "reference")
    field = "content" if kind == "text" else "reasoning_content"
    assert "".join(c["choices"][0]["delta"].get(field, "") for c in quick if c != "[DONE]" and c["choices"]) == \
        "".join(TEXTS)


def test_the_read_short_path_takes_only_one_more_delta_of_the_same_block() -> None:
    stream = MessagesStream(anthropic_usage)
    reads = _delta_reads(["a", "b"])
    for read in reads[:3]:
        assert stream.feed_read(read) is None, "nothing learnt before the first delta was read event by event"
        stream.feed(read[:-2])
    assert stream.feed_read(reads[3]) is not None
    other_block = reads[3].replace(b'"index":0', b'"index":1')
    two_events = reads[3] + reads[3]
    for read in (other_block, two_events, reads[-3], reads[3].replace(b"\n\n", b"\r\n\r\n")):
        assert stream.feed_read(read) is None

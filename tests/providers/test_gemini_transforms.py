"""Chat Completions <-> Gemini generateContent, and Azure's deployment routes (shapes from
https://ai.google.dev/api/generate-content and Azure OpenAI's REST reference)."""

from __future__ import annotations

import json

import orjson
import pytest

from tollway.core.usage import Usage
from tollway.providers.azure import DIALECT as AZURE
from tollway.providers.dialect import UntranslatableRequest, WireRefusal
from tollway.providers.failure import FailureKind
from tollway.providers.gemini import DIALECT as GEMINI
from tollway.providers.gemini_wire import GenerateStream, chat_completion, generate_request


def translate(body: dict) -> dict:
    return orjson.loads(generate_request(orjson.dumps({"model": "gemini-2.5-pro", **body}), 4096))


TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


def test_request_shape() -> None:
    sent = translate({"messages": [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": [{"type": "text", "text": "see"},
                                     {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "18C"}],
        "tools": TOOLS, "tool_choice": "required", "temperature": 0.3, "max_tokens": 99, "stop": ["END"],
        "reasoning_effort": "low", "response_format": {"type": "json_schema",
                                                       "json_schema": {"name": "w", "schema": {"type": "object"}}}})
    assert sent["systemInstruction"] == {"parts": [{"text": "Be brief"}]}
    assert sent["contents"] == [
        {"role": "user", "parts": [{"text": "see"}, {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/"}}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"content": "18C"}}}]}]
    assert sent["generationConfig"] == {"temperature": 0.3, "maxOutputTokens": 99, "stopSequences": ["END"],
                                        "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True},
                                        "responseMimeType": "application/json",
                                        "responseJsonSchema": {"type": "object"}}
    assert sent["tools"] == [{"functionDeclarations": [{"name": "get_weather", "description": "Weather",
                                                        "parametersJsonSchema": TOOLS[0]["function"]["parameters"]}]}]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}


@pytest.mark.parametrize("extra, named", [
    ({"logprobs": True}, "'logprobs'"), ({"n": 2}, "'n' above 1"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/cat.png"}}]}]},
     "inline"),
    ({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}, "answers no earlier tool call"),
    ({"reasoning_effort": "extreme"}, "reasoning_effort"),
])
def test_what_generateContent_cannot_carry_is_refused_by_name(extra, named) -> None:
    with pytest.raises(UntranslatableRequest, match=named):
        translate({"messages": [{"role": "user", "content": "x"}], **extra})


ANSWER = {"candidates": [{"content": {"role": "model", "parts": [
    {"text": "Thinking about it", "thought": True}, {"text": "Calling."},
    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]}, "finishReason": "STOP"}],
    "usageMetadata": {"promptTokenCount": 1200, "cachedContentTokenCount": 1000, "candidatesTokenCount": 30,
                      "thoughtsTokenCount": 70, "toolUsePromptTokenCount": 5, "totalTokenCount": 1305},
    "modelVersion": "gemini-2.5-pro", "responseId": "r-1"}


def test_an_answer_becomes_a_chat_completion_with_exact_usage() -> None:
    body = orjson.loads(chat_completion(orjson.dumps(ANSWER)))
    message = body["choices"][0]["message"]
    assert message["content"] == "Calling." and message["reasoning_content"] == "Thinking about it"
    assert message["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    expected = Usage(prompt_tokens=1205, cached_tokens=1000, completion_tokens=100, reasoning_tokens=70)
    assert GEMINI.usage_from_body(body) == expected == GEMINI.usage_from_body(ANSWER)


@pytest.mark.parametrize("reason, finish", [("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"),
                                            ("RECITATION", "content_filter")])
def test_finish_reasons(reason, finish) -> None:
    answer = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
    assert orjson.loads(chat_completion(orjson.dumps(answer)))["choices"][0]["finish_reason"] == finish


def test_a_blocked_prompt_is_a_content_refusal() -> None:
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 9}}
    with pytest.raises(WireRefusal) as refused:
        chat_completion(orjson.dumps(blocked))
    assert refused.value.kind is FailureKind.CONTENT_FILTER and "SAFETY" in refused.value.message


def test_a_stream_sends_a_function_call_whole_and_ends_with_usage() -> None:
    stream = GenerateStream()
    out = stream.feed(b"data: " + orjson.dumps({"candidates": [{"content": {"parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 5}})) + stream.finish()
    chunks = [orjson.loads(line[6:]) for line in out.split(b"\n\n") if line.startswith(b"data: {")]
    call = chunks[1]["choices"][0]["delta"]["tool_calls"][0]
    assert call["index"] == 0 and call["function"]["arguments"] == '{"city":"Paris"}'
    assert chunks[2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[3]["usage"]["prompt_tokens"] == 8 and out.endswith(b"data: [DONE]\n\n")


def test_a_stream_without_a_finish_reason_was_cut() -> None:
    stream = GenerateStream()
    stream.feed(b'data: {"candidates":[{"content":{"parts":[{"text":"Hel"}]}}]}')
    assert stream.finish() == b""


@pytest.mark.parametrize("endpoint, version, path", [
    ("chat", None, "openai/deployments/my-gpt/chat/completions?api-version=2024-10-21"),
    ("chat:stream", "2025-04-01-preview", "openai/deployments/my-gpt/chat/completions?api-version=2025-04-01-preview"),
    ("embeddings", "2024-10-21", "openai/deployments/my-gpt/embeddings?api-version=2024-10-21"),
    ("chat", "v1", "openai/v1/chat/completions"),
])
def test_azure_routes(endpoint, version, path) -> None:
    assert AZURE.path(endpoint, "my-gpt", version) == path


def test_azure_content_filter_is_a_refusal() -> None:
    body = (b'{"error":{"message":"The response was filtered","type":null,"param":"prompt","code":"content_filter",'
            b'"status":400,"innererror":{"code":"ResponsibleAIPolicyViolation"}}}')
    assert AZURE.classify(400, body).kind is FailureKind.CONTENT_FILTER
    assert AZURE.transforms.passthrough


def _gemini_events(pieces: list[str], spaced: bool) -> list[bytes]:
    """A stream's events as Gemini writes them (alt=sse), compact or with spaces after separators."""
    def dumps(value: dict) -> bytes:
        return json.dumps(value, separators=(",", ": ") if spaced else (",", ":"), ensure_ascii=False).encode()

    events = []
    for n, piece in enumerate(pieces):
        part = {"text": piece, "thought": True} if piece.startswith("think") else {"text": piece}
        events.append({"candidates": [{"content": {"parts": [part], "role": "model"}, "index": 0}],
                       "usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": n + 1,
                                         "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 50}]},
                       "modelVersion": "gemini-2.5-flash", "responseId": "r1"})
    events.append({"candidates": [{"content": {"parts": [{"text": "."}], "role": "model"}, "finishReason": "STOP",
                                   "index": 0}],
                   "usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": len(pieces) + 1,
                                     "cachedContentTokenCount": 20}, "modelVersion": "gemini-2.5-flash"})
    return [b"data: " + dumps(e) for e in events]


def _gemini_chunks(events: list[bytes], short: bool) -> list:
    stream = GenerateStream()
    out = b""
    for event in events:
        if not short:
            stream._quick_prefix = b""  # nothing learnt: every event parsed
        out += stream.feed(event)
    out += stream.finish()
    return [_timeless(line) for line in out.split(b"\n\n") if line]


def _timeless(line: bytes) -> dict | str:
    """A chunk without its `created` second (two streams may straddle a second)."""
    if line == b"data: [DONE]":
        return "[DONE]"
    chunk = json.loads(line[6:])
    chunk.pop("created", None)
    return chunk


GEMINI_TEXTS = ["Hel", "lo", ' "quoted" ', "back\\slash\\", "\u00e9\u4e2d\U0001f600", "", "think: hmm", "line\n",
                "a\\", "\\\\", "after"]


@pytest.mark.parametrize("spaced", [False, True])
def test_the_stream_short_path_gives_the_chunks_and_usage_the_parsing_path_gives(spaced) -> None:
    """Text events copied by their literal between the bytes around the last one: the same chat chunks,
    the text whole, and the final usage read from the last event (kept unparsed by the short path)."""
    for texts in (GEMINI_TEXTS, ["only", "plain", "text", "pieces"]):
        events = _gemini_events(texts, spaced)
        short = _gemini_chunks(events, short=True)
        assert short == _gemini_chunks(events, short=False)
        deltas = [c["choices"][0]["delta"] for c in short if c != "[DONE]" and c["choices"]]
        content = "".join(delta.get("content") or "" for delta in deltas)
        assert content == "".join(t for t in texts if not t.startswith("think")) + "."
        assert short[-2]["usage"]["prompt_tokens_details"]["cached_tokens"] == 20
    stream = GenerateStream()
    for event in _gemini_events(["a", "b", "c"], spaced)[:-1]:
        stream.feed(event)
    assert isinstance(stream._meta, bytes), "the short path kept the last usage object unparsed"
    assert json.loads(stream._meta)["candidatesTokenCount"] == 3

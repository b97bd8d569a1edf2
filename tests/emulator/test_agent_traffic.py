"""Agent traffic on every dialect: parallel tool calls (streamed deltas interleaved by index), `n` choices,
logprobs, and output that satisfies a requested JSON schema (checked with the jsonschema library)."""

from __future__ import annotations

import json

import httpx
import jsonschema
import pytest

from tests.emulator.support import chat_body, post, stream
from tollway.emulator.schema_instance import schema_instance
from tollway.emulator.tokens import output_text

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1,
                                                                                   "maximum": 7}},
           "required": ["city"], "additionalProperties": False}
TIME = {"type": "object", "properties": {"zone": {"type": "string", "enum": ["UTC", "CET", "JST"]}},
        "required": ["zone"]}
ORDER = {
    "type": "object", "additionalProperties": False,
    "required": ["id", "customer", "lines", "status", "paid", "total", "note"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "customer": {"$ref": "#/$defs/customer"},
        "lines": {"type": "array", "minItems": 1, "maxItems": 3, "items": {
            "type": "object", "required": ["sku", "qty", "price"], "additionalProperties": False,
            "properties": {"sku": {"type": "string", "minLength": 8, "maxLength": 12},
                           "qty": {"type": "integer", "minimum": 1, "maximum": 9, "multipleOf": 3},
                           "price": {"type": "number", "exclusiveMinimum": 0, "maximum": 50}}}},
        "status": {"enum": ["new", "paid", "shipped"]},
        "paid": {"type": "boolean"},
        "total": {"type": ["number", "null"]},
        "note": {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 3}]},
    },
    "$defs": {"customer": {"type": "object", "required": ["name", "email", "since"],
                           "properties": {"name": {"type": "string"}, "email": {"type": "string", "format": "email"},
                                          "since": {"type": "string", "format": "date"}}}},
}
OPENAI_DIALECTS = ["openai", "deepseek", "qwen", "kimi", "glm", "vllm", "sglang", "lmdeploy", "llamacpp", "ollama"]


def chat_tools(*schemas: tuple[str, dict]) -> list[dict]:
    return [{"type": "function", "function": {"name": name, "parameters": schema}} for name, schema in schemas]


def test_a_schema_instance_validates_and_is_the_same_for_the_same_seed():
    for seed in range(20):
        instance = schema_instance(ORDER, seed)
        jsonschema.validate(instance, ORDER, format_checker=jsonschema.FormatChecker())
        assert instance == schema_instance(ORDER, seed)
    assert schema_instance(ORDER, 0) != schema_instance(ORDER, 1)
    assert schema_instance(WEATHER, 0)["city"] == "Paris", "seed 0 starts the word list"


def test_a_recursive_schema_terminates():
    tree = {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#"}}}}
    jsonschema.validate(schema_instance(tree), tree)


@pytest.mark.parametrize("dialect", OPENAI_DIALECTS)
def test_parallel_tool_calls_in_a_whole_chat_answer(emulator, dialect):
    emulator.set_profile("agent", {"tool_calls": 2})
    body = chat_body("agent", tools=chat_tools(("get_weather", WEATHER), ("get_time", TIME)))
    reply = post(f"{emulator.url}/{dialect}/v1/chat/completions", body)
    assert reply.status == 200, reply.body
    [choice] = reply.body["choices"]
    calls = choice["message"]["tool_calls"]
    assert choice["finish_reason"] == "tool_calls"
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert len({c["id"] for c in calls}) == 2
    jsonschema.validate(json.loads(calls[0]["function"]["arguments"]), WEATHER)
    jsonschema.validate(json.loads(calls[1]["function"]["arguments"]), TIME)


@pytest.mark.parametrize("dialect", OPENAI_DIALECTS)
def test_parallel_tool_calls_stream_their_argument_deltas_interleaved_by_index(emulator, dialect):
    emulator.set_profile("agent", {"tool_calls": 2})
    body = chat_body("agent", tools=chat_tools(("get_weather", WEATHER), ("get_time", TIME)),
                     stream_options={"include_usage": True})
    result = stream(f"{emulator.url}/{dialect}/v1/chat/completions", body)
    deltas = [c["choices"][0]["delta"]["tool_calls"][0] for c in result.chunks
              if c.get("choices") and c["choices"][0]["delta"].get("tool_calls")]
    order = [d["index"] for d in deltas if "id" not in d]
    assert order[:4] == [0, 1, 0, 1], "the second call's arguments start before the first call's end"
    calls: dict[int, dict] = {}
    for delta in deltas:
        call = calls.setdefault(delta["index"], {"name": "", "arguments": ""})
        call["name"] += delta.get("function", {}).get("name") or ""
        call["arguments"] += delta.get("function", {}).get("arguments") or ""
    assert [calls[i]["name"] for i in (0, 1)] == ["get_weather", "get_time"]
    jsonschema.validate(json.loads(calls[0]["arguments"]), WEATHER)
    jsonschema.validate(json.loads(calls[1]["arguments"]), TIME)
    finishes = [c["choices"][0]["finish_reason"] for c in result.chunks if c.get("choices")
                and c["choices"][0].get("finish_reason")]
    assert finishes == ["tool_calls"]


def test_parallel_calls_off_or_a_named_tool_give_one_call(emulator):
    emulator.set_profile("agent", {"tool_calls": 3})
    tools = chat_tools(("get_weather", WEATHER), ("get_time", TIME))
    url = f"{emulator.url}/openai/v1/chat/completions"
    serial = post(url, chat_body("agent", tools=tools, parallel_tool_calls=False)).body
    assert [c["function"]["name"] for c in serial["choices"][0]["message"]["tool_calls"]] == ["get_weather"]
    named = post(url, chat_body("agent", tools=tools, tool_choice={"type": "function",
                                                                   "function": {"name": "get_time"}})).body
    assert [c["function"]["name"] for c in named["choices"][0]["message"]["tool_calls"]] == ["get_time"]
    none = post(url, chat_body("agent", tools=tools, tool_choice="none")).body
    assert "tool_calls" not in none["choices"][0]["message"] and none["choices"][0]["finish_reason"] == "stop"


def test_n_choices_whole_and_streamed_with_usage_for_all(emulator):
    emulator.set_profile("many", {"output_tokens": 4})
    url = f"{emulator.url}/openai/v1/chat/completions"
    body = post(url, chat_body("many", n=3)).body
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert all(c["message"]["content"] == output_text(4) for c in body["choices"])
    assert body["usage"]["completion_tokens"] == 12, "every choice is generated and billed"
    result = stream(url, chat_body("many", n=3, stream_options={"include_usage": True}))
    texts = {0: "", 1: "", 2: ""}
    for chunk in result.chunks:
        for choice in chunk["choices"]:
            texts[choice["index"]] += choice["delta"].get("content") or ""
    assert texts == {i: output_text(4) for i in range(3)}
    assert result.chunks[-1]["usage"]["completion_tokens"] == 12
    indexes = [c["choices"][0]["index"] for c in result.chunks if c["choices"] and c["choices"][0]["delta"].get(
        "content")]
    assert indexes[:3] == [0, 1, 2], "choices interleave"


def test_n_past_a_documented_limit_is_refused_in_the_dialects_shape(emulator):
    reply = post(f"{emulator.url}/kimi/v1/chat/completions", chat_body("m", n=6))
    assert reply.status == 400 and reply.body["error"]["type"] == "invalid_request_error"
    assert "'n'" in reply.body["error"]["message"]
    reply = post(f"{emulator.url}/openai/v1/chat/completions", chat_body("m", n=129))
    assert reply.status == 400 and reply.body["error"]["param"] is None and "'n'" in reply.body["error"]["message"]
    assert post(f"{emulator.url}/kimi/v1/chat/completions", chat_body("m", n=5)).status == 200


@pytest.mark.parametrize("dialect", ["openai", "deepseek", "vllm"])
def test_logprobs_whole_and_streamed(emulator, dialect):
    emulator.set_profile("lp", {"output_tokens": 5, "tokens_per_chunk": 2})
    url = f"{emulator.url}/{dialect}/v1/chat/completions"
    whole = post(url, chat_body("lp", logprobs=True, top_logprobs=3)).body["choices"][0]["logprobs"]["content"]
    assert "".join(e["token"] for e in whole) == output_text(5) and len(whole) == 5
    for entry in whole:
        assert entry["bytes"] == list(entry["token"].encode()) and entry["logprob"] < 0
        assert len(entry["top_logprobs"]) == 3 and entry["top_logprobs"][0]["token"] == entry["token"]
        assert [t["logprob"] for t in entry["top_logprobs"]] == sorted((t["logprob"] for t in entry["top_logprobs"]),
                                                                       reverse=True)
    result = stream(url, chat_body("lp", logprobs=True, top_logprobs=3))
    streamed = [e for c in result.chunks if c.get("choices") and c["choices"][0].get("logprobs")
                for e in c["choices"][0]["logprobs"]["content"]]
    assert streamed == whole, "a stream's logprobs are the whole answer's, token for token"
    plain = post(url, chat_body("lp")).body["choices"][0]
    assert plain["logprobs"] is None


def test_top_logprobs_out_of_range_is_400(emulator):
    reply = post(f"{emulator.url}/openai/v1/chat/completions", chat_body("m", logprobs=True, top_logprobs=21))
    assert reply.status == 400 and "top_logprobs" in reply.body["error"]["message"]


@pytest.mark.parametrize("dialect", OPENAI_DIALECTS)
def test_json_schema_output_whole_and_streamed(emulator, dialect):
    emulator.set_profile("json", {"output_tokens": 6, "tokens_per_chunk": 2})
    fmt = {"type": "json_schema", "json_schema": {"name": "order", "schema": ORDER, "strict": True}}
    url = f"{emulator.url}/{dialect}/v1/chat/completions"
    body = post(url, chat_body("json", response_format=fmt, seed=7)).body
    content = body["choices"][0]["message"]["content"]
    jsonschema.validate(json.loads(content), ORDER, format_checker=jsonschema.FormatChecker())
    assert post(url, chat_body("json", response_format=fmt, seed=7)).body["choices"][0]["message"]["content"] == \
        content, "the same request gets the same instance"
    assert body["usage"]["completion_tokens"] == 6
    result = stream(url, chat_body("json", response_format=fmt, seed=7))
    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in result.chunks if c.get("choices"))
    assert streamed == content


def test_json_object_output_is_a_json_object(emulator):
    body = post(f"{emulator.url}/openai/v1/chat/completions",
                chat_body("m", response_format={"type": "json_object"})).body
    assert isinstance(json.loads(body["choices"][0]["message"]["content"]), dict)


# ---- Anthropic ----------------------------------------------------------------------------------------

def _anthropic(**extra) -> dict:
    return {"model": "agent", "max_tokens": 100, "messages": [{"role": "user", "content": "weather?"}], **extra}


ANTHROPIC_TOOLS = [{"name": "get_weather", "input_schema": WEATHER}, {"name": "get_time", "input_schema": TIME}]


def test_anthropic_parallel_tool_use_blocks_whole_and_streamed(emulator):
    emulator.set_profile("agent", {"tool_calls": 2})
    url = f"{emulator.url}/anthropic/v1/messages"
    body = post(url, _anthropic(tools=ANTHROPIC_TOOLS)).body
    uses = [b for b in body["content"] if b["type"] == "tool_use"]
    assert [u["name"] for u in uses] == ["get_weather", "get_time"] and body["stop_reason"] == "tool_use"
    jsonschema.validate(uses[0]["input"], WEATHER)
    jsonschema.validate(uses[1]["input"], TIME)
    result = stream(url, _anthropic(tools=ANTHROPIC_TOOLS))
    inputs: dict[int, str] = {}
    names: dict[int, str] = {}
    for name, data in result.events:
        if name == "content_block_start" and data["content_block"]["type"] == "tool_use":
            names[data["index"]] = data["content_block"]["name"]
        if name == "content_block_delta" and data["delta"]["type"] == "input_json_delta":
            inputs[data["index"]] = inputs.get(data["index"], "") + data["delta"]["partial_json"]
    assert list(names.values()) == ["get_weather", "get_time"]
    assert [json.loads(inputs[i]) for i in names] == [u["input"] for u in uses]


def test_anthropic_forced_tool_is_schema_shaped_output(emulator):
    emulator.set_profile("agent", {"tool_calls": 2})
    body = post(f"{emulator.url}/anthropic/v1/messages", _anthropic(
        tools=[{"name": "record_order", "input_schema": ORDER}, *ANTHROPIC_TOOLS],
        tool_choice={"type": "tool", "name": "record_order"})).body
    [use] = [b for b in body["content"] if b["type"] == "tool_use"]
    assert use["name"] == "record_order"
    jsonschema.validate(use["input"], ORDER, format_checker=jsonschema.FormatChecker())
    single = post(f"{emulator.url}/anthropic/v1/messages", _anthropic(
        tools=ANTHROPIC_TOOLS, tool_choice={"type": "auto", "disable_parallel_tool_use": True})).body
    assert [b["name"] for b in single["content"] if b["type"] == "tool_use"] == ["get_weather"]


# ---- Gemini -------------------------------------------------------------------------------------------

def _gemini_url(emulator, stream_: bool = False) -> str:
    method = "streamGenerateContent?alt=sse" if stream_ else "generateContent"
    return f"{emulator.url}/gemini/v1beta/models/agent:{method}"


def test_gemini_parallel_function_calls_and_response_schema(emulator):
    emulator.set_profile("agent", {"tool_calls": 2, "output_tokens": 4})
    tools = [{"functionDeclarations": [{"name": "get_weather", "parameters": {
        "type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}},
        {"name": "get_time", "parametersJsonSchema": TIME}]}]
    contents = [{"role": "user", "parts": [{"text": "weather and time?"}]}]
    body = post(_gemini_url(emulator), {"contents": contents, "tools": tools}).body
    parts = body["candidates"][0]["content"]["parts"]
    assert [p["functionCall"]["name"] for p in parts] == ["get_weather", "get_time"]
    assert parts[0]["functionCall"]["args"] == {"city": "Paris"}
    jsonschema.validate(parts[1]["functionCall"]["args"], TIME)
    config = {"responseMimeType": "application/json", "responseJsonSchema": ORDER}
    structured = post(_gemini_url(emulator), {"contents": contents, "generationConfig": config}).body
    text = "".join(p["text"] for p in structured["candidates"][0]["content"]["parts"])
    jsonschema.validate(json.loads(text), ORDER)
    raw = httpx.post(_gemini_url(emulator, True), json={"contents": contents, "generationConfig": config}).text
    chunks = [json.loads(block[len("data: "):]) for block in raw.split("\r\n\r\n") if block]
    streamed = "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"])
    assert streamed == text

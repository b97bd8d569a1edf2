"""The contract every registered dialect keeps, checked from its documented wire shapes.

One table row per dialect (FACTS): its main non-streamed usage body, its stream's usage events, its
documented error bodies and what they must mean for failover, a preamble event and a substantive one,
its gauges and its auth header. A dialect added to the registry without a row fails
test_every_registered_dialect_has_contract_facts, so a new dialect cannot skip the contract.
Usage edge cases per dialect live in test_usage_places.py. Sources of the shapes: docs/dialects.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import get_args

import orjson
import pytest

from tollway.config import ConfigError, load_config
from tollway.core.usage import CacheSplitUsage, Usage
from tollway.emulator import error_bodies
from tollway.emulator.dialects import ANTHROPIC as EMULATED_ANTHROPIC
from tollway.emulator.dialects import DIALECTS as EMULATED
from tollway.emulator.dialects import GEMINI as EMULATED_GEMINI
from tollway.emulator.metrics import NAMES as EMULATED_METRICS
from tollway.emulator.pipeline import FILTER_AS_ERROR
from tollway.emulator.profiles import DialectName
from tollway.providers.dialect import PASS_THROUGH, AuthStyle, Gauges
from tollway.providers.failure import FailureKind
from tollway.providers.registry import DIALECTS, NAMES, SELF_HOSTED_NAMES, UPSTREAM_NAMES, dialect_named
from tollway.routing.table import RouteTable

K = FailureKind


def sse(payload: dict, name: str | None = None) -> bytes:
    head = f"event: {name}\n".encode() if name else b""
    return head + b"data: " + json.dumps(payload).encode() + b"\n\n"


def chat_chunk(delta: dict, finish: str | None = None, **extra) -> dict:
    return {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta,
                                                                      "finish_reason": finish}], **extra}


ROLE_ONLY = sse(chat_chunk({"role": "assistant", "content": ""}))
CONTENT = sse(chat_chunk({"content": "Hello"}))


@dataclass(frozen=True)
class Facts:
    body: dict                    # a documented non-streamed answer (its usage part)
    body_usage: Usage
    stream: list[dict]            # the stream's events that matter for usage, in order
    stream_usage: Usage
    errors: list[tuple[int, bytes, FailureKind]]
    preamble: bytes = ROLE_ONLY   # an event that only announces the answer
    substance: bytes = CONTENT    # the first event with text
    gauges: Gauges | None = None
    auth: AuthStyle = AuthStyle.BEARER
    self_hosted: bool = False
    reasoning_field: str | None = "reasoning_content"
    extra_stream_events: list[dict] = field(default_factory=list)


def plain(prompt: int, completion: int, **details) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion, **details}


FACTS: dict[str, Facts] = {
    "openai": Facts(
        body=json.loads('{"usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,'
                        '"prompt_tokens_details":{"cached_tokens":1920},"completion_tokens_details":{"reasoning_tokens":0}}}'),
        body_usage=Usage(prompt_tokens=2006, cached_tokens=1920, completion_tokens=300),
        stream=[{**chat_chunk({"content": "hi"}), "usage": None},
                {"object": "chat.completion.chunk", "choices": [], "usage": plain(20, 32)}],
        stream_usage=Usage(prompt_tokens=20, completion_tokens=32),
        reasoning_field=None,
        errors=[
            (429, b'{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}', K.OUT_OF_FUNDS),
            (429, b'{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}', K.RATE_LIMITED),
            (400, b'{"error":{"message":"This model\'s maximum context length is 8192 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}', K.CONTEXT_LENGTH),
            (401, b'{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}', K.UPSTREAM_AUTH),
            (400, b'{"error":{"message":"Invalid value for temperature","type":"invalid_request_error","param":"temperature"}}', K.CLIENT_ERROR),
        ]),
    "deepseek": Facts(
        body={"usage": {"prompt_tokens": 1000, "completion_tokens": 5, "prompt_cache_hit_tokens": 640,
                        "prompt_cache_miss_tokens": 360, "completion_tokens_details": {"reasoning_tokens": 3}}},
        body_usage=Usage(prompt_tokens=1000, cached_tokens=640, completion_tokens=5, reasoning_tokens=3),
        stream=[chat_chunk({"content": "a"}),
                chat_chunk({"content": ""}, "stop", usage={**plain(11, 11), "prompt_tokens_details": {"cached_tokens": 0},
                                                            "prompt_cache_hit_tokens": 0, "prompt_cache_miss_tokens": 11})],
        stream_usage=Usage(prompt_tokens=11, completion_tokens=11),
        errors=[
            (402, b'{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}', K.OUT_OF_FUNDS),
            (400, b'{"error":{"message":"This model\'s maximum context length is 131072 tokens. However, you requested 141980 tokens","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}', K.CONTEXT_LENGTH),
            (429, b'{"error":{"message":"Rate Limit Reached","type":"rate_limit_error"}}', K.RATE_LIMITED),
            (503, b'{"error":{"message":"Server Overloaded"}}', K.SERVER),
        ]),
    "qwen": Facts(
        body={"usage": {"prompt_tokens": 3000, "completion_tokens": 10, "total_tokens": 3010,
                        "prompt_tokens_details": {"cached_tokens": 1024, "cache_type": "ephemeral",
                                                  "cache_creation_input_tokens": 512}}},
        body_usage=CacheSplitUsage(prompt_tokens=3000, cached_tokens=1024, cache_write_tokens=512, completion_tokens=10,
                                   explicit_cached_tokens=1024),
        stream=[{**chat_chunk({"content": "x"}), "usage": None},
                {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [],
                 "usage": plain(30, 12, prompt_tokens_details={"cached_tokens": 16})}],
        stream_usage=Usage(prompt_tokens=30, cached_tokens=16, completion_tokens=12),
        errors=[
            (400, b'{"error":{"message":"Input data may contain inappropriate content.","type":"data_inspection_failed","param":null,"code":"data_inspection_failed"},"id":"chatcmpl-1","request_id":"1"}', K.CONTENT_FILTER),
            (400, b'{"error":{"message":"<400> InvalidParameter: Range of input length should be [1, 98304]","type":"invalid_request_error","code":"invalid_parameter_error"}}', K.CONTEXT_LENGTH),
            (400, b"{'code': 'Arrearage', 'param': None, 'message': 'Access denied, please make sure your account is in good standing.', 'type': 'Arrearage'}", K.OUT_OF_FUNDS),
            (429, b'{"error":{"message":"Requests rate limit exceeded, please try again later.","type":"Throttling.RateQuota"}}', K.RATE_LIMITED),
        ]),
    "kimi": Facts(
        body={"usage": {"prompt_tokens": 2989, "completion_tokens": 20, "total_tokens": 3009, "cached_tokens": 2989}},
        body_usage=Usage(prompt_tokens=2989, cached_tokens=2989, completion_tokens=20),
        stream=[chat_chunk({"content": "x"}),
                {"id": "cmpl-1", "object": "chat.completion.chunk", "choices": [
                    {"index": 0, "delta": {}, "finish_reason": "stop", "usage": plain(19, 13)}]}],
        stream_usage=Usage(prompt_tokens=19, completion_tokens=13),
        errors=[
            (400, b'{"error":{"type":"content_filter","message":"The request was rejected because it was considered high risk"}}', K.CONTENT_FILTER),
            (400, b'{"error":{"type":"invalid_request_error","message":"Input token length too long"}}', K.CONTEXT_LENGTH),
            (403, b'{"error":{"type":"exceeded_current_quota_error","message":"Your account is not active"}}', K.OUT_OF_FUNDS),
            (429, b'{"error":{"type":"engine_overloaded_error","message":"The engine is currently overloaded"}}', K.RATE_LIMITED),
            (401, b'{"error":{"type":"invalid_authentication_error","message":"Invalid Authentication"}}', K.UPSTREAM_AUTH),
        ]),
    "glm": Facts(
        body={"usage": {"prompt_tokens": 80, "completion_tokens": 90, "prompt_tokens_details": {"cached_tokens": 64},
                        "completion_tokens_details": {"reasoning_tokens": 50}}},
        body_usage=Usage(prompt_tokens=80, cached_tokens=64, completion_tokens=90, reasoning_tokens=50),
        stream=[chat_chunk({"role": "assistant", "content": "x"}),
                chat_chunk({"role": "assistant"}, "stop", usage=plain(8, 9))],
        stream_usage=Usage(prompt_tokens=8, completion_tokens=9),
        substance=sse(chat_chunk({"role": "assistant", "content": "Hello"})),  # GLM repeats the role in every delta
        errors=[
            (429, '{"error":{"code":"1113","message":"您的账户已欠费，请充值后重试。"}}'.encode(), K.OUT_OF_FUNDS),
            (429, b'{"error":{"code":"1302","message":"concurrency too high"}}', K.RATE_LIMITED),
            (400, '{"error":{"code":"1301","message":"系统检测到输入或生成内容可能包含不安全或敏感内容"}}'.encode(), K.CONTENT_FILTER),
            (400, '{"error":{"code":"1261","message":"Prompt 超长"}}'.encode(), K.CONTEXT_LENGTH),
        ]),
    "vllm": Facts(
        body=json.loads('{"usage":{"prompt_tokens":20,"total_tokens":52,"completion_tokens":32,"prompt_tokens_details":null}}'),
        body_usage=Usage(prompt_tokens=20, completion_tokens=32),
        stream=[{**chat_chunk({"content": "x"}), "usage": plain(20, 1)},  # continuous usage stats: the last wins
                {**chat_chunk({"content": "y"}), "usage": plain(20, 2)},
                {"object": "chat.completion.chunk", "choices": [], "usage": plain(20, 32)}],
        stream_usage=Usage(prompt_tokens=20, completion_tokens=32),
        gauges=Gauges("vllm:num_requests_waiting", ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")),
        self_hosted=True, reasoning_field="reasoning",
        errors=[(500, b"<html>Internal Server Error</html>", K.SERVER)]),
    "sglang": Facts(
        body=json.loads('{"usage":{"prompt_tokens":120,"total_tokens":180,"completion_tokens":60,'
                        '"prompt_tokens_details":{"cached_tokens":96},"reasoning_tokens":41}}'),
        body_usage=Usage(prompt_tokens=120, cached_tokens=96, completion_tokens=60, reasoning_tokens=41),
        stream=[{**chat_chunk({"content": "x"}), "usage": None},
                {"object": "chat.completion.chunk", "choices": [], "usage": {**plain(120, 60), "reasoning_tokens": 0}}],
        stream_usage=Usage(prompt_tokens=120, completion_tokens=60),
        gauges=Gauges("sglang:num_queue_reqs", ("sglang:token_usage",)), self_hosted=True,
        errors=[
            (400, b'{"object":"error","message":"Requested token count exceeds the model\'s maximum context length of 4096 tokens.","type":"BadRequestError","param":null,"code":400}', K.CONTEXT_LENGTH),
            (400, b'{"object":"error","message":"The input (10009 tokens) is longer than the model\'s context length (8192 tokens).","type":"BadRequestError","param":null,"code":400}', K.CONTEXT_LENGTH),
            (401, b'{"error":"Unauthorized"}', K.UPSTREAM_AUTH),
        ]),
    "lmdeploy": Facts(
        body=json.loads('{"usage":{"prompt_tokens":120,"total_tokens":180,"completion_tokens":60,'
                        '"prompt_tokens_details":{"cached_tokens":64},"completion_tokens_details":{"reasoning_tokens":40}}}'),
        body_usage=Usage(prompt_tokens=120, cached_tokens=64, completion_tokens=60, reasoning_tokens=40),
        stream=[{**chat_chunk({"content": "hi"}), "usage": None},
                {"choices": [], "usage": {**plain(120, 60), "prompt_tokens_details": {"cached_tokens": 0},
                                          "completion_tokens_details": None}}],
        stream_usage=Usage(prompt_tokens=120, completion_tokens=60),
        gauges=Gauges("lmdeploy:num_requests_waiting", ("lmdeploy:gpu_cache_usage_perc",)), self_hosted=True,
        errors=[
            (400, b'{"message":"Input length (9000) must be smaller than the model context length (8192).","type":"invalid_request_error","code":400,"param":null,"object":"error"}', K.CONTEXT_LENGTH),
            (401, b'{"message":"Unauthorized.","type":"authentication_error","code":401,"param":null,"object":"error"}', K.UPSTREAM_AUTH),
        ]),
    "llamacpp": Facts(
        body=json.loads('{"usage":{"completion_tokens":48,"prompt_tokens":44,"total_tokens":92,'
                        '"prompt_tokens_details":{"cached_tokens":0}},"timings":{"cache_n":0,"prompt_n":44,"predicted_n":48}}'),
        body_usage=Usage(prompt_tokens=44, completion_tokens=48),
        stream=[chat_chunk({"content": "x"}),
                json.loads('{"choices":[],"created":1758000000,"id":"chatcmpl-...","model":"m",'
                           '"object":"chat.completion.chunk","usage":{"completion_tokens":48,"prompt_tokens":44,'
                           '"total_tokens":92},"timings":{"cache_n":30,"prompt_n":14,"predicted_n":48}}')],
        stream_usage=Usage(prompt_tokens=44, cached_tokens=30, completion_tokens=48),
        preamble=sse(chat_chunk({"role": "assistant", "content": None})),  # llama-server's role chunk: content null
        gauges=Gauges("llamacpp:requests_deferred"), self_hosted=True,
        errors=[
            (400, b'{"error":{"code":400,"message":"request exceeds the available context size","type":"exceed_context_size_error","n_prompt_tokens":5000,"n_ctx":4096}}', K.CONTEXT_LENGTH),
            (503, b'{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}', K.SERVER),
            (401, b'{"error":{"code":401,"message":"Invalid API Key","type":"authentication_error"}}', K.UPSTREAM_AUTH),
        ]),
    "ollama": Facts(
        body=json.loads('{"usage":{"prompt_tokens":26,"completion_tokens":298,"total_tokens":324}}'),
        body_usage=Usage(prompt_tokens=26, completion_tokens=298),
        stream=[{"object": "text_completion", "choices": [{"index": 0, "text": "x", "finish_reason": None}],
                 "usage": plain(0, 0)},
                {"object": "text_completion", "choices": [], "usage": plain(26, 298)}],
        stream_usage=Usage(prompt_tokens=26, completion_tokens=298),
        preamble=sse(chat_chunk({"role": "assistant", "content": ""})), self_hosted=True, reasoning_field="reasoning",
        errors=[
            (503, b'{"error":{"message":"server busy, please try again.  maximum pending requests exceeded","type":"api_error","param":null,"code":null}}', K.SERVER),
        ]),
    "anthropic": Facts(
        body={"type": "message", "usage": {"input_tokens": 50, "cache_read_input_tokens": 1000,
                                           "cache_creation_input_tokens": 200, "output_tokens": 21}},
        body_usage=Usage(prompt_tokens=1250, cached_tokens=1000, cache_write_tokens=200, completion_tokens=21),
        stream=[{"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                                                      "content": [], "usage": {"input_tokens": 25, "output_tokens": 1,
                                                                               "cache_read_input_tokens": 100}}},
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
                {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 15}}],
        stream_usage=Usage(prompt_tokens=125, cached_tokens=100, completion_tokens=15),
        preamble=sse({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                                                           "content": [], "usage": {"input_tokens": 25}}},
                     "message_start"),
        substance=sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
                      "content_block_delta"),
        auth=AuthStyle.X_API_KEY, reasoning_field="thinking",
        errors=[
            (529, b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', K.SERVER),
            (402, b'{"type":"error","error":{"type":"billing_error","message":"billing problem"}}', K.OUT_OF_FUNDS),
            (400, b'{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}', K.CONTEXT_LENGTH),
            (401, b'{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}', K.UPSTREAM_AUTH),
            (429, b'{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests has exceeded your rate limit"}}', K.RATE_LIMITED),
            (413, b'{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}', K.CLIENT_ERROR),
        ]),
    # Gemini: a native body's usageMetadata, and the translated stream's final usage chunk (the relay reads
    # the canonical stream); thoughts are output, cached content is part of the prompt
    "gemini": Facts(
        body={"candidates": [], "usageMetadata": {"promptTokenCount": 1200, "candidatesTokenCount": 40,
                                                  "thoughtsTokenCount": 60, "cachedContentTokenCount": 1000,
                                                  "totalTokenCount": 1300}},
        body_usage=Usage(prompt_tokens=1200, cached_tokens=1000, completion_tokens=100, reasoning_tokens=60),
        stream=[chat_chunk({"content": "a"}),
                {"object": "chat.completion.chunk", "choices": [],
                 "usage": {**plain(30, 12), "prompt_tokens_details": {"cached_tokens": 16},
                           "completion_tokens_details": {"reasoning_tokens": 5}}}],
        stream_usage=Usage(prompt_tokens=30, cached_tokens=16, completion_tokens=12, reasoning_tokens=5),
        auth=AuthStyle.GOOG_API_KEY,
        errors=[
            (429, b'{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.","status":"RESOURCE_EXHAUSTED"}}', K.RATE_LIMITED),
            (400, b'{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}', K.UPSTREAM_AUTH),
            (400, b'{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}', K.CONTEXT_LENGTH),
            (503, b'{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}', K.SERVER),
        ]),
    "azure": Facts(
        body=json.loads('{"usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,'
                        '"prompt_tokens_details":{"cached_tokens":1920},"completion_tokens_details":{"reasoning_tokens":0}}}'),
        body_usage=Usage(prompt_tokens=2006, cached_tokens=1920, completion_tokens=300),
        stream=[{**chat_chunk({"content": "hi"}), "usage": None},
                {"object": "chat.completion.chunk", "choices": [], "usage": plain(20, 32)}],
        stream_usage=Usage(prompt_tokens=20, completion_tokens=32),
        auth=AuthStyle.API_KEY, reasoning_field=None,
        errors=[
            (400, b'{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI\'s content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":true,"severity":"high"}}}}}', K.CONTENT_FILTER),
            (429, b'{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation have exceeded token rate limit of your current pricing tier."}}', K.RATE_LIMITED),
            (401, b'{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint."}}', K.UPSTREAM_AUTH),
            (400, b'{"error":{"message":"This model\'s maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}', K.CONTEXT_LENGTH),
        ]),
}


def error_cases() -> list:
    return [pytest.param(name, status, body, kind, id=f"{name}-{status}-{kind.value}")
            for name, facts in FACTS.items() for status, body, kind in facts.errors]


def test_every_registered_dialect_has_contract_facts() -> None:
    assert sorted(FACTS) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_usage_of_a_documented_body(name: str) -> None:
    facts = FACTS[name]
    assert DIALECTS[name].usage_from_body(facts.body) == facts.body_usage


@pytest.mark.parametrize("name", NAMES)
def test_usage_of_a_documented_stream(name: str) -> None:
    """The stream's usage as the relay reads it: only events that carry a usage reach the reader, and
    its final usage is the whole request's."""
    facts = FACTS[name]
    reader = DIALECTS[name].stream_usage()
    for event in facts.stream:
        if "usage" in json.dumps(event):
            reader.observe(event)
    assert reader.usage == facts.stream_usage


@pytest.mark.parametrize("name", NAMES)
def test_a_stream_cut_before_its_usage_has_none(name: str) -> None:
    """A prompt-only report (Anthropic's message_start) is kept apart, never taken for the stream's usage."""
    reader = DIALECTS[name].stream_usage()
    for event in FACTS[name].stream[:-1]:
        reader.observe(event)
    assert reader.usage is None or name == "vllm"  # vLLM's continuous stats report on every chunk
    if name == "anthropic":
        assert reader.reported_prompt == Usage(prompt_tokens=125, cached_tokens=100, completion_tokens=1)


@pytest.mark.parametrize("name", NAMES)
def test_odd_shapes_never_crash(name: str) -> None:
    dialect = DIALECTS[name]
    for odd in (None, [], "text", {"usage": "x"}, {"usage": {"prompt_tokens": "12"}}, {"choices": [None]}):
        dialect.usage_from_body(odd)  # type: ignore[arg-type]
        dialect.usage_from_chunk(odd)  # type: ignore[arg-type]
        dialect.stream_usage().observe(odd)  # type: ignore[arg-type]


@pytest.mark.parametrize("name, status, body, kind", error_cases())
def test_documented_error_bodies_mean_the_right_next_step(name: str, status: int, body: bytes, kind: FailureKind) -> None:
    assert DIALECTS[name].classify(status, body).kind is kind


def test_retry_after_is_read_and_bad_values_ignored() -> None:
    openai = DIALECTS["openai"]
    assert openai.classify(429, b"{}", "2.5").retry_after_s == 2.5
    assert openai.classify(429, b"{}", "Wed, 21 Oct 2026 07:28:00 GMT").retry_after_s is None
    assert openai.classify(429, b"{}", "-3").retry_after_s is None
    assert DIALECTS["glm"].classify(429, b'{"error":{"code":"1302","message":"busy"}}', "4").retry_after_s == 4


def test_what_the_breaker_counts() -> None:
    assert FailureKind.SERVER.counts_against_health
    assert FailureKind.OUT_OF_FUNDS.counts_against_health
    assert not FailureKind.CLIENT_ERROR.counts_against_health
    assert not FailureKind.CONTENT_FILTER.counts_against_health


def test_a_dialects_own_codes_do_not_leak_to_others() -> None:
    """GLM's 1113 is an empty balance on GLM only; Kimi's 403 is an exhausted quota on Kimi only."""
    glm_funds = b'{"error":{"code":"1113","message":"x"}}'
    assert DIALECTS["glm"].classify(429, glm_funds).kind is K.OUT_OF_FUNDS
    assert DIALECTS["openai"].classify(429, glm_funds).kind is K.RATE_LIMITED
    assert DIALECTS["kimi"].classify(403, b'{"error":{"message":"x"}}').kind is K.OUT_OF_FUNDS
    assert DIALECTS["openai"].classify(403, b'{"error":{"message":"x"}}').kind is K.UPSTREAM_AUTH


@pytest.mark.parametrize("name", NAMES)
def test_preamble_rule(name: str) -> None:
    dialect, facts = DIALECTS[name], FACTS[name]
    assert dialect.is_preamble(facts.preamble)
    assert not dialect.is_preamble(facts.substance)
    assert not dialect.is_preamble(b"data: [DONE]\n\n")


def test_a_role_chunk_with_a_finish_or_usage_is_not_a_preamble() -> None:
    openai = DIALECTS["openai"]
    assert not openai.is_preamble(sse(chat_chunk({"role": "assistant"}, "stop")))
    assert not openai.is_preamble(sse({**chat_chunk({"role": "assistant"}), "usage": plain(1, 0)}))
    assert not openai.is_preamble(sse(chat_chunk({"role": "assistant", "tool_calls": [{"index": 0}]})))


def test_anthropic_block_starts() -> None:
    anthropic = DIALECTS["anthropic"]
    empty_text = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    tool = {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "name": "get_weather"}}
    assert anthropic.is_preamble(sse(empty_text, "content_block_start"))
    assert anthropic.is_preamble(sse({"type": "ping"}, "ping"))
    assert not anthropic.is_preamble(sse(tool, "content_block_start"))


@pytest.mark.parametrize("name", NAMES)
def test_gauges_auth_and_hosting(name: str) -> None:
    dialect, facts = DIALECTS[name], FACTS[name]
    assert dialect.gauges == facts.gauges
    assert dialect.auth is facts.auth
    assert dialect.self_hosted is facts.self_hosted
    assert dialect.reasoning_field == facts.reasoning_field
    header, value = next(iter(dialect.auth.headers("sk-secret").items()))
    assert value.endswith("sk-secret") and header == dialect.auth.header


def test_auth_header_styles() -> None:
    assert AuthStyle.BEARER.headers("k") == {"Authorization": "Bearer k"}
    assert AuthStyle.X_API_KEY.headers("k") == {"x-api-key": "k"}
    assert AuthStyle.API_KEY.headers("k") == {"api-key": "k"}
    assert AuthStyle.GOOG_API_KEY.headers("k") == {"x-goog-api-key": "k"}


TRANSLATING = ("anthropic", "gemini")  # dialects whose wire format is not Chat Completions


@pytest.mark.parametrize("name", [n for n in UPSTREAM_NAMES if n not in TRANSLATING])
def test_a_chat_completions_dialect_passes_bytes_through(name: str) -> None:
    """Where the upstream speaks the canonical format, the call path relays bytes and never transforms."""
    dialect = DIALECTS[name]
    assert dialect.transforms is PASS_THROUGH and dialect.transforms.passthrough
    # OpenAI also serves the Responses API, called natively for /v1/responses clients (the fast path)
    assert set(dialect.paths) == {"chat", "completions", "embeddings", *(("responses",) if name == "openai" else ())}
    assert dialect.transforms.request("chat", b'{"a":1}', 100) == b'{"a":1}'


@pytest.mark.parametrize("name", TRANSLATING)
def test_a_translating_dialect_turns_a_chat_request_into_its_own_and_back(name: str) -> None:
    """Every callable dialect serves the Chat Completions endpoint: a translating one carries the request
    into its own body and its answer back into a chat.completion."""
    dialect = DIALECTS[name]
    assert not dialect.transforms.passthrough and name in UPSTREAM_NAMES
    sent = orjson.loads(dialect.transforms.request("chat", orjson.dumps(
        {"model": "m", "messages": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "hi"}]}), 64))
    native_answer = {
        "anthropic": {"id": "msg_1", "type": "message", "model": "m", "content": [{"type": "text", "text": "yo"}],
                      "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 1}},
        "gemini": {"candidates": [{"content": {"role": "model", "parts": [{"text": "yo"}]}, "finishReason": "STOP"}],
                   "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4}},
    }[name]
    back = orjson.loads(dialect.transforms.response("chat", orjson.dumps(native_answer)))
    assert back["object"] == "chat.completion" and back["choices"][0]["message"]["content"] == "yo"
    assert back["choices"][0]["finish_reason"] == "stop"
    assert dialect.usage_from_body(back) == Usage(prompt_tokens=3, completion_tokens=1)
    if name == "anthropic":
        assert sent["system"] == [{"type": "text", "text": "Be brief"}] and sent["max_tokens"] == 64
    else:
        assert sent["systemInstruction"] == {"parts": [{"text": "Be brief"}]}
        assert sent["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]


def test_every_known_dialect_is_callable() -> None:
    assert UPSTREAM_NAMES == NAMES
    assert SELF_HOSTED_NAMES == ("vllm", "sglang", "lmdeploy", "llamacpp", "ollama")


def test_an_unknown_dialect_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown dialect 'nosuch'; known: openai, "):
        dialect_named("nosuch")


# --- the emulator speaks what the registry knows ---------------------------------------------------------------

def test_the_emulator_takes_its_names_and_shared_facts_from_the_registry() -> None:
    assert sorted(EMULATED) == sorted(n for n in UPSTREAM_NAMES if n not in TRANSLATING)
    assert sorted(get_args(DialectName)) == sorted(NAMES)
    for name, emulated in [*EMULATED.items(), ("anthropic", EMULATED_ANTHROPIC), ("gemini", EMULATED_GEMINI)]:
        assert emulated.wire is DIALECTS[name]
        assert emulated.reasoning_field == DIALECTS[name].reasoning_field
    assert sorted(EMULATED_METRICS) == sorted(n for n in NAMES if DIALECTS[n].gauges is not None)
    for name, names in EMULATED_METRICS.items():
        assert (names[1], names[2]) == (DIALECTS[name].gauges.waiting, DIALECTS[name].gauges.kv_usage)


EMULATED_MEANING = {
    error_bodies.AUTH: K.UPSTREAM_AUTH,
    error_bodies.RATE_LIMIT: K.RATE_LIMITED,
    error_bodies.SERVER_ERROR: K.SERVER,
    error_bodies.INSUFFICIENT_BALANCE: K.OUT_OF_FUNDS,
    error_bodies.CONTENT_FILTER: K.CONTENT_FILTER,
    error_bodies.CONTEXT_LENGTH: K.CONTEXT_LENGTH,
    error_bodies.INVALID_REQUEST: K.CLIENT_ERROR,
}


def emulated_error_cases() -> list:
    cases = []
    for name in NAMES:
        for kind, meaning in EMULATED_MEANING.items():
            if kind == error_bodies.CONTENT_FILTER and name not in FILTER_AS_ERROR:
                continue  # the others end the answer with finish_reason content_filter, no error
            if kind == error_bodies.CONTEXT_LENGTH and name == "ollama":
                continue  # Ollama truncates a long prompt silently
            cases.append(pytest.param(name, kind, meaning, id=f"{name}-{kind}"))
        overloaded = K.RATE_LIMITED if name in ("kimi", "glm") else K.SERVER  # both answer 429 when overloaded
        cases.append(pytest.param(name, error_bodies.OVERLOADED, overloaded, id=f"{name}-overloaded"))
    return cases


@pytest.mark.parametrize("name, kind, meaning", emulated_error_cases())
def test_each_error_the_emulator_sends_means_what_it_rehearses(name: str, kind: str, meaning: FailureKind) -> None:
    """A fault rehearsed offline must take the failover step the real provider's answer would."""
    ctx = error_bodies.ErrorContext(model="m", prompt=9000, completion=10, window=8192)
    status, body = error_bodies.error_body(name, kind, ctx)
    assert DIALECTS[name].classify(status, orjson.dumps(body)).kind is meaning


# --- the config reads the registry -----------------------------------------------------------------------------

CONFIG = """
providers:
  p:
    kind: {kind}
    base_url: http://127.0.0.1:9/v1
deployments:
  d:
    provider: p
    model: m
"""


@pytest.mark.parametrize("name", UPSTREAM_NAMES)
def test_every_callable_dialect_is_a_valid_provider_kind_with_its_auth_header(name: str, tmp_path, monkeypatch) -> None:
    path = tmp_path / "tollway.yaml"
    path.write_text(CONFIG.format(kind=name).replace("    base_url:", "    api_key_env: TEST_DIALECT_KEY\n    base_url:"))
    monkeypatch.setenv("TEST_DIALECT_KEY", "sk-contract")
    config, _ = load_config(path)
    dep = RouteTable(config).deployments["d"]
    dialect = DIALECTS[name]
    assert dep.dialect is dialect
    assert dep.headers[dialect.auth.header] == dialect.auth.headers("sk-contract")[dialect.auth.header]
    assert dep.url("chat") == "http://127.0.0.1:9/v1/" + CHAT_PATHS.get(name, "chat/completions")
    assert dep.self_hosted is (name in SELF_HOSTED_NAMES)
    if name == "anthropic":
        assert dep.headers["anthropic-version"] == "2023-06-01"


CHAT_PATHS = {"anthropic": "messages", "gemini": "models/m:generateContent",
              "azure": "openai/deployments/m/chat/completions?api-version=2024-10-21"}


@pytest.mark.parametrize("name, version, path, header", [
    ("azure", "2025-04-01-preview", "openai/deployments/m/chat/completions?api-version=2025-04-01-preview", None),
    ("azure", "v1", "openai/v1/chat/completions", None),
    ("anthropic", "2023-01-01", "messages", "2023-01-01"),
])
def test_api_version_from_the_config(name: str, version: str, path: str, header: str | None, tmp_path) -> None:
    file = tmp_path / "tollway.yaml"
    file.write_text(CONFIG.format(kind=name).replace("    base_url:", f"    api_version: '{version}'\n    base_url:"))
    config, _ = load_config(file)
    dep = RouteTable(config).deployments["d"]
    assert dep.url("chat") == "http://127.0.0.1:9/v1/" + path
    assert dep.headers.get("anthropic-version") == header


def test_gemini_streams_from_its_own_method() -> None:
    assert DIALECTS["gemini"].path("chat:stream", "gemini-2.5-pro", None) == \
        "models/gemini-2.5-pro:streamGenerateContent?alt=sse"


def test_an_unknown_provider_kind_is_refused_naming_the_known_ones(tmp_path) -> None:
    path = tmp_path / "tollway.yaml"
    path.write_text(CONFIG.format(kind="bedrock"))
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    message = str(refused.value)
    assert "providers.p: dialect 'bedrock' is not one of openai, deepseek, qwen, kimi, glm, vllm, sglang, " \
           "lmdeploy, llamacpp, ollama, anthropic, gemini, azure" in message

"""Usage normalisation for every dialect, field by field, using the shapes the providers document (the odd
shapes and edge cases; test_dialect_contract.py holds each dialect's main body and stream)."""

from __future__ import annotations

import json

import pytest

from tollway.core.usage import CacheSplitUsage, Usage, estimate_tokens, estimate_usage
from tollway.providers.usage import DIALECTS, StreamUsage, merge_anthropic_stream, usage_from_body, usage_from_chunk

# --- OpenAI ------------------------------------------------------------------------------------------------------

OPENAI_BODY = json.loads('{"usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,'
                         '"prompt_tokens_details":{"cached_tokens":1920},"completion_tokens_details":{"reasoning_tokens":0}}}')


def test_openai_body_prompt_includes_cached() -> None:
    usage = usage_from_body("openai", OPENAI_BODY)
    assert usage == Usage(prompt_tokens=2006, cached_tokens=1920, completion_tokens=300)
    assert usage.uncached_prompt_tokens == 86


def test_openai_reasoning_tokens_are_inside_completion() -> None:
    body = {"usage": {"prompt_tokens": 10, "completion_tokens": 500,
                      "completion_tokens_details": {"reasoning_tokens": 420}}}
    usage = usage_from_body("openai", body)
    assert (usage.completion_tokens, usage.reasoning_tokens) == (500, 420)


def test_openai_stream_usage_only_on_the_final_empty_choices_chunk() -> None:
    content = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "hi"}}], "usage": None}
    final = {"object": "chat.completion.chunk", "choices": [],
             "usage": {"prompt_tokens": 20, "completion_tokens": 32, "total_tokens": 52}}
    assert usage_from_chunk("openai", content) is None
    assert usage_from_chunk("openai", final) == Usage(prompt_tokens=20, completion_tokens=32)


def test_openai_cache_write_tokens_field_reported_in_2026() -> None:
    body = {"usage": {"prompt_tokens": 100, "completion_tokens": 1,
                      "prompt_tokens_details": {"cached_tokens": 30, "cache_write_tokens": 50}}}
    usage = usage_from_body("openai", body)
    assert (usage.cached_tokens, usage.cache_write_tokens, usage.uncached_prompt_tokens) == (30, 50, 20)


def test_responses_api_body_and_completed_event() -> None:
    usage = {"input_tokens": 125, "output_tokens": 48, "total_tokens": 173,
             "input_tokens_details": {"cached_tokens": 98}, "output_tokens_details": {"reasoning_tokens": 7}}
    expected = Usage(prompt_tokens=125, cached_tokens=98, completion_tokens=48, reasoning_tokens=7)
    assert usage_from_body("openai", {"object": "response", "usage": usage}) == expected
    event = {"type": "response.completed", "response": {"object": "response", "usage": usage}}
    assert usage_from_chunk("openai", event) == expected
    assert usage_from_chunk("openai", {"type": "response.output_text.delta", "delta": "x"}) is None


# --- DeepSeek ----------------------------------------------------------------------------------------------------

def test_deepseek_body_hit_and_miss() -> None:
    body = json.loads('{"usage":{"prompt_tokens":10,"completion_tokens":11,"total_tokens":21,'
                      '"prompt_tokens_details":{"cached_tokens":0},"prompt_cache_hit_tokens":0,'
                      '"prompt_cache_miss_tokens":10},"system_fingerprint":"fp_eaab8d114b_prod0820_fp8_kvcache"}')
    assert usage_from_body("deepseek", body) == Usage(prompt_tokens=10, completion_tokens=11)
    hit = {"usage": {"prompt_tokens": 1000, "completion_tokens": 5, "prompt_cache_hit_tokens": 640,
                     "prompt_cache_miss_tokens": 360, "completion_tokens_details": {"reasoning_tokens": 3}}}
    assert usage_from_body("deepseek", hit) == Usage(prompt_tokens=1000, cached_tokens=640, completion_tokens=5,
                                                     reasoning_tokens=3)


def test_deepseek_prompt_from_hit_plus_miss_when_prompt_tokens_is_missing() -> None:
    body = {"usage": {"completion_tokens": 5, "prompt_cache_hit_tokens": 64, "prompt_cache_miss_tokens": 36}}
    assert usage_from_body("deepseek", body) == Usage(prompt_tokens=100, cached_tokens=64, completion_tokens=5)


def test_deepseek_stream_usage_rides_on_the_last_content_chunk() -> None:
    chunk = json.loads('{"id":"339eade8-...","object":"chat.completion.chunk","created":1743968719,'
                       '"model":"deepseek-chat","system_fingerprint":"fp_3d5141a69a_prod0225","choices":[{"index":0,'
                       '"delta":{"content":""},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":11,'
                       '"completion_tokens":11,"total_tokens":22,"prompt_tokens_details":{"cached_tokens":0},'
                       '"prompt_cache_hit_tokens":0,"prompt_cache_miss_tokens":11}}')
    assert usage_from_chunk("deepseek", chunk) == Usage(prompt_tokens=11, completion_tokens=11)
    keep_going = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "a"}}]}
    assert usage_from_chunk("deepseek", keep_going) is None


# --- Qwen --------------------------------------------------------------------------------------------------------

def test_qwen_explicit_cache_creation_counts_as_cache_write() -> None:
    body = {"usage": {"prompt_tokens": 3000, "completion_tokens": 10, "total_tokens": 3010,
                      "prompt_tokens_details": {"cached_tokens": 0, "cache_creation_input_tokens": 2048}}}
    usage = usage_from_body("qwen", body)
    assert (usage.prompt_tokens, usage.cache_write_tokens, usage.uncached_prompt_tokens) == (3000, 2048, 952)


def test_qwen_stream_final_chunk_has_empty_choices() -> None:
    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [],
             "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42,
                       "prompt_tokens_details": {"cached_tokens": 16}}}
    assert usage_from_chunk("qwen", chunk) == Usage(prompt_tokens=30, cached_tokens=16, completion_tokens=12)


# --- Kimi --------------------------------------------------------------------------------------------------------

def test_kimi_top_level_cached_tokens() -> None:
    body = {"usage": {"prompt_tokens": 2989, "completion_tokens": 20, "total_tokens": 3009, "cached_tokens": 2989}}
    assert usage_from_body("kimi", body) == Usage(prompt_tokens=2989, cached_tokens=2989, completion_tokens=20)
    both = {"usage": {"prompt_tokens": 2989, "completion_tokens": 20, "cached_tokens": 2048,
                      "prompt_tokens_details": {"cached_tokens": 2048}}}
    assert usage_from_body("kimi", both).cached_tokens == 2048


def test_kimi_stream_usage_inside_the_finish_choice() -> None:
    chunk = json.loads('{"id":"cmpl-1305b94c570f447fbde3180560736287","object":"chat.completion.chunk",'
                       '"created":1698999575,"model":"moonshot-v1-8k","choices":[{"index":0,"delta":{},'
                       '"finish_reason":"stop","usage":{"prompt_tokens":19,"completion_tokens":13,"total_tokens":32}}]}')
    assert usage_from_chunk("kimi", chunk) == Usage(prompt_tokens=19, completion_tokens=13)
    with_cache = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop",
                               "usage": {"prompt_tokens": 19, "completion_tokens": 13, "cached_tokens": 8}}]}
    assert usage_from_chunk("kimi", with_cache).cached_tokens == 8


# --- GLM ---------------------------------------------------------------------------------------------------------

def test_glm_body_and_chunk() -> None:
    body = {"id": "1", "request_id": "r", "usage": {"prompt_tokens": 8, "completion_tokens": 9, "total_tokens": 17}}
    assert usage_from_body("glm", body) == Usage(prompt_tokens=8, completion_tokens=9)
    newer = {"usage": {"prompt_tokens": 80, "completion_tokens": 90, "prompt_tokens_details": {"cached_tokens": 64},
                       "completion_tokens_details": {"reasoning_tokens": 50}}}
    assert usage_from_body("glm", newer) == Usage(prompt_tokens=80, cached_tokens=64, completion_tokens=90,
                                                  reasoning_tokens=50)
    chunk = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 8, "completion_tokens": 9, "total_tokens": 17}}
    assert usage_from_chunk("glm", chunk) == Usage(prompt_tokens=8, completion_tokens=9)


# --- self-hosted servers -----------------------------------------------------------------------------------------

def test_vllm_details_null_without_the_flag_and_present_with_it() -> None:
    plain = json.loads('{"usage":{"prompt_tokens":20,"total_tokens":52,"completion_tokens":32,"prompt_tokens_details":null}}')
    assert usage_from_body("vllm", plain) == Usage(prompt_tokens=20, completion_tokens=32)
    flagged = {"usage": {"prompt_tokens": 20, "completion_tokens": 32, "prompt_tokens_details": {"cached_tokens": 16}}}
    assert usage_from_body("vllm", flagged).cached_tokens == 16
    final = json.loads('{"id":"chatcmpl-...","object":"chat.completion.chunk","created":1730000000,"model":"m",'
                       '"choices":[],"usage":{"prompt_tokens":20,"total_tokens":52,"completion_tokens":32}}')
    assert usage_from_chunk("vllm", final) == Usage(prompt_tokens=20, completion_tokens=32)


def test_vllm_continuous_usage_stats_last_chunk_wins() -> None:
    stream = StreamUsage("vllm")
    for completion in (1, 2, 3):
        stream.observe({"choices": [{"index": 0, "delta": {"content": "x"}}],
                        "usage": {"prompt_tokens": 20, "completion_tokens": completion,
                                  "total_tokens": 20 + completion}})
    assert stream.usage == Usage(prompt_tokens=20, completion_tokens=3)


def test_sglang_top_level_reasoning_tokens() -> None:
    body = json.loads('{"usage":{"prompt_tokens":120,"total_tokens":180,"completion_tokens":60,'
                      '"prompt_tokens_details":{"cached_tokens":96},"reasoning_tokens":41}}')
    assert usage_from_body("sglang", body) == Usage(prompt_tokens=120, cached_tokens=96, completion_tokens=60,
                                                    reasoning_tokens=41)
    final = json.loads('{"id":"...","object":"chat.completion.chunk","created":1730000000,"model":"m","choices":[],'
                       '"usage":{"prompt_tokens":120,"total_tokens":180,"completion_tokens":60,"reasoning_tokens":0}}')
    assert usage_from_chunk("sglang", final) == Usage(prompt_tokens=120, completion_tokens=60)


def test_lmdeploy_null_usage_on_content_chunks() -> None:
    body = json.loads('{"usage":{"prompt_tokens":120,"total_tokens":180,"completion_tokens":60,'
                      '"prompt_tokens_details":{"cached_tokens":64},"completion_tokens_details":{"reasoning_tokens":40}}}')
    assert usage_from_body("lmdeploy", body) == Usage(prompt_tokens=120, cached_tokens=64, completion_tokens=60,
                                                      reasoning_tokens=40)
    content = {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}], "usage": None}
    assert usage_from_chunk("lmdeploy", content) is None
    final = {"choices": [], "usage": {"prompt_tokens": 120, "completion_tokens": 60, "total_tokens": 180,
                                      "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": None}}
    assert usage_from_chunk("lmdeploy", final) == Usage(prompt_tokens=120, completion_tokens=60)


def test_llamacpp_body_and_final_chunk_with_timings() -> None:
    body = json.loads('{"usage":{"completion_tokens":48,"prompt_tokens":44,"total_tokens":92,'
                      '"prompt_tokens_details":{"cached_tokens":0}},"timings":{"cache_n":0,"prompt_n":44,'
                      '"prompt_ms":120.5,"prompt_per_token_ms":2.7,"prompt_per_second":365.1,"predicted_n":48,'
                      '"predicted_ms":900.2,"predicted_per_token_ms":18.8,"predicted_per_second":53.3}}')
    assert usage_from_body("llamacpp", body) == Usage(prompt_tokens=44, completion_tokens=48)
    final = json.loads('{"choices":[],"created":1758000000,"id":"chatcmpl-...","model":"m",'
                       '"object":"chat.completion.chunk","usage":{"completion_tokens":48,"prompt_tokens":44,'
                       '"total_tokens":92},"timings":{"cache_n":30,"prompt_n":14,"predicted_n":48}}')
    assert usage_from_chunk("llamacpp", final) == Usage(prompt_tokens=44, cached_tokens=30, completion_tokens=48)


def test_ollama_body_and_zero_usage_on_completions_content_chunks() -> None:
    body = json.loads('{"usage":{"prompt_tokens":26,"completion_tokens":298,"total_tokens":324}}')
    assert usage_from_body("ollama", body) == Usage(prompt_tokens=26, completion_tokens=298)
    content = {"object": "text_completion", "choices": [{"index": 0, "text": "x", "finish_reason": None}],
               "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}
    assert usage_from_chunk("ollama", content) is None
    final = {"object": "text_completion", "choices": [],
             "usage": {"prompt_tokens": 26, "completion_tokens": 298, "total_tokens": 324}}
    stream = StreamUsage("ollama")
    for chunk in (content, content, final):
        stream.observe(chunk)
    assert stream.usage == Usage(prompt_tokens=26, completion_tokens=298)


# --- Anthropic ---------------------------------------------------------------------------------------------------

def test_anthropic_input_tokens_exclude_cache_reads_and_writes() -> None:
    body = {"type": "message", "usage": {"input_tokens": 50, "cache_read_input_tokens": 1000,
                                         "cache_creation_input_tokens": 200, "output_tokens": 21}}
    usage = usage_from_body("anthropic", body)
    assert usage == Usage(prompt_tokens=1250, cached_tokens=1000, cache_write_tokens=200, completion_tokens=21)
    assert usage.uncached_prompt_tokens == 50
    assert type(usage) is Usage


def test_anthropic_one_hour_cache_writes_are_split_out() -> None:
    body = json.loads('{"usage":{"input_tokens":5,"cache_creation_input_tokens":42203,"cache_read_input_tokens":0,'
                      '"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":42203},'
                      '"output_tokens":21,"service_tier":"standard"}}')
    usage = usage_from_body("anthropic", body)
    assert isinstance(usage, CacheSplitUsage)
    assert (usage.prompt_tokens, usage.cache_write_tokens, usage.cache_write_1h_tokens) == (42208, 42203, 42203)
    assert usage.completion_tokens == 21


def test_anthropic_split_without_the_total_field() -> None:
    body = {"usage": {"input_tokens": 5, "cache_creation": {"ephemeral_5m_input_tokens": 10,
                                                            "ephemeral_1h_input_tokens": 20}, "output_tokens": 1}}
    usage = usage_from_body("anthropic", body)
    assert (usage.prompt_tokens, usage.cache_write_tokens, usage.cache_write_1h_tokens) == (35, 30, 20)


def test_anthropic_stream_start_plus_cumulative_delta() -> None:
    start_event = json.loads('{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant",'
                             '"content":[],"model":"claude-3-5-sonnet-20241022","stop_reason":null,'
                             '"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}')
    delta_event = json.loads('{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
                             '"usage":{"output_tokens":15}}')
    start = usage_from_chunk("anthropic", start_event)
    assert start == Usage(prompt_tokens=25, completion_tokens=1)
    assert usage_from_chunk("anthropic", {"type": "content_block_delta", "delta": {"text": "x"}}) is None
    assert usage_from_chunk("anthropic", {"type": "ping"}) is None
    merged = merge_anthropic_stream(start, delta_event)
    assert merged == Usage(prompt_tokens=25, completion_tokens=15)  # cumulative: 15, not 16
    assert merge_anthropic_stream(start, delta_event["usage"]) == merged


def test_anthropic_stream_delta_repeating_input_and_cache_counts() -> None:
    start = usage_from_chunk("anthropic", {"type": "message_start", "message": {"usage": {
        "input_tokens": 10, "cache_read_input_tokens": 500, "cache_creation_input_tokens": 0, "output_tokens": 1}}})
    delta = {"type": "message_delta", "usage": {"input_tokens": 10, "cache_read_input_tokens": 500,
                                                "cache_creation_input_tokens": 0, "output_tokens": 40}}
    assert merge_anthropic_stream(start, delta) == Usage(prompt_tokens=510, cached_tokens=500, completion_tokens=40)


def test_anthropic_stream_keeps_the_one_hour_split_from_message_start() -> None:
    stream = StreamUsage("anthropic")
    stream.observe({"type": "message_start", "message": {"usage": {
        "input_tokens": 3, "cache_creation_input_tokens": 100, "output_tokens": 1,
        "cache_creation": {"ephemeral_5m_input_tokens": 60, "ephemeral_1h_input_tokens": 40}}}})
    stream.observe({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}})
    stream.observe({"type": "message_delta", "usage": {"output_tokens": 7}})
    stream.observe({"type": "message_stop"})
    assert isinstance(stream.usage, CacheSplitUsage)
    assert (stream.usage.prompt_tokens, stream.usage.cache_write_tokens, stream.usage.cache_write_1h_tokens,
            stream.usage.completion_tokens) == (103, 100, 40, 7)


def test_anthropic_delta_without_a_start() -> None:
    assert merge_anthropic_stream(None, {"type": "message_delta", "usage": {"output_tokens": 4}}) == \
        Usage(completion_tokens=4)


# --- robustness and estimates -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("odd", [
    None, [], "text", {}, {"usage": None}, {"usage": "lots"}, {"usage": []}, {"choices": "x"},
    {"choices": [None]}, {"choices": [{"usage": 5}]}, {"type": "message_start", "message": None},
    {"type": "response.completed", "response": []},
])
def test_odd_shapes_never_crash(dialect: str, odd: object) -> None:
    assert usage_from_body(dialect, odd) is None
    assert usage_from_chunk(dialect, odd) is None


@pytest.mark.parametrize("dialect", [d for d in DIALECTS if d != "anthropic"])
def test_odd_field_values_count_as_zero(dialect: str) -> None:
    body = {"usage": {"prompt_tokens": "12", "completion_tokens": None, "total_tokens": -3,
                      "prompt_tokens_details": {"cached_tokens": True}, "completion_tokens_details": []}}
    assert usage_from_body(dialect, body) == Usage()
    negative = {"usage": {"prompt_tokens": -5, "completion_tokens": 7.0}}
    assert usage_from_body(dialect, negative) == Usage(completion_tokens=7)


def test_cached_more_than_prompt_is_clamped() -> None:
    body = {"usage": {"prompt_tokens": 10, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 50}}}
    usage = usage_from_body("openai", body)
    assert (usage.cached_tokens, usage.uncached_prompt_tokens) == (10, 0)


def test_anthropic_odd_values() -> None:
    body = {"usage": {"input_tokens": None, "cache_read_input_tokens": "9", "output_tokens": 3,
                      "cache_creation": "none"}}
    assert usage_from_body("anthropic", body) == Usage(completion_tokens=3)


def test_unknown_dialect_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown dialect 'nosuch'"):
        usage_from_body("nosuch", {})
    with pytest.raises(ValueError, match="unknown dialect"):
        StreamUsage("nosuch")


@pytest.mark.parametrize(("text", "tokens"), [
    ("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("你好", 2), ("你好 world", 2 + 2), ("é", 1),
])
def test_estimate_tokens_rule(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


def test_estimate_usage_is_marked_estimated() -> None:
    usage = estimate_usage("a" * 400, "你好")
    assert usage == Usage(prompt_tokens=100, completion_tokens=2, source="estimated")


# --- the plain-shape shortcut ------------------------------------------------------------------------------------

def test_plain_usage_shortcut_agrees_with_the_general_reader_on_random_shapes() -> None:
    """openai_usage reads a usage with only the plain Chat Completions keys by a shortcut; whatever the
    values (odd types, over-large cache counts, empty details), it must agree with reading every place."""
    import random

    from tollway.providers import openai_compatible as module

    rng = random.Random(7)
    values = [None, 0, 1, 5, 17, 300, -3, 2.5, float("nan"), "12", True, [], {}, {"cached_tokens": 4}]
    detail_keys = ["cached_tokens", "cache_creation_input_tokens", "cache_write_tokens", "reasoning_tokens",
                   "audio_tokens"]
    top_keys = sorted(module._PLAIN_USAGE_KEYS) + ["prompt_cache_hit_tokens", "input_tokens", "cached_tokens"]
    shortcut_taken = 0
    for _ in range(5000):
        usage = {}
        for key in rng.sample(top_keys, rng.randrange(0, len(top_keys) + 1)):
            if key.endswith("_details") and rng.random() < 0.8:
                usage[key] = {k: rng.choice(values) for k in rng.sample(detail_keys, rng.randrange(0, 4))}
            else:
                usage[key] = rng.choice(values)
        container = {"usage": usage, "choices": []}
        if rng.random() < 0.1:
            container["timings"] = {"cache_n": rng.choice(values)}
        shortcut_taken += usage.keys() <= module._PLAIN_USAGE_KEYS and "timings" not in container
        assert module.openai_usage(usage, container) == module.any_openai_usage(usage, container), usage
    assert shortcut_taken > 500

"""Each OpenAI-compatible dialect through the official openai SDK and raw HTTP: text, usage shapes, reasoning."""

from __future__ import annotations

import openai
import pytest

from tests.emulator.support import chat_body, post
from tollway.emulator.dialects import DIALECTS as EMULATED_CHAT
from tollway.emulator.tokens import output_text

DIALECTS = list(EMULATED_CHAT)  # every Chat Completions dialect the gateway can call is emulated
PROMPT = "hello there"  # 11 chars -> ceil(11/4) + 4 = 7 prompt tokens
PROMPT_TOKENS = 7


def client(emulator, dialect: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=emulator.base_url(dialect), api_key="sk-test", max_retries=0, timeout=10)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_non_stream_text_and_usage_through_the_sdk(emulator, dialect: str) -> None:
    reply = client(emulator, dialect).chat.completions.create(
        model="m", messages=[{"role": "user", "content": PROMPT}], max_tokens=5)
    assert reply.choices[0].message.content == output_text(5)
    assert reply.choices[0].finish_reason == "length"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (
        PROMPT_TOKENS, 5, PROMPT_TOKENS + 5)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_stream_text_through_the_sdk_matches_usage(emulator, dialect: str) -> None:
    chunks = list(client(emulator, dialect).chat.completions.create(
        model="m", messages=[{"role": "user", "content": PROMPT}], stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == output_text(16)
    usages = [c.usage for c in chunks if c.usage is not None]
    if dialect == "kimi":  # Kimi reports usage inside choices[0].usage of the finish chunk
        usages = [c.choices[0].usage for c in chunks if c.choices and getattr(c.choices[0], "usage", None)]
        usages = [openai.types.CompletionUsage(**u) for u in usages]
    assert len(usages) == 1
    assert usages[0].completion_tokens == 16 and usages[0].prompt_tokens == PROMPT_TOKENS


# exact usage objects with cache_hit_ratio 0.5 (3 of 7 cached) and 2 reasoning tokens out of 6 completion tokens
EXPECTED_USAGE = {
    "openai": {"prompt_tokens": 7, "completion_tokens": 6, "total_tokens": 13,
               "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": 0},
               "completion_tokens_details": {"reasoning_tokens": 2, "audio_tokens": 0,
                                             "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
    "deepseek": {"prompt_tokens": 7, "completion_tokens": 6, "total_tokens": 13,
                 "prompt_tokens_details": {"cached_tokens": 3}, "prompt_cache_hit_tokens": 3,
                 "prompt_cache_miss_tokens": 4, "completion_tokens_details": {"reasoning_tokens": 2}},
    "qwen": {"prompt_tokens": 7, "completion_tokens": 6, "total_tokens": 13,
             "prompt_tokens_details": {"cached_tokens": 3}},
    "kimi": {"prompt_tokens": 7, "completion_tokens": 6, "total_tokens": 13, "cached_tokens": 3,
             "prompt_tokens_details": {"cached_tokens": 3}},
    "glm": {"prompt_tokens": 7, "completion_tokens": 6, "total_tokens": 13,
            "prompt_tokens_details": {"cached_tokens": 3}, "completion_tokens_details": {"reasoning_tokens": 2}},
    "vllm": {"prompt_tokens": 7, "completion_tokens": 6, "total_tokens": 13,
             "prompt_tokens_details": {"cached_tokens": 3}},
    "sglang": {"prompt_tokens": 7, "completion_tokens": 6, "total_tokens": 13,
               "prompt_tokens_details": {"cached_tokens": 3}, "reasoning_tokens": 2},
    "lmdeploy": {"prompt_tokens": 7, "completion_tokens": 6, "total_tokens": 13,
                 "prompt_tokens_details": {"cached_tokens": 3}, "completion_tokens_details": {"reasoning_tokens": 2}},
    "llamacpp": {"prompt_tokens": 7, "completion_tokens": 6, "total_tokens": 13,
                 "prompt_tokens_details": {"cached_tokens": 3}},
    "ollama": {"prompt_tokens": 7, "completion_tokens": 6, "total_tokens": 13,
               "prompt_tokens_details": {"cached_tokens": 3}},
}
REASONING_FIELD = {"openai": None, "deepseek": "reasoning_content", "qwen": "reasoning_content",
                   "kimi": "reasoning_content", "glm": "reasoning_content", "vllm": "reasoning",
                   "sglang": "reasoning_content", "lmdeploy": "reasoning_content", "llamacpp": "reasoning_content",
                   "ollama": "reasoning", "azure": None}
EXPECTED_USAGE["azure"] = EXPECTED_USAGE["openai"]  # Azure OpenAI answers with OpenAI's bodies


@pytest.mark.parametrize("dialect", DIALECTS)
def test_usage_shape_with_cache_and_reasoning(emulator, dialect: str) -> None:
    emulator.set_profile("m", {"cache_hit_ratio": 0.5, "reasoning_tokens": 2, "output_tokens": 4})
    reply = post(f"{emulator.base_url(dialect)}/chat/completions", chat_body(content=PROMPT))
    assert reply.status == 200
    assert reply.body["usage"] == EXPECTED_USAGE[dialect]
    message = reply.body["choices"][0]["message"]
    assert message["content"] == output_text(4)
    field = REASONING_FIELD[dialect]
    if field:
        assert message[field] == "think0 think1"
    assert not {"reasoning", "reasoning_content"} - {field} & set(message)


@pytest.mark.parametrize("dialect, expected", [
    ("vllm", {"prompt_tokens": 7, "completion_tokens": 16, "total_tokens": 23, "prompt_tokens_details": None}),
    ("sglang", {"prompt_tokens": 7, "completion_tokens": 16, "total_tokens": 23, "prompt_tokens_details": None,
                "reasoning_tokens": 0}),
    ("lmdeploy", {"prompt_tokens": 7, "completion_tokens": 16, "total_tokens": 23,
                  "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": None}),
    ("ollama", {"prompt_tokens": 7, "completion_tokens": 16, "total_tokens": 23}),
    ("qwen", {"prompt_tokens": 7, "completion_tokens": 16, "total_tokens": 23}),
    ("deepseek", {"prompt_tokens": 7, "completion_tokens": 16, "total_tokens": 23,
                  "prompt_tokens_details": {"cached_tokens": 0}, "prompt_cache_hit_tokens": 0,
                  "prompt_cache_miss_tokens": 7}),
])
def test_usage_shape_without_cache_hits(emulator, dialect: str, expected: dict) -> None:
    reply = post(f"{emulator.base_url(dialect)}/chat/completions", chat_body(content=PROMPT))
    assert reply.body["usage"] == expected


def test_llamacpp_adds_timings_with_cache_n(emulator) -> None:
    emulator.set_profile("m", {"cache_hit_ratio": 0.5})
    body = post(f"{emulator.base_url('llamacpp')}/chat/completions", chat_body(content=PROMPT)).body
    assert body["timings"]["cache_n"] == 3 and body["timings"]["prompt_n"] == 4
    assert body["timings"]["predicted_n"] == 16


def test_extra_top_level_fields(emulator) -> None:
    deepseek = post(f"{emulator.base_url('deepseek')}/chat/completions", chat_body()).body
    assert "system_fingerprint" in deepseek
    glm = post(f"{emulator.base_url('glm')}/chat/completions", chat_body()).body
    assert "request_id" in glm


def test_text_completions(emulator) -> None:
    reply = client(emulator, "vllm").completions.create(model="m", prompt="abcdefgh", max_tokens=3)
    assert reply.choices[0].text == output_text(3)
    assert reply.object == "text_completion"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (2, 3)


@pytest.mark.parametrize("extra", [{"min_tokens": 40}, {"ignore_eos": True}])
def test_min_tokens_or_ignore_eos_give_exactly_max_tokens(emulator, extra: dict) -> None:
    reply = post(f"{emulator.base_url('vllm')}/chat/completions", chat_body(max_tokens=40, **extra))
    assert reply.body["usage"]["completion_tokens"] == 40
    assert reply.body["choices"][0]["message"]["content"] == output_text(40)


def test_max_completion_tokens_is_honoured(emulator) -> None:
    reply = post(f"{emulator.base_url('qwen')}/chat/completions", chat_body(max_completion_tokens=2, max_tokens=9))
    assert reply.body["usage"]["completion_tokens"] == 2


def test_unprefixed_path_is_openai_and_pinned_dialect_wins(emulator) -> None:
    plain = post(f"{emulator.url}/v1/chat/completions", chat_body(model="x"))
    assert "completion_tokens_details" in plain.body["usage"]
    emulator.set_profile("pinned", {"dialect": "deepseek"})
    pinned = post(f"{emulator.url}/v1/chat/completions", chat_body(model="pinned"))
    assert "prompt_cache_hit_tokens" in pinned.body["usage"]


def test_models_list(emulator) -> None:
    emulator.set_profile("alpha", {})
    models = client(emulator, "kimi").models.list()
    assert "alpha" in [m.id for m in models.data]


def test_unknown_dialect_and_bad_body(emulator) -> None:
    unknown = post(f"{emulator.url}/bard/v1/chat/completions", chat_body())
    assert unknown.status == 404 and "unknown dialect 'bard'" in unknown.body["error"]["message"]
    not_json = post(f"{emulator.base_url('openai')}/chat/completions", b"{not json")
    assert not_json.status == 400 and not_json.body["error"]["type"] == "invalid_request_error"
    no_messages = post(f"{emulator.base_url('sglang')}/chat/completions", {"model": "m"})
    assert no_messages.status == 400 and no_messages.body["object"] == "error"
    assert "'messages' is required" in no_messages.body["message"]
    bad_limit = post(f"{emulator.base_url('openai')}/chat/completions", chat_body(max_tokens=-3))
    assert bad_limit.status == 400 and "'max_tokens' must be a positive integer, got -3" in \
        bad_limit.body["error"]["message"]

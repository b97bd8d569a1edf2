"""Streamed chunk sequences per dialect: role chunk, where usage rides, include_usage on/off, [DONE]."""

from __future__ import annotations

import pytest

from tests.emulator.support import chat_body, stream
from tollway.emulator.tokens import output_text

ASK = {"stream_options": {"include_usage": True}}


def _url(emulator, dialect: str, endpoint: str = "chat/completions") -> str:
    return f"{emulator.base_url(dialect)}/{endpoint}"


def _content(chunks: list[dict]) -> str:
    return "".join((c["choices"][0].get("delta") or {}).get("content") or "" for c in chunks if c["choices"])


def _usage_chunks(chunks: list[dict]) -> list[dict]:
    return [c for c in chunks if c.get("usage")]


@pytest.mark.parametrize("dialect", ["openai", "qwen", "vllm", "sglang", "lmdeploy", "ollama"])
def test_final_empty_choices_chunk_only_when_asked(emulator, dialect: str) -> None:
    asked = stream(_url(emulator, dialect), chat_body(max_tokens=3, **ASK))
    assert asked.data[-1] == "[DONE]"
    last = asked.chunks[-1]
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 3
    assert len(_usage_chunks(asked.chunks)) == 1
    assert asked.chunks[-2]["choices"][0]["finish_reason"] == "length"
    plain = stream(_url(emulator, dialect), chat_body(max_tokens=3))
    assert plain.data[-1] == "[DONE]"
    assert not _usage_chunks(plain.chunks) and all(c["choices"] for c in plain.chunks)


@pytest.mark.parametrize("dialect, has_null", [("openai", True), ("qwen", True), ("lmdeploy", True),
                                               ("sglang", True), ("vllm", False), ("ollama", False)])
def test_content_chunks_carry_null_usage_or_none_when_asked(emulator, dialect: str, has_null: bool) -> None:
    chunks = stream(_url(emulator, dialect), chat_body(max_tokens=3, **ASK)).chunks
    content_chunks = [c for c in chunks if c["choices"]]
    if has_null:
        assert all("usage" in c and c["usage"] is None for c in content_chunks)
    else:
        assert all("usage" not in c for c in content_chunks)


def test_vllm_stream_options_object_defaults_include_usage_true(emulator) -> None:
    chunks = stream(_url(emulator, "vllm"), chat_body(max_tokens=2, stream_options={})).chunks
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 2
    openai_chunks = stream(_url(emulator, "openai"), chat_body(max_tokens=2, stream_options={})).chunks
    assert not _usage_chunks(openai_chunks)


@pytest.mark.parametrize("dialect", ["vllm", "sglang"])
def test_continuous_usage_stats_put_cumulative_usage_on_every_chunk(emulator, dialect: str) -> None:
    options = {"stream_options": {"include_usage": True, "continuous_usage_stats": True}}
    chunks = stream(_url(emulator, dialect), chat_body(max_tokens=3, **options)).chunks
    completions = [c["usage"]["completion_tokens"] for c in chunks]
    assert completions == [0, 1, 2, 3, 3, 3]  # role, three tokens, finish, final usage chunk


@pytest.mark.parametrize("include", [True, False])
def test_deepseek_usage_rides_on_the_finish_chunk(emulator, include: bool) -> None:
    body = chat_body(max_tokens=3, **(ASK if include else {}))
    chunks = stream(_url(emulator, "deepseek"), body).chunks
    finish = chunks[-1]
    assert finish["choices"][0]["finish_reason"] == "length" and finish["choices"][0]["delta"] == {"content": ""}
    assert finish["usage"]["completion_tokens"] == 3 and finish["usage"]["prompt_cache_miss_tokens"] == 7
    assert all(c["choices"] for c in chunks)  # no choices: [] chunk
    if include:
        assert all(c["usage"] is None for c in chunks[:-1])
    else:
        assert all("usage" not in c for c in chunks[:-1])


@pytest.mark.parametrize("include", [True, False])
def test_kimi_usage_is_inside_the_finish_choice(emulator, include: bool) -> None:
    chunks = stream(_url(emulator, "kimi"), chat_body(max_tokens=3, **(ASK if include else {}))).chunks
    finish = chunks[-1]
    assert "usage" not in finish
    assert finish["choices"][0]["finish_reason"] == "length"
    assert finish["choices"][0]["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    assert finish["id"].startswith("cmpl-")


def test_glm_usage_on_the_finish_chunk_and_role_in_every_delta(emulator) -> None:
    chunks = stream(_url(emulator, "glm"), chat_body(max_tokens=3)).chunks
    assert chunks[-1]["usage"]["completion_tokens"] == 3
    assert all(c["choices"][0]["delta"]["role"] == "assistant" for c in chunks[:-1])


def test_llamacpp_always_sends_the_usage_chunk_with_timings(emulator) -> None:
    chunks = stream(_url(emulator, "llamacpp"), chat_body(max_tokens=2)).chunks
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 2
    assert chunks[-1]["timings"]["predicted_n"] == 2


@pytest.mark.parametrize("dialect, role_only", [
    ("openai", True), ("deepseek", True), ("qwen", True), ("kimi", True), ("vllm", True), ("sglang", True),
    ("llamacpp", True), ("glm", False), ("lmdeploy", False), ("ollama", False)])
def test_role_only_first_chunk(emulator, dialect: str, role_only: bool) -> None:
    chunks = stream(_url(emulator, dialect), chat_body(max_tokens=2)).chunks
    first_delta = chunks[0]["choices"][0]["delta"]
    if role_only:
        assert first_delta["role"] == "assistant" and not first_delta.get("content")
        assert _content(chunks) == output_text(2)
    else:
        assert first_delta == {"role": "assistant", "content": "tok0"}


def test_ollama_completions_put_zero_usage_on_every_content_chunk(emulator) -> None:
    body = {"model": "m", "prompt": "abcd", "max_tokens": 2, **ASK}
    chunks = stream(_url(emulator, "ollama", "completions"), body).chunks
    zero = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert [c["usage"] for c in chunks[:-1]] == [zero, zero, zero]  # two tokens + finish
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 2
    assert "".join(c["choices"][0]["text"] for c in chunks[:-1]) == output_text(2)


@pytest.mark.parametrize("dialect, field", [("deepseek", "reasoning_content"), ("vllm", "reasoning"),
                                            ("ollama", "reasoning"), ("kimi", "reasoning_content")])
def test_reasoning_streams_in_the_dialect_field_before_content(emulator, dialect: str, field: str) -> None:
    emulator.set_profile("m", {"reasoning_tokens": 3, "output_tokens": 2})
    chunks = stream(_url(emulator, dialect), chat_body(**ASK)).chunks
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    reasoning = "".join(d.get(field) or "" for d in deltas)
    assert reasoning == "think0 think1 think2"
    first_content = next(i for i, d in enumerate(deltas) if d.get("content"))
    assert all(not d.get(field) for d in deltas[first_content:])
    usage = next(c.get("usage") or c["choices"][0].get("usage") for c in reversed(chunks)
                 if c.get("usage") or (c["choices"] and c["choices"][0].get("usage")))
    assert usage["completion_tokens"] == 5


def test_openai_reasoning_is_counted_not_streamed(emulator) -> None:
    emulator.set_profile("m", {"reasoning_tokens": 3, "output_tokens": 2})
    chunks = stream(_url(emulator, "openai"), chat_body(**ASK)).chunks
    assert _content(chunks) == output_text(2)
    assert chunks[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] == 3
    assert chunks[-1]["usage"]["completion_tokens"] == 5


@pytest.mark.parametrize("per_chunk, expected_pieces", [(1, 10), (4, 3), (10, 1)])
def test_tokens_per_chunk(emulator, per_chunk: int, expected_pieces: int) -> None:
    emulator.set_profile("m", {"tokens_per_chunk": per_chunk, "output_tokens": 10})
    chunks = stream(_url(emulator, "openai"), chat_body(**ASK)).chunks
    pieces = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(pieces) == expected_pieces
    assert _content(chunks) == output_text(10)
    assert chunks[-1]["usage"]["completion_tokens"] == 10


def test_all_chunks_of_a_stream_share_id_and_model(emulator) -> None:
    chunks = stream(_url(emulator, "sglang"), chat_body(model="shared", max_tokens=3, **ASK)).chunks
    assert len({c["id"] for c in chunks}) == 1 and {c["model"] for c in chunks} == {"shared"}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}

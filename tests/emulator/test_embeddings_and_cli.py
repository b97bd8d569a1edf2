"""Embeddings through the SDK (float and base64), and the command's flags and config precedence."""

from __future__ import annotations

import math

import openai

from tests.emulator.support import chat_body, post


def test_embeddings_are_deterministic_unit_vectors(emulator) -> None:
    sdk = openai.OpenAI(base_url=emulator.base_url("vllm"), api_key="k", max_retries=0)
    first = sdk.embeddings.create(model="e", input=["alpha", "beta"])  # the SDK asks for base64
    again = sdk.embeddings.create(model="e", input="alpha", encoding_format="float")
    assert len(first.data) == 2 and len(first.data[0].embedding) == 8
    assert math.isclose(sum(v * v for v in first.data[0].embedding), 1.0, rel_tol=1e-4)
    assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(first.data[0].embedding, again.data[0].embedding))
    assert first.data[0].embedding != first.data[1].embedding
    assert (first.usage.prompt_tokens, first.usage.total_tokens) == (3, 3)  # ceil(5/4) + ceil(4/4)


def test_embedding_dimensions(emulator) -> None:
    reply = post(f"{emulator.base_url('openai')}/embeddings", {"model": "e", "input": "x", "dimensions": 5})
    assert len(reply.body["data"][0]["embedding"]) == 5
    emulator.set_profile("e", {"embedding_dim": 12})
    reply = post(f"{emulator.base_url('openai')}/embeddings", {"model": "e", "input": "x"})
    assert len(reply.body["data"][0]["embedding"]) == 12
    bad = post(f"{emulator.base_url('openai')}/embeddings", {"model": "e", "input": "x", "encoding_format": "hex"})
    assert bad.status == 400 and "'encoding_format' must be" in bad.body["error"]["message"]


def test_cli_flags_set_the_default_profile(emulator_factory) -> None:
    emu = emulator_factory(output_tokens=5, tokens_per_chunk=5)
    reply = post(f"{emu.base_url('openai')}/chat/completions", chat_body())
    assert reply.body["usage"]["completion_tokens"] == 5


def test_cli_flags_override_config_default_but_not_model_profiles(emulator_factory) -> None:
    config = {"default": {"output_tokens": 9, "reasoning_tokens": 1}, "models": {"fixed": {"output_tokens": 2}}}
    emu = emulator_factory(config, output_tokens=4)
    plain = post(f"{emu.base_url('deepseek')}/chat/completions", chat_body(model="any")).body["usage"]
    assert plain["completion_tokens"] == 5  # 4 from the flag + 1 reasoning from the file default
    fixed = post(f"{emu.base_url('deepseek')}/chat/completions", chat_body(model="fixed")).body["usage"]
    assert fixed["completion_tokens"] == 3

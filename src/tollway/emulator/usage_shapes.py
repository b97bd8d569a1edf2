"""The `usage` object each OpenAI-compatible dialect reports, field for field.

Cost accounting downstream normalises these shapes; the emulator must therefore reproduce where each
provider puts cached and reasoning tokens, and which fields it omits or nulls (the facts and their
sources are in docs/emulator.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Counts:
    """Token counts of what was actually produced (completion includes reasoning)."""

    prompt: int
    completion: int
    cached: int = 0
    cache_write: int = 0
    reasoning: int = 0
    cache_write_1h: int = 0  # of cache_write: Anthropic's 1-hour writes


def usage_body(dialect: str, counts: Counts) -> dict[str, Any]:
    """The dialect's usage object for `counts` (OpenAI's for a dialect without a recorded shape)."""
    base = {"prompt_tokens": counts.prompt, "completion_tokens": counts.completion,
            "total_tokens": counts.prompt + counts.completion}
    return _SHAPERS.get(dialect, _openai)(base, counts)


def _openai(base: dict, c: Counts) -> dict:
    # openai-python CompletionUsage: details always present on current models
    base["prompt_tokens_details"] = {"cached_tokens": c.cached, "audio_tokens": 0}
    base["completion_tokens_details"] = {"reasoning_tokens": c.reasoning, "audio_tokens": 0,
                                         "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    return base


def _deepseek(base: dict, c: Counts) -> dict:
    # prompt_tokens = prompt_cache_hit_tokens + prompt_cache_miss_tokens
    base["prompt_tokens_details"] = {"cached_tokens": c.cached}
    base["prompt_cache_hit_tokens"] = c.cached
    base["prompt_cache_miss_tokens"] = c.prompt - c.cached
    if c.reasoning:
        base["completion_tokens_details"] = {"reasoning_tokens": c.reasoning}
    return base


def _qwen(base: dict, c: Counts) -> dict:
    # No reasoning-token field seen. DashScope reports cache writes only for its explicit (cache_control)
    # cache, and marks such a request with cache_type "ephemeral": its hits are explicit hits (billed 10% of
    # input, implicit hits 20%). So an answer that reports a cache write (a profile with cache_write_ratio)
    # is an explicit-cache answer, and one that only reports hits is the implicit cache's.
    if c.cached or c.cache_write:
        details: dict[str, Any] = {"cached_tokens": c.cached}
        if c.cache_write:
            details["cache_creation_input_tokens"] = c.cache_write
            details["cache_creation"] = {"ephemeral_5m_input_tokens": c.cache_write}
            details["cache_type"] = "ephemeral"
        base["prompt_tokens_details"] = details
    return base


def _kimi(base: dict, c: Counts) -> dict:
    # cached count reported in both spellings; no reasoning-token field
    if c.cached:
        base["cached_tokens"] = c.cached
        base["prompt_tokens_details"] = {"cached_tokens": c.cached}
    return base


def _glm(base: dict, c: Counts) -> dict:
    if c.cached:
        base["prompt_tokens_details"] = {"cached_tokens": c.cached}
    if c.reasoning:
        base["completion_tokens_details"] = {"reasoning_tokens": c.reasoning}
    return base


def _vllm(base: dict, c: Counts) -> dict:
    # prompt_tokens_details is null unless --enable-prompt-tokens-details; a cache share implies the flag
    base["prompt_tokens_details"] = {"cached_tokens": c.cached} if c.cached else None
    return base


def _sglang(base: dict, c: Counts) -> dict:
    # cached only with --enable-cache-report and > 0; reasoning_tokens is TOP-LEVEL (non-standard)
    base["prompt_tokens_details"] = {"cached_tokens": c.cached} if c.cached else None
    base["reasoning_tokens"] = c.reasoning
    return base


def _lmdeploy(base: dict, c: Counts) -> dict:
    # cached_tokens always present (0 without a prefix hit)
    base["prompt_tokens_details"] = {"cached_tokens": c.cached}
    base["completion_tokens_details"] = {"reasoning_tokens": c.reasoning} if c.reasoning else None
    return base


def _llamacpp(base: dict, c: Counts) -> dict:
    base["prompt_tokens_details"] = {"cached_tokens": c.cached}
    return base


def _ollama(base: dict, c: Counts) -> dict:
    # three fields at fb30760; cached_tokens since PR #17943
    if c.cached:
        base["prompt_tokens_details"] = {"cached_tokens": c.cached}
    return base


_SHAPERS = {"openai": _openai, "deepseek": _deepseek, "qwen": _qwen, "kimi": _kimi, "glm": _glm, "vllm": _vllm,
            "sglang": _sglang, "lmdeploy": _lmdeploy, "llamacpp": _llamacpp, "ollama": _ollama}


def llamacpp_timings(counts: Counts, elapsed_prompt_ms: float, elapsed_predict_ms: float) -> dict[str, Any]:
    """llama.cpp's non-standard top-level `timings`: cache_n = KV-reused prompt tokens, prompt_n = evaluated."""
    prompt_n = counts.prompt - counts.cached
    predicted = counts.completion
    return {
        "cache_n": counts.cached, "prompt_n": prompt_n, "prompt_ms": round(elapsed_prompt_ms, 3),
        "prompt_per_token_ms": round(elapsed_prompt_ms / prompt_n, 3) if prompt_n else 0.0,
        "prompt_per_second": round(prompt_n / elapsed_prompt_ms * 1000, 3) if elapsed_prompt_ms else 0.0,
        "predicted_n": predicted, "predicted_ms": round(elapsed_predict_ms, 3),
        "predicted_per_token_ms": round(elapsed_predict_ms / predicted, 3) if predicted else 0.0,
        "predicted_per_second": round(predicted / elapsed_predict_ms * 1000, 3) if elapsed_predict_ms else 0.0,
    }


def anthropic_usage(counts: Counts) -> dict[str, Any]:
    """Anthropic's usage: input_tokens EXCLUDES cache reads and writes; no total; thinking is in output."""
    return {
        "input_tokens": counts.prompt - counts.cached - counts.cache_write,
        "cache_creation_input_tokens": counts.cache_write,
        "cache_read_input_tokens": counts.cached,
        "cache_creation": {"ephemeral_5m_input_tokens": counts.cache_write - counts.cache_write_1h,
                           "ephemeral_1h_input_tokens": counts.cache_write_1h},
        "output_tokens": counts.completion,
        "service_tier": "standard",
    }

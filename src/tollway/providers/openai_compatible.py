"""What every OpenAI-compatible dialect shares: usage places, the role-only preamble, paths and auth.

DeepSeek, Qwen, Kimi, GLM and the self-hosted servers all speak Chat Completions with small
differences. The differences are data (a reasoning field, error codes, gauges) or one usage reader
(Qwen's cache split); `compatible()` builds a Dialect from them, so a new OpenAI-compatible provider is
one call in its own module. Usage is read from every place any of them puts a count, so the readers
are shared rather than tuned per dialect: a provider that moves a field keeps being read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from tollway.core.usage import Usage
from tollway.providers.dialect import AuthStyle, Dialect, ErrorMeaning
from tollway.providers.usage_fields import count, first_choice, is_mapping, mapping

PATHS: Mapping[str, str] = {"chat": "chat/completions", "completions": "completions", "embeddings": "embeddings"}

UsageBlockReader = Callable[[Mapping, Mapping], Usage]  # (usage object, the body or chunk around it) -> Usage


def compatible(name: str, *, read_usage: UsageBlockReader | None = None, errors: ErrorMeaning = ErrorMeaning(),
               **facts: Any) -> Dialect:
    """An OpenAI-compatible Dialect: the shared paths, Bearer auth, usage places and preamble rule, with
    this dialect's own facts (reasoning_field, gauges, self_hosted, default_base_url, ...)."""
    from_body, from_chunk = usage_readers(read_usage or openai_usage)
    return Dialect(name=name, auth=AuthStyle.BEARER, paths=PATHS, usage_from_body=from_body,
                   usage_from_chunk=from_chunk, stream_usage=lambda: LastUsage(from_chunk), errors=errors,
                   is_preamble=is_role_preamble, **facts)


def usage_readers(read: UsageBlockReader) -> tuple[Callable[[Mapping], Usage | None], Callable[[Mapping], Usage | None]]:
    """(usage of a non-streamed answer, usage of one stream chunk) that find the usage object wherever an
    OpenAI-compatible dialect puts it and hand it to `read`. Closures over `read`, so a call on the
    request path is one frame plus the reader's. Missing or odd fields count as 0; never raise."""

    def from_body(body: Mapping) -> Usage | None:
        """Usage of a Chat Completions or Responses answer; None when it carries none."""
        if not is_mapping(body):
            return None
        usage = body.get("usage")
        if not is_mapping(usage):
            usage = first_choice(body).get("usage")  # Kimi-style: inside choices[0]
            if not is_mapping(usage):
                return None
        return read(usage, body)

    def from_chunk(chunk: Mapping) -> Usage | None:
        """Usage carried by one parsed stream chunk; None if it carries none. Usage in an OpenAI-style
        stream covers the whole request, so the last chunk that carries one wins."""
        if not is_mapping(chunk):
            return None
        if chunk.get("type") == "response.completed":  # Responses API stream
            response = chunk.get("response")
            if not is_mapping(response):
                return None
            usage = response.get("usage")
            return openai_usage(usage, response) if is_mapping(usage) else None
        usage = chunk.get("usage")
        if not is_mapping(usage):
            usage = first_choice(chunk).get("usage")  # Kimi: usage on the finish chunk's choices[0]
            if not is_mapping(usage):
                return None  # includes LMDeploy/OpenAI content chunks with "usage": null
        result = read(usage, chunk)
        if result.total_tokens == 0 and chunk.get("choices"):
            return None  # Ollama /v1/completions puts all-zero usage on every content chunk
        return result

    return from_body, from_chunk


class LastUsage:
    """A stream's usage when every report covers the whole request: the last one wins (vLLM's
    continuous usage stats report on many chunks)."""

    __slots__ = ("read", "usage", "reported_prompt")

    def __init__(self, read: Callable[[Mapping], Usage | None]) -> None:
        self.read = read
        self.usage: Usage | None = None
        self.reported_prompt: Usage | None = None

    def observe(self, chunk: Mapping) -> bool:
        found = self.read(chunk)
        if found is None:
            return False
        self.usage = found
        return True


# The usage keys of a plain Chat Completions answer (OpenAI, vLLM, SGLang, Qwen, Kimi, GLM, ...): with only
# these, most of the other dialects' places cannot hold a count, so openai_usage reads just the rest.
_PLAIN_USAGE_KEYS = frozenset({"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details",
                               "completion_tokens_details"})


def openai_usage(usage: Mapping, container: Mapping) -> Usage:
    """Chat Completions / Responses usage of every OpenAI-compatible dialect (prompt includes cached)."""
    if type(usage) is dict and usage.keys() <= _PLAIN_USAGE_KEYS and "timings" not in container:
        return plain_usage(usage)
    return any_openai_usage(usage, container)


def plain_usage(usage: dict) -> Usage:
    """any_openai_usage for a usage with only _PLAIN_USAGE_KEYS and no llama.cpp timings: the same counts
    without looking where they cannot be (DeepSeek hit/miss, Responses input/output names, top-level cache keys)."""
    get = usage.get
    prompt_details = mapping(get("prompt_tokens_details"))
    prompt = count(get("prompt_tokens"))
    completion = count(get("completion_tokens"))
    cached = count(prompt_details.get("cached_tokens")) if prompt_details else 0
    written = (count(prompt_details.get("cache_creation_input_tokens"))
               or count(prompt_details.get("cache_write_tokens"))) if prompt_details else 0
    output_details = get("completion_tokens_details")
    reasoning = count(mapping(output_details).get("reasoning_tokens")) if output_details else 0
    if cached > prompt:
        cached = prompt
    if written > prompt - cached:
        written = prompt - cached
    return Usage(prompt, cached, written, completion, reasoning if reasoning < completion else completion)


def any_openai_usage(usage: Mapping, container: Mapping) -> Usage:
    """Every place an OpenAI-compatible dialect puts a count."""
    get = usage.get
    prompt_details = mapping(get("prompt_tokens_details")) or mapping(get("input_tokens_details"))
    output_details = mapping(get("completion_tokens_details")) or mapping(get("output_tokens_details"))
    hit, miss = count(get("prompt_cache_hit_tokens")), count(get("prompt_cache_miss_tokens"))
    prompt = count(get("prompt_tokens", get("input_tokens"))) or hit + miss
    completion = count(get("completion_tokens", get("output_tokens")))
    cached = (count(prompt_details.get("cached_tokens")) or hit or count(get("cached_tokens"))
              or count(mapping(container.get("timings")).get("cache_n")))
    written = (count(prompt_details.get("cache_creation_input_tokens")) or count(prompt_details.get("cache_write_tokens"))
               or count(get("cache_creation_input_tokens")))
    reasoning = count(output_details.get("reasoning_tokens")) or count(get("reasoning_tokens"))
    cached = min(cached, prompt)
    return Usage(prompt_tokens=prompt, cached_tokens=cached, cache_write_tokens=min(written, prompt - cached),
                 completion_tokens=completion, reasoning_tokens=min(reasoning, completion))


_SUBSTANCE_KEYS = ("content", "reasoning_content", "reasoning", "tool_calls", "function_call", "refusal")


def is_role_preamble(event: bytes) -> bool:
    """A chunk that only announces the assistant's role (no text, no tool call, no finish, no usage)."""
    if b'"role"' not in event or b'"finish_reason":"' in event or b'"finish_reason": "' in event:
        return False
    payload = event.partition(b"data:")[2].strip()
    try:
        chunk = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(chunk, dict) or chunk.get("usage"):
        return False
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict) or any(map(delta.get, _SUBSTANCE_KEYS)):
            return False
    return True

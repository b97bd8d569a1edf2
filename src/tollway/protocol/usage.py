"""One usage record for every provider dialect.

Providers disagree on where cached and reasoning tokens live and on whether the prompt count includes
cached tokens (Anthropic's `input_tokens` excludes them; everyone else's `prompt_tokens` includes them).
Everything downstream (cost, budgets, the ledger) reads only this record, so the disagreement is settled
here, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

USAGE_REPORTED = "reported"
USAGE_ESTIMATED = "estimated"


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one upstream call, normalised.

    prompt_tokens: every prompt token, including cache reads and cache writes.
    cached_tokens: prompt tokens served from the provider's cache (billed at the cached-input price).
    cache_write_tokens: prompt tokens written to the cache (billed at the cache-write price, if any).
    completion_tokens: every output token, including reasoning tokens.
    reasoning_tokens: the reasoning share of completion_tokens (informational; already inside it).
    source: "reported" when the upstream said so, "estimated" when tollway counted.
    """

    prompt_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    source: str = USAGE_REPORTED

    @property
    def uncached_prompt_tokens(self) -> int:
        """Prompt tokens billed at the plain input price."""
        return max(0, self.prompt_tokens - self.cached_tokens - self.cache_write_tokens)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class CacheSplitUsage(Usage):
    """A Usage whose cache writes are split by lifetime.

    Anthropic bills a 1-hour cache write at 2x input and a 5-minute one at 1.25x, so cost needs the split.
    cache_write_1h_tokens is the 1-hour share of cache_write_tokens. Only returned when that share is
    non-zero; the ledger keeps the total in cache_write_tokens.
    """

    cache_write_1h_tokens: int = 0


DIALECTS = ("openai", "deepseek", "qwen", "kimi", "glm", "vllm", "sglang", "lmdeploy", "llamacpp", "ollama",
            "anthropic")
_EMPTY: Mapping = {}
_KNOWN_DIALECTS = frozenset(DIALECTS)


def usage_from_body(dialect: str, body: Mapping) -> Usage | None:
    """Usage of a non-streamed response (Chat Completions, Responses, or an Anthropic message).

    None when the body carries no usage. Missing or odd fields count as 0; never raises on odd shapes.
    """
    _check_dialect(dialect)
    if not _is_mapping(body):
        return None
    usage = body.get("usage")
    if dialect == "anthropic":
        return _anthropic_usage(usage) if _is_mapping(usage) else None
    if not _is_mapping(usage):
        usage = _first_choice(body).get("usage")  # Kimi-style: inside choices[0]
        if not _is_mapping(usage):
            return None
    return _openai_usage(usage, body)


def usage_from_chunk(dialect: str, chunk: Mapping) -> Usage | None:
    """Usage carried by one parsed stream chunk (or Anthropic event); None if it carries none.

    OpenAI-style usage in a stream covers the whole request, so the last chunk that carries one wins.
    Anthropic splits it: message_start has input and cache counts, message_delta the cumulative output;
    combine them with merge_anthropic_stream (or let StreamUsage do it).
    """
    _check_dialect(dialect)
    if not _is_mapping(chunk):
        return None
    if dialect == "anthropic":
        return _anthropic_event_usage(chunk)
    if chunk.get("type") == "response.completed":  # Responses API stream
        response = chunk.get("response")
        usage = response.get("usage") if _is_mapping(response) else None
        return _openai_usage(usage, response) if _is_mapping(usage) else None
    usage = chunk.get("usage")
    if not _is_mapping(usage):
        usage = _first_choice(chunk).get("usage")  # Kimi: usage on the finish chunk's choices[0]
        if not _is_mapping(usage):
            return None  # includes LMDeploy/OpenAI content chunks with "usage": null
    result = _openai_usage(usage, chunk)
    if result.total_tokens == 0 and chunk.get("choices"):
        return None  # Ollama /v1/completions puts all-zero usage on every content chunk
    return result


def merge_anthropic_stream(start: Usage | None, delta: Mapping) -> Usage:
    """Usage of an Anthropic stream so far: message_start's usage plus a message_delta event (or its usage).

    message_delta counts are cumulative, not increments: its output_tokens replaces the earlier count, and
    the input/cache counts it may repeat (newer API versions) replace message_start's.
    """
    usage = delta.get("usage") if isinstance(delta, Mapping) and delta.get("type") == "message_delta" else delta
    if not isinstance(usage, Mapping):
        usage = _EMPTY
    start = start or Usage()
    start_1h = getattr(start, "cache_write_1h_tokens", 0)
    known = {
        "input_tokens": start.uncached_prompt_tokens,
        "cache_read_input_tokens": start.cached_tokens,
        "cache_creation_input_tokens": start.cache_write_tokens,
        "output_tokens": start.completion_tokens,
    }
    merged = {key: _count(usage[key]) if key in usage else value for key, value in known.items()}
    if "cache_creation" in usage:
        merged["cache_creation"] = usage["cache_creation"]
    elif start_1h:
        merged["cache_creation"] = {"ephemeral_1h_input_tokens": start_1h,
                                    "ephemeral_5m_input_tokens": start.cache_write_tokens - start_1h}
    return _anthropic_usage(merged)


class StreamUsage:
    """Follows one stream's chunks and keeps the usage they report, for any dialect."""

    __slots__ = ("dialect", "usage")

    def __init__(self, dialect: str) -> None:
        _check_dialect(dialect)
        self.dialect = dialect
        self.usage: Usage | None = None

    def observe(self, chunk: Mapping) -> None:
        """Feed every parsed chunk/event; cheap for chunks without usage."""
        if self.dialect != "anthropic":
            found = usage_from_chunk(self.dialect, chunk)
            if found is not None:
                self.usage = found
            return
        if not isinstance(chunk, Mapping):
            return
        kind = chunk.get("type")
        if kind == "message_start":
            self.usage = _anthropic_event_usage(chunk)
        elif kind == "message_delta":
            self.usage = merge_anthropic_stream(self.usage, chunk)


def estimate_tokens(text: str) -> int:
    """A cheap token estimate when the upstream reports none: one token per 4 ASCII characters (rounded
    up) plus one per non-ASCII character (CJK text runs about a token per character)."""
    if not text:
        return 0
    ascii_chars = len(text.encode("ascii", "ignore"))
    return -(-ascii_chars // 4) + (len(text) - ascii_chars)


def estimate_usage(prompt_text: str, completion_text: str) -> Usage:
    """Usage counted by tollway (source="estimated") from the prompt and completion text."""
    return Usage(prompt_tokens=estimate_tokens(prompt_text), completion_tokens=estimate_tokens(completion_text),
                 source=USAGE_ESTIMATED)


def _check_dialect(dialect: str) -> None:
    if dialect not in _KNOWN_DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; known: {', '.join(DIALECTS)}")


def _count(value: object) -> int:
    """A token count from JSON: non-negative int; anything else (None, text, bool) is 0."""
    if type(value) is int:  # the usual cases first: a plain JSON integer (bool is a subclass, not this type)
        return value if value > 0 else 0
    if value is None:
        return 0
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and value == value and value not in (float("inf"), float("-inf")):
        return max(int(value), 0)
    return 0


def _mapping(value: object) -> Mapping:
    if type(value) is dict:  # what JSON decoders give: skip the abstract-class check
        return value
    if value is None:
        return _EMPTY
    return value if isinstance(value, Mapping) else _EMPTY


def _is_mapping(value: object) -> bool:
    return type(value) is dict or (value is not None and isinstance(value, Mapping))


def _first_choice(container: Mapping) -> Mapping:
    choices = container.get("choices")
    if isinstance(choices, list) and choices:
        return _mapping(choices[0])
    return _EMPTY


# The usage keys of a plain Chat Completions answer (OpenAI, vLLM, SGLang, Qwen, Kimi, GLM, ...): with only
# these, most of the other dialects' places cannot hold a count, so _openai_usage reads just the rest.
_PLAIN_USAGE_KEYS = frozenset({"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details",
                               "completion_tokens_details"})


def _openai_usage(usage: Mapping, container: Mapping) -> Usage:
    """Chat Completions / Responses usage of every OpenAI-compatible dialect (prompt includes cached)."""
    if type(usage) is dict and usage.keys() <= _PLAIN_USAGE_KEYS and "timings" not in container:
        return _plain_usage(usage)
    return _any_openai_usage(usage, container)


def _plain_usage(usage: dict) -> Usage:
    """_any_openai_usage for a usage with only _PLAIN_USAGE_KEYS and no llama.cpp timings: the same counts
    without looking where they cannot be (DeepSeek hit/miss, Responses input/output names, top-level cache keys)."""
    get = usage.get
    prompt_details = _mapping(get("prompt_tokens_details"))
    prompt = _count(get("prompt_tokens"))
    completion = _count(get("completion_tokens"))
    cached = _count(prompt_details.get("cached_tokens")) if prompt_details else 0
    written = (_count(prompt_details.get("cache_creation_input_tokens"))
               or _count(prompt_details.get("cache_write_tokens"))) if prompt_details else 0
    output_details = get("completion_tokens_details")
    reasoning = _count(_mapping(output_details).get("reasoning_tokens")) if output_details else 0
    if cached > prompt:
        cached = prompt
    if written > prompt - cached:
        written = prompt - cached
    return Usage(prompt, cached, written, completion, reasoning if reasoning < completion else completion)


def _any_openai_usage(usage: Mapping, container: Mapping) -> Usage:
    """Every place an OpenAI-compatible dialect puts a count."""
    get = usage.get
    prompt_details = _mapping(get("prompt_tokens_details")) or _mapping(get("input_tokens_details"))
    output_details = _mapping(get("completion_tokens_details")) or _mapping(get("output_tokens_details"))
    hit, miss = _count(get("prompt_cache_hit_tokens")), _count(get("prompt_cache_miss_tokens"))
    prompt = _count(get("prompt_tokens", get("input_tokens"))) or hit + miss
    completion = _count(get("completion_tokens", get("output_tokens")))
    cached = (_count(prompt_details.get("cached_tokens")) or hit or _count(get("cached_tokens"))
              or _count(_mapping(container.get("timings")).get("cache_n")))
    written = (_count(prompt_details.get("cache_creation_input_tokens")) or _count(prompt_details.get("cache_write_tokens"))
               or _count(get("cache_creation_input_tokens")))
    reasoning = _count(output_details.get("reasoning_tokens")) or _count(get("reasoning_tokens"))
    cached = min(cached, prompt)
    return Usage(prompt_tokens=prompt, cached_tokens=cached, cache_write_tokens=min(written, prompt - cached),
                 completion_tokens=completion, reasoning_tokens=min(reasoning, completion))


def _anthropic_usage(usage: Mapping) -> Usage:
    """Anthropic usage: input_tokens EXCLUDES cache reads and writes, so the prompt is the sum of all three."""
    uncached = _count(usage.get("input_tokens"))
    read = _count(usage.get("cache_read_input_tokens"))
    split = _mapping(usage.get("cache_creation"))
    write_5m, write_1h = _count(split.get("ephemeral_5m_input_tokens")), _count(split.get("ephemeral_1h_input_tokens"))
    written = _count(usage.get("cache_creation_input_tokens")) or write_5m + write_1h
    fields = dict(prompt_tokens=uncached + read + written, cached_tokens=read, cache_write_tokens=written,
                  completion_tokens=_count(usage.get("output_tokens")))
    if write_1h:
        return CacheSplitUsage(**fields, cache_write_1h_tokens=min(write_1h, written))
    return Usage(**fields)


def _anthropic_event_usage(event: Mapping) -> Usage | None:
    kind = event.get("type")
    if kind == "message_start":
        usage = _mapping(event.get("message")).get("usage")
    elif kind in ("message_delta", "message") or kind is None:
        usage = event.get("usage")
    else:
        return None
    return _anthropic_usage(usage) if isinstance(usage, Mapping) else None

"""Qwen (Alibaba DashScope, compatible mode): which cache a hit came from changes its price.

An explicit (opt-in, `cache_control`) cache marks prompt_tokens_details with cache_type "ephemeral":
its cached_tokens are explicit hits (10% of input), and its writes come as cache_creation_input_tokens
(or as cache_creation.ephemeral_5m_input_tokens). Without the mark, cached_tokens are implicit hits (20%).
"""

from __future__ import annotations

from collections.abc import Mapping

from tollway.core.usage import CacheSplitUsage, Usage
from tollway.providers.openai_compatible import compatible, openai_usage
from tollway.providers.usage_fields import count, mapping


def qwen_usage(usage: Mapping, container: Mapping) -> Usage:
    """DashScope usage: the shared reading, with explicit-cache hits and writes split out."""
    found = openai_usage(usage, container)
    details = mapping(usage.get("prompt_tokens_details"))
    if not details or details.get("cache_type") != "ephemeral":
        return found
    written = found.cache_write_tokens
    if not written:
        created = count(mapping(details.get("cache_creation")).get("ephemeral_5m_input_tokens"))
        written = min(created, found.prompt_tokens - found.cached_tokens)
    if found.cached_tokens:
        return CacheSplitUsage(prompt_tokens=found.prompt_tokens, cached_tokens=found.cached_tokens,
                               cache_write_tokens=written, completion_tokens=found.completion_tokens,
                               reasoning_tokens=found.reasoning_tokens, source=found.source,
                               explicit_cached_tokens=found.cached_tokens)
    return Usage(prompt_tokens=found.prompt_tokens, cached_tokens=found.cached_tokens, cache_write_tokens=written,
                 completion_tokens=found.completion_tokens, reasoning_tokens=found.reasoning_tokens, source=found.source)


DIALECT = compatible("qwen", read_usage=qwen_usage, reasoning_field="reasoning_content")

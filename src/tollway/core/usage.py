"""One usage record for every provider dialect, and the rule tollway counts tokens by when none is reported.

Providers disagree on where cached and reasoning tokens live and on whether the prompt count includes
cached tokens (Anthropic's `input_tokens` excludes them; everyone else's `prompt_tokens` includes them).
Each dialect's parser (tollway.providers) settles the disagreement once, into this record; everything
downstream (cost, budgets, the ledger) reads only the record, so it lives at the bottom layer.
"""

from __future__ import annotations

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
    """A Usage whose cache tokens are split by how they are billed.

    Anthropic bills a 1-hour cache write at 2x input and a 5-minute one at 1.25x; DashScope (Qwen) bills a
    hit on an explicit cache at 10% of input and an automatic one at 20%. cache_write_1h_tokens is the
    1-hour share of cache_write_tokens, explicit_cached_tokens the explicit-cache share of cached_tokens.
    Only returned when a share is non-zero; the ledger keeps the totals.
    """

    cache_write_1h_tokens: int = 0
    explicit_cached_tokens: int = 0


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

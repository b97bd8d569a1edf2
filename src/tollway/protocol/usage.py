"""One usage record for every provider dialect.

Providers disagree on where cached and reasoning tokens live and on whether the prompt count includes
cached tokens (Anthropic's `input_tokens` excludes them; everyone else's `prompt_tokens` includes them).
Everything downstream (cost, budgets, the ledger) reads only this record, so the disagreement is settled
here, once.
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

"""What this process has seen of each deployment's speed: EWMAs for ranking, recent samples for percentiles.

`fastest` needs a current estimate that follows a change within a few requests (an EWMA with a large
weight on the newest sample); hedging and the latency SLO need tail percentiles (p95, p99), which an
EWMA cannot give, so the last few hundred samples are kept as well. Like the breakers, statistics are
per process: each replica learns what its own network path looks like.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque

EWMA_WEIGHT = 0.3   # the newest sample's share: a 10x slowdown shows within one or two requests
WINDOW = 256        # samples kept for percentiles


class SampleWindow:
    """The last WINDOW samples; once a percentile is asked for, also kept in sorted order.

    `fastest` reads p99 of every candidate on every request while every answer adds a sample, so sorting
    on demand would sort WINDOW values per candidate per request. A window that has been read keeps its
    order as samples come and go (a binary search and a short memmove each); one nobody reads (most
    groups never ask for a percentile) pays only for the append."""

    __slots__ = ("_samples", "_sorted")

    def __init__(self) -> None:
        self._samples: deque[float] = deque()
        self._sorted: list[float] | None = None  # made by the first percentile(), then kept up to date

    def add(self, value: float) -> None:
        samples, ordered = self._samples, self._sorted
        if len(samples) == WINDOW:
            oldest = samples.popleft()
            if ordered is not None:
                del ordered[bisect_left(ordered, oldest)]
        samples.append(value)
        if ordered is not None:
            insort(ordered, value)

    def __len__(self) -> int:
        return len(self._samples)

    def percentile(self, p: float) -> float | None:
        """The nearest-rank p-th percentile (p in 0..100), None without samples."""
        if not self._samples:
            return None
        ordered = self._sorted
        if ordered is None:
            ordered = self._sorted = sorted(self._samples)
        rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least 1
        return ordered[int(rank) - 1]


class DeploymentStats:
    """Live latency and cache statistics of one deployment, fed from every finished attempt."""

    __slots__ = ("ttft_ewma_s", "tpot_ewma_s", "ttft", "replies", "cache_hit_ratio", "samples")

    def __init__(self) -> None:
        self.ttft_ewma_s: float | None = None   # time to first token
        self.tpot_ewma_s: float | None = None   # time per output token after the first
        self.ttft = SampleWindow()              # streamed TTFTs (and estimates from plain replies)
        self.replies = SampleWindow()           # whole non-streamed reply times
        self.cache_hit_ratio = 0.0              # share of prompt tokens the provider served from its cache
        self.samples = 0                        # latency observations so far

    def observe_ttft(self, seconds: float) -> None:
        self.ttft_ewma_s = _ewma(self.ttft_ewma_s, seconds)
        self.ttft.add(seconds)
        self.samples += 1

    def observe_tpot(self, seconds: float) -> None:
        self.tpot_ewma_s = _ewma(self.tpot_ewma_s, seconds)

    def observe_reply(self, seconds: float, completion_tokens: int) -> None:
        """A non-streamed answer: its first token came at most (tokens - 1) x TPOT before the end."""
        self.replies.add(seconds)
        decode = (self.tpot_ewma_s or 0.0) * max(0, completion_tokens - 1)
        self.observe_ttft(max(0.0, seconds - decode))

    def observe_cache(self, prompt_tokens: int, cached_tokens: int) -> None:
        if prompt_tokens > 0:
            ratio = min(1.0, max(0.0, cached_tokens / prompt_tokens))
            self.cache_hit_ratio += EWMA_WEIGHT * (ratio - self.cache_hit_ratio)

    def expected_latency_s(self, output_tokens: int) -> float | None:
        """TTFT plus the remaining tokens at the observed pace; None before any observation."""
        if self.ttft_ewma_s is None:
            return None
        return self.ttft_ewma_s + (self.tpot_ewma_s or 0.0) * max(0, output_tokens - 1)


def _ewma(current: float | None, sample: float) -> float:
    return sample if current is None else current + EWMA_WEIGHT * (sample - current)

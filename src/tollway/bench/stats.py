"""Percentiles with a bootstrap confidence interval on p99.

Why: p99 of 200 requests rests on two or three samples, and a capacity decision taken on it should know
how loose it is. The interval is the percentile bootstrap (resample with replacement, take p99, repeat),
computed exactly but cheaply: the k-th smallest of a resample of n values is x[ceil(n*U_(k)) - 1], where
U_(k), the k-th smallest of n uniforms, is Beta(k, n-k+1) distributed and the next one is
U_(k) + (1 - U_(k)) * Beta(1, n-k). Drawing those two numbers per replicate gives the same distribution as
resampling all n values, in O(1) instead of O(n) per replicate, so it stays fast for millions of ITL
samples. Percentiles use linear interpolation between order statistics (numpy's default).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PERCENTILES = (50, 90, 95, 99)
CONFIDENCE = 0.95
RESAMPLES = 2000


@dataclass(frozen=True, slots=True)
class Summary:
    """A distribution in the unit of its input, with a CONFIDENCE interval on p99."""

    n: int
    mean: float
    min: float
    max: float
    p50: float
    p90: float
    p95: float
    p99: float
    p99_ci_low: float
    p99_ci_high: float

    def scaled(self, factor: float) -> Summary:
        """The same summary in another unit (e.g. seconds to milliseconds); n is unchanged."""
        values = {name: getattr(self, name) * factor for name in self.__slots__ if name != "n"}
        return Summary(n=self.n, **values)


def summarize(values: Sequence[float] | np.ndarray, seed: int = 0) -> Summary | None:
    """Summary of `values`, or None when there are none (a metric nobody could measure)."""
    data = np.sort(np.asarray(values, dtype=np.float64))
    if data.size == 0:
        return None
    p50, p90, p95, p99 = (float(v) for v in np.percentile(data, PERCENTILES))
    low, high = bootstrap_percentile_ci(data, 99, np.random.default_rng(seed))
    return Summary(int(data.size), float(data.mean()), float(data[0]), float(data[-1]), p50, p90, p95, p99,
                   low, high)


def bootstrap_percentile_ci(sorted_data: np.ndarray, q: float, rng: np.random.Generator,
                            confidence: float = CONFIDENCE, resamples: int = RESAMPLES) -> tuple[float, float]:
    """Percentile-bootstrap interval for the q-th percentile of already sorted data."""
    n = sorted_data.size
    if n == 1:
        return float(sorted_data[0]), float(sorted_data[0])
    position = (n - 1) * q / 100.0
    below = math.floor(position)
    fraction = position - below
    k = below + 1  # 1-based rank of the lower order statistic
    u_low = rng.beta(k, n - k + 1, size=resamples)
    lower = sorted_data[_rank_index(u_low, n)]
    if k < n and fraction > 0:
        u_high = u_low + (1.0 - u_low) * rng.beta(1, n - k, size=resamples)
        upper = sorted_data[_rank_index(u_high, n)]
        replicates = lower + fraction * (upper - lower)
    else:
        replicates = lower
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    return float(low), float(high)


def _rank_index(uniforms: np.ndarray, n: int) -> np.ndarray:
    return np.clip(np.ceil(uniforms * n).astype(np.int64) - 1, 0, n - 1)

"""Percentiles and the bootstrap interval on p99."""

from __future__ import annotations

import numpy as np
import pytest

from tollway.bench.stats import bootstrap_percentile_ci, summarize


def test_summary_matches_numpy_percentiles():
    values = np.random.default_rng(3).lognormal(3, 0.7, size=1001)
    summary = summarize(values)
    expected = np.percentile(values, [50, 90, 95, 99])
    assert [summary.p50, summary.p90, summary.p95, summary.p99] == pytest.approx(expected.tolist())
    assert summary.n == 1001 and summary.min == values.min() and summary.max == values.max()
    assert summary.p99_ci_low <= summary.p99 <= summary.p99_ci_high


def test_empty_input_has_no_summary_and_one_value_has_a_point_interval():
    assert summarize([]) is None
    single = summarize([4.0])
    assert (single.p50, single.p99, single.p99_ci_low, single.p99_ci_high) == (4.0, 4.0, 4.0, 4.0)


@pytest.mark.parametrize("n", [37, 250])
def test_order_statistic_bootstrap_agrees_with_brute_force_resampling(n):
    """The O(1)-per-replicate bootstrap must give the same interval as resampling all values."""
    data = np.sort(np.random.default_rng(n).exponential(10.0, size=n))
    fast = bootstrap_percentile_ci(data, 99, np.random.default_rng(1), resamples=20000)
    rng = np.random.default_rng(2)
    replicates = np.percentile(data[rng.integers(0, n, size=(20000, n))], 99, axis=1)
    slow = np.percentile(replicates, [2.5, 97.5])
    spread = data[-1] - data[0]
    assert fast[0] == pytest.approx(slow[0], abs=0.02 * spread)
    assert fast[1] == pytest.approx(slow[1], abs=0.02 * spread)


def test_interval_narrows_with_more_samples():
    rng = np.random.default_rng(5)
    small = summarize(rng.exponential(1.0, size=100))
    large = summarize(rng.exponential(1.0, size=100_000))
    assert (large.p99_ci_high - large.p99_ci_low) < (small.p99_ci_high - small.p99_ci_low) / 5


def test_scaled_converts_every_statistic_but_the_count():
    summary = summarize([0.1, 0.2, 0.3]).scaled(1000.0)
    assert summary.n == 3 and summary.p50 == pytest.approx(200.0) and summary.max == pytest.approx(300.0)

"""Percentiles as the dashboard and `tollway report` state them: linear interpolation between ranks.

For sorted values x[0..n-1], the q-th percentile is x at rank (n-1)*q/100, interpolated between the two
nearest ranks (numpy's default, "type 7"). One definition everywhere, so a figure on the page and in a
report can be checked by hand against the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) of already sorted values; None when there are none."""
    if not sorted_values:
        return None
    rank = (len(sorted_values) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = rank - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction

"""Hedged requests: when the first deployment is slow to answer, race the next one, within a budget.

A stalled upstream hurts the tail (p99) far more than the average; sending the same request to a second
deployment once the first is later than it usually is (its observed p95 time to first token, or a fixed
delay) cuts that tail at the price of some duplicate work. The budget bounds that price: each request
of the group earns `budget_percent / 100` of a hedge, a hedge spends one, so over any stretch of traffic
hedges are at most that share of requests (plus a small burst allowance).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from tollway.routing.settings import HedgeSettings
from tollway.routing.table import RoutedDeployment

BURST = 2  # hedges that may be saved up during quiet stretches
_HEDGE = 10000  # one hedge in credit units: a request earns budget_percent x 100 of them (exact integers)


class HedgeBudget:
    """Credits earned per request and spent per hedge; never more than `percent` hedges per 100 requests."""

    __slots__ = ("_rate", "_credit", "requests", "hedges")

    def __init__(self, percent: float) -> None:
        self._rate = round(percent * 100)
        self._credit = 0
        self.requests = 0
        self.hedges = 0

    def earn(self) -> None:
        """One request of the group arrived."""
        self.requests += 1
        self._credit = min(BURST * _HEDGE, self._credit + self._rate)

    def has_credit(self) -> bool:
        return self._credit >= _HEDGE

    def spend(self) -> bool:
        """Take one hedge if the budget has it."""
        if self._credit < _HEDGE:
            return False
        self._credit -= _HEDGE
        self.hedges += 1
        return True


@dataclass(slots=True)
class HedgePolicy:
    """One request's hedging: when to start the next candidate, the group's budget, and how to price a loser."""

    settings: HedgeSettings
    budget: HedgeBudget
    streamed: bool
    estimate_loser: Callable[[RoutedDeployment], tuple[int, Decimal | None]]  # -> (prompt tokens, USD or None)

    def delay_s(self, dep: RoutedDeployment) -> float:
        """How long `dep` gets before the next candidate is started."""
        settings = self.settings
        if settings.after_ms is not None:
            return settings.after_ms / 1000
        window = dep.stats.ttft if self.streamed else dep.stats.replies
        if len(window) >= settings.min_samples:
            observed = window.percentile(settings.percentile)
            if observed is not None:
                return observed
        return settings.fallback_ms / 1000

    def describe(self, dep: RoutedDeployment) -> str:
        settings = self.settings
        if settings.after_ms is not None:
            return f"hedge after {settings.after_ms:g} ms"
        window = dep.stats.ttft if self.streamed else dep.stats.replies
        if len(window) >= settings.min_samples:
            return f"hedge after p{settings.percentile:g} = {self.delay_s(dep) * 1000:.0f} ms"
        return f"hedge after {settings.fallback_ms:g} ms (fewer than {settings.min_samples} samples for p{settings.percentile:g})"

"""Sums of a replay, overall, by route group and by day, in exact dollars.

"Difference" compares like with like: only requests the candidate can serve and price, and whose logged
cost is known, enter `compared_current_usd` and `candidate_usd`. Requests the candidate cannot serve are
counted by reason instead; their current cost stays in `current_usd`, so the table shows how much of
today's spend the comparison covers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from tollway.plan.replay_decisions import (
    EXACT,
    UNSERVEABLE_REASONS,
    RowDecision,
    day_of,
    ignored_options,
)
from tollway.routing.table import RouteTable

_ZERO = Decimal(0)


@dataclass(slots=True)
class Tally:
    """One line of the report."""

    requests: int = 0
    served: int = 0                          # the candidate has a deployment for them
    unserveable: Counter = field(default_factory=Counter)  # reason -> requests
    unpriced: int = 0                        # served, but a chosen deployment has no price at that time
    current_unpriced: int = 0                # the ledger's own cost is unknown (priced = 0)
    approximate: int = 0
    current_usd: Decimal = _ZERO             # every replayed request's logged cost
    compared: int = 0
    compared_current_usd: Decimal = _ZERO
    candidate_usd: Decimal = _ZERO

    @property
    def difference_usd(self) -> Decimal:
        """Candidate minus current over the compared requests: negative is a saving."""
        return EXACT.subtract(self.candidate_usd, self.compared_current_usd)

    def add(self, decision: RowDecision) -> None:
        request = decision.request
        self.requests += 1
        self.current_usd = EXACT.add(self.current_usd, request.cost_usd)
        if not request.priced:
            self.current_unpriced += 1
        if decision.approximate is not None:
            self.approximate += 1
        if decision.unserveable is not None:
            self.unserveable[decision.unserveable] += 1
            return
        self.served += 1
        if decision.cost_usd is None:
            self.unpriced += 1
        elif request.priced:
            self.compared += 1
            self.compared_current_usd = EXACT.add(self.compared_current_usd, request.cost_usd)
            self.candidate_usd = EXACT.add(self.candidate_usd, decision.cost_usd)


@dataclass(slots=True)
class ReplayTotals:
    total: Tally = field(default_factory=Tally)
    by_group: dict[str, Tally] = field(default_factory=dict)
    by_day: dict[str, Tally] = field(default_factory=dict)
    without_features: int = 0               # rows logged before request features were recorded
    decisions: list[RowDecision] | None = None  # kept only when asked for (--rows)
    notes: dict[str, list[str]] = field(default_factory=dict)  # route group -> what replay did not model

    def add(self, decision: RowDecision) -> None:
        self.total.add(decision)
        self.by_group.setdefault(decision.group, Tally()).add(decision)
        self.by_day.setdefault(day_of(decision.request.ts), Tally()).add(decision)
        if not decision.request.features.recorded:
            self.without_features += 1
        if self.decisions is not None:
            self.decisions.append(decision)


def tally(decisions: Iterable[RowDecision], table: RouteTable, keep_rows: bool = False) -> ReplayTotals:
    """Sum decisions as they stream by; with keep_rows, keep each one for a per-row report."""
    totals = ReplayTotals(decisions=[] if keep_rows else None)
    for decision in decisions:
        totals.add(decision)
    for name in sorted(totals.by_group):
        group = table.groups.get(name)
        notes = ignored_options(group) if group is not None else []
        if notes:
            totals.notes[name] = notes
    return totals


def reasons(tally_: Tally) -> dict[str, int]:
    """Unserveable counts for every reason, zeros included, in a fixed order."""
    return {reason: tally_.unserveable.get(reason, 0) for reason in UNSERVEABLE_REASONS}

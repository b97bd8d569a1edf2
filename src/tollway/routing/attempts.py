"""What one attempt at a deployment leaves for the ledger's `attempts` list, and for routing's statistics.

The walk records every attempt it makes; the router's model classifier and shadow copies record theirs
the same way, so they share this record rather than the walk that makes most of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tollway.core.money import decimal_text
from tollway.routing.table import RoutedDeployment

EXTRA_COST_OUTCOMES = ("cancelled", "routing_overhead")  # attempts whose cost adds to the answer's
NOT_TRIES = ("skipped", "routing_overhead")  # records that were not an attempt at answering


@dataclass(slots=True)
class AttemptRecord:
    deployment: RoutedDeployment
    outcome: str  # ok | retry | failover | fatal | skipped | cancelled (hedge loser) | routing_overhead
    error: str = ""
    status: int | None = None
    latency_ms: float = 0.0
    kind: str = ""
    cost_usd: Decimal | None = None  # for EXTRA_COST_OUTCOMES: what this attempt cost (None: no price known)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ended_at: float = 0.0            # loop time it ended; live statistics use it, the ledger does not
    key: str = ""                    # the provider key's label, when the provider has several

    def to_ledger(self) -> dict:
        dep = self.deployment
        entry = {"deployment": dep.name, "provider": dep.provider, "jurisdiction": dep.jurisdiction,
                 "outcome": self.outcome, "status": self.status, "error": self.error, "kind": self.kind,
                 "latency_ms": round(self.latency_ms, 3)}
        if self.key:
            entry["key"] = self.key
        if self.outcome in EXTRA_COST_OUTCOMES:
            entry.update(cost_usd=None if self.cost_usd is None else decimal_text(self.cost_usd),
                         prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens)
        return entry

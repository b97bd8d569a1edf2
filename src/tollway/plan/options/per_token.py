"""A per-token API: cost is volume times the week-blended rate, batchable share at the batch price."""

from __future__ import annotations

from decimal import Decimal

from tollway.plan.options.base import MonthlyCost, PricedOption, Sizing
from tollway.plan.options.token_rates import TokenPricer
from tollway.plan.scenario import PerTokenOption
from tollway.plan.workload import Workload


class PerTokenPriced(PricedOption):
    """Linear in volume; only a provider rate limit (tokens per minute), if given, bounds it."""

    kind = "per_token"

    def __init__(self, spec: PerTokenOption, pricer: TokenPricer) -> None:
        self.spec = spec
        self.name = spec.name
        self.pricer = pricer

    def monthly_cost(self, workload: Workload, units: int | None = None) -> MonthlyCost:
        cost = self.pricer.monthly_cost(workload)
        limit = self.spec.rate_limit_tpm
        peak = workload.peak_tpm()
        if limit is not None and peak > limit:
            return MonthlyCost(cost, {"tokens": cost}, fits=False,
                               why_not=f"peak {peak:.0f} tokens/min exceeds the rate limit {limit}")
        return MonthlyCost(cost, {"tokens": cost})

    @property
    def notes(self) -> tuple[str, ...]:
        return self.pricer.notes

    def breakpoints(self, workload: Workload, up_to_scale: Decimal) -> list[Decimal]:
        return []

    def max_scale(self, workload: Workload) -> Decimal | None:
        limit = self.spec.rate_limit_tpm
        return None if limit is None else limit / workload.peak_tpm()

    def sizing(self, workload: Workload) -> Sizing:
        details = {"prices": self.pricer.description}
        if workload.batchable_share:
            details["batchable share"] = f"{workload.batchable_share}"
        if self.spec.rate_limit_tpm is not None:
            details["rate limit"] = f"{self.spec.rate_limit_tpm} tokens/min"
        return Sizing(unit_label=None, units=None, capacity_tpm=self.spec.rate_limit_tpm, details=details)

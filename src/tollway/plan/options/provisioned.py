"""Provisioned throughput (PTU-style): a reserved tokens-per-minute tier for a monthly fee.

Traffic above the reservation spills to a per-token deployment (the `overflow` price source) hour by
hour of the weekly shape; without one, the option only fits while the peak stays under the
reservation. Output tokens can count more than input tokens against the reservation
(`output_token_weight`), as some providers meter them. Bursts inside an hour are not visible at the
hourly grain, so overflow is a lower bound when the peak-to-average exceeds the profile's own.
"""

from __future__ import annotations

from decimal import Decimal

from tollway.plan.options.base import MonthlyCost, PricedOption, Sizing
from tollway.plan.options.token_rates import TokenPricer
from tollway.plan.scenario import ProvisionedOption
from tollway.plan.workload import Workload

ZERO = Decimal(0)


class ProvisionedPriced(PricedOption):
    """Fee plus per-token overflow; piecewise linear in volume, with a kink wherever an hour starts to spill."""

    kind = "provisioned"

    def __init__(self, spec: ProvisionedOption, overflow: TokenPricer | None) -> None:
        self.spec = spec
        self.name = spec.name
        self.overflow = overflow

    def overflow_fractions(self, workload: Workload) -> list[Decimal]:
        """Per hour of the week, the share of its tokens above the reservation."""
        reserved = self.spec.reserved_tpm
        week_tpm = workload.hour_tpm_per_weight(self.spec.output_token_weight)
        fractions = []
        for weight in workload.hour_weights:
            rate = week_tpm * weight
            fractions.append((rate - reserved) / rate if rate > reserved else ZERO)
        return fractions

    def monthly_cost(self, workload: Workload, units: int | None = None) -> MonthlyCost:
        fee = self.spec.monthly_fee
        if self.overflow is None:
            peak = workload.peak_tpm(self.spec.output_token_weight)
            if peak > self.spec.reserved_tpm:
                return MonthlyCost(fee, {"fee": fee}, fits=False,
                                   why_not=f"peak {peak:.0f} tokens/min exceeds the reserved "
                                           f"{self.spec.reserved_tpm} and no overflow is configured")
            return MonthlyCost(fee, {"fee": fee})
        spill = self.overflow.monthly_cost(workload, self.overflow_fractions(workload))
        return MonthlyCost(fee + spill, {"fee": fee, "overflow": spill})

    @property
    def notes(self) -> tuple[str, ...]:
        return self.overflow.notes if self.overflow is not None else ()

    def breakpoints(self, workload: Workload, up_to_scale: Decimal) -> list[Decimal]:
        """The volume multiples at which each hour of the week reaches the reservation."""
        points = set()
        week_tpm = workload.hour_tpm_per_weight(self.spec.output_token_weight)
        for weight in workload.hour_weights:
            rate = week_tpm * weight
            if rate > 0:
                scale = self.spec.reserved_tpm / rate
                if scale < up_to_scale:
                    points.add(scale)
        return sorted(points)

    def max_scale(self, workload: Workload) -> Decimal | None:
        if self.overflow is not None:
            return None
        return self.spec.reserved_tpm / workload.peak_tpm(self.spec.output_token_weight)

    def capacity_scale(self, workload: Workload, units: int | None) -> Decimal | None:
        return self.spec.reserved_tpm / workload.average_tpm(self.spec.output_token_weight)

    def sizing(self, workload: Workload) -> Sizing:
        details = {"reserved": f"{self.spec.reserved_tpm} tokens/min", "monthly fee": f"{self.spec.monthly_fee}"}
        if self.spec.output_token_weight != 1:
            details["output token weight"] = f"{self.spec.output_token_weight}"
        if self.overflow is None:
            details["overflow"] = "none (option fits only while the peak stays under the reservation)"
        else:
            fractions = self.overflow_fractions(workload)
            spilled = sum((w * f for w, f in zip(workload.hour_weights, fractions, strict=True)),
                          ZERO) / workload.hour_total
            details["overflow"] = f"{self.overflow.description}; {spilled * 100:.1f}% of tokens spill"
        return Sizing(unit_label=None, units=None, capacity_tpm=self.spec.reserved_tpm, details=details)

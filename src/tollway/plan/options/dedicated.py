"""Dedicated units (Model-Unit-style): a flat monthly fee per unit, each unit good for `unit_tpm`.

Units are bought for the peak, not the average: units = ceil(peak TPM x (1 + headroom) / unit TPM),
never fewer than `min_units`. The headroom absorbs bursts the hourly shape cannot see and keeps
latency at the SLO. Cost is a staircase in volume; each step is a breakpoint for the break-even solver.
"""

from __future__ import annotations

from decimal import Decimal

from tollway.plan.options.base import MonthlyCost, PricedOption, Sizing, ceil_div, unit_steps
from tollway.plan.scenario import DedicatedOption
from tollway.plan.workload import Workload


class DedicatedPriced(PricedOption):
    """units x fee, with units sized for the peak plus headroom."""

    kind = "dedicated"

    def __init__(self, spec: DedicatedOption) -> None:
        self.spec = spec
        self.name = spec.name

    def sized_tpm(self, workload: Workload) -> Decimal:
        """The rate the units must carry: the peak plus headroom."""
        return workload.peak_tpm(self.spec.output_token_weight) * (1 + self.spec.headroom)

    def units_needed(self, workload: Workload) -> int:
        return max(self.spec.min_units, ceil_div(self.sized_tpm(workload), self.spec.unit_tpm))

    def monthly_cost(self, workload: Workload, units: int | None = None) -> MonthlyCost:
        needed = self.units_needed(workload)
        deployed = needed if units is None else units
        fee = self.spec.unit_monthly_fee * deployed
        parts = {"units": fee}
        if needed > deployed:
            return MonthlyCost(fee, parts, deployed, fits=False, why_not=f"needs {needed} units, has {deployed}")
        if self.spec.max_units is not None and deployed > self.spec.max_units:
            return MonthlyCost(fee, parts, deployed, fits=False,
                               why_not=f"needs {deployed} units, more than max_units {self.spec.max_units}")
        return MonthlyCost(fee, parts, deployed)

    def per_unit_scale(self, workload: Workload) -> Decimal:
        """How much of a multiple of `workload` one unit carries at the peak with headroom."""
        return self.spec.unit_tpm / self.sized_tpm(workload)

    def breakpoints(self, workload: Workload, up_to_scale: Decimal) -> list[Decimal]:
        return unit_steps(self.per_unit_scale(workload), self.spec.min_units, up_to_scale)

    def max_scale(self, workload: Workload) -> Decimal | None:
        if self.spec.max_units is None:
            return None
        return self.per_unit_scale(workload) * self.spec.max_units

    def capacity_scale(self, workload: Workload, units: int | None) -> Decimal | None:
        deployed = self.units_needed(workload) if units is None else units
        return self.spec.unit_tpm * deployed / workload.average_tpm(self.spec.output_token_weight)

    def sizing(self, workload: Workload) -> Sizing:
        units = self.units_needed(workload)
        details = {
            "sized for": f"{self.sized_tpm(workload):.0f} tokens/min (peak x {1 + self.spec.headroom} headroom)",
            "unit": f"{self.spec.unit_tpm} tokens/min at {self.spec.unit_monthly_fee} USD/month",
        }
        if self.spec.max_units is not None:
            details["max units"] = str(self.spec.max_units)
        return Sizing(unit_label="units", units=units, capacity_tpm=self.spec.unit_tpm * units, details=details)

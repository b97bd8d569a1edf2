"""Self-hosted GPUs: replicas for the peak at the latency SLO, plus spares, power and the people who run it.

A replica's throughput is what `tollway bench` measured at the highest load that still met the SLOs
(or what the user states): output tokens/s, total tokens/s, or both. With both, the replica count is
the larger of the two requirements, because a workload heavier in prompts than the benchmark's
saturates on total tokens and one heavier in answers saturates on output tokens. Replicas =
ceil(peak TPM / replica TPM) (at least `min_replicas`) + `spare_replicas` (N+1 by default). Spares
are paid for, so they count in the utilisation denominator too.
"""

from __future__ import annotations

from decimal import Decimal

from tollway.plan.options.base import HOURS_PER_MONTH, MonthlyCost, PricedOption, Sizing, ceil_div, unit_steps
from tollway.plan.scenario import ScenarioError, SelfHostedOption
from tollway.plan.workload import MINUTES_PER_DAY, Workload

KILO = Decimal(1000)
MONTHS_PER_YEAR = Decimal(12)


class SelfHostedPriced(PricedOption):
    """GPU-hours + power + people + other, a staircase in volume (one step per replica)."""

    kind = "self_hosted"

    def __init__(self, spec: SelfHostedOption, where: str) -> None:
        if spec.replica_output_tokens_per_s is None and spec.replica_total_tokens_per_s is None:
            raise ScenarioError(f"{where}: give replica_output_tokens_per_s and/or replica_total_tokens_per_s, "
                                "or bench: {json: FILE, target: NAME} (or --bench-json/--bench-target)")
        if spec.max_replicas is not None and spec.max_replicas <= spec.spare_replicas:
            raise ScenarioError(f"{where}.max_replicas: {spec.max_replicas} leaves no serving replica beside "
                                f"{spec.spare_replicas} spare(s)")
        self.spec = spec
        self.name = spec.name

    def _bases(self, workload: Workload) -> list[tuple[str, Decimal, Decimal]]:
        """(basis, replica tokens/min, workload average tokens/min) for each stated throughput."""
        bases = []
        if self.spec.replica_output_tokens_per_s is not None:
            bases.append(("output", self.spec.replica_output_tokens_per_s * 60,
                          workload.daily_output_tokens / MINUTES_PER_DAY))
        if self.spec.replica_total_tokens_per_s is not None:
            bases.append(("total", self.spec.replica_total_tokens_per_s * 60, workload.average_tpm()))
        return bases

    def serving_replicas(self, workload: Workload) -> int:
        """Replicas carrying the peak: ceil(peak TPM / replica TPM) on the binding basis, at least min."""
        needed = [ceil_div(average * workload.peak_to_average, capacity)
                  for _, capacity, average in self._bases(workload)]
        return max([self.spec.min_replicas, *needed])

    def replicas(self, workload: Workload) -> int:
        return self.serving_replicas(workload) + self.spec.spare_replicas

    def monthly_cost(self, workload: Workload, units: int | None = None) -> MonthlyCost:
        needed = self.replicas(workload)
        deployed = needed if units is None else units
        gpus = Decimal(deployed * self.spec.gpus_per_replica)
        parts = {
            "gpus": gpus * self.spec.gpu_hourly * HOURS_PER_MONTH,
            "power": gpus * self.spec.gpu_watts / KILO * self.spec.pue * HOURS_PER_MONTH * self.spec.power_usd_per_kwh,
            "people": self.spec.fte * self.spec.fte_annual_usd / MONTHS_PER_YEAR,
            "other": self.spec.other_monthly_usd,
        }
        total = sum(parts.values(), Decimal(0))
        if needed > deployed:
            return MonthlyCost(total, parts, deployed, fits=False, why_not=f"needs {needed} replicas, has {deployed}")
        if self.spec.max_replicas is not None and deployed > self.spec.max_replicas:
            return MonthlyCost(total, parts, deployed, fits=False,
                               why_not=f"needs {deployed} replicas, more than max_replicas {self.spec.max_replicas}")
        return MonthlyCost(total, parts, deployed)

    def _per_replica_scales(self, workload: Workload) -> list[Decimal]:
        """Per basis: the multiple of `workload` whose peak one replica carries."""
        return [capacity / (average * workload.peak_to_average)
                for _, capacity, average in self._bases(workload) if average > 0]

    def breakpoints(self, workload: Workload, up_to_scale: Decimal) -> list[Decimal]:
        points: set[Decimal] = set()
        for per_replica in self._per_replica_scales(workload):
            points.update(unit_steps(per_replica, self.spec.min_replicas, up_to_scale))
        return sorted(points)

    def max_scale(self, workload: Workload) -> Decimal | None:
        if self.spec.max_replicas is None:
            return None
        serving = self.spec.max_replicas - self.spec.spare_replicas
        return min(per_replica * serving for per_replica in self._per_replica_scales(workload))

    def capacity_scale(self, workload: Workload, units: int | None) -> Decimal | None:
        deployed = self.replicas(workload) if units is None else units
        scales = [capacity * deployed / average for _, capacity, average in self._bases(workload) if average > 0]
        return min(scales) if scales else None

    def sizing(self, workload: Workload) -> Sizing:
        serving = self.serving_replicas(workload)
        details = {
            "replicas": f"{serving} serving + {self.spec.spare_replicas} spare, {self.spec.gpus_per_replica} "
                        f"GPU(s) each at {self.spec.gpu_hourly} USD/h ({self.spec.gpu_pricing})",
        }
        for basis, capacity, average in self._bases(workload):
            details[f"{basis} tokens/min"] = (f"peak {average * workload.peak_to_average:.0f} vs "
                                              f"{capacity:.0f} per replica")
        if self.spec.fte:
            details["people"] = f"{self.spec.fte} FTE x {self.spec.fte_annual_usd} USD/year"
        replicas = serving + self.spec.spare_replicas
        capacity_tpm = None
        if self.spec.replica_total_tokens_per_s is not None:
            capacity_tpm = self.spec.replica_total_tokens_per_s * 60 * replicas
        return Sizing(unit_label="replicas", units=replicas, capacity_tpm=capacity_tpm, details=details)

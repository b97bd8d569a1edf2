"""The workload every option is priced for: daily token volumes, their weekly shape, growth and mix.

One resolved record, whether it came from a scenario file, command-line flags or the ledger, so the
pricing code never has to know where the numbers came from. Volumes are Decimal because they multiply
prices; the weekly shape is 168 relative hourly weights (Monday 00:00 UTC first) so time-of-day prices such as
DeepSeek's peak/off-peak can be applied hour by hour. The weights are kept as given (not normalised)
and divided by their sum only at the end of each sum, so an integer profile prices exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

from tollway.plan.scenario import ScenarioError, WorkloadSpec

HOURS_PER_WEEK = 168
MINUTES_PER_DAY = Decimal(1440)
FLAT_WEEK: tuple[Decimal, ...] = (Decimal(1),) * HOURS_PER_WEEK


@dataclass(frozen=True)
class ModelShare:
    """Daily tokens one (provider, model) served, as found in the ledger."""

    provider: str
    model: str
    daily_input_tokens: Decimal
    daily_cached_tokens: Decimal
    daily_cache_write_tokens: Decimal
    daily_output_tokens: Decimal
    daily_requests: Decimal

    def scaled(self, factor: Decimal) -> "ModelShare":
        return replace(
            self,
            daily_input_tokens=self.daily_input_tokens * factor,
            daily_cached_tokens=self.daily_cached_tokens * factor,
            daily_cache_write_tokens=self.daily_cache_write_tokens * factor,
            daily_output_tokens=self.daily_output_tokens * factor,
            daily_requests=self.daily_requests * factor,
        )


@dataclass(frozen=True)
class Workload:
    """Traffic to price. `daily_input_tokens` counts every prompt token, cached and cache-write included."""

    daily_input_tokens: Decimal
    daily_output_tokens: Decimal
    daily_cached_tokens: Decimal = Decimal(0)
    daily_cache_write_tokens: Decimal = Decimal(0)
    hour_weights: tuple[Decimal, ...] = FLAT_WEEK
    peak_to_average: Decimal = Decimal(1)
    growth_per_month: Decimal = Decimal(0)
    batchable_share: Decimal = Decimal(0)
    mean_prompt_tokens: int = 0
    model_mix: tuple[ModelShare, ...] = ()
    source: str = "scenario"
    notes: tuple[str, ...] = field(default=())

    @property
    def daily_tokens(self) -> Decimal:
        """Input plus output: the volume axis of every chart and break-even."""
        return self.daily_input_tokens + self.daily_output_tokens

    @property
    def daily_uncached_input_tokens(self) -> Decimal:
        return self.daily_input_tokens - self.daily_cached_tokens - self.daily_cache_write_tokens

    @property
    def hour_total(self) -> Decimal:
        """Sum of the relative hourly weights (a share of the week is weight / hour_total)."""
        return sum(self.hour_weights, Decimal(0))

    @property
    def hour_shares(self) -> tuple[Decimal, ...]:
        """The weekly shape normalised to shares that sum to 1 (for display)."""
        total = self.hour_total
        return tuple(weight / total for weight in self.hour_weights)

    @property
    def profile_peak_to_average(self) -> Decimal:
        """Busiest hour of the weekly shape over the mean hour."""
        return max(self.hour_weights) * HOURS_PER_WEEK / self.hour_total

    def weighted_daily_tokens(self, output_weight: Decimal = Decimal(1)) -> Decimal:
        """Tokens as a capacity counts them when an output token uses `output_weight` input tokens' worth."""
        return self.daily_input_tokens + self.daily_output_tokens * output_weight

    def average_tpm(self, output_weight: Decimal = Decimal(1)) -> Decimal:
        return self.weighted_daily_tokens(output_weight) / MINUTES_PER_DAY

    def peak_tpm(self, output_weight: Decimal = Decimal(1)) -> Decimal:
        """The rate capacity must be sized for: the average times the peak-to-average ratio."""
        return self.average_tpm(output_weight) * self.peak_to_average

    def hour_tpm(self, hour: int, output_weight: Decimal = Decimal(1)) -> Decimal:
        """Average tokens per minute during one hour of the representative week."""
        return self.hour_tpm_per_weight(output_weight) * self.hour_weights[hour]

    def hour_tpm_per_weight(self, output_weight: Decimal = Decimal(1)) -> Decimal:
        """Tokens per minute of an hour whose weight is 1 (an hour's rate is this times its weight)."""
        return self.weighted_daily_tokens(output_weight) * 7 / 60 / self.hour_total

    def scaled(self, factor: Decimal) -> "Workload":
        """The same mix and shape at `factor` times the volume."""
        return replace(
            self,
            daily_input_tokens=self.daily_input_tokens * factor,
            daily_output_tokens=self.daily_output_tokens * factor,
            daily_cached_tokens=self.daily_cached_tokens * factor,
            daily_cache_write_tokens=self.daily_cache_write_tokens * factor,
            model_mix=tuple(share.scaled(factor) for share in self.model_mix),
        )


def week_weights(profile: list[Decimal] | tuple[Decimal, ...] | None) -> tuple[Decimal, ...]:
    """168 relative weights from a 24-hour (repeated each day) or 168-hour profile; flat if none."""
    if not profile:
        return FLAT_WEEK
    week = list(profile) * 7 if len(profile) == 24 else list(profile)
    if len(week) != HOURS_PER_WEEK:
        raise ValueError(f"an hourly profile needs 24 or 168 values, got {len(profile)}")
    if sum(week, Decimal(0)) <= 0:
        raise ValueError("an hourly profile must not sum to zero")
    return tuple(Decimal(value) for value in week)


def workload_from_spec(spec: WorkloadSpec, source: str = "scenario") -> Workload:
    """Resolve a validated scenario workload; the peak defaults to the profile's own busiest hour."""
    weights = week_weights(spec.hourly_profile)
    profile_peak = max(weights) * HOURS_PER_WEEK / sum(weights, Decimal(0))
    notes: list[str] = []
    if spec.peak_to_average is None:
        peak = profile_peak
        if spec.hourly_profile is None:
            notes.append("no hourly profile or peak_to_average given: traffic assumed flat (peak = average)")
    else:
        peak = spec.peak_to_average
        if peak < profile_peak:
            raise ScenarioError(f"workload.peak_to_average: {peak} is below the hourly profile's own busiest hour "
                             f"({profile_peak:.3f} x average); raise it or drop it")
    return Workload(
        daily_input_tokens=spec.daily_input_tokens,
        daily_output_tokens=spec.daily_output_tokens,
        daily_cached_tokens=spec.daily_cached_tokens,
        daily_cache_write_tokens=spec.daily_cache_write_tokens,
        hour_weights=weights,
        peak_to_average=peak,
        growth_per_month=spec.growth_per_month,
        batchable_share=spec.batchable_share,
        mean_prompt_tokens=spec.mean_prompt_tokens,
        source=source,
        notes=tuple(notes),
    )

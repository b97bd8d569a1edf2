"""Which input moves the answer most: a one-at-a-time sweep (a tornado table).

The answer is the option with the lowest present cost over the longest horizon. Each input is moved
down and up by the scenario's step (20% by default) while everything else stays put, and the table
says how far the winning cost moves and whether the winner itself changes. Rates that are often zero
move by fixed points instead (growth +/-1 point a month, discount rate +/-2 points a year), because a
percentage of zero is no move at all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Callable, Sequence

from tollway.plan.economics import horizon_costs
from tollway.plan.figures import share, tokens, usd
from tollway.plan.options import build_options
from tollway.plan.options.token_rates import PriceLookup
from tollway.plan.scenario import (DedicatedOption, Option, PerTokenOption, ProvisionedOption, SelfHostedOption,
                                   TokenPriceSource)
from tollway.plan.workload import Workload

GROWTH_POINTS = Decimal("0.01")
DISCOUNT_POINTS = Decimal("0.02")


@dataclass(frozen=True)
class PlanInputs:
    """Everything the answer depends on, so one input can be swapped at a time."""

    specs: tuple[Option, ...]
    workload: Workload
    discount_rate: Decimal


@dataclass(frozen=True)
class Answer:
    option: str | None
    present_value: Decimal | None


@dataclass(frozen=True)
class SensitivityRow:
    """One input moved down and up: its values, the winner and the winner's present cost at each end."""

    input: str
    low: str
    high: str
    answer_low: Answer
    answer_high: Answer
    swing: Decimal
    answer_changes: bool


def answer(inputs: PlanInputs, years: int, catalog: PriceLookup | None, at: datetime) -> Answer:
    """The option with the lowest present cost over `years` among those that fit throughout."""
    best: Answer = Answer(None, None)
    for option in build_options(inputs.specs, inputs.workload, catalog, at):
        horizon = horizon_costs(option, inputs.workload, [years], inputs.discount_rate)[0]
        if horizon.first_unfit_month is None and (best.present_value is None or horizon.present_value < best.present_value):
            best = Answer(option.name, horizon.present_value)
    return best


def sensitivity_table(inputs: PlanInputs, years: int, step: Decimal, catalog: PriceLookup | None,
                      at: datetime, base: Answer | None = None) -> list[SensitivityRow]:
    """Every applicable input moved by `step` both ways, largest swing first."""
    base = base or answer(inputs, years, catalog, at)
    rows = []
    for label, move, show in perturbations(inputs, step):
        low, high = move(inputs, -1), move(inputs, +1)
        answer_low, answer_high = answer(low, years, catalog, at), answer(high, years, catalog, at)
        values = [a.present_value for a in (answer_low, answer_high) if a.present_value is not None]
        swing = max(values) - min(values) if len(values) == 2 else Decimal(0)
        changes = base.option is not None and (answer_low.option != base.option or answer_high.option != base.option)
        rows.append(SensitivityRow(label, show(low), show(high), answer_low, answer_high, swing, changes))
    return sorted(rows, key=lambda row: (not row.answer_changes, -row.swing))


Move = Callable[[PlanInputs, int], PlanInputs]
Show = Callable[[PlanInputs], str]


def perturbations(inputs: PlanInputs, step: Decimal) -> list[tuple[str, Move, Show]]:
    """The inputs that apply to this scenario, each with how to move it and how to show its value."""
    w = inputs.workload

    def factor(direction: int) -> Decimal:
        return 1 + step * direction

    def on_workload(change: Callable[[Workload, int], Workload]) -> Move:
        return lambda i, d: replace(i, workload=change(i.workload, d))

    def on_specs(kinds: tuple[type, ...], change: Callable[[Option, Decimal], Option]) -> Move:
        return lambda i, d: replace(i, specs=tuple(change(s, factor(d)) if isinstance(s, kinds) else s
                                                   for s in i.specs))

    found: list[tuple[str, Move, Show]] = [
        ("daily volume", on_workload(lambda x, d: x.scaled(factor(d))), lambda i: _tokens(i.workload.daily_tokens)),
        ("output tokens", on_workload(lambda x, d: _scale_output(x, factor(d))),
         lambda i: _tokens(i.workload.daily_output_tokens)),
        ("peak-to-average", on_workload(lambda x, d: replace(x, peak_to_average=max(Decimal(1), x.peak_to_average * factor(d)))),
         lambda i: f"{i.workload.peak_to_average:.2f}"),
        ("growth per month", on_workload(lambda x, d: replace(x, growth_per_month=max(Decimal("-0.5"), x.growth_per_month + GROWTH_POINTS * d))),
         lambda i: share(i.workload.growth_per_month)),
        ("discount rate", lambda i, d: replace(i, discount_rate=max(Decimal(0), i.discount_rate + DISCOUNT_POINTS * d)),
         lambda i: share(i.discount_rate)),
    ]
    if w.daily_cached_tokens > 0:
        found.append(("cached share of input", on_workload(lambda x, d: _scale_cached(x, factor(d))),
                      lambda i: f"{_share(i.workload.daily_cached_tokens, i.workload.daily_input_tokens)}"))
    if w.batchable_share > 0:
        found.append(("batchable share", on_workload(lambda x, d: replace(x, batchable_share=min(Decimal(1), x.batchable_share * factor(d)))),
                      lambda i: f"{i.workload.batchable_share:.2f}"))
    found.extend(_spec_perturbations(inputs.specs, on_specs))
    return found


def _spec_perturbations(specs: Sequence[Option], on_specs: Callable) -> list[tuple[str, Move, Show]]:
    kinds = {type(s) for s in specs}
    found: list[tuple[str, Move, Show]] = []
    if any(isinstance(s, PerTokenOption) or (isinstance(s, ProvisionedOption) and s.overflow) for s in specs):
        found.append(("token prices", on_specs((PerTokenOption, ProvisionedOption), _scale_token_prices),
                      lambda i: f"x{_first_multiplier(i.specs)}"))
    if ProvisionedOption in kinds:
        found.append(("provisioned fee", on_specs((ProvisionedOption,), lambda s, f: s.model_copy(update={"monthly_fee": s.monthly_fee * f})),
                      lambda i: _first(i.specs, ProvisionedOption, "monthly_fee")))
    if DedicatedOption in kinds:
        found.append(("dedicated unit fee", on_specs((DedicatedOption,), lambda s, f: s.model_copy(update={"unit_monthly_fee": s.unit_monthly_fee * f})),
                      lambda i: _first(i.specs, DedicatedOption, "unit_monthly_fee")))
    hosted = [s for s in specs if isinstance(s, SelfHostedOption)]
    if hosted:
        found.append(("GPU $/hour", on_specs((SelfHostedOption,), _scale_gpu_price),
                      lambda i: usd(next(s for s in i.specs if isinstance(s, SelfHostedOption)).gpu_hourly)))
        found.append(("replica throughput", on_specs((SelfHostedOption,), _scale_throughput),
                      lambda i: _throughput(next(s for s in i.specs if isinstance(s, SelfHostedOption)))))
    if any(s.fte > 0 for s in hosted):
        found.append(("people cost", on_specs((SelfHostedOption,), lambda s, f: s.model_copy(update={"fte_annual_usd": s.fte_annual_usd * f})),
                      lambda i: _first(i.specs, SelfHostedOption, "fte_annual_usd")))
    if any(s.gpu_watts > 0 and s.power_usd_per_kwh > 0 for s in hosted):
        found.append(("power price", on_specs((SelfHostedOption,), lambda s, f: s.model_copy(update={"power_usd_per_kwh": s.power_usd_per_kwh * f})),
                      lambda i: _first(i.specs, SelfHostedOption, "power_usd_per_kwh")))
    return found


def _scale_output(workload: Workload, factor: Decimal) -> Workload:
    mix = tuple(replace(m, daily_output_tokens=m.daily_output_tokens * factor) for m in workload.model_mix)
    return replace(workload, daily_output_tokens=workload.daily_output_tokens * factor, model_mix=mix)


def _scale_cached(workload: Workload, factor: Decimal) -> Workload:
    def cached(total: Decimal, current: Decimal, writes: Decimal) -> Decimal:
        return min(total - writes, current * factor)

    mix = tuple(replace(m, daily_cached_tokens=cached(m.daily_input_tokens, m.daily_cached_tokens,
                                                      m.daily_cache_write_tokens)) for m in workload.model_mix)
    return replace(workload, model_mix=mix, daily_cached_tokens=cached(
        workload.daily_input_tokens, workload.daily_cached_tokens, workload.daily_cache_write_tokens))


def _scale_token_prices(spec: Option, factor: Decimal) -> Option:
    if isinstance(spec, PerTokenOption):
        return spec.model_copy(update={"price_multiplier": spec.price_multiplier * factor})
    assert isinstance(spec, ProvisionedOption)
    if spec.overflow is None:
        return spec
    overflow: TokenPriceSource = spec.overflow.model_copy(update={"price_multiplier": spec.overflow.price_multiplier * factor})
    return spec.model_copy(update={"overflow": overflow})


def _scale_gpu_price(spec: Option, factor: Decimal) -> Option:
    assert isinstance(spec, SelfHostedOption)
    prices = spec.gpu_hourly_usd.model_copy(update={spec.gpu_pricing: spec.gpu_hourly * factor})
    return spec.model_copy(update={"gpu_hourly_usd": prices})


def _scale_throughput(spec: Option, factor: Decimal) -> Option:
    assert isinstance(spec, SelfHostedOption)
    update = {name: getattr(spec, name) * factor for name in ("replica_output_tokens_per_s", "replica_total_tokens_per_s")
              if getattr(spec, name) is not None}
    return spec.model_copy(update=update)


def _first(specs: Sequence[Option], kind: type, field: str) -> str:
    """The value of `field` on the first option of `kind`, as money."""
    return usd(getattr(next(s for s in specs if isinstance(s, kind)), field))


def _first_multiplier(specs: Sequence[Option]) -> str:
    for spec in specs:
        if isinstance(spec, PerTokenOption):
            return f"{spec.price_multiplier:.2f}"
        if isinstance(spec, ProvisionedOption) and spec.overflow is not None:
            return f"{spec.overflow.price_multiplier:.2f}"
    return "1"


def _throughput(spec: SelfHostedOption) -> str:
    parts = []
    if spec.replica_output_tokens_per_s is not None:
        parts.append(f"{spec.replica_output_tokens_per_s:.0f} out tok/s")
    if spec.replica_total_tokens_per_s is not None:
        parts.append(f"{spec.replica_total_tokens_per_s:.0f} total tok/s")
    return ", ".join(parts)


def _tokens(value: Decimal) -> str:
    return f"{tokens(value)}/day"


def _share(part: Decimal, whole: Decimal) -> str:
    return share(part / whole) if whole else "0%"

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
from typing import Callable, Sequence, TypeVar

from tollway.plan.economics import horizon_costs
from tollway.plan.figures import share, tokens, usd
from tollway.plan.options import build_options
from tollway.plan.options.token_rates import PriceLookup
from tollway.plan.scenario import (
    DedicatedOption,
    Option,
    PerTokenOption,
    ProvisionedOption,
    SelfHostedOption,
    TokenPriceSource,
)
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
        cheaper = best.present_value is None or horizon.present_value < best.present_value
        if horizon.first_unfit_month is None and cheaper:
            best = Answer(option.name, horizon.present_value)
    return best


def sensitivity_table(inputs: PlanInputs, years: int, step: Decimal, catalog: PriceLookup | None,
                      at: datetime, base: Answer | None = None) -> list[SensitivityRow]:
    """Every applicable input moved by `step` both ways; inputs that flip the answer first, then by swing."""
    base = base or answer(inputs, years, catalog, at)
    rows = []
    for lever in LEVERS:
        if not lever.applies(inputs):
            continue
        low, high = lever.move(inputs, -1, step), lever.move(inputs, +1, step)
        answer_low, answer_high = answer(low, years, catalog, at), answer(high, years, catalog, at)
        values = [a.present_value for a in (answer_low, answer_high) if a.present_value is not None]
        swing = max(values) - min(values) if len(values) == 2 else Decimal(0)
        flips = answer_low.option != base.option or answer_high.option != base.option
        rows.append(SensitivityRow(lever.label, lever.show(low), lever.show(high), answer_low, answer_high, swing,
                                   flips))
    return sorted(rows, key=lambda row: (not row.answer_changes, -row.swing))


@dataclass(frozen=True)
class Lever:
    """One input of the answer: how to move it (direction -1 or +1 by `step`) and how to show its value."""

    label: str
    move: "Move"
    show: Callable[[PlanInputs], str]
    applies: Callable[[PlanInputs], bool] = lambda inputs: True


Move = Callable[[PlanInputs, int, Decimal], PlanInputs]
_Spec = TypeVar("_Spec")  # one option type, so a condition on it may read that type's own fields


def _on_workload(change: Callable[[Workload, int, Decimal], Workload]) -> Move:
    return lambda inputs, direction, step: replace(inputs, workload=change(inputs.workload, direction, step))


def _on_specs(kind: type | tuple[type, ...], change: Callable[[Option, Decimal], Option]) -> Move:
    """Apply `change(spec, factor)` to every option of `kind`, factor = 1 +/- step."""
    def move(inputs: PlanInputs, direction: int, step: Decimal) -> PlanInputs:
        factor = 1 + step * direction
        return replace(inputs, specs=tuple(change(s, factor) if isinstance(s, kind) else s for s in inputs.specs))
    return move


def _field_times(field: str) -> Callable[[Option, Decimal], Option]:
    return lambda spec, factor: spec.model_copy(update={field: getattr(spec, field) * factor})


def _first(kind: type, field: str) -> Callable[[PlanInputs], str]:
    """Shows `field` of the first option of `kind`, as money."""
    return lambda inputs: usd(getattr(next(s for s in inputs.specs if isinstance(s, kind)), field))


def _has(kind: type[_Spec], condition: Callable[[_Spec], bool] = lambda spec: True) -> Callable[[PlanInputs], bool]:
    """Whether the plan holds an option of `kind` that meets `condition` (which reads that kind's fields)."""
    return lambda inputs: any(isinstance(s, kind) and condition(s) for s in inputs.specs)


def _scaled_volume(w: Workload, direction: int, step: Decimal) -> Workload:
    return w.scaled(1 + step * direction)


def _moved_peak(w: Workload, direction: int, step: Decimal) -> Workload:
    return replace(w, peak_to_average=max(Decimal(1), w.peak_to_average * (1 + step * direction)))


def _moved_growth(w: Workload, direction: int, step: Decimal) -> Workload:
    return replace(w, growth_per_month=max(Decimal("-0.5"), w.growth_per_month + GROWTH_POINTS * direction))


def _moved_batchable(w: Workload, direction: int, step: Decimal) -> Workload:
    return replace(w, batchable_share=min(Decimal(1), w.batchable_share * (1 + step * direction)))


def _moved_discount(inputs: PlanInputs, direction: int, step: Decimal) -> PlanInputs:
    return replace(inputs, discount_rate=max(Decimal(0), inputs.discount_rate + DISCOUNT_POINTS * direction))


def _prices_per_token(inputs: PlanInputs) -> bool:
    return any(isinstance(s, PerTokenOption) or (isinstance(s, ProvisionedOption) and s.overflow is not None)
               for s in inputs.specs)


LEVERS: tuple[Lever, ...] = (
    Lever("daily volume", _on_workload(_scaled_volume), lambda i: _tokens(i.workload.daily_tokens)),
    Lever("output tokens", _on_workload(lambda w, d, step: _scale_output(w, 1 + step * d)),
          lambda i: _tokens(i.workload.daily_output_tokens)),
    Lever("cached share of input", _on_workload(lambda w, d, step: _scale_cached(w, 1 + step * d)),
          lambda i: _share(i.workload.daily_cached_tokens, i.workload.daily_input_tokens),
          applies=lambda i: i.workload.daily_cached_tokens > 0),
    Lever("peak-to-average", _on_workload(_moved_peak), lambda i: f"{i.workload.peak_to_average:.2f}"),
    Lever("growth per month", _on_workload(_moved_growth), lambda i: share(i.workload.growth_per_month)),
    Lever("batchable share", _on_workload(_moved_batchable), lambda i: share(i.workload.batchable_share),
          applies=lambda i: i.workload.batchable_share > 0),
    Lever("discount rate", _moved_discount, lambda i: share(i.discount_rate)),
    Lever("token prices", _on_specs((PerTokenOption, ProvisionedOption), lambda s, f: _scale_token_prices(s, f)),
          lambda i: f"x{_first_multiplier(i.specs)}", applies=_prices_per_token),
    Lever("provisioned fee", _on_specs(ProvisionedOption, _field_times("monthly_fee")),
          _first(ProvisionedOption, "monthly_fee"), applies=_has(ProvisionedOption)),
    Lever("dedicated unit fee", _on_specs(DedicatedOption, _field_times("unit_monthly_fee")),
          _first(DedicatedOption, "unit_monthly_fee"), applies=_has(DedicatedOption)),
    Lever("GPU $/hour", _on_specs(SelfHostedOption, lambda s, f: _scale_gpu_price(s, f)),
          lambda i: usd(next(s for s in i.specs if isinstance(s, SelfHostedOption)).gpu_hourly),
          applies=_has(SelfHostedOption)),
    Lever("replica throughput", _on_specs(SelfHostedOption, lambda s, f: _scale_throughput(s, f)),
          lambda i: _throughput(next(s for s in i.specs if isinstance(s, SelfHostedOption))),
          applies=_has(SelfHostedOption)),
    Lever("people cost", _on_specs(SelfHostedOption, _field_times("fte_annual_usd")),
          _first(SelfHostedOption, "fte_annual_usd"), applies=_has(SelfHostedOption, lambda s: s.fte > 0)),
    Lever("power price", _on_specs(SelfHostedOption, _field_times("power_usd_per_kwh")),
          _first(SelfHostedOption, "power_usd_per_kwh"),
          applies=_has(SelfHostedOption, lambda s: s.gpu_watts > 0 and s.power_usd_per_kwh > 0)),
)


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
    multiplier = spec.overflow.price_multiplier * factor
    overflow: TokenPriceSource = spec.overflow.model_copy(update={"price_multiplier": multiplier})
    return spec.model_copy(update={"overflow": overflow})


def _scale_gpu_price(spec: Option, factor: Decimal) -> Option:
    assert isinstance(spec, SelfHostedOption)
    prices = spec.gpu_hourly_usd.model_copy(update={spec.gpu_pricing: spec.gpu_hourly * factor})
    return spec.model_copy(update={"gpu_hourly_usd": prices})


def _scale_throughput(spec: Option, factor: Decimal) -> Option:
    assert isinstance(spec, SelfHostedOption)
    fields = ("replica_output_tokens_per_s", "replica_total_tokens_per_s")
    update = {name: getattr(spec, name) * factor for name in fields if getattr(spec, name) is not None}
    return spec.model_copy(update=update)


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

"""The whole analysis in one call: every option priced now, projected, over each horizon, against each other.

Reports (terminal, JSON, Markdown, charts) only read the PlanResult this returns, so they can never
disagree about a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Sequence

from tollway.plan.economics import (
    BreakEven,
    CurvePoint,
    HorizonCost,
    all_break_evens,
    cost_curve,
    default_volume_range,
    growth_factor,
    horizon_costs,
    usd_per_million,
    utilisation_curve,
)
from tollway.plan.options import MonthlyCost, PricedOption, Sizing, build_options
from tollway.plan.options.token_rates import PriceLookup
from tollway.plan.scenario import EconomicsSpec, Option, ScenarioError
from tollway.plan.sensitivity import Answer, PlanInputs, SensitivityRow, sensitivity_table
from tollway.plan.workload import Workload


@dataclass(frozen=True)
class OptionReport:
    """One option: today, at the projected volume, over each horizon, and its curves.

    `utilisation` is average load over paid capacity, the x axis of the utilisation curve (for a
    provisioned option it exceeds 100% when the average itself overflows the reservation).
    """

    name: str
    kind: str
    now: MonthlyCost
    usd_per_million: Decimal | None
    utilisation: Decimal | None
    max_daily_tokens: Decimal | None
    sizing: Sizing
    projected: MonthlyCost
    horizons: list[HorizonCost]
    cost_curve: list[CurvePoint]
    utilisation_curve: list[CurvePoint]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Choice:
    """The cheapest option that fits at one volume (None when nothing fits)."""

    option: str | None
    monthly: Decimal | None
    daily_tokens: Decimal


@dataclass(frozen=True)
class PlanResult:
    workload: Workload
    economics: EconomicsSpec
    pricing_at: datetime
    volume_range: Decimal
    projected_scale: Decimal
    options: list[OptionReport]
    break_evens: list[BreakEven]
    cheapest_now: Choice
    cheapest_projected: Choice
    cheapest_by_horizon: dict[int, Answer]
    sensitivity: list[SensitivityRow]
    notes: tuple[str, ...] = ()


def pricing_moment(economics: EconomicsSpec) -> datetime:
    """When prices are read: the scenario's pricing_at (a date means 00:00 UTC), else now."""
    at = economics.pricing_at
    if at is None:
        return datetime.now(timezone.utc)
    if not isinstance(at, datetime):
        assert isinstance(at, date)
        return datetime(at.year, at.month, at.day, tzinfo=timezone.utc)
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def analyse(specs: Sequence[Option], workload: Workload, economics: EconomicsSpec, catalog: PriceLookup | None,
            with_sensitivity: bool = True, notes: tuple[str, ...] = ()) -> PlanResult:
    """Price every option for `workload` and compare them; see the module docstrings of each step."""
    if not specs:
        raise ScenarioError("no options to compare: give a scenario with options:, or --per-token PROVIDER/MODEL")
    at = pricing_moment(economics)
    options = build_options(specs, workload, catalog, at)
    up_to = economics.max_volume_multiple or default_volume_range(workload, economics.horizons_years)
    projected = growth_factor(workload.growth_per_month, economics.projection_months)
    reports = [option_report(o, workload, economics, up_to, projected) for o in options]
    horizon_answers = {years: cheapest_over(reports, years) for years in economics.horizons_years}
    longest = max(economics.horizons_years)
    sensitivity: list[SensitivityRow] = []
    if with_sensitivity:
        inputs = PlanInputs(tuple(specs), workload, economics.discount_rate)
        sensitivity = sensitivity_table(inputs, longest, economics.sensitivity_step, catalog, at,
                                        base=horizon_answers[longest])
    return PlanResult(
        workload=workload,
        economics=economics,
        pricing_at=at,
        volume_range=up_to,
        projected_scale=projected,
        options=reports,
        break_evens=all_break_evens(options, workload, up_to),
        cheapest_now=cheapest(reports, workload.daily_tokens, now=True),
        cheapest_projected=cheapest(reports, workload.daily_tokens * projected, now=False),
        cheapest_by_horizon=horizon_answers,
        sensitivity=sensitivity,
        notes=notes,
    )


def option_report(option: PricedOption, workload: Workload, economics: EconomicsSpec, up_to: Decimal,
                  projected_scale: Decimal) -> OptionReport:
    now = option.monthly_cost(workload)
    limit = option.max_scale(workload)
    return OptionReport(
        name=option.name,
        kind=option.kind,
        now=now,
        usd_per_million=usd_per_million(now.total, workload),
        utilisation=option.utilisation(workload),
        max_daily_tokens=None if limit is None else limit * workload.daily_tokens,
        sizing=option.sizing(workload),
        projected=option.monthly_cost(workload.scaled(projected_scale)),
        horizons=horizon_costs(option, workload, economics.horizons_years, economics.discount_rate),
        cost_curve=cost_curve(option, workload, up_to),
        utilisation_curve=utilisation_curve(option, workload),
        notes=option.notes,
    )


def cheapest(reports: list[OptionReport], daily_tokens: Decimal, now: bool) -> Choice:
    best: Choice = Choice(None, None, daily_tokens)
    for report in reports:
        cost = report.now if now else report.projected
        if cost.fits and (best.monthly is None or cost.total < best.monthly):
            best = Choice(report.name, cost.total, daily_tokens)
    return best


def cheapest_over(reports: list[OptionReport], years: int) -> Answer:
    best = Answer(None, None)
    for report in reports:
        horizon = next(h for h in report.horizons if h.years == years)
        if horizon.first_unfit_month is None and (best.present_value is None or
                                                  horizon.present_value < best.present_value):
            best = Answer(report.name, horizon.present_value)
    return best


__all__ = ["Choice", "OptionReport", "PlanResult", "analyse", "pricing_moment"]

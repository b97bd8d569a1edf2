"""Money over time and volume: horizons with discounting, exact break-evens, utilisation and cost curves.

Every option is a cost function of a volume multiple of the current workload (same mix and shape).
Break-evens are solved exactly rather than by sampling: between consecutive breakpoints of either
option the cost difference is a straight line, so its root is one division, and a sign change across a
breakpoint is a break-even at that step. Only volumes both options can serve at their SLO count.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise

from tollway.plan.options import PricedOption
from tollway.plan.options.base import PER_MILLION, monthly_from_daily
from tollway.plan.workload import Workload

ZERO = Decimal(0)
ONE = Decimal(1)
NEGLIGIBLE_USD = Decimal("1e-15")  # below this a cost difference is arithmetic noise, i.e. a tie
STEP_SIDE = Decimal("1e-9")  # relative offset that reads a staircase just below / just above a step
MONTHS_PER_YEAR = 12


def growth_factor(growth_per_month: Decimal, months: int) -> Decimal:
    """Volume multiple after `months` of compound monthly growth."""
    return (ONE + growth_per_month) ** months


def default_volume_range(workload: Workload, horizons_years: list[int]) -> Decimal:
    """How far charts and break-evens look: 4x today, or past the longest horizon's projected volume."""
    end = growth_factor(workload.growth_per_month, MONTHS_PER_YEAR * max(horizons_years))
    return max(Decimal(4), end * Decimal("1.25"))


@dataclass(frozen=True)
class HorizonCost:
    """Cost over a horizon, volume growing monthly; each month paid at its end and discounted to today.

    Months are counted from 1, the same in JSON, the terminal and the Markdown report: month 1 is the
    first month from today, at today's volume; month m carries today's volume x (1 + growth)^(m - 1).
    first_unfit_month is the first month whose volume the option cannot serve at its SLO.
    """

    years: int
    present_value: Decimal
    nominal: Decimal
    first_unfit_month: int | None


def horizon_costs(option: PricedOption, workload: Workload, years: list[int],
                  discount_rate: Decimal) -> list[HorizonCost]:
    """Cost over each horizon in `years`, units re-sized monthly as volume grows, at (1 + rate)^-(month/12)."""
    per_month = ONE / (ONE + discount_rate) ** (ONE / MONTHS_PER_YEAR)
    discount = ONE
    present = nominal = ZERO
    unfit: int | None = None
    results: dict[int, HorizonCost] = {}
    ends = {y * MONTHS_PER_YEAR: y for y in years}
    for month in range(1, max(ends) + 1):
        cost = option.monthly_cost(workload.scaled(growth_factor(workload.growth_per_month, month - 1)))
        discount *= per_month
        nominal += cost.total
        present += cost.total * discount
        if not cost.fits and unfit is None:
            unfit = month
        if month in ends:
            results[ends[month]] = HorizonCost(ends[month], present, nominal, unfit)
    return [results[y] for y in years]


@dataclass(frozen=True)
class BreakEven:
    """A volume where the cheaper of two options changes."""

    first: str
    second: str
    scale: Decimal
    daily_tokens: Decimal
    monthly_cost: Decimal
    cheaper_below: str
    cheaper_above: str
    at_step: bool


def fitting_limit(options: list[PricedOption], workload: Workload, up_to: Decimal) -> Decimal:
    """The largest volume multiple (within `up_to`) every one of `options` can serve."""
    limits = [up_to] + [limit for o in options if (limit := o.max_scale(workload)) is not None]
    return min(limits)


def break_evens(a: PricedOption, b: PricedOption, workload: Workload, up_to: Decimal) -> list[BreakEven]:
    """Every volume in (0, up_to] that both options fit where the cheaper one changes."""
    limit = fitting_limit([a, b], workload, up_to)
    if limit <= 0:
        return []
    inner = {p for p in a.breakpoints(workload, limit) + b.breakpoints(workload, limit) if ZERO < p < limit}
    points = [ZERO, *sorted(inner), limit]
    finder = _CrossingFinder(a, b, workload)
    for lo, hi in pairwise(points):
        finder.segment(lo, hi)
    return finder.found


class _CrossingFinder:
    """Walks segments left to right, remembering the last non-zero sign of cost(a) - cost(b).

    Costs are read only at interior points of a segment, where both options are linear, and carried to
    the segment's ends along those lines. So the cost at a step is the limit from above, computed exactly,
    rather than the cost a hair past the step (which would add that hair's per-token spend).
    """

    def __init__(self, a: PricedOption, b: PricedOption, workload: Workload) -> None:
        self.a, self.b, self.workload = a, b, workload
        self.last_sign = 0
        self.tie_at: _Candidate | None = None
        self.found: list[BreakEven] = []

    def costs(self, scale: Decimal) -> tuple[Decimal, Decimal]:
        scaled = self.workload.scaled(scale)
        return self.a.monthly_cost(scaled).total, self.b.monthly_cost(scaled).total

    def segment(self, lo: Decimal, hi: Decimal) -> None:
        """Costs are linear on (lo, hi]: read the lines from two interior points, never from a step edge."""
        first, second = lo + (hi - lo) / 3, lo + (hi - lo) * 2 / 3
        (a1, b1), (a2, b2) = self.costs(first), self.costs(second)
        slope_a, slope_b = (a2 - a1) / (second - first), (b2 - b1) / (second - first)
        a_lo, b_lo = a1 - slope_a * (first - lo), b1 - slope_b * (first - lo)
        a_hi, b_hi = a1 + slope_a * (hi - first), b1 + slope_b * (hi - first)
        at_lo, at_hi = a_lo - b_lo, a_hi - b_hi
        self.point(_Candidate(lo, lo > 0, min(a_lo, b_lo)), at_lo)
        if at_lo * at_hi < 0:
            root = lo - at_lo / (slope_a - slope_b)
            self.point(_Candidate(root, False, a_lo + slope_a * (root - lo)), ZERO)
        self.point(_Candidate(hi, False, min(a_hi, b_hi)), at_hi)

    def point(self, candidate: _Candidate, value: Decimal) -> None:
        sign = 0 if abs(value) < NEGLIGIBLE_USD else (value > 0) - (value < 0)
        if sign == 0:
            if self.tie_at is None:
                self.tie_at = candidate
            return
        if self.last_sign and sign != self.last_sign:
            self.record(self.tie_at or candidate, cheaper_below_is_a=self.last_sign < 0)
        self.last_sign, self.tie_at = sign, None

    def record(self, where: _Candidate, cheaper_below_is_a: bool) -> None:
        """At a crossing both cost the same; at a step, the cost is that of the option cheaper above it."""
        below, above = (self.a.name, self.b.name) if cheaper_below_is_a else (self.b.name, self.a.name)
        self.found.append(BreakEven(self.a.name, self.b.name, where.scale,
                                    where.scale * self.workload.daily_tokens, where.monthly_cost, below, above,
                                    where.at_step))


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A volume where a break-even may be recorded, with the monthly cost to report if it is."""

    scale: Decimal
    at_step: bool
    monthly_cost: Decimal


def all_break_evens(options: list[PricedOption], workload: Workload, up_to: Decimal) -> list[BreakEven]:
    """Break-evens of every pair, ordered by volume."""
    found = [be for i, a in enumerate(options) for b in options[i + 1:] for be in break_evens(a, b, workload, up_to)]
    return sorted(found, key=lambda be: be.scale)


def usd_per_million(cost: Decimal, workload: Workload) -> Decimal | None:
    """Effective USD per 1M tokens (input + output) for a month of `workload`."""
    tokens = monthly_from_daily(workload.daily_tokens)
    return cost / tokens * PER_MILLION if tokens > 0 else None


@dataclass(frozen=True)
class CurvePoint:
    """One point of a chart curve; `fits` is False where the option cannot serve the volume at its SLO."""

    x: Decimal
    y: Decimal
    fits: bool


def cost_curve(option: PricedOption, workload: Workload, up_to: Decimal, samples: int = 120) -> list[CurvePoint]:
    """Monthly cost against daily volume: an even grid plus both sides of every step, to draw stairs."""
    limit = option.max_scale(workload)
    end = up_to if limit is None else min(up_to, limit)
    grid = {up_to * i / samples for i in range(1, samples + 1) if up_to * i / samples <= end}
    grid.add(end / 1000)
    for point in option.breakpoints(workload, end):
        grid.update({point * (ONE - STEP_SIDE), point * (ONE + STEP_SIDE)})
    grid.add(end)
    curve = []
    for scale in sorted(grid):
        cost = option.monthly_cost(workload.scaled(scale))
        curve.append(CurvePoint(scale * workload.daily_tokens, cost.total, cost.fits))
    return curve


def utilisation_curve(option: PricedOption, workload: Workload, steps: int = 20) -> list[CurvePoint]:
    """Effective USD/1M tokens against utilisation of the deployment sized for today's peak (x in 0..1)."""
    units = option.monthly_cost(workload).units
    full = option.capacity_scale(workload, units)
    if full is None:
        return []
    curve = []
    for step in range(1, steps + 1):
        utilisation = Decimal(step) / steps
        scaled = workload.scaled(full * utilisation)
        cost = option.monthly_cost(scaled, units=units)
        per_million = usd_per_million(cost.total, scaled)
        if per_million is not None:
            curve.append(CurvePoint(utilisation, per_million, cost.fits))
    return curve

"""How the plan's numbers are written for people: dollars, token volumes, shares.

The terminal table and the Markdown report share these so the same figure reads the same in both.
Rounding happens only here, at display time; the computation keeps full Decimal precision.
"""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise
from typing import TYPE_CHECKING

from tollway.core.money_text import usd_text

if TYPE_CHECKING:  # the planner imports this module's formatters; types only flow the other way
    from tollway.plan.economics import BreakEven
    from tollway.plan.options import MonthlyCost
    from tollway.plan.planner import OptionReport, PlanResult


def usd(value: Decimal | None) -> str:
    """Money as everywhere in tollway (money_text): $12,345.67, or $0.0042 below a cent."""
    return "-" if value is None else usd_text(value)


def tokens(value: Decimal | None) -> str:
    """240M, 1.2B, 35K."""
    if value is None:
        return "-"
    for size, suffix in ((Decimal(10) ** 12, "T"), (Decimal(10) ** 9, "B"), (Decimal(10) ** 6, "M"),
                         (Decimal(10) ** 3, "K")):
        if abs(value) >= size:
            return f"{value / size:,.3g}{suffix}" if value / size < 1000 else f"{value / size:,.0f}{suffix}"
    return f"{value:.0f}"


def months(count: int) -> str:
    """A span of months from today ('in 12 months'), never an ordinal: month numbers count from 1."""
    return "1 month" if count == 1 else f"{count} months"


def share(value: Decimal | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def part_of(part: Decimal, whole: Decimal) -> str:
    return share(part / whole) if whole else "-"


def cost_cell(cost: MonthlyCost) -> str:
    """The monthly cost, marked when the option cannot serve the volume at its SLO."""
    return usd(cost.total) if cost.fits else f"{usd(cost.total)} (does not fit)"


def size_cell(report: OptionReport) -> str:
    if report.now.units is None:
        return "-"
    label = report.sizing.unit_label or "units"
    return f"{report.now.units} {label[:-1] if report.now.units == 1 else label}"


def horizon_cell(report: OptionReport, years: int) -> str:
    horizon = next(h for h in report.horizons if h.years == years)
    if horizon.first_unfit_month is not None:
        return f"{usd(horizon.present_value)} (outgrown in month {horizon.first_unfit_month})"
    return usd(horizon.present_value)


def break_even_lines(result: PlanResult) -> list[str]:
    """One line per pair of options, its crossings in volume order.

    Why grouped: two staircases (units, replicas) can cross several times; one line per crossing repeated
    the pair's names and read like duplicates. Grouped, the line says which option is cheaper on each stretch.
    """
    pairs: dict[tuple[str, str], list[BreakEven]] = {}
    for be in result.break_evens:
        pairs.setdefault((be.first, be.second), []).append(be)
    lines = []
    for (first, second), crossings in pairs.items():
        crossings.sort(key=lambda be: be.scale)
        text = f"{first} vs {second}: {crossings[0].cheaper_below} is cheaper below {_crossing(crossings[0])}"
        for previous, crossing in pairwise(crossings):
            text += f"; {previous.cheaper_above} from there to {_crossing(crossing)}"
        lines.append(f"{text}; {crossings[-1].cheaper_above} above")
    return lines


def _crossing(be: BreakEven) -> str:
    how = "one more unit/replica" if be.at_step else "cost lines cross"
    return (f"{tokens(be.daily_tokens)} tokens/day (x{be.scale:.2f} today's volume, {usd(be.monthly_cost)}/month, "
            f"{how})")


def verdict(result: PlanResult) -> list[str]:
    """The headline answers: cheapest now, at the projected volume, and over each horizon."""
    now, later = result.cheapest_now, result.cheapest_projected
    lines = [
        f"Cheapest now ({tokens(now.daily_tokens)} tokens/day): {now.option or 'nothing fits'}"
        + (f" at {usd(now.monthly)}/month" if now.monthly is not None else ""),
        f"Cheapest at the projected volume (in {months(result.economics.projection_months)}, "
        f"{tokens(later.daily_tokens)} tokens/day): {later.option or 'nothing fits'}"
        + (f" at {usd(later.monthly)}/month" if later.monthly is not None else ""),
    ]
    rate = share(result.economics.discount_rate)
    for years, answer in sorted(result.cheapest_by_horizon.items()):
        lines.append(f"Cheapest over {years} year(s) (present value at {rate}/year): {answer.option or 'nothing fits'}"
                     + (f" at {usd(answer.present_value)}" if answer.present_value is not None else ""))
    return lines


def plan_notes(result: PlanResult) -> list[str]:
    """Workload caveats, pricing caveats and why an option does not fit today."""
    found = list(result.workload.notes) + list(result.notes)
    for report in result.options:
        found += [f"{report.name}: {note}" for note in report.notes]
        if not report.now.fits:
            found.append(f"{report.name} does not fit today's volume: {report.now.why_not}")
    return found

"""The plan in the terminal: workload, options side by side, break-evens, the verdict, sensitivity."""

from __future__ import annotations

from rich.console import Console

from tollway.plan.figures import (
    break_even_lines,
    cost_cell,
    horizon_cell,
    months,
    part_of,
    plan_notes,
    share,
    size_cell,
    tokens,
    usd,
    verdict,
)
from tollway.plan.planner import PlanResult
from tollway.terminal.console import output_console
from tollway.terminal.tables import Column, TableSpec, print_fitted


def workload_table(result: PlanResult) -> TableSpec:
    w = result.workload
    table = TableSpec(f"workload ({w.source})", [Column("what", key=True, left=True, phrase=True),
                                                 Column("value", key=True)])
    table.add_row("input tokens/day (incl. cached)", tokens(w.daily_input_tokens))
    cached_share = part_of(w.daily_cached_tokens, w.daily_input_tokens)
    table.add_row("  of which cached", f"{tokens(w.daily_cached_tokens)} ({cached_share})")
    if w.daily_cache_write_tokens:
        table.add_row("  of which cache writes", tokens(w.daily_cache_write_tokens))
    table.add_row("output tokens/day", tokens(w.daily_output_tokens))
    table.add_row("peak-to-average", f"{w.peak_to_average:.2f}")
    table.add_row("growth per month", share(w.growth_per_month))
    table.add_row("batchable share", share(w.batchable_share))
    if w.mean_prompt_tokens:
        table.add_row("mean prompt tokens", str(w.mean_prompt_tokens))
    for model in w.model_mix[:8]:
        table.add_row(f"  {model.provider}/{model.model}",
                      f"{tokens(model.daily_input_tokens + model.daily_output_tokens)}/day")
    return table


def options_table(result: PlanResult) -> TableSpec:
    table = TableSpec(f"options today, prices as of {result.pricing_at:%Y-%m-%d %H:%M} UTC", [
        Column("option", key=True, left=True, wrap=True), Column("kind", left=True, rank=3),
        Column("size", rank=2), Column("per month", key=True, phrase=True), Column("$/M tokens", rank=1),
        Column("utilisation", rank=4)])
    for report in result.options:
        table.add_row(report.name, report.kind, size_cell(report), cost_cell(report.now),
                      usd(report.usd_per_million), share(report.utilisation))
    return table


def horizons_table(result: PlanResult) -> TableSpec:
    economics = result.economics
    columns = [Column("option", key=True, left=True, wrap=True),
               Column(f"per month in {months(economics.projection_months)}", key=True, phrase=True)]
    columns += [Column(f"{years}y present value", key=True, phrase=True) for years in economics.horizons_years]
    table = TableSpec(f"over time: growth {share(result.workload.growth_per_month)}/month, "
                      f"discounted at {share(economics.discount_rate)}/year", columns)
    for report in result.options:
        table.add_row(report.name, cost_cell(report.projected),
                      *[horizon_cell(report, years) for years in economics.horizons_years])
    return table


def _winners(low: str | None, high: str | None) -> str:
    return (low or "-") if low == high else f"{low or '-'} / {high or '-'}"


def sensitivity_table(result: PlanResult, limit: int = 20) -> TableSpec:
    years = max(result.economics.horizons_years)
    table = TableSpec(f"sensitivity: each input moved alone; the answer is the cheapest over {years}y", [
        Column("input", key=True, left=True, phrase=True), Column("low", left=True, rank=1),
        Column("high", left=True, rank=1), Column("cheapest low / high", key=True, left=True, phrase=True),
        Column("swing", key=True), Column("flips", key=True, left=True)])
    for row in result.sensitivity[:limit]:
        table.add_row(row.input, row.low, row.high,
                      _winners(row.answer_low.option, row.answer_high.option),
                      usd(row.swing), "YES" if row.answer_changes else "no")
    return table


def print_plan(result: PlanResult, console: Console | None = None, wide: bool = False) -> None:
    """Everything, in reading order."""
    console = console or output_console()
    print_fitted(console, [workload_table(result), options_table(result), horizons_table(result)], wide)
    if result.break_evens:
        console.print("[bold]Break-even volumes[/bold] (only where both options fit at their SLO):")
        for line in break_even_lines(result):
            console.print(f"  {line}")
    else:
        console.print(f"No break-even up to {tokens(result.volume_range * result.workload.daily_tokens)} tokens/day: "
                      "the order of the options does not change in that range.")
    for line in verdict(result):
        console.print(f"[bold]{line}[/bold]")
    if result.sensitivity:
        print_fitted(console, [sensitivity_table(result)], wide)
    for note in plan_notes(result):
        console.print(f"[dim]note: {note}[/dim]")

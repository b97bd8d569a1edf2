"""The plan as a Markdown report, for a pull request, a wiki page or a decision record.

It says the answer first (cheapest now, later, over each horizon), then the evidence: the workload,
every option's cost and sizing, the break-evens, the sensitivity table and every caveat. Charts are
linked when they were written alongside.
"""

from __future__ import annotations

import os
from pathlib import Path

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


def markdown_report(result: PlanResult, charts: list[Path] | None = None, report_path: Path | None = None) -> str:
    """The whole report; chart links are relative to `report_path` when given."""
    parts = [f"# Deployment plan\n\nPriced at {result.pricing_at:%Y-%m-%d %H:%M} UTC.\n",
             "## Answer\n", "\n".join(f"- {line}" for line in verdict(result)) + "\n",
             _workload(result), _options(result), _sizing(result), _break_evens(result), _sensitivity(result)]
    if charts:
        parts.append("## Charts\n")
        for chart in charts:
            link = os.path.relpath(chart, report_path.parent) if report_path else str(chart)
            parts.append(f"![{chart.stem}]({link})\n")
    notes = plan_notes(result)
    if notes:
        parts.append("## Notes\n\n" + "\n".join(f"- {note}" for note in notes) + "\n")
    return "\n".join(parts)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _workload(result: PlanResult) -> str:
    w = result.workload
    rows = [
        ["input tokens/day (incl. cached)", tokens(w.daily_input_tokens)],
        ["cached input tokens/day",
         f"{tokens(w.daily_cached_tokens)} ({part_of(w.daily_cached_tokens, w.daily_input_tokens)})"],
        ["cache-write tokens/day", tokens(w.daily_cache_write_tokens)],
        ["output tokens/day", tokens(w.daily_output_tokens)],
        ["peak-to-average", f"{w.peak_to_average:.2f}"],
        ["growth per month", share(w.growth_per_month)],
        ["batchable share", share(w.batchable_share)],
    ]
    rows += [[f"{m.provider}/{m.model}", f"{tokens(m.daily_input_tokens + m.daily_output_tokens)}/day"]
             for m in w.model_mix]
    return f"## Workload\n\nSource: {w.source}.\n\n" + _table(["", "value"], rows)


def _options(result: PlanResult) -> str:
    ahead = months(result.economics.projection_months)
    header = ["option", "kind", "size", "monthly now", "$/M tokens", "utilisation", f"monthly in {ahead}"]
    header += [f"{y}y present value" for y in result.economics.horizons_years]
    rows = []
    for report in result.options:
        row = [report.name, report.kind, size_cell(report), cost_cell(report.now), usd(report.usd_per_million),
               share(report.utilisation), cost_cell(report.projected)]
        rows.append(row + [horizon_cell(report, y) for y in result.economics.horizons_years])
    rate = share(result.economics.discount_rate)
    return (f"## Options\n\nPresent values discount each month's cost at {rate} a year, with volume growing "
            f"{share(result.workload.growth_per_month)} a month and capacity re-sized monthly.\n\n"
            + _table(header, rows))


def _sizing(result: PlanResult) -> str:
    lines = ["## How each option is sized\n"]
    for report in result.options:
        details = "; ".join(f"{key}: {value}" for key, value in report.sizing.details.items())
        parts = ", ".join(f"{name} {usd(value)}" for name, value in report.now.parts.items())
        lines.append(f"- **{report.name}** ({report.kind}): {details}. Monthly parts: {parts}.")
    return "\n".join(lines) + "\n"


def _break_evens(result: PlanResult) -> str:
    if not result.break_evens:
        limit = tokens(result.volume_range * result.workload.daily_tokens)
        return f"## Break-even volumes\n\nNone up to {limit} tokens/day: the order of the options does not change.\n"
    lines = [f"- {line}" for line in break_even_lines(result)]
    return "## Break-even volumes\n\nOnly volumes both options serve at their SLO count.\n\n" + "\n".join(lines) + "\n"


def _sensitivity(result: PlanResult) -> str:
    if not result.sensitivity:
        return ""
    years = max(result.economics.horizons_years)
    rows = [[row.input, row.low, row.high, f"{row.answer_low.option or '-'} {usd(row.answer_low.present_value)}",
             f"{row.answer_high.option or '-'} {usd(row.answer_high.present_value)}", usd(row.swing),
             "**yes**" if row.answer_changes else "no"] for row in result.sensitivity]
    return (f"## Sensitivity\n\nEach input moved alone by {share(result.economics.sensitivity_step)} "
            f"(growth by 1 point/month, discount rate by 2 points/year); the answer is the cheapest option "
            f"over {years} years.\n\n"
            + _table(["input", "low", "high", "cheapest at low", "cheapest at high", "swing", "answer changes"], rows))


def write_markdown(result: PlanResult, path: Path, charts: list[Path] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown_report(result, charts, path))
    return path

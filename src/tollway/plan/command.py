"""`tollway plan`: what this traffic costs as a per-token API, provisioned, dedicated or on our own GPUs.

Thin on purpose: flags are parsed here, everything else lives in inputs.py (what to price),
planner.py (the arithmetic) and the report modules (how to show it).
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click

from tollway.plan.inputs import PlanRequest, resolve_inputs
from tollway.plan.scenario import ScenarioError


class DecimalParam(click.ParamType):
    """A number read exactly: 200000000, 2e8, 200_000_000, 0.05."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Decimal:
        if isinstance(value, Decimal):
            return value
        try:
            number = Decimal(str(value).replace("_", ""))
        except InvalidOperation:
            self.fail(f"{value!r} is not a number", param, ctx)
        if not number.is_finite():
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class UtcDateTimeParam(click.ParamType):
    """2026-11-01 or 2026-11-01T06:00[+08:00]; naive times are UTC."""

    name = "datetime"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO date or date-time (2026-11-01, 2026-11-01T06:00Z)", param, ctx)
        return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


NUMBER = DecimalParam()
MOMENT = UtcDateTimeParam()


@click.command("plan")
@click.option("--scenario", "-s", "scenario_path", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML scenario: workload:, options:, economics: (see docs/plan.md).")
@click.option("--from-ledger", "ledger", metavar="PATH_OR_URL",
              help="Derive the workload from a tollway ledger: SQLite path, sqlite:///path or postgresql://...")
@click.option("--since", type=MOMENT, help="Ledger window start (UTC unless an offset is given).")
@click.option("--until", type=MOMENT, help="Ledger window end, exclusive.")
@click.option("--daily-input", type=NUMBER, help="Input tokens per day, cached ones included.")
@click.option("--daily-cached", type=NUMBER, help="Cached input tokens per day.")
@click.option("--daily-cache-write", type=NUMBER, help="Cache-write input tokens per day.")
@click.option("--daily-output", type=NUMBER, help="Output tokens per day.")
@click.option("--peak-to-average", type=NUMBER, help="Peak rate over the daily average (>= 1).")
@click.option("--growth", type=NUMBER, help="Volume growth per month, e.g. 0.05 for 5%.")
@click.option("--batchable-share", type=NUMBER, help="Share of traffic that can go through a batch API (0-1).")
@click.option("--per-token", multiple=True, metavar="PROVIDER/MODEL",
              help="Add a per-token option priced from the catalog (repeatable).")
@click.option("--bench-json", type=click.Path(dir_okay=False, path_type=Path),
              help="`tollway bench` JSON whose capacity sets every self-hosted replica's throughput.")
@click.option("--bench-target", help="The target in --bench-json that is one replica.")
@click.option("--replica-output-tps", type=NUMBER, help="Self-hosted replica output tokens/s at the SLO.")
@click.option("--replica-total-tps", type=NUMBER, help="Self-hosted replica total tokens/s at the SLO.")
@click.option("--discount-rate", type=NUMBER, help="Annual discount rate, e.g. 0.08.")
@click.option("--horizon", "horizons", type=int, multiple=True, help="Horizon in years (repeatable; default 1 3 5).")
@click.option("--projection-months", type=int, help="Month at which the 'projected volume' is read (default 12).")
@click.option("--at", "pricing_at", type=MOMENT, help="Price as of this time (default: now).")
@click.option("--no-sensitivity", is_flag=True, help="Skip the sensitivity table (faster).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON instead of tables.")
@click.option("--png", "png_dir", type=click.Path(file_okay=False, path_type=Path), help="Write PNG charts here.")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a Markdown report to this file.")
@click.option("--wide", is_flag=True, help="Show every column of the tables, however wide they get.")
def plan(**flags: Any) -> None:
    """Price per-token API vs provisioned vs dedicated vs self-hosted for a workload, now and over years."""
    try:
        run_plan(**flags)
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from None


def run_plan(*, as_json: bool, png_dir: Path | None, markdown_path: Path | None, no_sensitivity: bool,
             wide: bool = False, **flags: Any) -> None:
    from tollway.plan.planner import analyse

    inputs = resolve_inputs(plan_request(flags))
    result = analyse(inputs.specs, inputs.workload, inputs.economics, inputs.catalog,
                     with_sensitivity=not no_sensitivity, notes=inputs.notes)
    charts: list[Path] = []
    if png_dir is not None:
        from tollway.plan.charts import write_charts

        charts = write_charts(result, png_dir)
    if as_json:
        from tollway.plan.report_json import plan_json

        sys.stdout.buffer.write(plan_json(result) + b"\n")
        sys.stdout.flush()
    else:
        from tollway.plan.report_table import print_plan

        print_plan(result, wide=wide)
        sys.stdout.flush()
    if markdown_path is not None:
        from tollway.plan.report_md import write_markdown

        click.echo(f"wrote {write_markdown(result, markdown_path, charts)}", err=True)
    for chart in charts:
        click.echo(f"wrote {chart}", err=True)


def plan_request(flags: dict[str, Any]) -> PlanRequest:
    """Flags -> PlanRequest (only the flags that were given)."""
    workload_names = {"daily_input": "daily_input_tokens", "daily_cached": "daily_cached_tokens",
                      "daily_cache_write": "daily_cache_write_tokens", "daily_output": "daily_output_tokens",
                      "peak_to_average": "peak_to_average", "growth": "growth_per_month",
                      "batchable_share": "batchable_share"}
    economics = {"discount_rate": flags["discount_rate"], "projection_months": flags["projection_months"],
                 "pricing_at": flags["pricing_at"], "horizons_years": list(flags["horizons"]) or None}
    return PlanRequest(
        scenario_path=flags["scenario_path"],
        ledger=flags["ledger"],
        since=flags["since"],
        until=flags["until"],
        workload_overrides={field: flags[flag] for flag, field in workload_names.items() if flags[flag] is not None},
        per_token=tuple(flags["per_token"]),
        bench_json=flags["bench_json"],
        bench_target=flags["bench_target"],
        replica_output_tps=flags["replica_output_tps"],
        replica_total_tps=flags["replica_total_tps"],
        economics_overrides={k: v for k, v in economics.items() if v is not None},
    )

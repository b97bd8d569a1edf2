"""`tollway report`: spend, tokens, latency, errors and fallbacks per provider and model, with savings.

Reads the ledger (never the running gateway), so it works on a copy of a production ledger as well as on
the live one. `--baseline openai/gpt-4o` adds what the same traffic would have cost on that catalog model.
A PostgreSQL ledger is reported from its hourly roll-ups; a baseline prices each row at its own moment and
size, so with `--baseline` (and on SQLite) the window's rows are read.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import click
import orjson

from tollway.accounting.spend_groups import DIMENSIONS, SpendFilter, grouper, row_tags
from tollway.accounting.usage_report import key_teams
from tollway.catalog import Catalog
from tollway.core.money_text import usd_text
from tollway.core.time_window import parse_when
from tollway.ledger.location import announce, database_url_option, find_ledger
from tollway.ledger.postgres_reader import PostgresLedgerReader
from tollway.ledger.reader import LedgerReadError
from tollway.observe.report_data import (
    BaselineError,
    Report,
    ReportLine,
    baseline_pricer,
    build_report,
    report_from_rollups,
)
from tollway.terminal.tables import Column, TableSpec, print_fitted

CSV_COLUMNS = ("provider", "model", "requests", "errors", "error_rate", "fallbacks", "fallback_rate",
               "prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens", "cost_usd",
               "unpriced_requests", "ttft_ms_p50", "ttft_ms_p99", "latency_ms_p50", "latency_ms_p99",
               "baseline_cost_usd", "savings_usd")


@click.command()
@click.option("--ledger", type=click.Path(path_type=Path), help="SQLite ledger (default: the config's, else the gateway's default).")
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="tollway.yaml (default: found as `tollway serve` finds it): its ledger path, catalog overrides "
                   "and cny_per_usd are used.")
@database_url_option
@click.option("--since", default="7d", show_default=True, help="Start: 7d, 12h, 30m or an ISO date/time (UTC).")
@click.option("--until", help="End (exclusive), same forms; default now.")
@click.option("--baseline", metavar="PROVIDER/MODEL", help="Also price the traffic on this catalog model, e.g. openai/gpt-4o.")
@click.option("--by", type=click.Choice(DIMENSIONS), help="One line per key, team, user, tag, ... instead of per "
              "provider and model (read from the rows).")
@click.option("--key", "key_id", help="Only requests of this virtual key id.")
@click.option("--user", help="Only requests whose `user` field was this.")
@click.option("--tag", help="Only requests carrying this tag (e.g. env:prod).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV, one line per provider and model, then the total.")
@click.option("--png", "png_dir", type=click.Path(path_type=Path), help="Write PNG charts into this directory.")
@click.option("--wide", is_flag=True, help="Show every column, however wide the table gets.")
def report(ledger: Path | None, config_path: Path | None, database_url: str | None, since: str, until: str | None,
           baseline: str | None, by: str | None, key_id: str | None, user: str | None, tag: str | None,
           as_json: bool, as_csv: bool, png_dir: Path | None, wide: bool) -> None:
    """Spend, tokens, requests, TTFT/latency percentiles, error and fallback rates per provider and model."""
    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")
    start, end = parse_when(since, "--since"), parse_when(until, "--until")
    location = find_ledger("report", config_path, ledger, database_url)
    announce(location)
    catalog = _catalog(location.config)
    reader = location.reader()
    try:
        pricer = baseline_pricer(catalog, baseline) if baseline else None
        only = SpendFilter(key_id, user, tag)
        if by is not None or only != SpendFilter():
            groups = grouper(by, key_teams(location) if by == "team" else {}) if by else None
            rows = (row for row in reader.rows(start, end, key_id) if only.admits(row, row_tags(row)))
            grouping = (by, lambda row: groups(row, row_tags(row))) if by is not None and groups else None
            result = build_report(rows, pricer, baseline, start, end, grouping)
        elif isinstance(reader, PostgresLedgerReader) and reader.has_rollups and pricer is None:
            result = report_from_rollups(reader, start, end)
        else:
            result = build_report(reader.rows(start, end), pricer, baseline, start, end)
    except (LedgerReadError, BaselineError) as exc:
        raise click.ClickException(str(exc)) from None
    if png_dir is not None:
        from tollway.observe.report_charts import write_charts

        for path in write_charts(result, png_dir):
            click.echo(f"wrote {path}", err=True)
    if as_json:
        click.echo(orjson.dumps(report_json(result), option=orjson.OPT_INDENT_2).decode())
    elif as_csv:
        click.echo(report_csv(result), nl=False)
    else:
        _print_tables(result, wide)


def _catalog(config) -> Catalog:
    if config is None:
        return Catalog.load()
    return Catalog.from_config_section({"catalog": config.catalog, "cny_per_usd": config.cny_per_usd})


def report_json(result: Report) -> dict[str, object]:
    return {
        "since": result.since.isoformat() if result.since else None,
        "until": result.until.isoformat() if result.until else None,
        "baseline": result.baseline,
        "by": result.by,
        "lines": [_line_json(line, result.by) for line in result.lines],
        "total": result.total.to_json(),
        "attempts": [{"provider": a.provider, "attempts": a.attempts, "failed": a.failed,
                      "failure_rate": a.failure_rate} for a in result.attempts],
        "shadow_cost_usd": f"{result.shadow_cost_usd:f}",
        "daily_cost_usd": {day: f"{cost:f}" for day, cost in result.daily_cost_usd.items()},
    }


def _line_json(line: ReportLine, by: str | None) -> dict[str, object]:
    """A line as JSON; grouped by a dimension, its value is `group` (no provider or model)."""
    data = line.to_json()
    if by is not None:
        data = {"group": data.pop("provider"), **{k: v for k, v in data.items() if k != "model"}}
    return data


def report_csv(result: Report) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for line in [*result.lines, result.total]:
        writer.writerow({name: "" if value is None else value for name, value in line.to_json().items()})
    return out.getvalue()


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def line_columns(baseline: str | None) -> list[Column]:
    """Key: who, how many, what it cost (and saved); then error rate, latencies, fallbacks, tokens."""
    columns = [Column("provider", key=True, left=True, wrap=True), Column("model", key=True, left=True, wrap=True),
               Column("requests", key=True), Column("err %", rank=1), Column("fallback %", rank=4),
               Column("prompt", rank=5), Column("cached", rank=7), Column("completion", rank=6),
               Column("spend", key=True), Column("TTFT p50/p99 ms", rank=2), Column("latency p50/p99 ms", rank=3)]
    if baseline:
        columns += [Column("baseline", key=True), Column("saved", key=True)]  # the title names the baseline
    return columns


def report_tables(result: Report) -> list[TableSpec]:
    """The lines with their total, then the upstream attempts per provider."""
    window = f"{result.since:%Y-%m-%d %H:%M} UTC" if result.since else "the start"
    title = f"tollway report: since {window}" + (f", savings against {result.baseline}" if result.baseline else "")
    columns = line_columns(result.baseline)
    if result.by is not None:  # the group's value in the first column; no model column
        columns = [Column(result.by, key=True, left=True, wrap=True), *columns[2:]]
    lines = TableSpec(title, columns)
    skip = 1 if result.by is not None else 0
    for line in result.lines:
        cells = _cells(line, bool(result.baseline))
        lines.add_row(cells[0] or "-", *cells[1 + skip:])
    lines.add_section()
    cells = _cells(result.total, bool(result.baseline))
    lines.add_row(cells[0], *cells[1 + skip:])
    specs = [lines]
    if result.attempts:
        attempts = TableSpec("upstream attempts per provider",
                             [Column("provider", key=True, left=True, wrap=True), Column("attempts", key=True),
                              Column("failed", key=True), Column("failure %", key=True)])
        for a in result.attempts:
            attempts.add_row(a.provider, f"{a.attempts:,}", f"{a.failed:,}", f"{100 * a.failure_rate:.1f}")
        specs.append(attempts)
    return specs


def _print_tables(result: Report, wide: bool) -> None:
    from tollway.terminal.console import output_console

    console = output_console()
    print_fitted(console, report_tables(result), wide)
    if result.shadow_cost_usd:
        console.print(f"shadow traffic (not in the lines above) cost {usd_text(result.shadow_cost_usd)}")


def _cells(line: ReportLine, with_baseline: bool) -> list[str]:
    cells = [line.provider, line.model, f"{line.requests:,}", f"{100 * line.error_rate:.1f}",
             f"{100 * line.fallback_rate:.1f}", f"{line.prompt_tokens:,}", f"{line.cached_tokens:,}",
             f"{line.completion_tokens:,}",
             usd_text(line.cost_usd) + (f" ({line.unpriced} unpriced)" if line.unpriced else ""),
             f"{_ms(line.quantile('ttft_ms', 50))} / {_ms(line.quantile('ttft_ms', 99))}",
             f"{_ms(line.quantile('latency_ms', 50))} / {_ms(line.quantile('latency_ms', 99))}"]
    if with_baseline:
        savings = line.savings_usd
        cells += [usd_text(line.baseline_cost_usd or 0), "-" if savings is None else usd_text(savings)]
    return cells

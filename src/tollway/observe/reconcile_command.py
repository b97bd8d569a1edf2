"""`tollway reconcile invoice.csv`: compare the ledger with a provider's invoice export by day and model.

The invoice's days may be in any time zone (half-hour offsets too), so the ledger's rows of those days
are read one by one, from whichever store the config names, rather than its UTC hourly sums.

Exit status 0 when every line agrees within the tolerance, 1 when any line is flagged (so a scheduled
job can page), 2 for bad input (click's usage errors) and 1 with a message for unreadable files.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import orjson

from tollway.ledger.location import announce, database_url_option, find_ledger
from tollway.ledger.reader import LedgerReadError
from tollway.observe.invoice import Columns, InvoiceError, read_invoice
from tollway.observe.reconciliation import DayModel, Tolerance
from tollway.observe.reconciliation import reconcile as compare
from tollway.terminal.console import output_console


@click.command()
@click.argument("invoice", type=click.Path(path_type=Path))
@click.option("--ledger", type=click.Path(path_type=Path), help="SQLite ledger (default: the config's, else the gateway's default).")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="tollway.yaml (default: found as `tollway serve` finds it): ledger path and cny_per_usd.")
@database_url_option
@click.option("--provider", help="Only ledger rows of this provider (its name in the config).")
@click.option("--tz", "tz_name", default="UTC", show_default=True, help="Time zone the invoice's days are in, e.g. Asia/Shanghai.")
@click.option("--currency", type=click.Choice(["USD", "CNY"], case_sensitive=False),
              help="Currency of the amounts when the export has no currency column (default USD).")
@click.option("--cny-per-usd", help="Exchange rate for CNY exports (default: the config's cny_per_usd).")
@click.option("--tolerance", default="2%", show_default=True, help="Relative difference allowed per line.")
@click.option("--tolerance-usd", default="0.01", show_default=True, help="Absolute difference always allowed per line.")
@click.option("--date-column", help="Invoice column holding the day.")
@click.option("--model-column", help="Invoice column holding the model name.")
@click.option("--cost-column", help="Invoice column holding the amount.")
@click.option("--model-map", multiple=True, metavar="INVOICE_NAME=LEDGER_NAME",
              help="Treat an invoice model name as the ledger's upstream model name (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def reconcile(invoice: Path, ledger: Path | None, config_path: Path | None, database_url: str | None, provider: str | None, tz_name: str,
              currency: str | None, cny_per_usd: str | None, tolerance: str, tolerance_usd: str,
              date_column: str | None, model_column: str | None, cost_column: str | None,
              model_map: tuple[str, ...], as_json: bool) -> None:
    """Compare the ledger with a provider's invoice export (CSV) by day and model; flag the gaps."""
    location = find_ledger("reconcile", config_path, ledger, database_url)
    announce(location)
    configured_rate = location.config.cny_per_usd if location.config is not None else None
    tz = _zone(tz_name)
    rate = _decimal(cny_per_usd, "--cny-per-usd") if cny_per_usd else configured_rate
    limits = Tolerance(_decimal(tolerance_usd, "--tolerance-usd"), _relative(tolerance))
    try:
        lines = read_invoice(invoice, Columns(date_column, model_column, cost_column), currency, rate,
                             _mapping(model_map))
        days = sorted({date.fromisoformat(line.day) for line in lines})
        since = datetime.combine(days[0] - timedelta(days=1), datetime.min.time(), UTC)
        until = datetime.combine(days[-1] + timedelta(days=2), datetime.min.time(), UTC)
        result = compare(location.reader().rows(since, until), lines, tz, limits, provider)
    except (InvoiceError, LedgerReadError) as exc:
        raise click.ClickException(str(exc)) from None
    flagged = [entry for entry in result if entry.status != "ok"]
    if as_json:
        click.echo(orjson.dumps(_json(result, flagged), option=orjson.OPT_INDENT_2).decode())
    else:
        _print(result, flagged, tz_name)
    sys.exit(1 if flagged else 0)


def _json(result: list[DayModel], flagged: list[DayModel]) -> dict[str, object]:
    return {"lines": [entry.to_json() for entry in result], "flagged": len(flagged),
            "ledger_total_usd": f"{sum((e.ledger_cost_usd for e in result), Decimal(0)):f}",
            "invoice_total_usd": f"{sum((e.invoice_cost_usd or Decimal(0) for e in result), Decimal(0)):f}"}


def _print(result: list[DayModel], flagged: list[DayModel], tz_name: str) -> None:
    from rich.table import Table

    table = Table(title=f"ledger vs invoice by day ({tz_name}) and model")
    for name in ("day", "model", "ledger USD", "invoice USD", "difference", "requests", "status"):
        table.add_column(name, justify="right" if name not in ("day", "model", "status") else "left")
    for e in result:
        style = "bold red" if e.status != "ok" else None
        table.add_row(e.day, e.model, f"{e.ledger_cost_usd:f}", "-" if e.invoice_cost_usd is None else f"{e.invoice_cost_usd:f}",
                      f"{e.difference_usd:+f}", str(e.ledger_requests), e.status.replace("_", " "), style=style)
    console = output_console()
    console.print(table)
    totals = _json(result, flagged)
    console.print(f"ledger {totals['ledger_total_usd']} USD, invoice {totals['invoice_total_usd']} USD; "
                  f"{len(flagged)} of {len(result)} lines flagged")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"{name!r} is not a time zone (e.g. UTC, Asia/Shanghai)", param_hint="--tz") from None


def _decimal(text: str, option: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise click.BadParameter(f"{text!r} is not a number", param_hint=option) from None
    if not value.is_finite() or value < 0:
        raise click.BadParameter(f"{text!r} must be a non-negative number", param_hint=option)
    return value


def _relative(text: str) -> Decimal:
    value = _decimal(text.rstrip("%"), "--tolerance")
    return value / 100 if text.endswith("%") else value


def _mapping(pairs: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        invoice_name, sep, ledger_name = pair.partition("=")
        if not sep or not invoice_name or not ledger_name:
            raise click.BadParameter(f"{pair!r}: use INVOICE_NAME=LEDGER_NAME", param_hint="--model-map")
        mapping[invoice_name] = ledger_name
    return mapping

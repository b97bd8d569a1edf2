"""`tollway usage`: spend and tokens from the ledger, by day, model and provider.

Sums are done in Python with Decimal over the ledger's exact cost strings: SQLite's SUM would turn them
into floats.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import click
import orjson

from tollway.core.time_window import parse_when
from tollway.terminal.tables import Column, TableSpec, print_fitted
from tollway.ledger.location import announce, find_ledger
from tollway.core.money_text import usd_text


@dataclass
class UsageLine:
    day: str
    model: str
    provider: str
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: int = 0
    unpriced: int = 0
    cost_usd: Decimal = field(default_factory=Decimal)


def summarise(ledger: Path, since: datetime | None = None) -> list[UsageLine]:
    """One line per (UTC day, requested model, provider), oldest first."""
    if not ledger.exists():
        raise click.ClickException(f"no ledger at {ledger}: start `tollway serve` or pass --ledger")
    conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT substr(ts, 1, 10), requested_model, provider, status, prompt_tokens, cached_tokens, "
            "completion_tokens, reasoning_tokens, usage_source, cost_usd, priced FROM requests "
            "WHERE shadow = 0 AND ts >= ? ORDER BY ts", ((since or datetime.min.replace(tzinfo=timezone.utc)).isoformat(),))
        lines: dict[tuple[str, str, str], UsageLine] = {}
        for day, model, provider, status, prompt, cached, completion, reasoning, source, cost, priced in rows:
            line = lines.get((day, model, provider))
            if line is None:
                line = lines[(day, model, provider)] = UsageLine(day, model, provider)
            line.requests += 1
            line.errors += status != "ok"
            line.prompt_tokens += prompt
            line.cached_tokens += cached
            line.completion_tokens += completion
            line.reasoning_tokens += reasoning
            line.estimated += source == "estimated"
            line.unpriced += not priced
            line.cost_usd += Decimal(cost)
    finally:
        conn.close()
    return list(lines.values())


@click.command()
@click.option("--ledger", type=click.Path(path_type=Path),
              help="SQLite ledger (default: the one `tollway serve` writes: the config's ledger.path, else the default).")
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="Config file, found as `tollway serve` finds it: $TOLLWAY_CONFIG, ./tollway.yaml, the user config dir.")
@click.option("--since", help="Only requests since then: 7d, 12h, or an ISO date/time (UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--wide", is_flag=True, help="Show every column, however wide the table gets.")
def usage(ledger: Path | None, config_path: Path | None, since: str | None, as_json: bool, wide: bool) -> None:
    """Spend and tokens from the ledger by day, model and provider."""
    window = parse_when(since, "--since")
    location = find_ledger("usage", config_path, ledger)
    announce(location)
    lines = summarise(location.path, window)
    if as_json:
        data = [{**line.__dict__, "cost_usd": str(line.cost_usd)} for line in lines]
        click.echo(orjson.dumps({"lines": data, "total_cost_usd": str(sum((l.cost_usd for l in lines), Decimal(0)))},
                                option=orjson.OPT_INDENT_2).decode())
        return
    _print_table(lines, wide)


USAGE_COLUMNS = [Column("day", key=True, left=True), Column("model", key=True, left=True, wrap=True),
                 Column("provider", left=True, wrap=True), Column("requests", key=True), Column("errors"),
                 Column("prompt"), Column("completion"), Column("cached"), Column("est."), Column("unpriced"),
                 Column("cost", key=True)]


def usage_table(lines: list[UsageLine]) -> TableSpec:
    """Key columns: day, model, requests, cost; the rest fit when the screen allows (or with --wide)."""
    spec = TableSpec("tollway usage", USAGE_COLUMNS)
    for l in lines:
        spec.add_row(l.day, l.model, l.provider or "-", f"{l.requests:,}", f"{l.errors:,}", f"{l.prompt_tokens:,}",
                     f"{l.completion_tokens:,}", f"{l.cached_tokens:,}", f"{l.estimated:,}", f"{l.unpriced:,}",
                     usd_text(l.cost_usd))
    spec.add_section()
    spec.add_row("total", "", "", f"{sum(l.requests for l in lines):,}", f"{sum(l.errors for l in lines):,}",
                 f"{sum(l.prompt_tokens for l in lines):,}", f"{sum(l.completion_tokens for l in lines):,}",
                 f"{sum(l.cached_tokens for l in lines):,}", f"{sum(l.estimated for l in lines):,}",
                 f"{sum(l.unpriced for l in lines):,}", usd_text(sum((l.cost_usd for l in lines), Decimal(0))))
    return spec


def _print_table(lines: list[UsageLine], wide: bool) -> None:
    from tollway.terminal.console import output_console

    print_fitted(output_console(), [usage_table(lines)], wide)

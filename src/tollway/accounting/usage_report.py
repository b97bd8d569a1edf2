"""`tollway usage`: spend and tokens from the ledger, by day, model and provider, or grouped and filtered by
key, team, end user, tag, route group, deployment or model (`--by`, `--key/--user/--tag`).

The ledger's hourly sums (ledger/reader.py: roll-ups on PostgreSQL, a GROUP BY on SQLite) are added up
per day here, exactly: costs are Decimals all the way. Grouped or filtered figures are summed from the
rows (spend_groups.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import click
import orjson

from tollway.accounting.spend_groups import DIMENSIONS, SpendFilter, SpendLine, spend_by
from tollway.core.money_text import usd_text
from tollway.core.time_window import parse_when
from tollway.ledger.location import LedgerLocation, announce, database_url_option, find_ledger
from tollway.ledger.reader import LedgerReader, LedgerReadError
from tollway.terminal.tables import Column, TableSpec, print_fitted


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


def summarise(reader: LedgerReader, since: datetime | None = None) -> list[UsageLine]:
    """One line per (UTC day, requested model, provider) of client traffic (not shadow copies), oldest first."""
    lines: dict[tuple[str, str, str], UsageLine] = {}
    for hour in reader.hourly(since, None):
        if hour.shadow:
            continue
        day = hour.hour.date().isoformat()
        line = lines.get((day, hour.requested_model, hour.provider))
        if line is None:
            line = lines[(day, hour.requested_model, hour.provider)] = UsageLine(day, hour.requested_model, hour.provider)
        line.requests += hour.requests
        line.errors += hour.requests if hour.status != "ok" else 0
        line.prompt_tokens += hour.prompt_tokens
        line.cached_tokens += hour.cached_tokens
        line.completion_tokens += hour.completion_tokens
        line.reasoning_tokens += hour.reasoning_tokens
        line.estimated += hour.estimated
        line.unpriced += hour.unpriced
        line.cost_usd += hour.cost_usd
    return sorted(lines.values(), key=lambda line: (line.day, line.model, line.provider))


@click.command()
@click.option("--ledger", type=click.Path(path_type=Path),
              help="SQLite ledger (default: the one `tollway serve` writes: the config's ledger.path, else the default).")
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="Config file, found as `tollway serve` finds it: $TOLLWAY_CONFIG, ./tollway.yaml, the user config dir.")
@database_url_option
@click.option("--since", help="Only requests since then: 7d, 12h, or an ISO date/time (UTC).")
@click.option("--by", type=click.Choice(DIMENSIONS), help="Group by this instead of day, model and provider.")
@click.option("--key", "key_id", help="Only requests of this virtual key id.")
@click.option("--user", help="Only requests whose `user` field was this.")
@click.option("--tag", help="Only requests carrying this tag (e.g. env:prod).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--wide", is_flag=True, help="Show every column, however wide the table gets.")
def usage(ledger: Path | None, config_path: Path | None, database_url: str | None, since: str | None,
          by: str | None, key_id: str | None, user: str | None, tag: str | None, as_json: bool, wide: bool) -> None:
    """Spend and tokens from the ledger by day, model and provider (or --by key, team, user, tag, ...)."""
    window = parse_when(since, "--since")
    location = find_ledger("usage", config_path, ledger, database_url)
    announce(location)
    if by is not None or key_id is not None or user is not None or tag is not None:
        _grouped(location, window, by or "key", SpendFilter(key_id, user, tag), as_json, wide)
        return
    try:
        lines = summarise(location.reader(), window)
    except LedgerReadError as exc:
        raise click.ClickException(str(exc)) from None
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


def _grouped(location: LedgerLocation, since: datetime | None, by: str, only: SpendFilter, as_json: bool,
             wide: bool) -> None:
    teams = key_teams(location) if by == "team" else {}
    try:
        lines, total = spend_by(location.reader().rows(since, None, only.key), by, teams, only)
    except LedgerReadError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(orjson.dumps({"by": by, "lines": [_line_json(line) for line in lines],
                                 "total": _line_json(total), "total_cost_usd": str(total.cost_usd)},
                                option=orjson.OPT_INDENT_2).decode())
        return
    from tollway.terminal.console import output_console

    spec = TableSpec(f"tollway usage by {by}", [Column(by, key=True, left=True, wrap=True), Column("requests", key=True),
                                               Column("errors"), Column("prompt"), Column("completion"),
                                               Column("cost", key=True)])
    for line in [*lines, None, total]:
        if line is None:
            spec.add_section()
            continue
        spec.add_row(line.group or "-", f"{line.requests:,}", f"{line.errors:,}", f"{line.prompt_tokens:,}",
                     f"{line.completion_tokens:,}", usd_text(line.cost_usd))
    print_fitted(output_console(), [spec], wide)


def _line_json(line: SpendLine) -> dict:
    return {**line.__dict__, "cost_usd": str(line.cost_usd)}


def key_teams(location: LedgerLocation) -> dict[str, str]:
    """Key id -> team, from the key store beside the ledger (the team a key has now, not when it spent)."""
    from tollway.accounting.keys.store import open_key_store

    config = location.config
    path = config.keys.path if config is not None and config.keys.path else location.path
    try:
        store = open_key_store(location.database_url, path)
    except Exception as exc:  # noqa: BLE001 - any store failure is reported the same way
        raise click.ClickException(f"cannot read the keys' teams from {location.description}: {exc}") from None
    try:
        return {record.id: record.team or "" for record in store.list()}
    finally:
        store.close()

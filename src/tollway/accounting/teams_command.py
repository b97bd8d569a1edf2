"""`tollway teams`: create, list, change the budgets of, and delete teams kept in the key store.

Teams under `teams:` in the config are listed too (source "config") but changed only there; see
teams.py for why each team has exactly one home. The command writes the store gateways read (the
config's database_url, or the SQLite ledger file), so running replicas apply a change within
`keys.refresh_ms`.
"""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from tollway.accounting.keys.command import _Context, _url_option, budget_entries
from tollway.accounting.keys.fields import KeyFieldError, count
from tollway.accounting.keys.records import UNSET
from tollway.accounting.keys.store import KEY_STORE_ERRORS, KeyStore
from tollway.accounting.settings import check_database_url
from tollway.accounting.teams import TeamSpec, config_team_public, new_team, team_name_problem
from tollway.terminal.console import output_console


@click.group()
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Config file (as for `tollway serve`).")
@click.option("--ledger", type=click.Path(path_type=Path), help="SQLite file holding keys and teams (default: "
                                                                "keys.path, then the ledger).")
@click.option("--database-url", callback=_url_option(check_database_url), help="PostgreSQL holding keys and teams.")
@click.pass_context
def teams(ctx: click.Context, config_path: Path | None, ledger: Path | None, database_url: str | None) -> None:
    """Create, list, change the budgets of, and delete teams."""
    ctx.obj = _Context(config_path, ledger, database_url, None)


@teams.command()
@click.argument("name")
@click.argument("entries", nargs=-1)
@click.option("--rpm", help="Requests per rolling minute for all the team's keys together.")
@click.option("--tpm", help="Tokens per rolling minute for all the team's keys together.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def create(obj: _Context, name: str, entries: tuple[str, ...], rpm: str | None, tpm: str | None,
           as_json: bool) -> None:
    """Create team NAME with budget ENTRIES ([user:]WINDOW=USD[@MODEL], e.g. day=50 month=900 user:day=2)."""
    problem = team_name_problem(name)
    if problem is not None:
        raise click.BadParameter(problem, param_hint="NAME")
    _refuse_config_team(obj, name)
    spec = TeamSpec(budgets=budget_entries(obj, entries) if entries else (), rpm=_count(rpm, "--rpm"),
                    tpm=_count(tpm, "--tpm"))
    record = _run(obj, lambda store: store.create_team(new_team(name, spec)))
    _show([record.public()], as_json, f"team {name} created")


@teams.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_(obj: _Context, as_json: bool) -> None:
    """List teams from the config and the store, with their budgets and limits."""
    configured = obj.config.teams
    stored = [t.public() for t in _run(obj, lambda store: store.list_teams()) if t.name not in configured]
    found = sorted([config_team_public(n, t) for n, t in configured.items()] + stored, key=lambda t: t["name"])
    _show(found, as_json, f"{len(found)} teams")


@teams.command("set-budget")
@click.argument("name")
@click.argument("entries", nargs=-1)
@click.option("--rpm", help="Requests per rolling minute ('none' clears).")
@click.option("--tpm", help="Tokens per rolling minute ('none' clears).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def set_budget(obj: _Context, name: str, entries: tuple[str, ...], rpm: str | None, tpm: str | None,
               as_json: bool) -> None:
    """Replace team NAME's budgets with ENTRIES (`none`: no budgets); --rpm/--tpm change its rate limits."""
    _refuse_config_team(obj, name)
    if not entries and rpm is None and tpm is None:
        raise click.UsageError("give budget ENTRIES (e.g. day=50 month=900, or none), --rpm or --tpm")
    spec = TeamSpec(budgets=budget_entries(obj, entries) if entries else None, rpm=_count(rpm, "--rpm"),
                    tpm=_count(tpm, "--tpm"))
    record = _run(obj, lambda store: store.update_team(name, spec))
    _show([record.public()], as_json, f"team {name} changed")


@teams.command()
@click.argument("name")
@click.pass_obj
def delete(obj: _Context, name: str) -> None:
    """Delete stored team NAME: its keys keep their own budgets and lose the team's."""
    _refuse_config_team(obj, name)
    _run(obj, lambda store: store.delete_team(name))
    click.echo(f"team {name} deleted")


def _refuse_config_team(obj: _Context, name: str) -> None:
    if name in obj.config.teams:
        raise click.ClickException(f"team {name!r} is defined in the config file (teams.{name}); change it there")


def _count(value: str | None, field: str) -> int | None | object:
    if value is None:
        return UNSET
    try:
        return count(value, field)
    except KeyFieldError as exc:
        raise click.BadParameter(str(exc)) from None


def _run(obj: _Context, work):
    store: KeyStore = obj.store()
    try:
        return work(store)
    except KEY_STORE_ERRORS as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()


def _show(found: list[dict], as_json: bool, title: str) -> None:
    if as_json:
        click.echo(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode())
        return
    from rich.table import Table

    table = Table(title=title)
    for column in ("name", "source", "budgets", "rpm", "tpm"):
        table.add_column(column)
    for team in found:
        budgets = " ".join(_entry_text(e) for e in team["budgets"]) or "-"
        table.add_row(team["name"], team["source"], budgets, _text(team["rpm"]), _text(team["tpm"]))
    output_console().print(table)


def _entry_text(entry: dict) -> str:
    model = f"@{entry['model']}" if entry.get("model") else ""
    return f"{'user:' if entry.get('per_user') else ''}{entry['window']}={entry['limit_usd']}{model}"


def _text(value: object) -> str:
    return "-" if value is None else str(value)

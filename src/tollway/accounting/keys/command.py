"""`tollway keys`: create, list, update and revoke virtual keys.

The command writes the key store the gateway reads (the config's database_url, or the SQLite ledger
file), so running gateways see a change within `keys.refresh_ms`; with Redis configured a revocation
is also published there and takes effect on every replica at once. A new key's secret is printed once
and never stored: only its salted hash is.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import click
import orjson

from tollway.accounting.budget_entries import BudgetEntryError, entries_from_text
from tollway.accounting.keys.fields import KeyFieldError, budget_pair, count, expiry, grace_period, names
from tollway.accounting.keys.records import UNSET, KeyRecord, KeySpec, imported_key_id, new_record, new_secret
from tollway.accounting.keys.spend import spend_per_key
from tollway.accounting.keys.store import KEY_STORE_ERRORS, KeyStore, open_key_store
from tollway.accounting.settings import check_database_url, check_redis_url
from tollway.config import Config, ConfigError, default_ledger_path, load_config
from tollway.core.money_text import usd_text
from tollway.core.redact import redact_url
from tollway.ledger.reader import LedgerReadError, open_reader
from tollway.terminal.console import output_console


class _Context:
    def __init__(self, config_path: Path | None, ledger: Path | None, database_url: str | None,
                 redis_url: str | None) -> None:
        self.config_path, self.ledger, self.database_url, self.redis_url = config_path, ledger, database_url, redis_url
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            try:
                self._config = load_config(self.config_path)[0]
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from None
        return self._config

    def store(self) -> KeyStore:
        database_url = self.database_url or self.config.database_url
        path = self.ledger or self.config.keys.path or self.config.ledger.path or default_ledger_path()
        try:
            return open_key_store(database_url, path)
        except KEY_STORE_ERRORS as exc:
            raise click.ClickException(str(exc)) from None

    def spend(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Each key's spend today and this month from the ledger; none when there is no ledger yet."""
        database_url = self.database_url or self.config.database_url
        path = self.ledger or self.config.ledger.path or default_ledger_path()
        try:
            return spend_per_key(open_reader(path, database_url))
        except LedgerReadError:
            return {}

    def redis(self) -> str | None:
        return self.redis_url or self.config.redis_url

    def models(self) -> set[str]:
        """The names a per-model budget may use: the config's route groups and aliased deployments."""
        config = self.config
        return set(config.route_groups) | {name for name, dep in config.deployments.items() if dep.aliases}


def budget_entries(obj: _Context, entries: tuple[str, ...]) -> tuple:
    """Budget entries typed as [user:]WINDOW=USD[@MODEL] (a single `none`: no budgets), checked whole."""
    if not entries:
        raise click.UsageError("give the budgets, e.g. day=5 month=100 day=2@chat user:day=0.5 (or none)")
    try:
        return entries_from_text(entries, "budget", obj.models())
    except BudgetEntryError as exc:
        raise click.BadParameter(str(exc), param_hint="ENTRIES") from None


def _url_option(checker):
    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        try:
            return checker(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return check


@click.group()
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Config file (as for `tollway serve`).")
@click.option("--ledger", type=click.Path(path_type=Path), help="SQLite file holding keys (default: keys.path, then the ledger).")
@click.option("--database-url", callback=_url_option(check_database_url), help="PostgreSQL holding keys (overrides database_url).")
@click.option("--redis-url", callback=_url_option(check_redis_url), help="Redis to publish revocations to (overrides redis_url).")
@click.pass_context
def keys(ctx: click.Context, config_path: Path | None, ledger: Path | None, database_url: str | None,
         redis_url: str | None) -> None:
    """Create, list, update and revoke virtual keys with budgets and limits."""
    ctx.obj = _Context(config_path, ledger, database_url, redis_url)


def _limit_options(command):
    options = [
        click.option("--budget-usd", help="USD budgets as DAILY/MONTHLY, e.g. 5/100, 5/ (daily only), /100 (monthly "
                                          "only); 'none' on a side clears it."),
        click.option("--rpm", help="Requests per rolling minute ('none' clears)."),
        click.option("--tpm", help="Tokens (prompt + completion) per rolling minute ('none' clears)."),
        click.option("--default-max-tokens", help="max_tokens sent for requests that set none, so the budget holds "
                                                  "that many output tokens, not the model's maximum ('none' clears)."),
        click.option("--models", help="Comma-separated model names (route groups or aliases) the key may use; "
                                      "'' allows all."),
        click.option("--residency", help="Comma-separated jurisdictions its requests may go to (e.g. eu,sg); '' allows any."),
        click.option("--team", help="Team whose limits and budgets also apply (see `teams:` in the config)."),
        click.option("--expires-at", help="ISO date/time (UTC unless it names a zone) after which the key gets 401 "
                                          "key_expired; 'none' clears."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _spec(name: str | None, budget_usd: str | None, rpm: str | None, tpm: str | None, models: str | None,
          residency: str | None, team: str | None, default_max_tokens: str | None = None,
          expires_at: str | None = None) -> KeySpec:
    try:
        daily = monthly = UNSET
        if budget_usd is not None:  # a side left empty stays as it is ("5/" on update changes only the daily)
            given_daily, given_monthly = budget_pair(budget_usd)
            left, _, right = budget_usd.partition("/")
            daily = given_daily if left.strip() else UNSET
            monthly = given_monthly if right.strip() else UNSET
        return KeySpec(name=name, team=team, daily_usd=daily, monthly_usd=monthly,
                       rpm=count(rpm, "--rpm") if rpm is not None else UNSET,
                       tpm=count(tpm, "--tpm") if tpm is not None else UNSET,
                       default_max_tokens=count(default_max_tokens, "--default-max-tokens")
                       if default_max_tokens is not None else UNSET,
                       models=_names(models, "--models"), residency=_names(residency, "--residency"),
                       expires_at=expiry(expires_at, "--expires-at") if expires_at is not None else None)
    except KeyFieldError as exc:
        raise click.BadParameter(str(exc)) from None


def _names(value: str | None, field: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    return names(value, field) if value.strip() else ()


@keys.command()
@click.option("--name", required=True, help="A name people recognise, e.g. the app or person using it.")
@click.option("--secret-env", metavar="VAR", help="Import the secret held in this environment variable (shape "
              "tw_<id>_<hex>, e.g. from another gateway or a secret manager) instead of minting one.")
@_limit_options
@click.pass_obj
def create(obj: _Context, name: str, secret_env: str | None, budget_usd: str | None, rpm: str | None,
           tpm: str | None, default_max_tokens: str | None, models: str | None, residency: str | None,
           team: str | None, expires_at: str | None, as_json: bool) -> None:
    """Create a key and print its secret (shown only this once), or import a given secret."""
    spec = _spec(name, budget_usd, rpm, tpm, models, residency, team, default_max_tokens, expires_at)
    _warn_unknown_team(obj, team)
    key_id, secret = _imported(secret_env) if secret_env else new_secret()
    store = obj.store()
    try:
        if secret_env and store.get(key_id) is not None:
            raise click.ClickException(f"key id {key_id} (from the secret in ${secret_env}) is already in use")
        record = store.create(new_record(key_id, secret, spec))
    except KEY_STORE_ERRORS as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    if as_json:
        click.echo(orjson.dumps({**record.public(), "secret": secret}, option=orjson.OPT_INDENT_2).decode())
        return
    _print_keys([record], f"created in {store.where}")
    click.echo(f"\nsecret: {secret}")
    click.echo("Store it now: it is not kept and cannot be shown again. Send it as 'Authorization: Bearer <secret>'.",
               err=True)


@keys.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked keys.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_(obj: _Context, show_all: bool, as_json: bool) -> None:
    """List keys (without secrets), with each key's spend today and this month (UTC) from the ledger."""
    store = obj.store()
    try:
        records = [r for r in store.list() if show_all or not r.revoked]
    except KEY_STORE_ERRORS as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    spent = obj.spend()
    if as_json:
        data = [{**r.public(), "spent_today_usd": str(spent.get(r.id, _NONE)[0]),
                 "spent_month_usd": str(spent.get(r.id, _NONE)[1])} for r in records]
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    _print_keys(records, f"{len(records)} keys in {store.where}", spent)


@keys.command()
@click.argument("key_id")
@click.option("--name", help="A new name.")
@_limit_options
@click.pass_obj
def update(obj: _Context, key_id: str, name: str | None, budget_usd: str | None, rpm: str | None, tpm: str | None,
           default_max_tokens: str | None, models: str | None, residency: str | None, team: str | None,
           expires_at: str | None, as_json: bool) -> None:
    """Change a key's name, budgets, limits, default max_tokens, models, residency, team or expiry."""
    spec = _spec(name, budget_usd, rpm, tpm, models, residency, team, default_max_tokens, expires_at)
    _warn_unknown_team(obj, team)
    record = _change(obj, lambda store: store.update(key_id, spec))
    _show(record, as_json, "updated")


@keys.command("set-budget")
@click.argument("key_id")
@click.argument("entries", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def set_budget(obj: _Context, key_id: str, entries: tuple[str, ...], as_json: bool) -> None:
    """Replace a key's budgets with ENTRIES: [user:]WINDOW=USD[@MODEL], WINDOW one of hour, day, week, month.

    \b
    tollway keys set-budget k3xq8m2vfa day=5 month=100      # $5 a day, $100 a month
    tollway keys set-budget k3xq8m2vfa day=5 week=2@chat    # and at most $2 a week on model chat
    tollway keys set-budget k3xq8m2vfa day=5 user:day=0.5   # and $0.50 a day for each end user
    tollway keys set-budget k3xq8m2vfa none                 # no budgets
    """
    spec = KeySpec(budgets=budget_entries(obj, entries))
    record = _change(obj, lambda store: store.update(key_id, spec))
    _show(record, as_json, "budgets set")


@keys.command()
@click.argument("key_id")
@click.option("--grace", default="24h", show_default=True,
              help="How long the current secret stays valid beside the new one: 90s, 30m, 24h, 7d (0s: none).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def rotate(obj: _Context, key_id: str, grace: str, as_json: bool) -> None:
    """Give a key a new secret (shown only this once); the old one works until the grace period ends, then
    gets 401 key_rotated."""
    try:
        until = (datetime.now(timezone.utc) + grace_period(grace)).isoformat()
    except KeyFieldError as exc:
        raise click.BadParameter(str(exc), param_hint="--grace") from None
    _, secret = new_secret()
    secret = f"tw_{key_id}_{secret.rsplit('_', 1)[1]}"  # the id inside the secret finds the record
    record = _change(obj, lambda store: store.rotate(key_id, secret, until))
    if as_json:
        click.echo(orjson.dumps({**record.public(), "secret": secret}, option=orjson.OPT_INDENT_2).decode())
        return
    _print_keys([record], f"rotated; the old secret works until {until[:19]} UTC")
    click.echo(f"\nsecret: {secret}")
    click.echo("Store it now: it is not kept and cannot be shown again.", err=True)


def _imported(variable: str) -> tuple[str, str]:
    secret = os.environ.get(variable, "")
    if not secret:
        raise click.BadParameter(f"${variable} is not set or empty", param_hint="--secret-env")
    try:
        return imported_key_id(secret), secret
    except ValueError as exc:
        raise click.BadParameter(f"the secret in ${variable}: {exc}", param_hint="--secret-env") from None


@keys.command()
@click.argument("key_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def revoke(obj: _Context, key_id: str, as_json: bool) -> None:
    """Revoke a key: every replica refuses it within a second."""
    record = _change(obj, lambda store: store.revoke(key_id))
    _publish_revocation(obj, record.id)
    _show(record, as_json, "revoked")


def _change(obj: _Context, change) -> KeyRecord:
    store = obj.store()
    try:
        return change(store)
    except KEY_STORE_ERRORS as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()


def _publish_revocation(obj: _Context, key_id: str) -> None:
    url = obj.redis()
    if not url:
        return
    import redis

    try:
        with redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) as client:
            from tollway.accounting.counters.redis import REVOKED_KEY

            client.sadd(REVOKED_KEY, key_id)
    except redis.RedisError as exc:
        click.echo(f"warning: could not publish the revocation to Redis at {redact_url(url)} ({exc}); gateways "
                   "still refuse the key once they next read the key store (keys.refresh_ms)", err=True)


def _warn_unknown_team(obj: _Context, team: str | None) -> None:
    if not team or team in obj.config.teams:
        return
    store = obj.store()
    try:
        stored = store.get_team(team) is not None
    except KEY_STORE_ERRORS:
        stored = False
    finally:
        store.close()
    if not stored:
        known = ", ".join(obj.config.teams) or "none"
        click.echo(f"warning: team {team!r} is not under `teams:` in the config (known: {known}) nor stored "
                   "(`tollway teams list`); it groups keys but adds no limits until it is", err=True)


def _show(record: KeyRecord, as_json: bool, verb: str) -> None:
    if as_json:
        click.echo(orjson.dumps(record.public(), option=orjson.OPT_INDENT_2).decode())
    else:
        _print_keys([record], verb)


def _print_keys(records: list[KeyRecord], title: str, spent: dict[str, tuple[Decimal, Decimal]] | None = None) -> None:
    from rich.table import Table

    table = Table(title=title)
    for column in ("id", "name", "team", "budgets", "spent today", "spent month", "rpm", "tpm",
                   "max_tokens", "models", "residency", "state"):
        table.add_column(column)
    for r in records:
        today, month = (spent or {}).get(r.id, _NONE)
        table.add_row(r.id, r.name, r.team or "-", " ".join(e.text() for e in r.budgets) or "-", usd_text(today),
                      usd_text(month), _text(r.rpm),
                      _text(r.tpm), _text(r.default_max_tokens), ",".join(r.models) or "all", ",".join(r.residency) or "any",
                      f"revoked {r.revoked_at[:19]}" if r.revoked else "active")
    output_console().print(table)


_NONE = (Decimal(0), Decimal(0))


def _text(value: object) -> str:
    return "-" if value is None else str(value)

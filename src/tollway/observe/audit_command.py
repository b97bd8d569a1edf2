"""`tollway audit`: the residency audit of the ledger's requests, and `tollway audit admin`, the admin audit log.

`audit admin` prints who did what on the admin side (keys, teams, budgets, config reloads, sign-ins,
refused attempts), newest first, from the ledger's database that `tollway serve` writes (found as every
reading command finds it, ledger/location.py). Filters: --since (7d, 12h or an ISO time), --actor (an
OpenID Connect subject or email, or an admin key's `admin-key:<fingerprint>`), --action (exact, or a
prefix ending in '.', like `key.`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import click
import orjson

from tollway.core.time_window import parse_when
from tollway.ledger.audit_store import AuditQuery, open_audit_store
from tollway.ledger.location import announce, database_url_option, find_ledger
from tollway.routing.audit_command import residency


@click.group()
def audit() -> None:
    """Prove from the ledger where requests went, and show who changed what on the admin side."""


audit.add_command(residency)


@audit.command()
@click.option("--since", help="Only entries since then: 7d, 12h, 30m, or an ISO date/time (UTC). Default: all.")
@click.option("--actor", help="Only this actor: an OIDC subject or email, or admin-key:<fingerprint>.")
@click.option("--action", help="Only this action (e.g. key.revoked), or actions starting with a prefix ending "
                               "in '.' (e.g. key.).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=200, show_default=True, help="At most this many.")
@click.option("--ledger", type=click.Path(path_type=Path), help="SQLite ledger (default: the one `tollway serve` "
                                                                "writes: the config's ledger.path, else the default).")
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="Config file, found as `tollway serve` finds it: $TOLLWAY_CONFIG, ./tollway.yaml, the user config dir.")
@database_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
def admin(since: str | None, actor: str | None, action: str | None, limit: int, ledger: Path | None,
          config_path: Path | None, database_url: str | None, as_json: bool) -> None:
    """Show the admin audit log, newest first."""
    location = find_ledger("audit admin", config_path, ledger, database_url)
    announce(location)
    if location.database_url is None and not location.path.is_file():
        raise click.ClickException(f"no ledger at {location.path}: start `tollway serve` or pass --ledger")
    query = AuditQuery(parse_when(since, "--since"), actor, action, limit)
    store = open_audit_store(location.path, location.database_url)
    try:
        entries = store.read(query)
    except (sqlite3.Error, OSError) as exc:
        raise click.ClickException(f"{location.description}: cannot read the audit log: {exc}") from None
    except Exception as exc:  # PostgreSQL's errors name the (redacted) database
        raise click.ClickException(f"cannot read the audit log: {exc}") from None
    finally:
        store.close()
    if as_json:
        click.echo(orjson.dumps(entries, option=orjson.OPT_INDENT_2).decode())
        return
    if not entries:
        click.echo("no admin actions recorded" + (" matching the filters" if since or actor or action else ""))
        return
    for entry in entries:
        click.echo(_line(entry))


def _line(entry: dict) -> str:
    who = f"{entry['email']} ({entry['actor']})" if entry["email"] else entry["actor"] or "(anonymous)"
    role = f" [{entry['role']}]" if entry["role"] else ""
    target = f" {entry['target']}" if entry["target"] else ""
    outcome = "" if entry["outcome"] == "ok" else f" {entry['outcome'].upper()}"
    diff = f" {orjson.dumps(entry['diff']).decode()}" if entry["diff"] else ""
    return f"{entry['ts'][:19]}Z {who}{role} {entry['action']}{target}{outcome}{diff} from {entry['client'] or '?'}"

"""`tollway audit residency`: prove from the ledger that no request of a key left its allowed jurisdictions.

The ledger records the jurisdiction of every attempt that was sent (retries, failovers, hedge losers,
the classifier call) and every shadow copy is a row of its own, so a key's rows are enough to show
where its data went. A sent attempt whose jurisdiction is missing cannot be shown to be inside the
policy and counts as a violation: the audit fails closed. Skipped attempts (breaker open, ruled out)
were never sent and are not counted. Exit code 0 means no violation, 1 means at least one.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import click
import orjson

from tollway.core.redact import redact_url
from tollway.core.time_window import parse_when
from tollway.ledger.location import LedgerLocation, announce, database_url_option, find_ledger
from tollway.ledger.reader import LedgerReader, LedgerReadError
from tollway.ledger.schema import LedgerRow

NOT_SENT = ("skipped",)


@dataclass(slots=True)
class Violation:
    request_id: str
    ts: str
    deployment: str
    jurisdiction: str
    outcome: str
    shadow: bool


@dataclass(slots=True)
class ResidencyAudit:
    allowed: frozenset[str]
    requests: int = 0
    sent: int = 0                      # attempts that reached an upstream, incl. shadow copies
    shadow_rows: int = 0
    jurisdictions: Counter = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)

    def check_row(self, row: LedgerRow) -> None:
        self.requests += 1
        shadow = bool(row.shadow)
        self.shadow_rows += shadow
        attempts = row.attempts
        for attempt in attempts:
            if attempt.get("outcome") in NOT_SENT:
                continue
            self._check(row, attempt.get("deployment", ""), attempt.get("jurisdiction") or "",
                        attempt.get("outcome", ""), shadow)
        if row.deployment and not any(a.get("deployment") == row.deployment for a in attempts):
            self._check(row, row.deployment, row.jurisdiction or "", "answer", shadow)

    def _check(self, row: LedgerRow, deployment: str, jurisdiction: str, outcome: str, shadow: bool) -> None:
        self.sent += 1
        self.jurisdictions[jurisdiction or "(not recorded)"] += 1
        if jurisdiction.lower() not in self.allowed:
            self.violations.append(Violation(row.id, row.ts, deployment, jurisdiction or "(not recorded)",
                                             outcome, shadow))


def audit_ledger(reader: LedgerReader, allowed: frozenset[str], key: str | None,
                 since: datetime | None) -> ResidencyAudit:
    """Check every attempt of `key`'s requests (every key's, with None) since `since` against `allowed`."""
    result = ResidencyAudit(allowed)
    try:
        for row in reader.rows(since, None, key):
            result.check_row(row)
    except LedgerReadError as exc:
        raise click.ClickException(str(exc)) from None
    return result


@click.group()
def audit() -> None:
    """Prove from the ledger where each key's requests went."""


@audit.command()
@click.option("--key", "key_id", help="Virtual key id to audit (default: every key's requests).")
@click.option("--since", help="Only requests since then: 7d, 12h, or an ISO date/time (UTC). Default: all.")
@click.option("--allowed", metavar="LIST", help="Allowed jurisdictions, e.g. eu,self-hosted. Default: the key's "
                                               "residency from the key store.")
@click.option("--ledger", type=click.Path(path_type=Path),
              help="SQLite ledger (default: the one `tollway serve` writes: the config's ledger.path, else the default).")
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="Config file, found as `tollway serve` finds it: $TOLLWAY_CONFIG, ./tollway.yaml, the user config dir.")
@database_url_option
@click.option("--keys-db", type=click.Path(path_type=Path), help="Key store for the key's residency "
                                                                "(default: the ledger's PostgreSQL, else the config's "
                                                                "keys.path, else the ledger file).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def residency(key_id: str | None, since: str | None, allowed: str | None, ledger: Path | None,
              config_path: Path | None, database_url: str | None, keys_db: Path | None, as_json: bool) -> None:
    """Check that no attempt of a key's requests went outside its allowed jurisdictions (exit 1 if one did)."""
    location = find_ledger("audit residency", config_path, ledger, database_url)
    announce(location)
    policy = _allowed(allowed, key_id, keys_db, location)
    result = audit_ledger(location.reader(), policy, key_id, parse_when(since, "--since"))
    if as_json:
        click.echo(orjson.dumps(_as_data(result, key_id, since), option=orjson.OPT_INDENT_2).decode())
    else:
        _print(result, key_id, since)
    sys.exit(1 if result.violations else 0)


def _allowed(value: str | None, key_id: str | None, keys_db: Path | None, location: LedgerLocation) -> frozenset[str]:
    if value is not None:
        items = [item.strip().lower() for item in value.split(",")]
        if not value.strip() or any(not item for item in items):
            raise click.BadParameter(f"{value!r}: list jurisdictions separated by commas, e.g. eu,self-hosted",
                                     param_hint="--allowed")
        return frozenset(items)
    if key_id is None:
        raise click.UsageError("give --allowed, or --key to audit against that key's residency")
    keys_url = location.database_url if keys_db is None else None
    keys_path = keys_db or (location.config.keys.path if location.config is not None else None) or location.path
    residency = _key_residency(key_id, keys_path, keys_url)
    where = location.description if keys_url else keys_path
    if not residency:
        raise click.ClickException(f"key {key_id} has no residency restriction in {where}: there is no policy to "
                                   f"prove; give --allowed to check against a set of jurisdictions")
    return frozenset(r.lower() for r in residency)


def _key_residency(key_id: str, keys_db: Path, database_url: str | None) -> tuple[str, ...]:
    """The key's residency from the key store (tollway keys): PostgreSQL with `database_url`, else the
    SQLite file; a clear error when it cannot be read."""
    try:
        from tollway.accounting.keys.store import open_key_store
    except ImportError:
        raise click.ClickException("this installation has no key store; give --allowed") from None
    if database_url is None and not keys_db.exists():
        raise click.ClickException(f"{keys_db}: no key store there; give --keys-db or --allowed")
    where = redact_url(database_url) if database_url else keys_db
    try:
        store = open_key_store(database_url, keys_db)
    except Exception as exc:  # the store's own errors name the store (without a password) and the problem
        raise click.ClickException(f"cannot open the key store {where}: {exc}; give --allowed") from None
    try:
        record = store.get(key_id)
    finally:
        store.close()
    if record is None:
        raise click.ClickException(f"no key {key_id!r} in {where}; give --allowed to audit its rows anyway")
    return tuple(record.residency)


def _as_data(result: ResidencyAudit, key_id: str | None, since: str | None) -> dict:
    return {"key": key_id, "since": since, "allowed": sorted(result.allowed), "requests": result.requests,
            "attempts_sent": result.sent, "shadow_rows": result.shadow_rows,
            "jurisdictions": dict(sorted(result.jurisdictions.items())), "ok": not result.violations,
            "violations": [_violation(v) for v in result.violations]}


def _violation(v: Violation) -> dict:
    return {"id": v.request_id, "ts": v.ts, "deployment": v.deployment, "jurisdiction": v.jurisdiction,
            "outcome": v.outcome, "shadow": v.shadow}


def _print(result: ResidencyAudit, key_id: str | None, since: str | None) -> None:
    who = f"key {key_id}" if key_id is not None else "every key"
    when = f" since {since}" if since else ""
    click.echo(f"residency audit of {who}{when}: allowed {', '.join(sorted(result.allowed))}")
    click.echo(f"  {result.requests} requests ({result.shadow_rows} shadow copies), {result.sent} attempts sent")
    seen = ", ".join(f"{j} {n}" for j, n in sorted(result.jurisdictions.items())) or "none"
    click.echo(f"  jurisdictions reached: {seen}")
    if not result.violations:
        click.echo(f"OK: no attempt left {', '.join(sorted(result.allowed))}")
        return
    click.echo(f"VIOLATION: {len(result.violations)} attempts went outside the allowed set:")
    for v in result.violations[:50]:
        click.echo(f"  {v.ts} request {v.request_id}: {v.deployment} ({v.jurisdiction}), {v.outcome}"
                   f"{' [shadow]' if v.shadow else ''}")
    if len(result.violations) > 50:
        click.echo(f"  ... and {len(result.violations) - 50} more")

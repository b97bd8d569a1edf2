"""The ledger's read side: one interface over the SQLite file and the PostgreSQL ledger.

Every reader of the ledger (usage, report, reconcile, audit, the observer's start-up history) asks one of
two questions: the ROWS of a time window (to look at attempts, latencies, jurisdictions), or the SUMS of
a time window per hour and series (spend, tokens, request counts). `open_reader` answers both from the
store `tollway serve` writes, so a reader never looks at a stale local file while the fleet writes to
PostgreSQL.

Sums are exact either way. SQLite adds the rows' cost strings as Decimals here (its SUM would use
floats). PostgreSQL reads the hourly roll-ups (rollups.py) for the whole hours of the window and sums the
raw rows of the partial hours at its edges, so a window that does not start on the hour is still exact.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import orjson

from tollway.ledger.schema import LEDGER_COLUMNS, LedgerRow

_ROW_FIELDS = {f.name for f in fields(LedgerRow)}
LineKey = tuple[str | None, str | None]  # a report line: (provider, model)
TOTAL_LINE: LineKey = (None, None)  # the key, among per-line figures, of the figures over every line


class LedgerReadError(Exception):
    """The ledger is missing or unreadable; the message names it (a URL without its password)."""


@dataclass(frozen=True, slots=True)
class HourlySum:
    """The requests of one UTC hour and series, summed exactly."""

    hour: datetime
    key_id: str
    team: str
    route_group: str
    deployment: str
    provider: str
    model: str  # the upstream model ("" when no deployment answered)
    requested_model: str
    status: str
    shadow: int
    requests: int
    prompt_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cost_usd: Decimal
    unpriced: int
    estimated: int
    fallbacks: int | None  # None where the store keeps no roll-ups to count them in (SQLite)


class LedgerReader(Protocol):
    """What every ledger reader needs; `description` says which ledger it is (safe to print)."""

    description: str
    has_rollups: bool

    def rows(self, since: datetime | None = None, until: datetime | None = None,
             key_id: str | None = None) -> Iterator[LedgerRow]: ...

    def hourly(self, since: datetime | None = None, until: datetime | None = None) -> Iterator[HourlySum]: ...


def open_reader(path: Path, database_url: str | None = None) -> LedgerReader:
    """The PostgreSQL ledger at `database_url`, else the SQLite file at `path`."""
    if database_url:
        from tollway.ledger.postgres_reader import PostgresLedgerReader

        return PostgresLedgerReader(database_url)
    return SqliteLedgerReader(path)


def utc_text(moment: datetime) -> str:
    """ISO-8601 in UTC, as the SQLite ledger stores times (so text order is time order)."""
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)).isoformat()


def whole_hours(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    """The whole hours inside [since, until): (first hour start, end), None meaning unbounded. When the
    window holds no whole hour, both are `until` (everything is an edge)."""
    lo = None if since is None else _ceil_hour(since)
    hi = None if until is None else _floor_hour(until)
    if lo is not None and hi is not None and lo >= hi:
        return until, until
    return lo, hi


def _floor_hour(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def _ceil_hour(moment: datetime) -> datetime:
    floor = _floor_hour(moment)
    return floor if floor == moment else floor + timedelta(hours=1)


_SQLITE_HOURLY = """
SELECT substr(ts, 1, 13), key_id, route_group, deployment, provider, upstream_model, requested_model, status, shadow,
       COUNT(*), SUM(prompt_tokens), SUM(cached_tokens), SUM(cache_write_tokens), SUM(completion_tokens),
       SUM(reasoning_tokens), group_concat(cost_usd, ' '), SUM(priced = 0), SUM(usage_source = 'estimated')
FROM requests {where}
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
ORDER BY 1
"""


class SqliteLedgerReader:
    """The single-box ledger file, opened read-only (a wrong path never creates an empty ledger); only
    columns this version knows are read, so a ledger written by an older or newer tollway still loads."""

    has_rollups = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = str(path)

    def rows(self, since: datetime | None = None, until: datetime | None = None,
             key_id: str | None = None) -> Iterator[LedgerRow]:
        """Rows with since <= ts < until (of one key, if given), oldest first."""
        conn = self._connect()
        try:
            columns = self._known_columns(conn)
            where, params = _sqlite_window(since, until, key_id)
            for values in conn.execute(f"SELECT {', '.join(columns)} FROM requests {where} ORDER BY ts", params):
                record = dict(zip(columns, values))
                if "attempts" in record:
                    record["attempts"] = orjson.loads(record["attempts"] or "[]")
                yield LedgerRow(**record)
        except sqlite3.Error as exc:
            raise LedgerReadError(f"{self.path}: cannot read the ledger: {exc}") from None
        finally:
            conn.close()

    def hourly(self, since: datetime | None = None, until: datetime | None = None) -> Iterator[HourlySum]:
        """Sums per hour and series, by the database; costs are added here as exact decimals."""
        conn = self._connect()
        try:
            self._known_columns(conn)
            where, params = _sqlite_window(since, until, None)
            for (hour, key_id, group, deployment, provider, model, requested, status, shadow, requests, prompt,
                 cached, cache_write, completion, reasoning, costs, unpriced, estimated) in conn.execute(
                    _SQLITE_HOURLY.format(where=where), params):
                yield HourlySum(
                    datetime.fromisoformat(f"{hour}:00:00+00:00"), key_id, "", group, deployment, provider, model,
                    requested, status, int(shadow), requests, int(prompt or 0), int(cached or 0),
                    int(cache_write or 0), int(completion or 0), int(reasoning or 0),
                    sum((Decimal(c) for c in (costs or "").split()), Decimal(0)), int(unpriced or 0),
                    int(estimated or 0), None)
        except sqlite3.Error as exc:
            raise LedgerReadError(f"{self.path}: cannot read the ledger: {exc}") from None
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise LedgerReadError(f"no ledger at {self.path}: start `tollway serve` or pass --ledger")
        try:
            return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise LedgerReadError(f"{self.path}: cannot open the ledger: {exc}") from None

    def _known_columns(self, conn: sqlite3.Connection) -> list[str]:
        present = [row[1] for row in conn.execute("PRAGMA table_info(requests)")]
        if not present:
            raise LedgerReadError(f"{self.path}: not a tollway ledger (no `requests` table)")
        return [name for name in present if name in _ROW_FIELDS]


def _sqlite_window(since: datetime | None, until: datetime | None, key_id: str | None) -> tuple[str, tuple]:
    clauses, params = [], []
    if since is not None:
        clauses.append("ts >= ?")
        params.append(utc_text(since))
    if until is not None:
        clauses.append("ts < ?")
        params.append(utc_text(until))
    if key_id is not None:
        clauses.append("key_id = ?")
        params.append(key_id)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


assert set(LEDGER_COLUMNS) == _ROW_FIELDS

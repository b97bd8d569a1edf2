"""Read real traffic back out of the gateway's ledger, as hourly totals per (provider, model).

The ledger can hold millions of rows, so the database does the summing: one GROUP BY over hour and
model returns a few thousand buckets whatever the row count. Only answered client traffic counts
(status 'ok', not shadow copies), because that is what a deployment would have had to serve. SQLite and
PostgreSQL sit behind one small reader interface; PostgreSQL needs `psycopg`, imported only when used.
On PostgreSQL the hourly totals come from the ledger's hourly roll-ups (ledger/postgres_reader.py), not
from the rows, and every connection runs in UTC so hours are UTC hours.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Protocol
from urllib.parse import urlsplit, urlunsplit

from tollway.ledger.schema import LEDGER_COLUMNS
from tollway.plan.scenario import ScenarioError

NEEDED_COLUMNS = ("ts", "provider", "upstream_model", "prompt_tokens", "cached_tokens", "cache_write_tokens",
                  "completion_tokens", "status", "shadow")
assert set(NEEDED_COLUMNS) <= set(LEDGER_COLUMNS)

# Hours are the first 13 characters of the ISO timestamp ("2026-11-22T06"); PostgreSQL renders a
# timestamptz cast to text with a space instead of the T, which the parser accepts too.
HOURLY_SQL = """
SELECT substr(CAST(ts AS TEXT), 1, 13) AS hour, provider, upstream_model,
       COUNT(*), SUM(prompt_tokens), SUM(cached_tokens), SUM(cache_write_tokens), SUM(completion_tokens)
FROM requests
WHERE status = 'ok' AND shadow = 0 {window}
GROUP BY 1, 2, 3
ORDER BY 1
"""


@dataclass(frozen=True)
class HourBucket:
    """Answered requests of one model in one UTC hour."""

    hour: datetime
    provider: str
    model: str
    requests: int
    prompt_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    completion_tokens: int


class TrafficReader(Protocol):
    """Anything that can sum ledger traffic by hour and model, and stream selected rows (for replay)."""

    description: str
    placeholder: str  # the driver's query parameter marker: "?" or "%s"

    def hourly_buckets(self, since: datetime | None, until: datetime | None) -> list[HourBucket]: ...

    def columns(self) -> frozenset[str]: ...

    def stream(self, sql: str, params: list[Any], batch: int = 2000) -> Iterator[tuple[Any, ...]]: ...


def open_ledger(location: str, option: str = "--from-ledger") -> TrafficReader:
    """A reader for a SQLite path, `sqlite:///path`, or a `postgresql://` URL. `option` is the flag the
    location came from, so errors name it (`--from-ledger` for plan, `--ledger` for replay)."""
    if location.startswith(("postgresql://", "postgres://")):
        return PostgresTrafficReader(location, option)
    if location.startswith("sqlite:///"):
        return SqliteTrafficReader(Path(location.removeprefix("sqlite:///")), option)
    if "://" in location:
        raise ScenarioError(f"{option}: unsupported ledger URL scheme in {redact(location)!r}; "
                            "use a SQLite path, sqlite:///path or postgresql://...")
    return SqliteTrafficReader(Path(location), option)


class SqliteTrafficReader:
    """The embedded default ledger, opened read-only so a wrong path never creates an empty database."""

    placeholder = "?"

    def __init__(self, path: Path, option: str = "--from-ledger") -> None:
        self.path = path
        self.option = option
        self.description = f"sqlite:{path}"

    def hourly_buckets(self, since: datetime | None, until: datetime | None) -> list[HourBucket]:
        conn = self._connect()
        try:
            self._check_columns(conn)
            where, params = window_clause(since, until, "?")
            rows = conn.execute(HOURLY_SQL.format(window=where), params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise ScenarioError(f"{self.option}: {self.path} is not a readable SQLite ledger: {exc}") from exc
        finally:
            conn.close()
        return [bucket_from_row(row) for row in rows]

    def columns(self) -> frozenset[str]:
        """The columns table `requests` has: older ledgers lack the ones added since (ADDED_COLUMNS)."""
        conn = self._connect()
        try:
            return frozenset(self._check_columns(conn))
        except sqlite3.DatabaseError as exc:
            raise ScenarioError(f"{self.option}: {self.path} is not a readable SQLite ledger: {exc}") from exc
        finally:
            conn.close()

    def stream(self, sql: str, params: list[Any], batch: int = 2000) -> Iterator[tuple[Any, ...]]:
        """The rows of one query, fetched a batch at a time so a month of traffic never sits in memory."""
        conn = self._connect()
        try:
            cursor = conn.execute(sql, params)
            while rows := cursor.fetchmany(batch):
                yield from rows
        except sqlite3.DatabaseError as exc:
            raise ScenarioError(f"{self.option}: {self.path} is not a readable SQLite ledger: {exc}") from exc
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise ScenarioError(f"{self.option}: no ledger file at {self.path}")
        try:
            return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise ScenarioError(f"{self.option}: cannot open {self.path}: {exc}") from exc

    def _check_columns(self, conn: sqlite3.Connection) -> set[str]:
        present = {row[1] for row in conn.execute("PRAGMA table_info(requests)")}
        if not present:
            raise ScenarioError(f"{self.option}: {self.path} has no 'requests' table; is it a tollway ledger?")
        missing = [name for name in NEEDED_COLUMNS if name not in present]
        if missing:
            raise ScenarioError(f"{self.option}: table 'requests' in {self.path} lacks columns: {', '.join(missing)}")
        return present


class PostgresTrafficReader:
    """The ledger of a multi-replica deployment; needs psycopg (`pip install 'psycopg[binary]'`)."""

    placeholder = "%s"

    def __init__(self, url: str, option: str = "--from-ledger") -> None:
        self.url = url
        self.option = option
        self.description = redact(url)

    def hourly_buckets(self, since: datetime | None, until: datetime | None) -> list[HourBucket]:
        from tollway.ledger.postgres_reader import PostgresLedgerReader
        from tollway.ledger.reader import LedgerReadError

        self._driver()
        buckets: dict[tuple[datetime, str, str], list[int]] = {}
        try:
            for sums in PostgresLedgerReader(self.url).hourly(since, until):
                if sums.status != "ok" or sums.shadow:
                    continue
                totals = buckets.setdefault((sums.hour, sums.provider, sums.model), [0, 0, 0, 0, 0])
                for i, value in enumerate((sums.requests, sums.prompt_tokens, sums.cached_tokens,
                                           sums.cache_write_tokens, sums.completion_tokens)):
                    totals[i] += value
        except LedgerReadError as exc:
            raise ScenarioError(f"{self.option}: {exc}") from None
        return [HourBucket(hour, provider, model, *totals)
                for (hour, provider, model), totals in sorted(buckets.items())]

    def columns(self) -> frozenset[str]:
        psycopg = self._driver()
        try:
            with psycopg.connect(self.url) as conn, conn.cursor() as cur:
                cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'requests' "
                            "AND table_schema = current_schema()")
                present = frozenset(row[0] for row in cur.fetchall())
        except psycopg.Error as exc:
            raise self._error(exc) from None
        if not present:
            raise ScenarioError(f"{self.option}: {self.description} has no 'requests' table; is it a tollway ledger?")
        return present

    def stream(self, sql: str, params: list[Any], batch: int = 2000) -> Iterator[tuple[Any, ...]]:
        """A server-side cursor: rows arrive a batch at a time."""
        psycopg = self._driver()
        try:
            with psycopg.connect(self.url) as conn, conn.cursor(name="tollway_replay") as cur:
                conn.execute("SET TIME ZONE 'UTC'")
                cur.itersize = batch
                cur.execute(sql, params)
                yield from cur
        except psycopg.Error as exc:
            raise self._error(exc) from None

    def _driver(self):
        try:
            import psycopg
        except ImportError:
            raise ScenarioError(f"{self.option}: reading a PostgreSQL ledger needs psycopg: "
                                "pip install 'psycopg[binary]'") from None
        return psycopg

    def _error(self, exc: Exception) -> ScenarioError:
        message = str(exc).replace(self.url, self.description)
        return ScenarioError(f"{self.option}: cannot read {self.description}: {message}")


def window_clause(since: datetime | None, until: datetime | None, placeholder: str) -> tuple[str, list[str]]:
    """SQL for the optional [since, until) window; ISO text in UTC compares in time order."""
    clauses, params = [], []
    if since is not None:
        clauses.append(f"AND ts >= {placeholder}")
        params.append(utc(since).isoformat())
    if until is not None:
        clauses.append(f"AND ts < {placeholder}")
        params.append(utc(until).isoformat())
    return " ".join(clauses), params


def bucket_from_row(row: tuple[Any, ...]) -> HourBucket:
    hour_text, provider, model, requests, prompt, cached, cache_write, completion = row
    try:
        hour = datetime.strptime(str(hour_text).replace(" ", "T"), "%Y-%m-%dT%H").replace(tzinfo=timezone.utc)
    except ValueError:
        raise ScenarioError(f"--from-ledger: a row's ts {hour_text!r}... is not an ISO-8601 UTC time") from None
    return HourBucket(hour=hour, provider=provider or "", model=model or "", requests=int(requests),
                      prompt_tokens=int(prompt or 0), cached_tokens=int(cached or 0),
                      cache_write_tokens=int(cache_write or 0), completion_tokens=int(completion or 0))


def utc(moment: datetime) -> datetime:
    """Naive times are taken as UTC, the ledger's clock."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def redact(url: str) -> str:
    """The URL without its password, safe to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))

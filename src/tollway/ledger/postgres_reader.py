"""Reading the PostgreSQL ledger: rows from the day partitions, sums from the hourly roll-ups.

A question about an aggregate (spend, tokens, requests, fallbacks, attempt failures) reads the roll-ups for
the whole hours of its window and sums the raw rows only for the partial hours at its edges, with the
same SQL the writer keeps the roll-ups with (rollups.py), so both halves count alike. Questions that need
each row (the audit's attempts, a reconciliation by a local day, the dashboard's latency samples) stream
rows through a server-side cursor, a batch at a time. Percentiles are not sums: the database computes
them over the window's raw rows (`percentile_cont`, the same linear interpolation as percentiles.py),
reading two columns of the partitions the window covers.

Every connection runs in UTC, so hours and days are UTC whatever the server's time zone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import psycopg

from tollway.core.redact import redact_url
from tollway.ledger.postgres import DatabaseUnavailable, connect
from tollway.ledger.reader import HourlySum, LedgerReadError, LineKey, whole_hours
from tollway.ledger.rollups import ROLLUP_KEY, ROLLUP_SUMS, attempts_select, rollup_select
from tollway.ledger.schema import LEDGER_COLUMNS, LedgerRow

FETCH_BATCH = 5000
NO_PROVIDER = "(none)"  # the report's line for requests no deployment answered (observe/live_figures.py)


@dataclass(frozen=True, slots=True)
class Latencies:
    """Percentiles of one (provider, model) line's answered requests, in ms (None when it has none)."""

    ttft_p50: float | None
    ttft_p99: float | None
    latency_p50: float | None
    latency_p99: float | None


class PostgresLedgerReader:
    has_rollups = True

    def __init__(self, url: str) -> None:
        self.url = url
        self.description = redact_url(url)

    def rows(self, since: datetime | None = None, until: datetime | None = None,
             key_id: str | None = None) -> Iterator[LedgerRow]:
        where, params = _window("ts", since, until)
        if key_id is not None:
            where += " AND key_id = %s"
            params.append(key_id)
        sql = f"SELECT {', '.join(LEDGER_COLUMNS)} FROM requests WHERE {where} ORDER BY ts"
        for values in self._stream(sql, params):
            yield _row(values)

    def hourly(self, since: datetime | None = None, until: datetime | None = None) -> Iterator[HourlySum]:
        lo, hi = whole_hours(since, until)
        whole, whole_params = _window("hour", lo, hi)
        edges, edge_params = _edges(since, until, lo, hi)
        columns = ", ".join(ROLLUP_KEY + ROLLUP_SUMS)
        sql = (f"SELECT {columns} FROM requests_hourly WHERE {whole} UNION ALL "
               f"SELECT * FROM ({rollup_select(f'(SELECT * FROM requests WHERE {edges})')}) AS edge ORDER BY 1")
        for values in self._stream(sql, whole_params + edge_params):
            yield _hourly(values)

    def attempts(self, since: datetime | None = None, until: datetime | None = None) -> dict[str, tuple[int, int]]:
        """Upstream attempts per provider of the window's client requests: (attempts, failed)."""
        lo, hi = whole_hours(since, until)
        whole, whole_params = _window("hour", lo, hi)
        edges, edge_params = _edges(since, until, lo, hi)
        sql = (f"SELECT provider, sum(attempts), sum(failed) FROM ("
               f"SELECT hour, provider, attempts, failed FROM requests_hourly_attempts WHERE {whole} UNION ALL "
               f"{attempts_select(f'(SELECT * FROM requests WHERE {edges})')}) AS a GROUP BY 1")
        return {provider: (int(n), int(failed)) for provider, n, failed in self._stream(sql, whole_params + edge_params)}

    def latencies(self, since: datetime | None = None,
                  until: datetime | None = None) -> dict[LineKey, Latencies]:
        """TTFT and latency p50/p99 per report line (provider, model) over the window's answered requests,
        and over all of them under TOTAL_LINE (the NULL line columns of GROUPING SETS' empty set)."""
        where, params = _window("ts", since, until)
        # One sort per column: both percentiles of a column come from one ordered-set aggregate.
        sql = ("SELECT p, m, percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY ttft_ms), "
               "percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY latency_ms) "
               "FROM (SELECT CASE WHEN provider = '' THEN %s ELSE provider END AS p, "
               "CASE WHEN upstream_model = '' THEN requested_model ELSE upstream_model END AS m, ttft_ms, latency_ms "
               f"FROM requests WHERE {where} AND status = 'ok' AND shadow = 0) AS answered "
               "GROUP BY GROUPING SETS ((p, m), ())")
        return {(provider, model): Latencies(*(ttft or (None, None)), *(latency or (None, None)))
                for provider, model, ttft, latency in self._stream(sql, [NO_PROVIDER, *params])}

    def _stream(self, sql: str, params: list) -> Iterator[tuple]:
        """The rows of one query through a server-side cursor, so no result sits whole in memory."""
        try:
            conn = connect(self.url, autocommit=False)
        except DatabaseUnavailable as exc:
            raise LedgerReadError(str(exc)) from None
        try:
            conn.execute("SET TIME ZONE 'UTC'")
            with conn.cursor(name="tollway_ledger_read") as cursor:
                cursor.itersize = FETCH_BATCH
                cursor.execute(sql, params)
                yield from cursor
        except psycopg.errors.UndefinedTable:
            raise LedgerReadError(f"the ledger at {self.description} has no hourly roll-ups yet: start this "
                                  "version's `tollway serve` once, which brings its schema up to date") from None
        except psycopg.Error as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LedgerReadError(f"cannot read the ledger at {self.description}: "
                                  f"{message.replace(self.url, self.description)}") from None
        finally:
            conn.close()


def _window(column: str, since: datetime | None, until: datetime | None) -> tuple[str, list]:
    clauses, params = ["TRUE"], []
    if since is not None:
        clauses.append(f"{column} >= %s")
        params.append(since)
    if until is not None:
        clauses.append(f"{column} < %s")
        params.append(until)
    return " AND ".join(clauses), params


def _edges(since: datetime | None, until: datetime | None, lo: datetime | None,
           hi: datetime | None) -> tuple[str, list]:
    """Raw-row condition for the parts of [since, until) outside the whole hours [lo, hi)."""
    parts, params = [], []
    if since is not None and lo is not None and since < lo:
        parts.append("(ts >= %s AND ts < %s)")
        params += [since, lo]
    if until is not None and hi is not None and hi < until and not (lo is not None and lo >= until):
        parts.append("(ts >= %s AND ts < %s)")
        params += [hi, until]
    return (" OR ".join(parts) if parts else "FALSE"), params


def _row(values: tuple) -> LedgerRow:
    record = dict(zip(LEDGER_COLUMNS, values))
    record["ts"] = record["ts"].astimezone(UTC).isoformat()
    record["cost_usd"] = format(record["cost_usd"], "f")
    record["attempts"] = record["attempts"] if isinstance(record["attempts"], list) else []
    features = record["request_features"]
    record["request_features"] = features if isinstance(features, str) else orjson.dumps(features).decode()
    tags = record["tags"]
    record["tags"] = tags if isinstance(tags, str) else orjson.dumps(tags).decode()
    return LedgerRow(**record)


def _hourly(values: tuple) -> HourlySum:
    (hour, key_id, team, group, deployment, provider, model, requested, status, shadow, requests, prompt, cached,
     cache_write, completion, reasoning, cost, unpriced, estimated, fallbacks) = values
    return HourlySum(hour.astimezone(UTC), key_id, team, group, deployment, provider, model, requested, status,
                     int(shadow), int(requests), int(prompt), int(cached), int(cache_write), int(completion),
                     int(reasoning), Decimal(cost), int(unpriced), int(estimated), int(fallbacks))

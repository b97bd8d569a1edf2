"""The ledger in PostgreSQL, shared by every replica: same interface as the SQLite LedgerWriter.

Requests only append to an in-memory queue; a background task writes batches every `flush_interval_s`
(one statement that also adds the batch to the hourly roll-ups, rollups.py). When PostgreSQL cannot be
reached or a write fails for want of it, the rows go to the local spool file instead (spool.py) and the writer keeps trying to reconnect; once it does, the spool
is replayed before new rows. A row PostgreSQL refuses (a DataError: not an outage) goes to the quarantine
table (ledger_drain.py). Inserts ignore rows whose (id, ts) is already there, so a replay never
double-counts, in the rows or in the roll-ups. The writer also keeps the day partitions (partitions.py):
each batch's days exist before it is written, and every hour the next days are created and, with
`ledger.retention_days`, the oldest dropped.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import psycopg

from tollway.core.redact import redact_url
from tollway.ledger.drain import LedgerDrain
from tollway.ledger.partitions import ensure_partitions, maintain, row_day
from tollway.ledger.postgres import DatabaseUnavailable, connect_async, migrate
from tollway.ledger.quarantine import QUARANTINE_COLUMNS, QuarantineEntry, refusal_reason
from tollway.ledger.rollups import INSERT_WITH_ROLLUPS_SQL, columns_as_arrays
from tollway.ledger.schema import LEDGER_COLUMNS, LedgerRow
from tollway.ledger.store_text import storable_record

log = logging.getLogger("tollway.ledger")
_QUARANTINE_SQL = (f"INSERT INTO quarantine ({', '.join(QUARANTINE_COLUMNS)}) "
                   f"VALUES ({', '.join(['%s'] * len(QUARANTINE_COLUMNS))})")
_COST = LEDGER_COLUMNS.index("cost_usd")
WRITE_TIMEOUT_S = 10.0
RECONNECT_S = 0.5
MAINTAIN_EVERY_S = 3600.0


class PostgresLedgerWriter(LedgerDrain):
    # Not the row's fault: the server is unreachable, gone, read-only, out of resources or mid-failover.
    # Everything else (DataError, IntegrityError, ProgrammingError, a value psycopg cannot send) is a refusal.
    OUTAGES = (psycopg.OperationalError, psycopg.InterfaceError, psycopg.InternalError, DatabaseUnavailable,
               OSError, TimeoutError)

    def __init__(self, url: str, spool_path: Path, flush_interval_s: float = 0.25, batch_size: int = 1000,
                 local_path: Path | None = None, retention_days: int | None = None) -> None:
        self.url = url
        self.where = redact_url(url)  # for messages: never the password
        super().__init__(flush_interval_s, batch_size, ledger_path=local_path or spool_path, spool_path=spool_path,
                         where=f"PostgreSQL at {self.where}")
        self._conn: psycopg.AsyncConnection | None = None
        self._migrated = False
        self._retry_at = 0.0
        self.retention_days = retention_days
        self._days: set[date] = set()  # day partitions known to exist
        self._maintained_at: float | None = None

    async def start(self) -> None:
        if await self._available():
            log.info("ledger: PostgreSQL at %s (rows it cannot take yet are spooled to %s)", self.where, self.spool.path)
        self._start_tasks()

    async def close(self) -> None:
        self._retry_at = 0.0  # one last try to reach the database before spooling what is queued
        await super().close()

    async def _available(self) -> bool:
        if self._conn is not None:
            return True
        loop = asyncio.get_running_loop()
        if loop.time() < self._retry_at:
            return False
        try:
            if not self._migrated:
                await asyncio.to_thread(_migrate_sync, self.url)
                self._migrated = True
            self._conn = await connect_async(self.url)
        except (*self.OUTAGES, psycopg.Error) as exc:  # a migration refused is no reason to stop serving
            self._conn = None
            self._retry_at = loop.time() + RECONNECT_S
            self._database_down(exc)
            return False
        return True

    def _database_down(self, exc: BaseException) -> None:
        if self._conn is not None and not self._conn.closed:
            asyncio.get_running_loop().create_task(self._conn.close())
        self._conn = None
        super()._database_down(exc)

    async def _insert(self, rows: list[LedgerRow], replay: bool) -> None:
        values = []
        for row in rows:
            record = storable_record(row)
            record[_COST] = Decimal(record[_COST] or "0")
            values.append(record)  # attempts and request_features: JSON text, which PostgreSQL casts to jsonb
        await self._partitions_for(rows)
        await self._execute(INSERT_WITH_ROLLUPS_SQL, columns_as_arrays(values), many=False)

    async def _partitions_for(self, rows: list[LedgerRow]) -> None:
        """The day partitions the batch needs (and, hourly, the days ahead and the retention)."""
        conn = self._conn
        if conn is None:
            raise DatabaseUnavailable(f"not connected to PostgreSQL at {self.where}")
        now = asyncio.get_running_loop().time()
        try:
            if self._maintained_at is None or now - self._maintained_at >= MAINTAIN_EVERY_S:
                self._maintained_at = now
                async with asyncio.timeout(WRITE_TIMEOUT_S):
                    dropped = await maintain(conn, datetime.now(UTC).date(), self.retention_days)
                if dropped:
                    log.info("ledger: retention of %d days dropped partitions %s", self.retention_days,
                             ", ".join(dropped))
                    self._days.clear()
            missing = {day for day in map(_day_of, rows) if day is not None} - self._days
            if missing:
                async with asyncio.timeout(WRITE_TIMEOUT_S):
                    await ensure_partitions(conn, missing)
                self._days |= missing
        except self.OUTAGES:
            raise
        except psycopg.Error as exc:  # not the rows' fault: they go to the default partition, and are kept
            log.error("ledger: cannot maintain the day partitions of %s: %s", self.where, refusal_reason(exc))

    async def _insert_quarantine(self, entries: list[QuarantineEntry]) -> None:
        await self._execute(_QUARANTINE_SQL, [entry.values() for entry in entries])

    async def _execute(self, sql: str, values: list, many: bool = True) -> None:
        conn = self._conn
        if conn is None:
            raise DatabaseUnavailable(f"not connected to PostgreSQL at {self.where}")
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            async with conn.transaction():
                async with conn.cursor() as cur:
                    if many:
                        await cur.executemany(sql, values)
                    else:
                        await cur.execute(sql, values)

    async def _close_store(self) -> None:
        if self._conn is not None:
            await self._conn.close()


def _day_of(row: LedgerRow) -> date | None:
    """None for a time that is not one: the insert refuses that row and it is quarantined."""
    try:
        return row_day(row.ts)
    except (TypeError, ValueError):
        return None


def _migrate_sync(url: str) -> None:
    from tollway.ledger.postgres import connect

    conn = connect(url)
    try:
        migrate(conn)
    finally:
        conn.close()

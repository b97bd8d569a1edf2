"""The ledger in PostgreSQL, shared by every replica: same interface as the SQLite LedgerWriter.

Requests only append to an in-memory queue; a background task writes batches every `flush_interval_s`
(one multi-row insert). When PostgreSQL cannot be reached or a write fails, the batch goes to the local
spool file instead (spool.py) and the writer keeps trying to reconnect; once it does, the spool is replayed
before new rows. Inserts ignore rows whose id is already there, so a replay never double-counts.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from operator import attrgetter
from pathlib import Path

import orjson
import psycopg
from psycopg.types.json import Jsonb

from tollway.accounting.key_store import DatabaseUnavailable
from tollway.accounting.ledger_schema import LEDGER_COLUMNS, LedgerRow
from tollway.accounting.postgres import connect_async, migrate
from tollway.accounting.row_queue import RowQueue
from tollway.accounting.settings import redact_url
from tollway.accounting.spool import Spool
from tollway.background_task import stop_task

log = logging.getLogger("tollway.ledger")
_INSERT_SQL = (f"INSERT INTO requests ({', '.join(LEDGER_COLUMNS)}) VALUES ({', '.join(['%s'] * len(LEDGER_COLUMNS))}) "
               "ON CONFLICT (id, ts) DO NOTHING")
_row_values = attrgetter(*LEDGER_COLUMNS)
_ATTEMPTS = LEDGER_COLUMNS.index("attempts")
_COST = LEDGER_COLUMNS.index("cost_usd")
_FEATURES = LEDGER_COLUMNS.index("request_features")
WRITE_TIMEOUT_S = 10.0
RECONNECT_S = 0.5


class PostgresLedgerWriter(RowQueue):
    def __init__(self, url: str, spool_path: Path, flush_interval_s: float = 0.25, batch_size: int = 1000,
                 local_path: Path | None = None) -> None:
        super().__init__(flush_interval_s, batch_size)
        self.url = url
        self.where = redact_url(url)  # for messages: never the password
        self.path = local_path or spool_path  # the local ledger path: files that live beside a ledger go here
        self.spool = Spool(spool_path)
        self._conn: psycopg.AsyncConnection | None = None
        self._task: asyncio.Task | None = None
        self._down = False
        self._migrated = False
        self._retry_at = 0.0

    async def start(self) -> None:
        if await self._connect():
            log.info("ledger: PostgreSQL at %s (rows it cannot take yet are spooled to %s)", self.where, self.spool.path)
        self._task = asyncio.create_task(self._run(), name="ledger-writer")

    async def close(self) -> None:
        """Write everything queued (to PostgreSQL, or the spool if it is down); called on shutdown."""
        self._retry_at = 0.0
        await stop_task(self._task)
        await self._flush()
        if self._queue:
            self._spool(self._take(len(self._queue)))
        if self._conn is not None:
            await self._conn.close()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self._flush()

    async def _flush(self) -> None:
        if self._conn is None and not await self._connect():
            if self._queue:
                self._spool(self._take(len(self._queue)))
            return
        if len(self.spool) and not await self._replay_spool():
            return
        while self._queue:
            rows = self._take(self._batch)
            if not await self._write(rows):
                self._spool(rows + self._take(len(self._queue)))
                return

    async def _write(self, rows: list[LedgerRow]) -> bool:
        assert self._conn is not None
        values = []
        for row in rows:
            record = list(_row_values(row))
            record[_ATTEMPTS] = Jsonb(record[_ATTEMPTS])
            record[_COST] = Decimal(record[_COST] or "0")
            record[_FEATURES] = Jsonb(orjson.loads(record[_FEATURES] or "{}"))
            values.append(record)
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                async with self._conn.transaction():
                    async with self._conn.cursor() as cur:
                        await cur.executemany(_INSERT_SQL, values)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            self._went_down(f"{type(exc).__name__}: {str(exc).strip()}")
            return False
        self.written += len(rows)
        return True

    async def _replay_spool(self) -> bool:
        rows = self.spool.read()
        for start in range(0, len(rows), self._batch):
            if not await self._write(rows[start:start + self._batch]):
                return False
        self.spool.clear()
        log.warning("ledger: wrote %d spooled rows to %s", len(rows), self.where)
        return True

    async def _connect(self) -> bool:
        loop = asyncio.get_running_loop()
        if loop.time() < self._retry_at:
            return False
        try:
            if not self._migrated:
                await asyncio.to_thread(_migrate_sync, self.url)
                self._migrated = True
            self._conn = await connect_async(self.url)
        except (DatabaseUnavailable, psycopg.Error, OSError) as exc:
            self._conn = None
            self._retry_at = loop.time() + RECONNECT_S
            self._went_down(str(exc))
            return False
        if self._down:
            log.warning("ledger: PostgreSQL at %s is back", self.where)
        self._down = False
        return True

    def _went_down(self, reason: str) -> None:
        if self._conn is not None and not self._conn.closed:
            asyncio.get_running_loop().create_task(self._conn.close())
        self._conn = None
        if not self._down:
            log.error("ledger: cannot write to PostgreSQL at %s (%s); spooling rows to %s until it is back",
                      self.where, reason, self.spool.path)
        self._down = True

    def _spool(self, rows: list[LedgerRow]) -> None:
        if rows:
            self.spool.append(rows)



def _migrate_sync(url: str) -> None:
    from tollway.accounting.postgres import connect

    conn = connect(url)
    try:
        migrate(conn)
    finally:
        conn.close()

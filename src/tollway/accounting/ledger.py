"""The ledger writer: rows are queued by requests and written in batches by a background task.

A database write per request is what makes other gateways slow and fragile, so a request only appends to
an in-memory queue. A background task drains it every `flush_interval_s` in one transaction on a
dedicated thread; on shutdown (SIGTERM/SIGINT) everything queued is written before the process exits.
SQLite runs in WAL mode so `tollway usage` can read while the gateway writes.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from tollway.accounting.ledger_schema import ADDED_COLUMNS, CREATE_TABLE_SQL, LEDGER_COLUMNS, LedgerRow
from tollway.accounting.row_queue import RowQueue
from tollway.background_task import stop_task

if TYPE_CHECKING:
    from tollway.config import Config

log = logging.getLogger("tollway.ledger")
# No unique key on id: a client may send the same x-request-id twice, and both requests are kept. (A random
# text primary key also doubled the CPU of every insert, measured in docs/performance.md.)
_INSERT_SQL = (f"INSERT INTO requests ({', '.join(LEDGER_COLUMNS)}) "
               f"VALUES ({', '.join('?' for _ in LEDGER_COLUMNS)})")
_ATTEMPTS_INDEX = LEDGER_COLUMNS.index("attempts")
_row_values = attrgetter(*LEDGER_COLUMNS)


def open_ledger(config: "Config"):
    """The ledger writer the config asks for: PostgreSQL with `database_url` (rows it cannot take yet are
    spooled next to the SQLite ledger path), else SQLite. Both have start/append/pending/close/written/path."""
    from tollway.config import default_ledger_path

    path = config.ledger.path or default_ledger_path()
    if config.database_url:
        from tollway.accounting.ledger_postgres import PostgresLedgerWriter

        return PostgresLedgerWriter(config.database_url, path.with_name(path.name + ".spool.jsonl"),
                                    config.ledger.flush_interval_s, config.ledger.batch_size, local_path=path)
    return LedgerWriter(path, config.ledger.flush_interval_s, config.ledger.batch_size)


def open_sqlite(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) a ledger database in WAL mode with the current schema."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")  # workers and `tollway keys` share the file: wait, don't fail
    conn.executescript(CREATE_TABLE_SQL)
    present = {row[1] for row in conn.execute("PRAGMA table_info(requests)")}
    for name, definition in ADDED_COLUMNS:
        if name not in present:  # a ledger written by an older tollway
            conn.execute(f"ALTER TABLE requests ADD COLUMN {name} {definition}")
    return conn


class LedgerWriter(RowQueue):
    """Queue rows on the hot path; write them in batches off it, on a thread of its own."""

    def __init__(self, path: Path, flush_interval_s: float = 0.25, batch_size: int = 1000) -> None:
        super().__init__(flush_interval_s, batch_size)
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")
        self._conn: sqlite3.Connection | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._conn = await loop.run_in_executor(self._executor, open_sqlite, self.path)
        self._task = asyncio.create_task(self._run(), name="ledger-writer")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._interval)
            while self._queue:
                rows = self._take()
                try:
                    await loop.run_in_executor(self._executor, self._write, rows)
                except sqlite3.Error as exc:
                    log.error("ledger write failed (%s); %d rows kept for the next try", exc, len(rows))
                    self._queue.extendleft(reversed(rows))
                    break

    def _write(self, rows: list[LedgerRow]) -> None:
        assert self._conn is not None
        values = []
        for row in rows:
            record = list(_row_values(row))
            record[_ATTEMPTS_INDEX] = orjson.dumps(record[_ATTEMPTS_INDEX]).decode()
            values.append(record)
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany(_INSERT_SQL, values)
        self.written += len(rows)

    async def close(self) -> None:
        """Write everything still queued, then close; called on shutdown so no row is lost."""
        await stop_task(self._task)
        loop = asyncio.get_running_loop()
        while self._queue:
            await loop.run_in_executor(self._executor, self._write, self._take())
        if self._conn is not None:
            await loop.run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)

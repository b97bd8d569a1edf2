"""The ledger writer: rows are queued by requests and written in batches by a background task.

A database write per request is what makes other gateways slow and fragile, so a request only appends to
an in-memory queue. A background task drains it every `flush_interval_s` in one transaction on a
dedicated thread; on shutdown (SIGTERM/SIGINT) everything queued is written before the process exits.
A row SQLite refuses is quarantined, and rows it cannot take for now (locked, disk full) are spooled
(ledger_drain.py). SQLite runs in WAL mode so `tollway usage` can read while the gateway writes.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from tollway.ledger.drain import LedgerDrain
from tollway.ledger.quarantine import CREATE_QUARANTINE_SQL, QUARANTINE_COLUMNS, QuarantineEntry
from tollway.ledger.schema import ADDED_COLUMNS, CREATE_TABLE_SQL, LEDGER_COLUMNS, LedgerRow
from tollway.ledger.store_text import storable_record

if TYPE_CHECKING:
    from tollway.config import Config

log = logging.getLogger("tollway.ledger")
# No unique key on id: a client may send the same x-request-id twice, and both requests are kept. (A random
# text primary key also doubled the CPU of every insert, measured in docs/performance.md.)
_INSERT_SQL = (f"INSERT INTO requests ({', '.join(LEDGER_COLUMNS)}) "
               f"VALUES ({', '.join('?' for _ in LEDGER_COLUMNS)})")
_REPLAY_SQL = (f"INSERT INTO requests ({', '.join(LEDGER_COLUMNS)}) "
               f"SELECT {', '.join('?' for _ in LEDGER_COLUMNS)} "
               "WHERE NOT EXISTS (SELECT 1 FROM requests WHERE id = ? AND ts = ?)")
_QUARANTINE_SQL = (f"INSERT INTO quarantine ({', '.join(QUARANTINE_COLUMNS)}) "
                   f"VALUES ({', '.join('?' for _ in QUARANTINE_COLUMNS)})")


def open_ledger(config: "Config"):
    """The ledger writer the config asks for: PostgreSQL with `database_url` (rows it cannot take yet are
    spooled next to the SQLite ledger path), else SQLite. Both have start/append/pending/close/written/path."""
    from tollway.config import default_ledger_path

    path = config.ledger.path or default_ledger_path()
    if config.database_url:
        from tollway.ledger.postgres_writer import PostgresLedgerWriter

        return PostgresLedgerWriter(config.database_url, path.with_name(path.name + ".spool.jsonl"),
                                    config.ledger.flush_interval_s, config.ledger.batch_size, local_path=path,
                                    retention_days=config.ledger.retention_days)
    return LedgerWriter(path, config.ledger.flush_interval_s, config.ledger.batch_size)


def open_sqlite(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) a ledger database in WAL mode with the current schema."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")  # workers and `tollway keys` share the file: wait, don't fail
    conn.executescript(CREATE_TABLE_SQL + CREATE_QUARANTINE_SQL)
    present = {row[1] for row in conn.execute("PRAGMA table_info(requests)")}
    for name, definition in ADDED_COLUMNS:
        if name not in present:  # a ledger written by an older tollway
            conn.execute(f"ALTER TABLE requests ADD COLUMN {name} {definition}")
    return conn


class LedgerWriter(LedgerDrain):
    """Queue rows on the hot path; write them in batches off it, on a thread of its own (ledger_drain.py
    says what happens when a write fails)."""

    OUTAGES = (sqlite3.OperationalError, sqlite3.InternalError)  # locked, disk full or I/O: not the row's fault

    def __init__(self, path: Path, flush_interval_s: float = 0.25, batch_size: int = 1000) -> None:
        super().__init__(flush_interval_s, batch_size, ledger_path=path,
                         spool_path=path.with_name(path.name + ".spool.jsonl"), where=f"the SQLite ledger {path}")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")
        self._conn: sqlite3.Connection | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._conn = await loop.run_in_executor(self._executor, open_sqlite, self.path)
        self._start_tasks()

    async def _available(self) -> bool:
        return self._conn is not None

    async def _insert(self, rows: list[LedgerRow], replay: bool) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._insert_sync, rows, replay)

    def _insert_sync(self, rows: list[LedgerRow], replay: bool) -> None:
        assert self._conn is not None
        if replay:  # no unique key to lean on (see _INSERT_SQL): skip rows a cut-short replay already wrote
            values = [(*record, record[0], record[1]) for record in map(storable_record, rows)]
        else:
            values = [tuple(storable_record(row)) for row in rows]
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany(_REPLAY_SQL if replay else _INSERT_SQL, values)

    async def _insert_quarantine(self, entries: list[QuarantineEntry]) -> None:
        def insert() -> None:
            assert self._conn is not None
            with self._conn:
                self._conn.execute("BEGIN")
                self._conn.executemany(_QUARANTINE_SQL, [entry.values() for entry in entries])
        await asyncio.get_running_loop().run_in_executor(self._executor, insert)

    async def _close_store(self) -> None:
        if self._conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)

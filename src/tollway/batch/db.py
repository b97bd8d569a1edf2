"""One connection to the ledger's database for the batch tables, SQLite or PostgreSQL, behind one API.

The batch store and the file store write a few rows per batch and per line, never on the hot path, so
each process keeps one connection, used from one worker thread (`run`), and statements are written once
with `?` placeholders and translated for PostgreSQL. SQLite gets its tables on open; PostgreSQL gets them
from migration 010 (ledger/sql/postgres/), applied here as the ledger writer applies them.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

T = TypeVar("T")

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch_files (
  id TEXT PRIMARY KEY,
  key_id TEXT NOT NULL,
  purpose TEXT NOT NULL,
  filename TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  content BLOB,
  path TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS batches (
  id TEXT PRIMARY KEY,
  key_id TEXT NOT NULL,
  shape TEXT NOT NULL,
  endpoint TEXT NOT NULL,
  input_file_id TEXT NOT NULL,
  completion_window TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  deadline INTEGER NOT NULL,
  in_progress_at INTEGER,
  finalizing_at INTEGER,
  completed_at INTEGER,
  cancelling_at INTEGER,
  cancelled_at INTEGER,
  expired_at INTEGER,
  failed_at INTEGER,
  output_file_id TEXT,
  error_file_id TEXT,
  metadata TEXT NOT NULL DEFAULT '{}',
  total INTEGER NOT NULL,
  worst_case_usd TEXT NOT NULL DEFAULT '0',
  expected_cost_usd TEXT NOT NULL DEFAULT '0',
  lease_owner TEXT NOT NULL DEFAULT '',
  lease_until REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS batches_key_created ON batches (key_id, created_at);
CREATE TABLE IF NOT EXISTS batch_lines (
  batch_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  custom_id TEXT NOT NULL,
  deployment TEXT NOT NULL,
  mode TEXT NOT NULL,
  rate TEXT NOT NULL,
  not_before REAL NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending',
  request_id TEXT NOT NULL,
  status_code INTEGER NOT NULL DEFAULT 0,
  response TEXT,
  error TEXT,
  cost_usd TEXT NOT NULL DEFAULT '0',
  native_id TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (batch_id, idx)
);
CREATE TABLE IF NOT EXISTS batch_native (
  batch_id TEXT NOT NULL,
  deployment TEXT NOT NULL,
  upstream_batch_id TEXT NOT NULL,
  upstream_file_id TEXT,
  extra TEXT NOT NULL DEFAULT '{}',
  state TEXT NOT NULL DEFAULT 'submitted',
  PRIMARY KEY (batch_id, deployment)
);
"""


class BatchDatabase:
    """The ledger's database as the batch package uses it; every call runs on the one worker thread."""

    def __init__(self, sqlite_path: Path | None, database_url: str | None) -> None:
        self.postgres = bool(database_url)
        self._url = database_url
        self._path = sqlite_path
        self._conn: Any = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-db")

    async def run(self, work: Callable[["BatchDatabase"], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, work, self)

    def close(self) -> None:
        def close_conn() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        self._thread.submit(close_conn).result()
        self._thread.shutdown(wait=True)

    def _connect(self) -> Any:
        if self._conn is not None and not (self.postgres and self._conn.closed):
            return self._conn
        if self.postgres:
            from tollway.ledger.postgres import connect, migrate

            assert self._url is not None
            conn: Any = connect(self._url)
            migrate(conn)
        else:
            assert self._path is not None
            self._path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self._path), check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=10000")  # the ledger writer and other workers share the file
            conn.executescript(SQLITE_SCHEMA)
        self._conn = conn
        return conn

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return [tuple(row) for row in self._connect().execute(self._sql(sql), tuple(params)).fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        row = self._connect().execute(self._sql(sql), tuple(params)).fetchone()
        return None if row is None else tuple(row)

    def write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        cursor = self._connect().execute(self._sql(sql), tuple(params))
        return cursor.rowcount

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        conn = self._connect()
        if self.postgres:
            with conn.cursor() as cur:
                cur.executemany(self._sql(sql), [tuple(r) for r in rows])
        else:
            conn.executemany(sql, [tuple(r) for r in rows])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: a batch and its lines, a claim and its lease."""
        conn = self._connect()
        if self.postgres:
            with conn.transaction():
                yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

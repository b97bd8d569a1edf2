"""Stored OpenAI Responses: what `previous_response_id` and `GET`/`DELETE /v1/responses/{id}` read.

A stored response is kept with the key that made it (another key is told it does not exist), its input
items (the conversation it continued included), its output items, its created time and the response
object the client got. Writing is off the request path: `keep` puts the record in memory and a background
task writes what is pending in one transaction; a read looks in memory first, so the client's next request
finds a response that is not on disk yet. The table lives in the ledger's database: the SQLite file
(beside the ledger table, created on open) or PostgreSQL (migration 009, applied by the ledger writer),
so replicas sharing a PostgreSQL ledger share stored responses. Records older than the retention are
dropped on start and once an hour.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

log = logging.getLogger(__name__)

CREATE_SQL = """
CREATE TABLE IF NOT EXISTS stored_responses (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    input_items BLOB NOT NULL,
    output_items BLOB NOT NULL,
    response BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS stored_responses_created ON stored_responses (created_at);
"""
DEFAULT_RETENTION_DAYS = 30
_PRUNE_EVERY_S = 3600.0


@dataclass(slots=True)
class StoredResponse:
    id: str
    key_id: str
    created_at: int  # UTC seconds, as the response object's created_at
    input_items: list[dict[str, Any]]
    output_items: list[dict[str, Any]]
    response: dict[str, Any]


class StoredResponses:
    """The stored responses of one gateway process, in the SQLite file at `path`."""

    def __init__(self, path: Path, retention_days: int = DEFAULT_RETENTION_DAYS,
                 flush_interval_s: float = 0.25, database_url: str | None = None) -> None:
        self.path = path
        self._db: _Database = _Postgres(database_url) if database_url else _Sqlite(path)
        self.retention_days = retention_days
        self._interval = flush_interval_s
        self._pending: dict[str, StoredResponse] = {}   # kept, not yet written
        self._deleted: set[str] = set()                  # deleted, not yet removed from disk
        self._task: asyncio.Task | None = None
        self._last_prune = 0.0

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self._prune)
        except Exception:  # a database away at start: serve from memory, prune on a later round
            log.exception("stored responses: the database is not reachable; pruning is tried again hourly")
        self._task = asyncio.create_task(self._flush_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await asyncio.to_thread(self._flush)
        self._db.close()

    def keep(self, record: StoredResponse) -> None:
        self._deleted.discard(record.id)
        self._pending[record.id] = record

    async def get(self, response_id: str, key_id: str) -> StoredResponse | None:
        """The stored response, or None when it does not exist, was deleted, or belongs to another key."""
        if response_id in self._deleted:
            return None
        record = self._pending.get(response_id)
        if record is None:
            record = await asyncio.to_thread(self._read, response_id)
        if record is None or record.key_id != key_id:
            return None
        return record

    async def delete(self, response_id: str, key_id: str) -> bool:
        if await self.get(response_id, key_id) is None:
            return False
        self._pending.pop(response_id, None)
        self._deleted.add(response_id)
        return True

    def _read(self, response_id: str) -> StoredResponse | None:
        row = self._db.read(response_id)
        if row is None:
            return None
        return StoredResponse(row[0], row[1], row[2], orjson.loads(row[3]), orjson.loads(row[4]),
                              orjson.loads(row[5]))

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await asyncio.to_thread(self._flush)
                if time.monotonic() - self._last_prune > _PRUNE_EVERY_S:
                    await asyncio.to_thread(self._prune)
            except Exception:  # the database is away: the records wait in memory
                log.exception("stored responses: writing failed; they stay in memory and are tried again")

    def _flush(self) -> None:
        if not self._pending and not self._deleted:
            return
        pending, deleted = list(self._pending.values()), list(self._deleted)
        self._db.write([(r.id, r.key_id, r.created_at, orjson.dumps(r.input_items), orjson.dumps(r.output_items),
                         orjson.dumps(r.response)) for r in pending], deleted)
        for r in pending:  # a record kept again while this was written stays pending
            if self._pending.get(r.id) is r:
                del self._pending[r.id]
        self._deleted.difference_update(deleted)

    def _prune(self) -> None:
        self._last_prune = time.monotonic()
        cutoff = int(time.time()) - self.retention_days * 86400
        self._db.prune(cutoff)


_Row = tuple[str, str, int, bytes, bytes, bytes]


class _Database(Protocol):
    def read(self, response_id: str) -> _Row | None: ...
    def write(self, rows: list[_Row], deleted: list[str]) -> None: ...
    def prune(self, cutoff: int) -> None: ...
    def close(self) -> None: ...


class _Sqlite:
    """The ledger's SQLite file; the table is created on open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=10000")  # shared with the ledger writer and other workers
            conn.executescript(CREATE_SQL)
            self._conn = conn
        return self._conn

    def read(self, response_id: str) -> _Row | None:
        return self._connect().execute(_SELECT.replace("%s", "?"), (response_id,)).fetchone()

    def write(self, rows: list[_Row], deleted: list[str]) -> None:
        conn = self._connect()
        conn.execute("BEGIN")
        try:
            conn.executemany("INSERT OR REPLACE INTO stored_responses VALUES (?, ?, ?, ?, ?, ?)", rows)
            conn.executemany("DELETE FROM stored_responses WHERE id = ?", [(d,) for d in deleted])
            conn.execute("COMMIT")
        except sqlite3.Error:
            conn.execute("ROLLBACK")
            raise

    def prune(self, cutoff: int) -> None:
        self._connect().execute("DELETE FROM stored_responses WHERE created_at < ?", (cutoff,))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _Postgres:
    """The PostgreSQL ledger database (the table is migration 009, applied by the ledger writer's start)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn = None

    def _connect(self):
        from tollway.ledger.postgres import connect

        if self._conn is None or self._conn.closed:
            self._conn = connect(self.url)
        return self._conn

    def read(self, response_id: str) -> _Row | None:
        row = self._connect().execute(_SELECT, (response_id,)).fetchone()
        return None if row is None else (row[0], row[1], row[2], bytes(row[3]), bytes(row[4]), bytes(row[5]))

    def write(self, rows: list[_Row], deleted: list[str]) -> None:
        conn = self._connect()
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO stored_responses VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
                "key_id = EXCLUDED.key_id, created_at = EXCLUDED.created_at, input_items = EXCLUDED.input_items, "
                "output_items = EXCLUDED.output_items, response = EXCLUDED.response", rows)
            cur.executemany("DELETE FROM stored_responses WHERE id = %s", [(d,) for d in deleted])

    def prune(self, cutoff: int) -> None:
        self._connect().execute("DELETE FROM stored_responses WHERE created_at < %s", (cutoff,))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


_SELECT = ("SELECT id, key_id, created_at, input_items, output_items, response FROM stored_responses "
           "WHERE id = %s")

"""Where the admin audit log is kept: the ledger's SQLite file or its PostgreSQL database.

SQLite creates the `admin_audit` table on open (beside the ledger's `requests`); PostgreSQL has it from
migration 012, applied by the ledger writer's start (and here, for a reader that comes first). Writes are
idempotent by entry id, so an entry retried after a write that did land is not doubled. Both stores answer
the same `AuditQuery`: newest first, filtered by time, actor and action.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

AUDIT_COLUMNS = ("id", "ts", "actor_kind", "actor", "email", "role", "action", "target", "outcome", "diff",
                 "client", "user_agent")

CREATE_SQLITE = """
CREATE TABLE IF NOT EXISTS admin_audit (
    id TEXT PRIMARY KEY,
    ts TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    email TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL,
    diff TEXT NOT NULL DEFAULT '{}',
    client TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS admin_audit_ts ON admin_audit (ts);
"""


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Entries since `since` (UTC), by an actor (subject, email or key fingerprint), of an action (exact,
    or a prefix ending in '.' like "key."), newest first, at most `limit`."""

    since: datetime | None = None
    actor: str | None = None
    action: str | None = None
    limit: int = 200

    def matches(self, entry: dict[str, Any]) -> bool:
        if self.since is not None and entry["ts"] < _utc(self.since):
            return False
        if self.actor and self.actor not in (entry["actor"], entry["email"]):
            return False
        if self.action and not _action_matches(self.action, entry["action"]):
            return False
        return True

    def where(self, mark: str) -> tuple[str, list[Any]]:
        """A WHERE clause with `mark` as the parameter placeholder (? for SQLite, %s for psycopg)."""
        clauses, params = [], []
        if self.since is not None:
            clauses.append(f"ts >= {mark}")
            params.append(_utc(self.since))
        if self.actor:
            clauses.append(f"(actor = {mark} OR email = {mark})")
            params += [self.actor, self.actor]
        if self.action and self.action.endswith("."):
            clauses.append(f"substr(action, 1, {len(self.action)}) = {mark}")
            params.append(self.action)
        elif self.action:
            clauses.append(f"action = {mark}")
            params.append(self.action)
        return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _utc(moment: datetime) -> str:
    """ISO-8601 in UTC, as entries store their time (so text order is time order)."""
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)).isoformat()


def _action_matches(wanted: str, action: str) -> bool:
    return action.startswith(wanted) if wanted.endswith(".") else action == wanted


class AuditStore(Protocol):
    def write(self, entries: list[dict[str, Any]]) -> None: ...
    def read(self, query: AuditQuery) -> list[dict[str, Any]]: ...
    def close(self) -> None: ...


def open_audit_store(path: Path, database_url: str | None = None) -> AuditStore:
    """The audit table in PostgreSQL at `database_url`, else in the SQLite ledger file at `path`."""
    return PostgresAuditStore(database_url) if database_url else SqliteAuditStore(path)


def _values(entry: dict[str, Any]) -> tuple:
    return tuple(orjson.dumps(entry[c]).decode() if c == "diff" else entry[c] for c in AUDIT_COLUMNS)


def _entry(values: tuple) -> dict[str, Any]:
    entry = dict(zip(AUDIT_COLUMNS, values))
    entry["diff"] = orjson.loads(entry["diff"] or "{}")
    return entry


_SELECT = f"SELECT {', '.join(AUDIT_COLUMNS)} FROM admin_audit {{where}} ORDER BY ts DESC LIMIT {{limit}}"


class SqliteAuditStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=10000")  # shared with the ledger writer and other workers
            conn.executescript(CREATE_SQLITE)
            self._conn = conn
        return self._conn

    def write(self, entries: list[dict[str, Any]]) -> None:
        marks = ", ".join("?" for _ in AUDIT_COLUMNS)
        conn = self._connect()
        conn.execute("BEGIN")
        try:
            conn.executemany(f"INSERT OR IGNORE INTO admin_audit VALUES ({marks})", [_values(e) for e in entries])
            conn.execute("COMMIT")
        except sqlite3.Error:
            conn.execute("ROLLBACK")
            raise

    def read(self, query: AuditQuery) -> list[dict[str, Any]]:
        where, params = query.where("?")
        rows = self._connect().execute(_SELECT.format(where=where, limit=int(query.limit)), params).fetchall()
        return [_entry(r) for r in rows]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class PostgresAuditStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self._conn = None

    def _connect(self):
        from tollway.ledger.postgres import connect, migrate

        if self._conn is None or self._conn.closed:
            conn = connect(self.url)
            migrate(conn)  # the table exists before the first entry, even when no ledger writer ran here
            self._conn = conn
        return self._conn

    def write(self, entries: list[dict[str, Any]]) -> None:
        marks = ", ".join("%s" for _ in AUDIT_COLUMNS)
        conn = self._connect()
        try:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(f"INSERT INTO admin_audit VALUES ({marks}) ON CONFLICT (id) DO NOTHING",
                                [_values(e) for e in entries])
        except Exception:
            self.close()  # a broken connection is opened afresh on the next try
            raise

    def read(self, query: AuditQuery) -> list[dict[str, Any]]:
        where, params = query.where("%s")
        rows = self._connect().execute(_SELECT.format(where=where, limit=int(query.limit)), params).fetchall()
        return [_entry(r) for r in rows]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

"""Virtual keys in SQLite: a `keys` table beside the ledger's `requests` (one file on one machine)."""

from __future__ import annotations

import builtins
import sqlite3
import threading
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import orjson

from tollway.accounting.keys.records import KeyRecord, KeySpec, apply_spec, rotated
from tollway.accounting.keys.store import KeyNotFound, KeyStoreError, money_or_none

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  salt TEXT NOT NULL,
  hash TEXT NOT NULL,
  team TEXT NOT NULL DEFAULT '',
  daily_usd TEXT,
  monthly_usd TEXT,
  rpm INTEGER,
  tpm INTEGER,
  models TEXT NOT NULL DEFAULT '[]',
  residency TEXT NOT NULL DEFAULT '[]',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  revoked_at TEXT NOT NULL DEFAULT '',
  seq INTEGER NOT NULL,
  default_max_tokens INTEGER,
  expires_at TEXT NOT NULL DEFAULT '',
  prev_salt TEXT NOT NULL DEFAULT '',
  prev_hash TEXT NOT NULL DEFAULT '',
  prev_until TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS keys_seq ON keys (seq);
"""
_COLUMNS = ("id", "name", "salt", "hash", "team", "daily_usd", "monthly_usd", "rpm", "tpm", "models", "residency",
            "created_at", "updated_at", "revoked_at", "seq", "default_max_tokens", "expires_at", "prev_salt",
            "prev_hash", "prev_until")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM keys"


class SqliteKeyStore:
    def __init__(self, path: Path) -> None:
        self.where = str(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(_SCHEMA)
            _add_missing_columns(self._conn)
        except (OSError, sqlite3.Error) as exc:
            raise KeyStoreError(f"cannot open the key store {path}: {exc}") from None
        self._lock = threading.Lock()

    def create(self, record: KeyRecord) -> KeyRecord:
        with self._write() as conn:
            record = replace(record, seq=_next_seq(conn))
            conn.execute(f"INSERT INTO keys ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                         _values(record))
        return record

    def get(self, key_id: str) -> KeyRecord | None:
        with self._lock:
            row = self._conn.execute(f"{_SELECT} WHERE id = ?", (key_id,)).fetchone()
        return _record(row) if row else None

    def list(self) -> list[KeyRecord]:
        with self._lock:
            rows = self._conn.execute(f"{_SELECT} ORDER BY created_at, id").fetchall()
        return [_record(r) for r in rows]

    def update(self, key_id: str, spec: KeySpec) -> KeyRecord:
        return self._change(key_id, lambda r: apply_spec(r, spec))

    def revoke(self, key_id: str) -> KeyRecord:
        return self._change(key_id, lambda r: r if r.revoked else replace(r, revoked_at=_now()))

    def rotate(self, key_id: str, secret: str, grace_until: str) -> KeyRecord:
        return self._change(key_id, lambda r: rotated(r, secret, grace_until))

    def changed_since(self, seq: int) -> builtins.list[KeyRecord]:  # `list` here is the method above
        with self._lock:
            rows = self._conn.execute(f"{_SELECT} WHERE seq > ? ORDER BY seq", (seq,)).fetchall()
        return [_record(r) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _change(self, key_id: str, change) -> KeyRecord:
        with self._write() as conn:
            row = conn.execute(f"{_SELECT} WHERE id = ?", (key_id,)).fetchone()
            if row is None:
                raise KeyNotFound(key_id)
            record = replace(change(_record(row)), updated_at=_now(), seq=_next_seq(conn))
            conn.execute(f"UPDATE keys SET {', '.join(f'{c} = ?' for c in _COLUMNS[1:])} WHERE id = ?",
                         (*_values(record)[1:], key_id))
        return record

    def _write(self):
        return _Transaction(self._conn, self._lock)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT under the store's lock: seq numbers follow commit order."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.Lock) -> None:
        self._conn, self._lock = conn, lock

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, kind, exc, tb) -> None:
        try:
            self._conn.execute("ROLLBACK" if kind else "COMMIT")
        finally:
            self._lock.release()


# Columns added after the first release: (name, definition). A key store written by an older tollway gets them.
_ADDED_COLUMNS = (("default_max_tokens", "INTEGER"), ("expires_at", "TEXT NOT NULL DEFAULT ''"),
                  ("prev_salt", "TEXT NOT NULL DEFAULT ''"), ("prev_hash", "TEXT NOT NULL DEFAULT ''"),
                  ("prev_until", "TEXT NOT NULL DEFAULT ''"))


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    present = {row[1] for row in conn.execute("PRAGMA table_info(keys)")}
    for name, definition in _ADDED_COLUMNS:
        if name not in present:
            conn.execute(f"ALTER TABLE keys ADD COLUMN {name} {definition}")


def _next_seq(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM keys").fetchone()[0]


def _values(r: KeyRecord) -> tuple:
    return (r.id, r.name, r.salt, r.hash, r.team, _text(r.daily_usd), _text(r.monthly_usd), r.rpm, r.tpm,
            orjson.dumps(list(r.models)).decode(), orjson.dumps(list(r.residency)).decode(), r.created_at,
            r.updated_at, r.revoked_at, r.seq, r.default_max_tokens, r.expires_at, r.prev_salt, r.prev_hash, r.prev_until)


def _record(row: tuple) -> KeyRecord:
    values = dict(zip(_COLUMNS, row))
    values["daily_usd"] = money_or_none(values["daily_usd"])
    values["monthly_usd"] = money_or_none(values["monthly_usd"])
    values["models"] = tuple(orjson.loads(values["models"]))
    values["residency"] = tuple(orjson.loads(values["residency"]))
    return KeyRecord(**values)


def _text(value) -> str | None:
    return None if value is None else str(value)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()

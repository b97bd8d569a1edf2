"""Virtual keys in SQLite: a `keys` table beside the ledger's `requests` (one file on one machine)."""

from __future__ import annotations

import builtins
import sqlite3
import threading
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import orjson

from tollway.accounting.budget_entries import from_stored, to_json
from tollway.accounting.keys.records import KeyRecord, KeySpec, apply_spec, rotated
from tollway.accounting.keys.store import KeyNotFound, KeyStoreError, TeamExists, TeamNotFound, with_old_budgets
from tollway.accounting.teams import TeamRecord, TeamSpec, apply_team_spec

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  salt TEXT NOT NULL,
  hash TEXT NOT NULL,
  team TEXT NOT NULL DEFAULT '',
  daily_usd TEXT,
  monthly_usd TEXT,
  budgets TEXT NOT NULL DEFAULT '[]',
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
CREATE TABLE IF NOT EXISTS teams (
  name TEXT PRIMARY KEY,
  rpm INTEGER,
  tpm INTEGER,
  budgets TEXT NOT NULL DEFAULT '[]',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  deleted_at TEXT NOT NULL DEFAULT '',
  seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS teams_seq ON teams (seq);
"""
# daily_usd and monthly_usd are read (a store written by an older tollway) and always written empty: the
# key's budgets are the `budgets` list (migrated on open, see _move_old_budgets).
_COLUMNS = ("id", "name", "salt", "hash", "team", "daily_usd", "monthly_usd", "rpm", "tpm", "models", "residency",
            "created_at", "updated_at", "revoked_at", "seq", "default_max_tokens", "expires_at", "prev_salt",
            "prev_hash", "prev_until", "budgets")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM keys"
_TEAM_COLUMNS = ("name", "rpm", "tpm", "budgets", "created_at", "updated_at", "deleted_at", "seq")
_SELECT_TEAMS = f"SELECT {', '.join(_TEAM_COLUMNS)} FROM teams"


class SqliteKeyStore:
    def __init__(self, path: Path) -> None:
        self.where = str(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(_SCHEMA)
            _add_missing_columns(self._conn)
            _move_old_budgets(self._conn)
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

    def list_teams(self) -> builtins.list[TeamRecord]:
        with self._lock:
            rows = self._conn.execute(f"{_SELECT_TEAMS} WHERE deleted_at = '' ORDER BY name").fetchall()
        return [_team(r) for r in rows]

    def get_team(self, name: str) -> TeamRecord | None:
        with self._lock:
            row = self._conn.execute(f"{_SELECT_TEAMS} WHERE name = ? AND deleted_at = ''", (name,)).fetchone()
        return _team(row) if row else None

    def teams_changed_since(self, seq: int) -> builtins.list[TeamRecord]:
        with self._lock:
            rows = self._conn.execute(f"{_SELECT_TEAMS} WHERE seq > ? ORDER BY seq", (seq,)).fetchall()
        return [_team(r) for r in rows]

    def create_team(self, record: TeamRecord) -> TeamRecord:
        with self._write() as conn:
            row = conn.execute("SELECT deleted_at FROM teams WHERE name = ?", (record.name,)).fetchone()
            if row is not None and not row[0]:
                raise TeamExists(record.name)
            record = replace(record, seq=_next_team_seq(conn))
            conn.execute(f"INSERT OR REPLACE INTO teams ({', '.join(_TEAM_COLUMNS)}) VALUES "
                         f"({', '.join('?' * len(_TEAM_COLUMNS))})", _team_values(record))
        return record

    def update_team(self, name: str, spec: TeamSpec) -> TeamRecord:
        return self._change_team(name, lambda r: apply_team_spec(r, spec))

    def delete_team(self, name: str) -> TeamRecord:
        return self._change_team(name, lambda r: replace(r, deleted_at=_now()))

    def _change_team(self, name: str, change) -> TeamRecord:
        with self._write() as conn:
            row = conn.execute(f"{_SELECT_TEAMS} WHERE name = ? AND deleted_at = ''", (name,)).fetchone()
            if row is None:
                raise TeamNotFound(name)
            record = replace(change(_team(row)), updated_at=_now(), seq=_next_team_seq(conn))
            conn.execute(f"UPDATE teams SET {', '.join(f'{c} = ?' for c in _TEAM_COLUMNS[1:])} WHERE name = ?",
                         (*_team_values(record)[1:], name))
        return record

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
                  ("prev_until", "TEXT NOT NULL DEFAULT ''"), ("budgets", "TEXT NOT NULL DEFAULT '[]'"))


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    present = {row[1] for row in conn.execute("PRAGMA table_info(keys)")}
    for name, definition in _ADDED_COLUMNS:
        if name not in present:
            conn.execute(f"ALTER TABLE keys ADD COLUMN {name} {definition}")


def _move_old_budgets(conn: sqlite3.Connection) -> None:
    """A store written by an older tollway keeps its keys' daily and monthly budgets: each becomes a day or
    month entry of the key's list (and the old columns are cleared, so nothing counts twice)."""
    rows = conn.execute(f"{_SELECT} WHERE daily_usd IS NOT NULL OR monthly_usd IS NOT NULL").fetchall()
    if not rows:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for row in rows:
            record = replace(_record(row), seq=_next_seq(conn))
            conn.execute("UPDATE keys SET budgets = ?, daily_usd = NULL, monthly_usd = NULL, seq = ? WHERE id = ?",
                         (orjson.dumps(to_json(record.budgets)).decode(), record.seq, record.id))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _next_team_seq(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM teams").fetchone()[0]


def _team_values(r: TeamRecord) -> tuple:
    return (r.name, r.rpm, r.tpm, orjson.dumps(to_json(r.budgets)).decode(), r.created_at, r.updated_at,
            r.deleted_at, r.seq)


def _team(row: tuple) -> TeamRecord:
    values = dict(zip(_TEAM_COLUMNS, row))
    values["budgets"] = from_stored(orjson.loads(values["budgets"]))
    return TeamRecord(**values)


def _next_seq(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM keys").fetchone()[0]


def _values(r: KeyRecord) -> tuple:
    return (r.id, r.name, r.salt, r.hash, r.team, None, None, r.rpm, r.tpm,
            orjson.dumps(list(r.models)).decode(), orjson.dumps(list(r.residency)).decode(), r.created_at,
            r.updated_at, r.revoked_at, r.seq, r.default_max_tokens, r.expires_at, r.prev_salt, r.prev_hash, r.prev_until,
            orjson.dumps(to_json(r.budgets)).decode())


def _record(row: tuple) -> KeyRecord:
    values = dict(zip(_COLUMNS, row))
    daily, monthly = values.pop("daily_usd"), values.pop("monthly_usd")
    values["budgets"] = with_old_budgets(from_stored(orjson.loads(values["budgets"] or "[]")), daily, monthly)
    values["models"] = tuple(orjson.loads(values["models"]))
    values["residency"] = tuple(orjson.loads(values["residency"]))
    return KeyRecord(**values)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()

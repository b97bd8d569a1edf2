"""Virtual keys in PostgreSQL, shared by every replica (the `keys` table of migration 001).

Each change takes an exclusive lock on the table for its short transaction, so `seq` values commit in
the order they were drawn and a replica polling `changed_since` never skips one.
"""

from __future__ import annotations

import builtins
import threading
from dataclasses import replace
from datetime import datetime, timezone

import psycopg
from psycopg.types.json import Jsonb

from tollway.accounting.budget_entries import from_stored, to_json
from tollway.accounting.keys.records import KeyRecord, KeySpec, apply_spec, rotated
from tollway.accounting.keys.store import KeyNotFound, KeyStoreError, TeamExists, TeamNotFound, with_old_budgets
from tollway.accounting.teams import TeamRecord, TeamSpec, apply_team_spec
from tollway.core.redact import redact_url
from tollway.ledger.postgres import DatabaseUnavailable, connect, migrate

_COLUMNS = ("id", "name", "salt", "hash", "team", "daily_usd", "monthly_usd", "rpm", "tpm", "models", "residency",
            "created_at", "updated_at", "revoked_at", "seq", "default_max_tokens", "expires_at", "prev_salt",
            "prev_hash", "prev_until", "budgets")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM keys"
_TEAM_COLUMNS = ("name", "rpm", "tpm", "budgets", "created_at", "updated_at", "deleted_at", "seq")
_SELECT_TEAMS = f"SELECT {', '.join(_TEAM_COLUMNS)} FROM teams"


class PostgresKeyStore:
    def __init__(self, url: str) -> None:
        self.where = redact_url(url)
        self._url = url
        self._lock = threading.Lock()
        self._conn: psycopg.Connection | None = None
        self._connection()  # fail at start, with a clear message, if the database is not there

    def create(self, record: KeyRecord) -> KeyRecord:
        def work(conn: psycopg.Connection) -> KeyRecord:
            with conn.transaction():
                conn.execute("LOCK TABLE keys IN EXCLUSIVE MODE")
                created = replace(record, seq=_next_seq(conn))
                conn.execute(f"INSERT INTO keys ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_COLUMNS))})",
                             _values(created))
            return created
        return self._run(work)

    def get(self, key_id: str) -> KeyRecord | None:
        row = self._run(lambda conn: conn.execute(f"{_SELECT} WHERE id = %s", (key_id,)).fetchone())
        return _record(row) if row else None

    def list(self) -> list[KeyRecord]:
        return [_record(r) for r in self._run(lambda conn: conn.execute(f"{_SELECT} ORDER BY created_at, id").fetchall())]

    def update(self, key_id: str, spec: KeySpec) -> KeyRecord:
        return self._change(key_id, lambda r: apply_spec(r, spec))

    def revoke(self, key_id: str) -> KeyRecord:
        return self._change(key_id, lambda r: r if r.revoked else replace(r, revoked_at=_now()))

    def rotate(self, key_id: str, secret: str, grace_until: str) -> KeyRecord:
        return self._change(key_id, lambda r: rotated(r, secret, grace_until))

    def changed_since(self, seq: int) -> builtins.list[KeyRecord]:  # `list` here is the method above
        rows = self._run(lambda conn: conn.execute(f"{_SELECT} WHERE seq > %s ORDER BY seq", (seq,)).fetchall())
        return [_record(r) for r in rows]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def list_teams(self) -> builtins.list[TeamRecord]:
        rows = self._run(lambda conn: conn.execute(f"{_SELECT_TEAMS} WHERE deleted_at = '' ORDER BY name").fetchall())
        return [_team(r) for r in rows]

    def get_team(self, name: str) -> TeamRecord | None:
        row = self._run(lambda conn: conn.execute(f"{_SELECT_TEAMS} WHERE name = %s AND deleted_at = ''",
                                                  (name,)).fetchone())
        return _team(row) if row else None

    def teams_changed_since(self, seq: int) -> builtins.list[TeamRecord]:
        rows = self._run(lambda conn: conn.execute(f"{_SELECT_TEAMS} WHERE seq > %s ORDER BY seq", (seq,)).fetchall())
        return [_team(r) for r in rows]

    def create_team(self, record: TeamRecord) -> TeamRecord:
        def work(conn: psycopg.Connection) -> TeamRecord:
            with conn.transaction():
                conn.execute("LOCK TABLE teams IN EXCLUSIVE MODE")
                row = conn.execute("SELECT deleted_at FROM teams WHERE name = %s", (record.name,)).fetchone()
                if row is not None and not row[0]:
                    raise TeamExists(record.name)
                created = replace(record, seq=_next_seq(conn))
                conn.execute("DELETE FROM teams WHERE name = %s", (record.name,))
                conn.execute(f"INSERT INTO teams ({', '.join(_TEAM_COLUMNS)}) VALUES "
                             f"({', '.join(['%s'] * len(_TEAM_COLUMNS))})", _team_values(created))
            return created
        return self._run(work)

    def update_team(self, name: str, spec: TeamSpec) -> TeamRecord:
        return self._change_team(name, lambda r: apply_team_spec(r, spec))

    def delete_team(self, name: str) -> TeamRecord:
        return self._change_team(name, lambda r: replace(r, deleted_at=_now()))

    def _change_team(self, name: str, change) -> TeamRecord:
        def work(conn: psycopg.Connection) -> TeamRecord:
            with conn.transaction():
                conn.execute("LOCK TABLE teams IN EXCLUSIVE MODE")
                row = conn.execute(f"{_SELECT_TEAMS} WHERE name = %s AND deleted_at = ''", (name,)).fetchone()
                if row is None:
                    raise TeamNotFound(name)
                record = replace(change(_team(row)), updated_at=_now(), seq=_next_seq(conn))
                conn.execute(f"UPDATE teams SET {', '.join(f'{c} = %s' for c in _TEAM_COLUMNS[1:])} WHERE name = %s",
                             (*_team_values(record)[1:], name))
            return record
        return self._run(work)

    def _change(self, key_id: str, change) -> KeyRecord:
        def work(conn: psycopg.Connection) -> KeyRecord:
            with conn.transaction():
                conn.execute("LOCK TABLE keys IN EXCLUSIVE MODE")
                row = conn.execute(f"{_SELECT} WHERE id = %s", (key_id,)).fetchone()
                if row is None:
                    raise KeyNotFound(key_id)
                seq = _next_seq(conn)
                record = replace(change(_record(row)), updated_at=_now(), seq=seq)
                conn.execute(f"UPDATE keys SET {', '.join(f'{c} = %s' for c in _COLUMNS[1:])} WHERE id = %s",
                             (*_values(record)[1:], key_id))
            return record
        return self._run(work)

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self._url)
            migrate(self._conn)
        return self._conn

    def _run(self, work):
        """Run `work(conn)` once, reconnecting first if the last connection broke."""
        with self._lock:
            try:
                return work(self._connection())
            except (KeyNotFound, TeamNotFound, TeamExists):
                raise
            except psycopg.OperationalError as exc:
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                raise DatabaseUnavailable(f"the key store at {self.where} failed: {str(exc).strip()}") from None
            except psycopg.Error as exc:
                raise KeyStoreError(f"the key store at {self.where} refused the change: {str(exc).strip()}") from None


def _values(r: KeyRecord) -> tuple:
    return (r.id, r.name, r.salt, r.hash, r.team, None, None, r.rpm, r.tpm, Jsonb(list(r.models)),
            Jsonb(list(r.residency)), r.created_at, r.updated_at, r.revoked_at, r.seq, r.default_max_tokens,
            r.expires_at, r.prev_salt, r.prev_hash, r.prev_until, Jsonb(to_json(r.budgets)))


def _team_values(r: TeamRecord) -> tuple:
    return (r.name, r.rpm, r.tpm, Jsonb(to_json(r.budgets)), r.created_at, r.updated_at, r.deleted_at, r.seq)


def _team(row: tuple) -> TeamRecord:
    values = dict(zip(_TEAM_COLUMNS, row))
    values["budgets"] = from_stored(values["budgets"])
    return TeamRecord(**values)


def _record(row: tuple) -> KeyRecord:
    values = dict(zip(_COLUMNS, row))
    daily, monthly = values.pop("daily_usd"), values.pop("monthly_usd")
    values["budgets"] = with_old_budgets(from_stored(values["budgets"]), daily, monthly)
    values["models"] = tuple(values["models"])
    values["residency"] = tuple(values["residency"])
    return KeyRecord(**values)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _next_seq(conn: psycopg.Connection) -> int:
    """The next change number; `SELECT nextval(...)` always returns exactly one row."""
    row = conn.execute("SELECT nextval('keys_seq')").fetchone()
    assert row is not None
    return row[0]

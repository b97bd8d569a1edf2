"""PostgreSQL connections and schema migrations, shared by the ledger writer and the key store.

Migrations are the numbered files in ledger/sql/postgres/, applied in order, each once, in one
transaction under an advisory lock, so replicas starting together do not race to create tables.
"""

from __future__ import annotations

from importlib import resources

import psycopg

from tollway.core.redact import redact_url


class DatabaseUnavailable(Exception):
    """PostgreSQL could not be reached or failed mid-work; the message names the redacted URL."""


MIGRATION_LOCK = 7_413_020_501  # pg_advisory_xact_lock id: any constant unique to tollway
CONNECT_TIMEOUT_S = 3


def connect(url: str, autocommit: bool = True) -> psycopg.Connection:
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as exc:
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {redact_url(url)}: {_reason(exc)}") from None


async def connect_async(url: str) -> psycopg.AsyncConnection:
    try:
        return await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as exc:
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {redact_url(url)}: {_reason(exc)}") from None


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) for every migration shipped with tollway, oldest first."""
    folder = resources.files("tollway.ledger") / "sql" / "postgres"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.name, entry.read_text()))
    return sorted(found)


def _rebuild_rollups() -> str:
    from tollway.ledger.rollups import REBUILD_ROLLUPS_SQL

    return REBUILD_ROLLUPS_SQL


# SQL a migration needs that is generated, not written out: the roll-ups of the rows already stored are
# summed by the same statement text the writer uses, so the two cannot drift apart.
_FOLLOW_UPS = {6: _rebuild_rollups}


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply the migrations this database lacks; returns the names applied."""
    applied = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS tollway_migrations "
                     "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        done = {row[0] for row in conn.execute("SELECT version FROM tollway_migrations")}
        for version, name, sql in migrations():
            if version in done:
                continue
            conn.execute(sql)
            if version in _FOLLOW_UPS:
                conn.execute(_FOLLOW_UPS[version]())
            conn.execute("INSERT INTO tollway_migrations (version, name) VALUES (%s, %s)", (version, name))
            applied.append(name)
    return applied


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

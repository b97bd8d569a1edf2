"""Where virtual keys live: SQLite on one machine (the ledger file by default), PostgreSQL for many replicas.

Both stores are synchronous and small; the gateway calls them from a worker thread, never on a request's
path (requests read the in-process KeyCache). Every change bumps the store's `seq`, so a replica learns
what changed with one cheap query (`changed_since`).
"""

from __future__ import annotations

import builtins
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tollway.accounting.budget_entries import BudgetEntry, plain_limit, with_plain
from tollway.accounting.keys.records import KeyRecord, KeySpec
from tollway.ledger.postgres import DatabaseUnavailable

if TYPE_CHECKING:
    from tollway.accounting.teams import TeamRecord, TeamSpec


class KeyStoreError(Exception):
    """A key store problem a user can act on (an unknown id, a refused change)."""


# What a key store's caller catches: its own errors, and a database that cannot be reached.
KEY_STORE_ERRORS = (KeyStoreError, DatabaseUnavailable)


class KeyNotFound(KeyStoreError):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"no key with id {key_id!r} (see `tollway keys list`)")
        self.key_id = key_id


class TeamNotFound(KeyStoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no stored team named {name!r} (see `tollway teams list`)")
        self.name = name


class TeamExists(KeyStoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"team {name!r} already exists")
        self.name = name


class KeyStore(Protocol):
    where: str  # for messages: a file path or a redacted URL

    def create(self, record: KeyRecord) -> KeyRecord: ...
    def get(self, key_id: str) -> KeyRecord | None: ...
    def list(self) -> list[KeyRecord]: ...
    def update(self, key_id: str, spec: KeySpec) -> KeyRecord: ...
    def revoke(self, key_id: str) -> KeyRecord: ...
    def rotate(self, key_id: str, secret: str, grace_until: str) -> KeyRecord: ...
    def changed_since(self, seq: int) -> builtins.list[KeyRecord]: ...  # `list` here is the method above
    def close(self) -> None: ...
    def list_teams(self) -> builtins.list[TeamRecord]: ...
    def get_team(self, name: str) -> TeamRecord | None: ...
    def teams_changed_since(self, seq: int) -> builtins.list[TeamRecord]: ...
    def create_team(self, record: TeamRecord) -> TeamRecord: ...
    def update_team(self, name: str, spec: TeamSpec) -> TeamRecord: ...
    def delete_team(self, name: str) -> TeamRecord: ...


def open_key_store(database_url: str | None, sqlite_path: Path) -> KeyStore:
    """PostgreSQL when a database URL is given, else the SQLite file."""
    if database_url:
        from tollway.accounting.keys.store_postgres import PostgresKeyStore

        return PostgresKeyStore(database_url)
    from tollway.accounting.keys.store_sqlite import SqliteKeyStore

    return SqliteKeyStore(sqlite_path)


def money_or_none(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def with_old_budgets(entries: tuple[BudgetEntry, ...], daily: object, monthly: object) -> tuple[BudgetEntry, ...]:
    """A key's entries plus the daily/monthly columns an older tollway wrote (an entry already in the list for
    that window wins): the same budgets, whichever version wrote the row."""
    for window, value in (("day", daily), ("month", monthly)):
        if value is not None and plain_limit(entries, window) is None:
            entries = with_plain(entries, window, money_or_none(value))
    return entries

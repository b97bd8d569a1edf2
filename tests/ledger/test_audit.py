"""The admin audit log: secrets never land in it, an entry the database refused is kept and written later,
and both stores (the SQLite ledger file, PostgreSQL with migration 012) answer the same filtered reads."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tollway.ledger.audit import MASK, AuditEntry, AuditLog, changed_fields, scrubbed
from tollway.ledger.audit_store import AuditQuery, PostgresAuditStore, SqliteAuditStore

KEY_SECRET = "tw_abcd2345_" + "0123456789abcdef" * 3


def test_scrubbed_masks_secret_fields_and_values_at_any_depth():
    diff = {"name": {"from": None, "to": "bot"}, "secret": KEY_SECRET, "salt": "s", "hash": "h",
            "nested": [{"client_secret": "cs", "note": f"rotated from {KEY_SECRET}"}],
            "Authorization": "Bearer x", "api_key": "k", "id_token": "t", "message": "uses hunter2 inside"}
    clean = scrubbed(diff, known=["hunter2"])
    text = repr(clean)
    for secret in (KEY_SECRET, "'s'", "'h'", "'cs'", "Bearer x", "'k'", "'t'", "hunter2"):
        assert secret not in text
    assert clean["name"] == {"from": None, "to": "bot"}
    assert clean["nested"][0]["note"] == f"rotated from {MASK}"
    assert clean["secret"] == MASK and clean["message"] == f"uses {MASK} inside"


def test_changed_fields_lists_only_what_changed():
    assert changed_fields({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": None}) == {"b": {"from": 2, "to": 3}}
    assert changed_fields(None, {"a": 1}) == {"a": {"from": None, "to": 1}}


class FlakyStore:
    """A store that refuses the first `failures` writes, then keeps what it is given."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.rows: dict[str, dict] = {}

    def write(self, entries):
        if self.failures:
            self.failures -= 1
            raise OSError("database is away")
        self.rows.update({e["id"]: e for e in entries})

    def read(self, query):
        return sorted((r for r in self.rows.values() if query.matches(r)), key=lambda r: r["ts"], reverse=True)

    def close(self):
        pass


def test_an_entry_the_database_refused_is_kept_readable_and_written_later():
    async def run():
        store = FlakyStore(failures=2)
        log = AuditLog(store, secrets=["admin-key-1"])
        await log.record(AuditEntry("key.created", "admin_key", "admin-key:abc", diff={"note": "admin-key-1"}))
        assert log.pending == 1 and not store.rows
        seen = await log.read(AuditQuery())
        assert [e["action"] for e in seen] == ["key.created"], "a pending entry is still shown"
        await log.record(AuditEntry("key.revoked", "admin_key", "admin-key:abc"))  # second failure: both wait
        assert log.pending == 2
        await log.close()  # the last try at shutdown lands both
        assert log.pending == 0 and len(store.rows) == 2
        assert all("admin-key-1" not in repr(r) for r in store.rows.values())
    asyncio.run(run())


def _entries(now: datetime) -> list[dict]:
    old = AuditEntry("key.created", "oidc", "sub-1", email="a@example.com", role="admin", target="k1",
                     diff={"name": {"from": None, "to": "<b>x</b>"}}, ts=(now - timedelta(days=2)).isoformat())
    new = AuditEntry("key.revoked", "oidc", "sub-2", email="b@example.com", role="team_admin", target="k1",
                     ts=now.isoformat())
    login = AuditEntry("login", "admin_key", "admin-key:abc", ts=(now - timedelta(hours=1)).isoformat())
    return [e.as_dict() for e in (old, new, login)]


def _check_reads(store) -> None:
    now = datetime.now(UTC)
    entries = _entries(now)
    store.write(entries)
    store.write(entries[:1])  # a retried write that had landed: not doubled
    assert [e["action"] for e in store.read(AuditQuery())] == ["key.revoked", "login", "key.created"]
    assert [e["action"] for e in store.read(AuditQuery(since=now - timedelta(hours=2)))] == ["key.revoked", "login"]
    assert [e["actor"] for e in store.read(AuditQuery(actor="a@example.com"))] == ["sub-1"]
    assert [e["actor"] for e in store.read(AuditQuery(actor="sub-2"))] == ["sub-2"]
    assert [e["action"] for e in store.read(AuditQuery(action="key."))] == ["key.revoked", "key.created"]
    assert [e["action"] for e in store.read(AuditQuery(action="key"))] == []
    assert store.read(AuditQuery(action="key.created"))[0]["diff"] == {"name": {"from": None, "to": "<b>x</b>"}}
    assert len(store.read(AuditQuery(limit=1))) == 1


def test_the_sqlite_store_filters_and_is_idempotent(tmp_path):
    store = SqliteAuditStore(tmp_path / "ledger.db")
    try:
        _check_reads(store)
    finally:
        store.close()


@pytest.mark.slow
def test_the_postgres_store_migrates_and_filters(postgres_url):
    store = PostgresAuditStore(postgres_url)
    try:
        _check_reads(store)
    finally:
        store.close()
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT name FROM tollway_migrations WHERE version = 12").fetchone() == ("012_audit.sql",)

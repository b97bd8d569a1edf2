"""Key and team budget lists in both stores (SQLite and a real PostgreSQL), and the migrations that keep
the daily and monthly budgets keys had before budgets were lists."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from tollway.accounting.budget_entries import BudgetEntry
from tollway.accounting.keys.records import KeySpec, new_record, new_secret
from tollway.accounting.keys.store import TeamExists, TeamNotFound, open_key_store
from tollway.accounting.teams import TeamSpec, new_team

DAY5 = BudgetEntry("day", Decimal("5"))
WEEK_CHAT = BudgetEntry("week", Decimal("20"), "chat")
USER_DAY = BudgetEntry("day", Decimal("0.5"), per_user=True)


def test_stores_keep_a_keys_budget_list_and_daily_usd_edits_its_day_entry(store) -> None:
    key_id, secret = new_secret()
    created = store.create(new_record(key_id, secret, KeySpec(name="k", budgets=(DAY5, WEEK_CHAT, USER_DAY))))
    assert store.get(key_id).budgets == (DAY5, WEEK_CHAT, USER_DAY) == created.budgets
    assert created.public()["budgets"] == [{"window": "day", "limit_usd": "5"},
                                           {"window": "week", "limit_usd": "20", "model": "chat"},
                                           {"window": "day", "limit_usd": "0.5", "per_user": True}]
    updated = store.update(key_id, KeySpec(daily_usd=Decimal("7"), monthly_usd=Decimal("90")))
    assert (updated.daily_usd, updated.monthly_usd) == (Decimal("7"), Decimal("90"))
    assert [e.text() for e in store.get(key_id).budgets] == ["day=7", "month=90", "week=20@chat", "user:day=0.5"]
    assert store.update(key_id, KeySpec(budgets=())).budgets == () == store.get(key_id).budgets


def test_stores_create_change_and_delete_teams_in_change_order(store) -> None:
    created = store.create_team(new_team("ml", TeamSpec(budgets=(DAY5,), rpm=100)))
    with pytest.raises(TeamExists):
        store.create_team(new_team("ml", TeamSpec()))
    changed = store.update_team("ml", TeamSpec(budgets=(DAY5, USER_DAY), tpm=5000))
    assert (changed.budgets, changed.rpm, changed.tpm) == ((DAY5, USER_DAY), 100, 5000)
    assert [t.name for t in store.list_teams()] == ["ml"] and store.get_team("ml") == changed
    assert store.teams_changed_since(created.seq) == [changed]
    deleted = store.delete_team("ml")
    assert deleted.deleted and store.get_team("ml") is None and store.list_teams() == []
    assert store.teams_changed_since(changed.seq) == [deleted], "replicas learn of a deletion"
    with pytest.raises(TeamNotFound):
        store.update_team("ml", TeamSpec(rpm=1))
    again = store.create_team(new_team("ml", TeamSpec(budgets=(WEEK_CHAT,))))
    assert again.seq > deleted.seq and store.get_team("ml").budgets == (WEEK_CHAT,)


def test_a_sqlite_key_store_from_before_budget_lists_keeps_daily_and_monthly(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    old = sqlite3.connect(path)
    old.executescript("""CREATE TABLE keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, salt TEXT NOT NULL,
        hash TEXT NOT NULL, team TEXT NOT NULL DEFAULT '', daily_usd TEXT, monthly_usd TEXT, rpm INTEGER,
        tpm INTEGER, models TEXT NOT NULL DEFAULT '[]', residency TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, revoked_at TEXT NOT NULL DEFAULT '', seq INTEGER NOT NULL);
        INSERT INTO keys (id, name, salt, hash, daily_usd, monthly_usd, created_at, updated_at, seq)
          VALUES ('both1', 'both', '00', 'x', '5.50', '100', 't', 't', 1),
                 ('month1', 'month', '00', 'x', NULL, '30', 't', 't', 2),
                 ('none1', 'none', '00', 'x', NULL, NULL, 't', 't', 3);""")
    old.close()
    store = open_key_store(None, path)
    try:
        budgets = {r.id: [e.text() for e in r.budgets] for r in store.list()}
        assert budgets == {"both1": ["day=5.50", "month=100"], "month1": ["month=30"], "none1": []}
        assert store.get("both1").public()["daily_usd"] == "5.50"
        assert {r.id for r in store.changed_since(3)} == {"both1", "month1"}, "running replicas re-read them"
    finally:
        store.close()
    with sqlite3.connect(path) as conn:  # moved, not copied: a second open finds nothing to move
        assert conn.execute("SELECT count(*) FROM keys WHERE daily_usd IS NOT NULL OR monthly_usd IS NOT NULL"
                            ).fetchone()[0] == 0
    reopened = open_key_store(None, path)
    try:
        assert [e.text() for e in reopened.get("both1").budgets] == ["day=5.50", "month=100"]
    finally:
        reopened.close()


def test_a_postgresql_key_store_keeps_daily_and_monthly_through_migration_011(postgres_url: str) -> None:
    from tollway.ledger.postgres import migrate, migrations

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        older = [m for m in migrations() if not m[1].startswith("011_")]
        for _, _, sql in older:  # a database the previous tollway made, with keys in it
            conn.execute(sql)
        conn.execute("CREATE TABLE tollway_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                     "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        for version, name, _ in older:
            conn.execute("INSERT INTO tollway_migrations (version, name) VALUES (%s, %s)", (version, name))
        conn.execute("INSERT INTO keys (id, name, salt, hash, daily_usd, monthly_usd, created_at, updated_at, seq) "
                     "VALUES ('both1', 'both', '00', 'x', 5.50, 100, 't', 't', nextval('keys_seq')), "
                     "('day1', 'day', '00', 'x', 2, NULL, 't', 't', nextval('keys_seq'))")
        assert migrate(conn) == ["011_budget_lists_and_teams.sql"]
        assert conn.execute("SELECT count(*) FROM keys WHERE daily_usd IS NOT NULL").fetchone()[0] == 0
        # a replica still on the previous version writes the old column during a rolling upgrade
        conn.execute("UPDATE keys SET monthly_usd = 40 WHERE id = 'day1'")
    store = open_key_store(postgres_url, Path("unused.db"))
    try:
        budgets = {r.id: [e.text() for e in r.budgets] for r in store.list()}
        assert budgets == {"both1": ["day=5.50", "month=100"], "day1": ["day=2", "month=40"]}
    finally:
        store.close()

"""Virtual keys: secrets are shown once and stored only as salted hashes; both stores (SQLite and a real
PostgreSQL) keep and change keys the same way; field checks name the field and the value."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from tollway.accounting.keys.fields import KeyFieldError, budget_pair, count, money, spec_from_json
from tollway.accounting.keys.records import UNSET, KeySpec, key_id_of, new_record, new_secret, verify
from tollway.accounting.keys.store import KeyNotFound, open_key_store


def test_a_secret_names_its_key_and_only_its_hash_is_kept() -> None:
    key_id, secret = new_secret()
    assert secret.startswith(f"tw_{key_id}_") and len(secret) == len(f"tw_{key_id}_") + 48
    record = new_record(key_id, secret, KeySpec(name="ci"))
    assert key_id_of(secret) == key_id
    assert secret not in repr(record) and secret.split("_")[-1] not in record.hash
    assert verify(record, secret)
    assert not verify(record, secret[:-1] + ("0" if secret[-1] != "0" else "1"))
    other_id, other = new_secret()
    assert new_record(other_id, secret, KeySpec()).salt != record.salt, "every key has its own salt"


@pytest.mark.parametrize("token", ["", "sk-abc", "tw_", "tw__abc", "tw_ab_", "tw_UPPER_abc", "tw_a/b_c"])
def test_tokens_that_are_not_tollway_secrets_have_no_key_id(token: str) -> None:
    assert key_id_of(token) is None


def test_field_checks_name_the_field_and_the_value() -> None:
    assert budget_pair("5/100") == (Decimal("5"), Decimal("100"))
    assert budget_pair("/12.50") == (None, Decimal("12.50"))
    with pytest.raises(KeyFieldError, match=r"--budget-usd: expected DAILY/MONTHLY.*got '5'"):
        budget_pair("5")
    with pytest.raises(KeyFieldError, match=r"--budget-usd \(daily\): must be more than 0, got '-1'"):
        budget_pair("-1/")
    with pytest.raises(KeyFieldError, match="daily_usd: expected a USD amount"):
        money("lots", "daily_usd")
    with pytest.raises(KeyFieldError, match="rpm: expected a whole number of at least 1, got 0"):
        count(0, "rpm")
    with pytest.raises(KeyFieldError, match="rpm: expected a whole number"):
        count(2.5, "rpm")
    with pytest.raises(KeyFieldError, match="colour: unknown field"):
        spec_from_json({"name": "x", "colour": "red"})
    spec = spec_from_json({"rpm": None, "models": ["chat"], "daily_usd": "2"})
    assert (spec.rpm, spec.models, spec.daily_usd, spec.tpm) == (None, ("chat",), Decimal("2"), UNSET)


def test_stores_create_update_revoke_and_report_changes_in_order(store) -> None:
    key_id, secret = new_secret()
    created = store.create(new_record(key_id, secret, KeySpec(
        name="ci", team="ml", daily_usd=Decimal("5.50"), rpm=10, models=("chat",), residency=("eu", "sg"))))
    other = store.create(new_record(*new_secret(), KeySpec(name="other")))
    assert store.get(key_id) == created
    assert (created.daily_usd, created.monthly_usd, created.rpm, created.models, created.residency) == (
        Decimal("5.50"), None, 10, ("chat",), ("eu", "sg"))
    updated = store.update(key_id, KeySpec(monthly_usd=Decimal("100"), rpm=None, tpm=5000))
    assert (updated.daily_usd, updated.monthly_usd, updated.rpm, updated.tpm, updated.team) == (
        Decimal("5.50"), Decimal("100"), None, 5000, "ml"), "fields not given are kept"
    assert updated.seq > other.seq > created.seq
    seen = created.seq
    revoked = store.revoke(key_id)
    assert revoked.revoked and revoked.seq > updated.seq
    assert [r.id for r in store.changed_since(seen)] == [other.id, key_id]
    assert store.changed_since(revoked.seq) == []
    assert verify(store.get(key_id), secret)
    assert [r.id for r in store.list()] == [key_id, other.id]
    with pytest.raises(KeyNotFound, match="no key with id 'missing'"):
        store.update("missing", KeySpec(rpm=1))


def test_sqlite_keys_live_beside_the_ledger_and_keep_no_secret(tmp_path) -> None:
    store = open_key_store(None, tmp_path / "ledger.db")
    key_id, secret = new_secret()
    store.create(new_record(key_id, secret, KeySpec(name="ci")))
    store.close()
    dump = "\n".join(sqlite3.connect(tmp_path / "ledger.db").iterdump())
    assert key_id in dump and secret not in dump and secret.rsplit("_", 1)[1] not in dump


def test_stores_keep_a_default_max_tokens(store) -> None:
    key_id, secret = new_secret()
    created = store.create(new_record(key_id, secret, KeySpec(name="capped", default_max_tokens=256)))
    assert store.get(key_id).default_max_tokens == 256 == created.public()["default_max_tokens"]
    assert store.update(key_id, KeySpec(rpm=3)).default_max_tokens == 256, "kept when not given"
    assert store.update(key_id, KeySpec(default_max_tokens=None)).default_max_tokens is None
    assert spec_from_json({"default_max_tokens": 64}).default_max_tokens == 64


def test_a_sqlite_key_store_from_before_default_max_tokens_gains_the_column(tmp_path) -> None:
    path = tmp_path / "ledger.db"
    old = sqlite3.connect(path)
    old.executescript("""CREATE TABLE keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, salt TEXT NOT NULL,
        hash TEXT NOT NULL, team TEXT NOT NULL DEFAULT '', daily_usd TEXT, monthly_usd TEXT, rpm INTEGER,
        tpm INTEGER, models TEXT NOT NULL DEFAULT '[]', residency TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL, updated_at TEXT NOT NULL, revoked_at TEXT NOT NULL DEFAULT '', seq INTEGER NOT NULL);
        INSERT INTO keys (id, name, salt, hash, created_at, updated_at, seq) VALUES ('oldkey1', 'old', '00', 'x', 't', 't', 1);""")
    old.close()
    store = open_key_store(None, path)
    try:
        assert store.get("oldkey1").default_max_tokens is None
        assert store.update("oldkey1", KeySpec(default_max_tokens=100)).default_max_tokens == 100
        assert store.get("oldkey1").name == "old"
    finally:
        store.close()


def test_a_postgresql_key_store_is_migrated_for_default_max_tokens(postgres_url) -> None:
    import psycopg

    from tollway.ledger.postgres import migrate, migrations

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for _, _, sql in [m for m in migrations() if m[0] < 4]:  # a database an older tollway made
            conn.execute(sql)
        conn.execute("CREATE TABLE tollway_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                     "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        conn.execute("INSERT INTO tollway_migrations (version, name) SELECT v, 'old' FROM generate_series(1, 3) v")
        pending = [name for version, name, _ in migrations() if version >= 4]  # every one after 003, in order
        assert pending[0] == "004_key_default_max_tokens.sql" and migrate(conn) == pending
    store = open_key_store(postgres_url, Path("unused.db"))
    try:
        key_id, secret = new_secret()
        store.create(new_record(key_id, secret, KeySpec(name="pg", default_max_tokens=512)))
        assert store.get(key_id).default_max_tokens == 512
    finally:
        store.close()

"""StoredResponses against a real SQLite file: memory first, written off the request path, per key,
deleted, and dropped after the retention."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from tollway.ledger.stored_responses import StoredResponse, StoredResponses


def record(response_id: str, key_id: str = "k1", age_days: float = 0) -> StoredResponse:
    created = int(time.time() - age_days * 86400)
    return StoredResponse(response_id, key_id, created, [{"role": "user", "content": "hi"}],
                          [{"type": "message", "role": "assistant", "content": []}],
                          {"id": response_id, "object": "response", "created_at": created})


def on_disk(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM stored_responses")}
    finally:
        conn.close()


def test_a_kept_response_is_read_before_it_is_written_and_only_by_its_key(tmp_path):
    async def run() -> None:
        store = StoredResponses(tmp_path / "ledger.db", flush_interval_s=3600)
        await store.start()
        store.keep(record("resp_a"))
        assert (await store.get("resp_a", "k1")).input_items == [{"role": "user", "content": "hi"}]
        assert await store.get("resp_a", "k2") is None
        assert on_disk(tmp_path / "ledger.db") == set(), "nothing written on the request path"
        await store.close()
        assert on_disk(tmp_path / "ledger.db") == {"resp_a"}, "close writes what is pending"
    asyncio.run(run())


def test_delete_and_retention(tmp_path):
    path = tmp_path / "ledger.db"

    async def run() -> None:
        store = StoredResponses(path, flush_interval_s=0.01)
        await store.start()
        for r in (record("resp_old", age_days=31), record("resp_new", age_days=29), record("resp_gone")):
            store.keep(r)
        await asyncio.sleep(0.2)
        assert on_disk(path) == {"resp_old", "resp_new", "resp_gone"}
        assert not await store.delete("resp_gone", "k2"), "another key cannot delete it"
        assert await store.delete("resp_gone", "k1") and await store.get("resp_gone", "k1") is None
        await store.close()
        assert on_disk(path) == {"resp_old", "resp_new"}
        reopened = StoredResponses(path, retention_days=30)
        await reopened.start()
        assert await reopened.get("resp_old", "k1") is None and await reopened.get("resp_new", "k1") is not None
        await reopened.close()
    asyncio.run(run())


def test_in_postgresql_replicas_share_them_and_retention_drops_old_ones(postgres_url, tmp_path):
    from tollway.ledger.postgres import connect, migrate

    with connect(postgres_url) as conn:
        assert "009_stored_responses.sql" in migrate(conn)

    async def run() -> None:
        one = StoredResponses(tmp_path / "a.db", flush_interval_s=0.01, database_url=postgres_url)
        other = StoredResponses(tmp_path / "b.db", retention_days=30, database_url=postgres_url)
        await one.start()
        one.keep(record("resp_pg"))
        one.keep(record("resp_pg_old", age_days=40))
        await asyncio.sleep(0.2)
        await other.start()  # prunes: the 40-day-old one goes
        got = await other.get("resp_pg", "k1")
        assert got is not None and got.output_items[0]["role"] == "assistant", "another replica reads it"
        assert await other.get("resp_pg", "k2") is None and await other.get("resp_pg_old", "k1") is None
        assert await other.delete("resp_pg", "k1")
        await other.close()
        assert await one.get("resp_pg", "k1") is None
        await one.close()
        assert not (tmp_path / "a.db").exists(), "nothing goes to a local file with PostgreSQL"
    asyncio.run(run())

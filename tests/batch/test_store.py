"""The batch store's lease and line states on SQLite: one claimant at a time, a lapsed lease passes to
another replica, and a line left running by a dead replica is failed, never sent again."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from pathlib import Path

from tollway.batch.db import BatchDatabase
from tollway.batch.store import BatchRecord, BatchStore
from tollway.batch.types import BatchLine, PlannedLine

NOW = datetime(2026, 12, 8, tzinfo=timezone.utc)


def _create(store: BatchStore, batch_id: str, lines: int = 2):
    batch_lines = [BatchLine(i, f"c{i}", "/v1/chat/completions", "chat", {"model": "chat"}) for i in range(lines)]
    planned = [PlannedLine(i, "ds", "scheduled", NOW, "standard", 0) for i in range(lines)]  # type: ignore[arg-type]
    record = BatchRecord(batch_id, "k1", "openai", "/v1/chat/completions", "file-1", "24h", "validating",
                         int(time.time()), int(time.time()) + 86400, total=lines)
    return store.db.run(lambda db: store.create_sync(db, record, batch_lines, planned))


def test_one_replica_holds_a_batch_until_its_lease_lapses(tmp_path: Path):
    async def scenario() -> None:
        a, b = (BatchStore(BatchDatabase(tmp_path / "ledger.db", None)) for _ in range(2))
        await _create(a, "batch_1")
        assert await a.claim("replica-a", 0.3, []) == "batch_1"
        assert await b.claim("replica-b", 0.3, []) is None
        assert await a.renew("batch_1", "replica-a", 0.3)
        assert await a.start_line("batch_1", 0)
        assert not await b.start_line("batch_1", 0), "a running line was started twice"
        await asyncio.sleep(0.4)  # replica-a died: its lease lapses
        assert await b.claim("replica-b", 30, []) == "batch_1"
        assert not await a.renew("batch_1", "replica-a", 30), "the old owner kept renewing"
        states = {s.index: s for s in await b.lines("batch_1")}
        assert (states[0].state, states[0].error["code"]) == ("failed", "interrupted")
        assert states[1].state == "pending"
        await b.release("batch_1", "replica-b")
        assert await a.claim("replica-a", 30, []) == "batch_1"
        assert await a.claim("replica-a", 30, ["batch_1"]) is None
        for store in (a, b):
            store.db.close()

    asyncio.run(scenario())


def test_a_cancel_closes_only_unsent_lines(tmp_path: Path):
    async def scenario() -> None:
        store = BatchStore(BatchDatabase(tmp_path / "ledger.db", None))
        await _create(store, "batch_2", lines=3)
        assert await store.start_line("batch_2", 0)
        await store.finish_line("batch_2", 0, "done", 200, {"ok": True}, None, "0.5")
        await store.request_cancel("batch_2")
        assert await store.close_pending("batch_2", "cancelled", {"code": "batch_cancelled"}) == [1, 2]
        record = await store.get("batch_2")
        assert record is not None and record.status == "cancelling" and record.cancelling_at
        assert (record.completed, record.failed, str(record.cost_usd)) == (1, 2, "0.5")
        store.db.close()

    asyncio.run(scenario())

"""Replay reads a PostgreSQL ledger written by the gateway's own PostgreSQL writer: timestamps arrive as
datetimes, money as NUMERIC and request features as JSONB, and the result matches the SQLite replay."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from tests.plan.support import candidate_file, known_rows, write_ledger
from tollway.ledger.postgres_writer import PostgresLedgerWriter
from tollway.plan.replay import load_candidate, replay_ledger
from tollway.plan.replay_report import tally_dict

pytestmark = pytest.mark.slow


def test_postgres_ledger_replays_like_sqlite(postgres_url: str, tmp_path: Path) -> None:
    rows = known_rows()

    async def write() -> None:
        writer = PostgresLedgerWriter(postgres_url, tmp_path / "spool.jsonl", flush_interval_s=0.05)
        await writer.start()
        for row in rows:
            writer.append(row)
        await writer.close()

    asyncio.run(write())
    sqlite = write_ledger(tmp_path / "ledger.db", rows)
    groups = {"chat": {"deployments": ["cheap"], "aliases": ["gpt-4o-mini"]}}
    candidate = load_candidate(candidate_file(tmp_path, groups))
    from_postgres = replay_ledger(candidate, postgres_url, include_failed=True, keep_rows=True)
    from_sqlite = replay_ledger(candidate, str(sqlite), include_failed=True, keep_rows=True)
    assert tally_dict(from_postgres.total) == tally_dict(from_sqlite.total)
    assert from_postgres.total.requests == 4
    assert from_postgres.total.unserveable["capability"] == 1       # r3's vision need came through JSONB
    assert from_postgres.total.current_usd == Decimal("0.0049")
    assert list(from_postgres.by_day) == list(from_sqlite.by_day) == ["2026-10-05", "2026-10-06"]
    assert [d.request.id for d in from_postgres.decisions] == ["r1", "r2", "r3", "r4"]

"""The PostgreSQL ledger: exact money, and no row lost while the database is down (a real server, killed)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from decimal import Decimal
from pathlib import Path

import psycopg

from tollway.ledger.postgres import connect, migrate, migrations
from tollway.ledger.postgres_writer import PostgresLedgerWriter
from tollway.ledger.schema import LedgerRow


def row(n: int, cost: str = "0.000000123") -> LedgerRow:
    return LedgerRow(id=f"r{n}", ts="2026-11-22T06:40:00.123456+00:00", endpoint="chat", requested_model="chat",
                     status="ok", http_status=200, key_id="k1", cost_usd=cost,
                     attempts=[{"deployment": "ds", "outcome": "ok"}], prompt_tokens=7, completion_tokens=16)


def rows_in(url: str) -> dict[str, tuple]:
    with psycopg.connect(url) as conn:
        return {r[0]: r[1:] for r in conn.execute("SELECT id, cost_usd, attempts, key_id FROM requests")}


async def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_rows_are_written_with_exact_money_and_migrations_apply_once(postgres_url: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        writer = PostgresLedgerWriter(postgres_url, tmp_path / "spool.jsonl", flush_interval_s=0.05)
        await writer.start()
        writer.append(row(1, "0.000000123"))
        writer.append(row(2, "1.5"))
        await writer.close()

    asyncio.run(scenario())
    stored = rows_in(postgres_url)
    assert stored["r1"] == (Decimal("0.000000123"), [{"deployment": "ds", "outcome": "ok"}], "k1")
    with psycopg.connect(postgres_url) as conn:
        total = conn.execute("SELECT sum(cost_usd) FROM requests").fetchone()[0]
    assert total == Decimal("1.500000123"), "NUMERIC sums exactly"
    conn = connect(postgres_url)
    try:
        assert migrate(conn) == [], "already applied"
        versions = [v for (v,) in conn.execute("SELECT version FROM tollway_migrations ORDER BY version")]
    finally:
        conn.close()
    assert versions == [v for v, _, _ in migrations()]


def test_rows_spool_while_postgres_is_down_and_are_written_when_it_returns(postgres_factory, tmp_path: Path) -> None:
    server = postgres_factory()
    url = server.create_database()
    spool = tmp_path / "spool.jsonl"

    async def scenario() -> None:
        writer = PostgresLedgerWriter(url, spool, flush_interval_s=0.05)
        await writer.start()
        writer.append(row(1))
        await wait_until(lambda: writer.pending == 0)
        server.kill()
        for n in range(2, 12):
            writer.append(row(n))
        await wait_until(lambda: spool.exists() and len(writer.spool) == 10)
        server.start()
        await wait_until(lambda: not spool.exists())
        writer.append(row(12))
        await writer.close()

    asyncio.run(scenario())
    assert sorted(rows_in(url), key=lambda i: int(i[1:])) == [f"r{n}" for n in range(1, 13)]


def test_rows_spooled_at_shutdown_are_written_by_the_next_start(postgres_factory, tmp_path: Path) -> None:
    server = postgres_factory()
    url = server.create_database()
    spool = tmp_path / "spool.jsonl"

    async def first_run() -> None:
        writer = PostgresLedgerWriter(url, spool, flush_interval_s=0.05)
        await writer.start()
        server.kill()
        writer.append(row(1))
        writer.append(row(2))
        await writer.close()

    async def second_run() -> None:
        writer = PostgresLedgerWriter(url, spool, flush_interval_s=0.05)
        await writer.start()
        await wait_until(lambda: not spool.exists())
        await writer.close()

    asyncio.run(first_run())
    assert len(spool.read_text().splitlines()) == 2
    server.start()
    asyncio.run(second_run())
    assert sorted(rows_in(url)) == ["r1", "r2"]


def test_a_torn_last_spool_line_is_skipped_and_a_replay_is_idempotent(postgres_url: str, tmp_path: Path) -> None:
    from tollway.ledger.spool import Spool

    spool = Spool(tmp_path / "spool.jsonl")
    spool.append([row(1), row(2)])
    with open(spool.path, "ab") as handle:
        handle.write(b'{"id": "r3", "ts": "2026')  # killed mid-write

    async def scenario() -> None:
        writer = PostgresLedgerWriter(postgres_url, spool.path, flush_interval_s=0.05)
        await writer.start()
        writer.append(row(1))  # already in the spool: written once
        await writer.close()

    asyncio.run(scenario())
    assert sorted(rows_in(postgres_url)) == ["r1", "r2"]
    assert not spool.path.exists()


def test_a_reused_request_id_keeps_both_requests_and_the_same_row_is_written_once(postgres_url: str,
                                                                                     tmp_path: Path) -> None:
    first = row(7, "0.25")
    again = dataclasses.replace(first, ts="2026-11-22T06:41:00+00:00", cost_usd="0.5")

    async def scenario() -> None:
        writer = PostgresLedgerWriter(postgres_url, tmp_path / "spool.jsonl", flush_interval_s=0.05)
        await writer.start()
        writer.append(first)
        writer.append(again)
        writer.append(first)  # the same row twice (as a spool replay would): stored once
        await writer.close()

    asyncio.run(scenario())
    with psycopg.connect(postgres_url) as conn:
        costs = sorted(r[0] for r in conn.execute("SELECT cost_usd FROM requests WHERE id = 'r7'"))
    assert costs == [Decimal("0.25"), Decimal("0.5")]

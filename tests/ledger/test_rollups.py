"""The PostgreSQL ledger's day partitions and hourly roll-ups, on a real server: the roll-ups equal the rows,
exactly, after many batches, a refused row, a spool replay of rows already stored, and a retention drop."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg

from tests.ledger.support import NOW, traffic
from tollway.ledger.postgres_writer import PostgresLedgerWriter
from tollway.ledger.schema import LedgerRow
from tollway.ledger.spool import Spool
from tollway.observe.row_facts import SIDE_OUTCOMES, fell_back

SERIES = ("hour", "key_id", "route_group", "deployment", "provider", "model", "requested_model", "status", "shadow")
SUMS = ("requests", "prompt_tokens", "cached_tokens", "cache_write_tokens", "completion_tokens", "reasoning_tokens",
        "cost_usd", "unpriced", "estimated", "fallbacks")


def expected_rollups(rows: list[LedgerRow]) -> dict[tuple, dict[str, object]]:
    """The roll-ups computed here, in Python, from the rows (the observer's own fell_back)."""
    sums: dict[tuple, dict[str, object]] = defaultdict(lambda: {name: 0 for name in SUMS} | {"cost_usd": Decimal(0)})
    for row in rows:
        hour = datetime.fromisoformat(row.ts).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        entry = sums[(hour, row.key_id, row.route_group, row.deployment, row.provider, row.upstream_model,
                      row.requested_model, row.status, row.shadow)]
        for name, value in (("requests", 1), ("prompt_tokens", row.prompt_tokens), ("cached_tokens", row.cached_tokens),
                            ("cache_write_tokens", row.cache_write_tokens), ("completion_tokens", row.completion_tokens),
                            ("reasoning_tokens", row.reasoning_tokens), ("cost_usd", Decimal(row.cost_usd)),
                            ("unpriced", int(not row.priced)), ("estimated", int(row.usage_source == "estimated")),
                            ("fallbacks", int(fell_back(row)))):
            entry[name] += value
    return dict(sums)


def expected_attempts(rows: list[LedgerRow]) -> dict[tuple, tuple[int, int]]:
    counted: Counter = Counter()
    for row in rows:
        if row.shadow:
            continue
        hour = datetime.fromisoformat(row.ts).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        for attempt in row.attempts:
            outcome = attempt.get("outcome")
            if outcome == "skipped" or outcome in SIDE_OUTCOMES and outcome != "cancelled":
                continue
            counted[(hour, attempt.get("provider", ""), "n")] += 1
            counted[(hour, attempt.get("provider", ""), "failed")] += outcome not in ("ok", "cancelled")
    return {(h, p): (counted[(h, p, "n")], counted[(h, p, "failed")]) for h, p, kind in counted if kind == "n"}


def stored_rollups(url: str) -> dict[tuple, dict[str, object]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"SELECT {', '.join(SERIES)}, {', '.join(SUMS)} FROM requests_hourly").fetchall()
    return {tuple(r[:len(SERIES)]): {name: (Decimal(v) if name == "cost_usd" else int(v))
                                      for name, v in zip(SUMS, r[len(SERIES):])} for r in rows}


def stored_attempts(url: str) -> dict[tuple, tuple[int, int]]:
    with psycopg.connect(url) as conn:
        return {(h, p): (n, f) for h, p, n, f in conn.execute(
            "SELECT hour, provider, attempts, failed FROM requests_hourly_attempts")}


def raw_sums_equal_rollups(url: str) -> None:
    """The roll-ups and a GROUP BY over the raw rows agree on every series, to the last decimal place."""
    with psycopg.connect(url) as conn:
        raw = conn.execute(
            "SELECT count(*), sum(prompt_tokens), sum(completion_tokens), sum(cost_usd) FROM requests").fetchone()
        rolled = conn.execute(
            "SELECT sum(requests), sum(prompt_tokens), sum(completion_tokens), sum(cost_usd) FROM requests_hourly").fetchone()
    assert tuple(Decimal(v or 0) for v in raw) == tuple(Decimal(v or 0) for v in rolled)


def write(url: str, tmp_path: Path, rows: list[LedgerRow], batch_size: int = 7, **kwargs) -> PostgresLedgerWriter:
    async def scenario() -> PostgresLedgerWriter:
        writer = PostgresLedgerWriter(url, tmp_path / "spool.jsonl", flush_interval_s=0.01, batch_size=batch_size,
                                      **kwargs)
        await writer.start()
        for row in rows:
            writer.append(row)
        await writer.close()
        return writer

    return asyncio.run(scenario())


def partitions(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return sorted(name for (name,) in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'requests'::regclass"))


def test_rollups_equal_the_rows_after_many_batches_a_refusal_and_a_replay(postgres_url: str, tmp_path: Path) -> None:
    rows = traffic(600, seed=1)
    refused = LedgerRow(id="bad", ts="not a time", endpoint="chat", requested_model="chat", status="ok",
                        http_status=200, cost_usd="1")
    writer = write(postgres_url, tmp_path, rows[:300] + [refused] + rows[300:500])
    assert writer.health.quarantined == 1
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 1

    # A replay cut short by a kill: the spool holds rows already stored (rows[400:500]) and new ones.
    Spool(tmp_path / "spool.jsonl").append(rows[400:600])
    write(postgres_url, tmp_path, [])
    assert not (tmp_path / "spool.jsonl").exists()

    assert stored_rollups(postgres_url) == expected_rollups(rows), "every row counted exactly once"
    assert stored_attempts(postgres_url) == expected_attempts(rows)
    raw_sums_equal_rollups(postgres_url)
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM requests").fetchone()[0] == 600
        assert conn.execute("SELECT count(*) FROM requests_default").fetchone()[0] == 0, "every row in its day"


def test_partitions_are_created_ahead_and_retention_drops_whole_days(postgres_url: str, tmp_path: Path) -> None:
    old = traffic(200, seed=2, days_back=20, prefix="old")
    write(postgres_url, tmp_path, old)
    today = NOW.date()
    names = partitions(postgres_url)
    assert f"requests_p{today + timedelta(days=7):%Y%m%d}" in names, "a week ahead"
    assert any(name < f"requests_p{today - timedelta(days=10):%Y%m%d}" for name in names if name != "requests_default")

    fresh = traffic(50, seed=3, days_back=1, prefix="new")
    write(postgres_url, tmp_path, fresh, retention_days=5)
    cutoff = today - timedelta(days=5)
    kept = [row for row in old + fresh if datetime.fromisoformat(row.ts).date() >= cutoff]
    assert f"requests_p{cutoff - timedelta(days=1):%Y%m%d}" not in partitions(postgres_url)
    assert f"requests_p{cutoff:%Y%m%d}" in partitions(postgres_url)
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM requests").fetchone()[0] == len(kept) < 250
    assert stored_rollups(postgres_url) == expected_rollups(kept)
    assert stored_attempts(postgres_url) == expected_attempts(kept)
    raw_sums_equal_rollups(postgres_url)


def test_an_unpartitioned_ledger_is_converted_with_its_rollups(postgres_url: str, tmp_path: Path) -> None:
    """A ledger written before partitions (migrations 001-005) keeps every row, and gains exact roll-ups."""
    from tollway.ledger import postgres

    rows = traffic(120, seed=4, days_back=3)
    older = [m for m in postgres.migrations() if m[0] <= 5]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE tollway_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                      "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        for version, name, sql in older:
            conn.execute(sql)
            conn.execute("INSERT INTO tollway_migrations (version, name) VALUES (%s, %s)", (version, name))
    from tollway.ledger.schema import LEDGER_COLUMNS
    from tollway.ledger.store_text import storable_record

    with psycopg.connect(postgres_url) as conn, conn.cursor() as cur:
        records = []
        for row in rows:
            record = storable_record(row)
            record[LEDGER_COLUMNS.index("cost_usd")] = Decimal(record[LEDGER_COLUMNS.index("cost_usd")])
            records.append(record)
        before_007 = LEDGER_COLUMNS[:LEDGER_COLUMNS.index("end_user")]  # the columns a 005 ledger has
        cur.executemany(f"INSERT INTO requests ({', '.join(before_007)}) "
                        f"VALUES ({', '.join(['%s'] * len(before_007))})", [r[:len(before_007)] for r in records])
    assert partitions(postgres_url) == []

    write(postgres_url, tmp_path, [])  # the writer migrates on start
    assert len(partitions(postgres_url)) >= 4 + 7
    assert stored_rollups(postgres_url) == expected_rollups(rows)
    assert stored_attempts(postgres_url) == expected_attempts(rows)
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM requests").fetchone()[0] == 120
        assert conn.execute("SELECT to_regclass('requests_unpartitioned')").fetchone()[0] is None


def test_rows_are_kept_when_their_partitions_cannot_be_made(postgres_url: str, tmp_path: Path, caplog) -> None:
    """A partition that cannot be created is the database's problem, not the rows': they land in the default
    partition, counted in the roll-ups, and the failure is logged (never a quarantine)."""
    write(postgres_url, tmp_path, [])  # migrates
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP FUNCTION tollway_ensure_partition(date)")
    rows = traffic(40, seed=5, days_back=30)
    writer = write(postgres_url, tmp_path, rows)
    assert writer.health.quarantined == 0
    assert "cannot maintain the day partitions" in caplog.text
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM requests").fetchone()[0] == 40
        before_today = sum(1 for row in rows if datetime.fromisoformat(row.ts).date() < NOW.date())
        assert conn.execute("SELECT count(*) FROM requests_default").fetchone()[0] == before_today > 0
    assert stored_rollups(postgres_url) == expected_rollups(rows)


def test_retention_takes_old_rows_of_the_default_partition_too(postgres_url: str, tmp_path: Path) -> None:
    """Rows left in the default partition (their day could not be made then) go with their day."""
    write(postgres_url, tmp_path, [])
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("ALTER FUNCTION tollway_ensure_partition(date) RENAME TO tollway_ensure_partition_away")
    old = traffic(60, seed=6, days_back=20, prefix="old")
    write(postgres_url, tmp_path, old)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM requests_default").fetchone()[0] > 0
        conn.execute("ALTER FUNCTION tollway_ensure_partition_away(date) RENAME TO tollway_ensure_partition")
    write(postgres_url, tmp_path, traffic(5, seed=7, days_back=1, prefix="new"), retention_days=5)
    cutoff = NOW.date() - timedelta(days=5)
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM requests WHERE ts < %s",
                            (datetime.combine(cutoff, datetime.min.time(), UTC),)).fetchone()[0] == 0
    raw_sums_equal_rollups(postgres_url)

"""Both ledger writers in process, on a real SQLite file and a real PostgreSQL: the writer task raising,
rows no store should take, the spool replayed row by row, and what /metrics shows of it."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import orjson
import psycopg
import psycopg.rows
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tollway.ledger.postgres_writer import PostgresLedgerWriter
from tollway.ledger.schema import LedgerRow
from tollway.ledger.spool import Spool
from tollway.ledger.sqlite import LedgerWriter
from tollway.observe.metrics import GatewayMetrics, make_registry
from tollway.observe.settings import MetricsSettings


def row(request_id: str, **fields) -> LedgerRow:
    values = {"endpoint": "chat", "requested_model": "chat", "status": "ok", "http_status": 200,
              "cost_usd": "0.000001", **fields}
    return LedgerRow(id=request_id, ts="2026-12-06T10:00:00.000001+00:00", **values)


# Rows no store takes as they are: the first three are escaped and written, the last three refused.
HOSTILE = [
    row("id\udcff\udcfe"),
    row("nul", requested_model="ch\x00at", error="model 'ch\x00at' not found"),
    row("attempts", attempts=[{"error": "upstream said \udcff\x00"}]),
    row("huge", prompt_tokens=2 ** 70),
    row("not-json", attempts=[{"error": object()}]),
    row("bad-features", request_features="{not json \x00"),
]
WRITTEN = {"id\\udcff\\udcfe", "nul", "attempts"}
REFUSED = {"huge", "not-json", "bad-features"}


async def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def sqlite_rows(path: Path, table: str) -> list[dict]:
    conn = sqlite3.connect(str(path))
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table}")]
    finally:
        conn.close()


def postgres_rows(url: str, table: str) -> list[dict]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return list(conn.execute(f"SELECT * FROM {table}"))


def scrape(writer) -> dict[str, float]:
    metrics = GatewayMetrics(MetricsSettings(), deployments={}, ledger=writer, in_flight=lambda: 0)
    text = generate_latest(make_registry(metrics, lambda: None)).decode()
    return {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples
            if s.name.startswith("tollway_ledger")}


def test_the_writer_task_raising_is_restarted_loudly_and_loses_no_row(tmp_path: Path) -> None:
    alerts = []

    async def scenario() -> dict[str, float]:
        writer = LedgerWriter(tmp_path / "ledger.db", flush_interval_s=0.02)
        writer.health.raise_alert = alerts.append
        await writer.start()
        store, failing_until = writer._store, time.monotonic() + 1.5

        async def raising(rows, replay=False):  # rows are in hand: the loop dies holding them
            if time.monotonic() < failing_until:
                raise RuntimeError("injected")
            return await store(rows, replay)

        writer._store = raising
        for n in range(5):
            writer.append(row(f"r{n}"))
        await wait_until(lambda: writer.problem() is not None)
        assert writer.problem() == "ledger writer restarting after RuntimeError"
        assert scrape(writer)["tollway_ledger_accounting_stopped"] == 1
        await wait_until(lambda: writer.written == 5)
        await wait_until(lambda: [a.kind for a in alerts] == ["ledger_stopped", "ledger_recovered"])
        figures = scrape(writer)
        await writer.close()
        return figures

    figures = asyncio.run(scenario())
    assert sorted(r["id"] for r in sqlite_rows(tmp_path / "ledger.db", "requests")) == [f"r{n}" for n in range(5)]
    assert figures["tollway_ledger_writer_restarts_total"] >= 2
    assert figures["tollway_ledger_rows_unwritten"] == 0
    assert figures["tollway_ledger_accounting_stopped"] == 0
    assert alerts[0].severity == "critical" and "restarting after RuntimeError" in alerts[0].title


def test_sqlite_close_writes_or_quarantines_every_hostile_row_and_never_raises(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"

    async def scenario() -> dict[str, float]:
        writer = LedgerWriter(path, flush_interval_s=60)  # nothing flushes before close: close does it all
        await writer.start()
        for hostile in HOSTILE:
            writer.append(hostile)
        writer.append(row("after"))
        await writer.close()
        return scrape(writer)

    figures = asyncio.run(scenario())
    stored = {r["id"]: r for r in sqlite_rows(path, "requests")}
    assert set(stored) == WRITTEN | {"after"}
    assert stored["nul"]["requested_model"] == "ch\\u0000at"
    assert orjson.loads(stored["attempts"]["attempts"]) == [{"error": "upstream said \\udcff\\u0000"}]
    quarantined = {q["request_id"]: q for q in sqlite_rows(path, "quarantine")}
    assert set(quarantined) == REFUSED
    assert quarantined["huge"]["reason"].startswith("OverflowError")
    assert quarantined["not-json"]["reason"].startswith("TypeError")
    assert orjson.loads(quarantined["huge"]["row_json"])["prompt_tokens"] == 2 ** 70
    assert figures["tollway_ledger_rows_quarantined_total"] == 3


def test_postgres_takes_the_same_escaped_text_and_quarantines_what_it_refuses(postgres_url: str,
                                                                               tmp_path: Path) -> None:
    async def scenario() -> None:
        writer = PostgresLedgerWriter(postgres_url, tmp_path / "spool.jsonl", flush_interval_s=0.02)
        await writer.start()
        for hostile in HOSTILE:
            writer.append(hostile)
        writer.append(row("after"))
        await wait_until(lambda: writer.written == len(WRITTEN) + 1)
        await writer.close()

    asyncio.run(scenario())
    stored = {r["id"]: r for r in postgres_rows(postgres_url, "requests")}
    assert set(stored) == WRITTEN | {"after"}
    assert stored["nul"]["requested_model"] == "ch\\u0000at" and stored["nul"]["error"] == "model 'ch\\u0000at' not found"
    assert stored["attempts"]["attempts"] == [{"error": "upstream said \\udcff\\u0000"}], "the same text as SQLite"
    quarantined = {q["request_id"]: q for q in postgres_rows(postgres_url, "quarantine")}
    assert set(quarantined) == REFUSED
    assert "out of range" in quarantined["huge"]["reason"]
    assert not (tmp_path / "spool.jsonl").exists(), "a refusal is not an outage"


def test_a_spool_is_replayed_row_by_row_once_and_what_cannot_be_replayed_is_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    spool = Spool(path.with_name(path.name + ".spool.jsonl"))
    good = [row(f"s{n}") for n in range(4)]
    spool.append([good[0], good[1], row("huge", prompt_tokens=2 ** 70), good[2], good[3]])
    with open(spool.path, "ab") as handle:
        handle.write(b'{"id": "torn", "ts": "2026')  # killed mid-write

    async def run_once() -> None:
        writer = LedgerWriter(path, flush_interval_s=0.02)
        await writer.start()
        await wait_until(lambda: not spool.path.exists())
        await writer.close()

    asyncio.run(run_once())
    spool.append(good)  # a replay cut short after its commit runs again: rows already there are skipped
    asyncio.run(run_once())
    assert sorted(r["id"] for r in sqlite_rows(path, "requests")) == ["s0", "s1", "s2", "s3"]
    quarantined = sqlite_rows(path, "quarantine")
    assert sorted(q["request_id"] for q in quarantined) == ["", "huge"]
    torn = next(q for q in quarantined if q["request_id"] == "")
    assert orjson.loads(torn["row_json"]) == {"unreadable_spool_line": '{"id": "torn", "ts": "2026'}


def test_a_refused_row_goes_to_the_file_beside_the_ledger_when_the_table_cannot_take_it(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"

    async def scenario() -> None:
        writer = LedgerWriter(path, flush_interval_s=0.02)
        await writer.start()
        conn = sqlite3.connect(str(path))
        conn.execute("DROP TABLE quarantine")
        conn.close()
        writer.append(row("huge", prompt_tokens=2 ** 70))
        writer.append(row("after"))
        await wait_until(lambda: writer.written == 1 and writer.health.quarantined == 1)
        await writer.close()

    asyncio.run(scenario())
    assert [r["id"] for r in sqlite_rows(path, "requests")] == ["after"]
    lines = path.with_name(path.name + ".quarantine.jsonl").read_bytes().splitlines()
    entry = orjson.loads(lines[0])
    assert len(lines) == 1 and entry["request_id"] == "huge" and entry["reason"].startswith("OverflowError")
    assert entry["row"]["prompt_tokens"] == 2 ** 70


def test_postgres_down_at_close_and_at_the_next_start_loses_nothing(postgres_factory, tmp_path: Path) -> None:
    server = postgres_factory()
    url = server.create_database()
    spool = tmp_path / "spool.jsonl"
    rows = [row("p0"), row("p1", requested_model="ch\x00at")]

    async def down_at_close() -> None:
        writer = PostgresLedgerWriter(url, spool, flush_interval_s=0.02)
        await writer.start()
        server.kill()
        for r in rows:
            writer.append(r)
        await writer.close()

    async def down_at_start_then_back() -> None:
        writer = PostgresLedgerWriter(url, spool, flush_interval_s=0.02)
        await writer.start()
        writer.append(row("p2"))
        await wait_until(lambda: writer.unwritten == 3)
        assert writer.problem() is None, "spooled rows are safe: the gateway stays ready"
        server.start()
        await wait_until(lambda: writer.unwritten == 0)
        await writer.close()

    asyncio.run(down_at_close())
    assert len(Spool(spool)) == 2
    asyncio.run(down_at_start_then_back())
    stored = {r["id"]: r["requested_model"] for r in postgres_rows(url, "requests")}
    assert stored == {"p0": "chat", "p1": "ch\\u0000at", "p2": "chat"}


APPENDER = """
import sys
from pathlib import Path
from tollway.ledger.schema import LedgerRow
from tollway.ledger.spool import Spool
spool = Spool(Path(sys.argv[1]))
for n in range(int(sys.argv[2])):
    spool.append([LedgerRow(id=f"a{n}", ts="t", endpoint="chat", requested_model="chat", status="ok",
                            http_status=200)])
"""


def test_a_spool_shared_by_processes_loses_no_row_while_one_replays_it(tmp_path: Path) -> None:
    """`--workers N` share the spool: rows another process appends while this one claims are never lost."""
    import subprocess
    import sys

    path, count = tmp_path / "ledger.db.spool.jsonl", 400
    appender = subprocess.Popen([sys.executable, "-c", APPENDER, str(path), str(count)])
    spool, seen = Spool(path), []
    while appender.poll() is None or path.exists():
        claimed = spool.claim()
        if claimed is not None:
            seen += [r.id for r in claimed[0]]
            assert claimed[1] == [], "no torn line: appends and claims never interleave"
            spool.release([])
    assert appender.wait() == 0
    assert sorted(seen) == sorted(f"a{n}" for n in range(count)), "each appended row claimed exactly once"
    assert list(tmp_path.iterdir()) == []


def test_a_replay_cut_short_by_a_kill_is_adopted_by_the_next_start(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "ledger.db"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    claim = Spool(path.with_name(f"{path.name}.spool.jsonl.{int(dead.stdout)}.replay"))  # as a killed replay left it
    claim.append([row("o1"), row("o2")])

    async def scenario() -> None:
        writer = LedgerWriter(path, flush_interval_s=0.02)
        assert writer.unwritten == 2
        await writer.start()
        await wait_until(lambda: writer.unwritten == 0)
        await writer.close()

    asyncio.run(scenario())
    assert sorted(r["id"] for r in sqlite_rows(path, "requests")) == ["o1", "o2"]
    assert not claim.path.exists()

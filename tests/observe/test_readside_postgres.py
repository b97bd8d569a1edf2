"""Every ledger reader reads a PostgreSQL ledger (real server, real commands) and says so, with the same
figures as the same rows give from a SQLite file: usage, report (from the roll-ups), audit, reconcile, the
observer's start-up history, and replay/plan's hourly traffic."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
import yaml

from tests.ledger.support import NOW, config_naming, traffic
from tests.observe.support import write_ledger
from tollway.ledger.postgres_reader import PostgresLedgerReader
from tollway.ledger.postgres_writer import PostgresLedgerWriter
from tollway.ledger.reader import SqliteLedgerReader
from tollway.observe.history import load_history
from tollway.observe.report_data import build_report, report_from_rollups
from tollway.observe.settings import ObserveSettings
from tollway.plan.ledger_source import PostgresTrafficReader, SqliteTrafficReader

# A window that starts and ends inside hours, so the report reads roll-ups and raw edges both.
SINCE = (NOW - timedelta(hours=30, minutes=13)).isoformat()
UNTIL = (NOW - timedelta(hours=2, minutes=41)).isoformat()


@pytest.fixture(scope="module")
def ledgers(postgres_server, tmp_path_factory) -> tuple[str, Path]:
    """The same rows in a PostgreSQL ledger (written by the gateway's writer) and in a SQLite file."""
    url = postgres_server.create_database()
    folder = tmp_path_factory.mktemp("readside")
    rows = traffic(500, seed=11)

    async def fill() -> None:
        writer = PostgresLedgerWriter(url, folder / "spool.jsonl", flush_interval_s=0.01, batch_size=50)
        await writer.start()
        for row in rows:
            writer.append(row)
        await writer.close()

    asyncio.run(fill())
    path = folder / "same.db"
    write_ledger(path, rows)
    return url, path


def tollway(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TOLLWAY_") and k != "COLUMNS"}
    clean.update(XDG_DATA_HOME=str(cwd / "data"), XDG_CONFIG_HOME=str(cwd / "config"), **(env or {}))
    return subprocess.run([sys.executable, "-m", "tollway.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=clean)


def rounded(value):
    """Percentiles are floats from two computations (Python, PostgreSQL's percentile_cont): equal to 1e-6."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def test_report_from_rollups_equals_the_report_from_rows(ledgers) -> None:
    url, path = ledgers
    since, until = datetime.fromisoformat(SINCE), datetime.fromisoformat(UNTIL)
    reader = PostgresLedgerReader(url)
    from tollway.observe.report_command import report_json

    rolled = report_json(report_from_rollups(reader, since, until))
    from_pg_rows = report_json(build_report(reader.rows(since, until), since=since, until=until))
    from_sqlite = report_json(build_report(SqliteLedgerReader(path).rows(since, until), since=since, until=until))
    assert rolled["total"]["requests"] > 100 and rolled["total"]["fallbacks"] > 0
    assert rounded(rolled) == rounded(from_pg_rows) == rounded(from_sqlite)


@pytest.mark.parametrize("how", ["flag", "environment", "config"])
def test_commands_read_the_postgresql_ledger_and_name_it(ledgers, tmp_path: Path, how: str) -> None:
    url, path = ledgers
    args, env = [], {}
    if how == "flag":
        args = ["--database-url", url]
    elif how == "environment":
        env = {"TOLLWAY_DATABASE_URL": url}
    else:
        write_ledger(tmp_path / "stale.db", traffic(3, seed=99))  # a stale file at ledger.path: not read
        config = config_naming(tmp_path / "stale.db", database_url=url)
        (tmp_path / "tollway.yaml").write_text(yaml.safe_dump(config))
    pg = tollway("report", "--json", "--since", SINCE, "--until", UNTIL, *args, cwd=tmp_path, env=env)
    assert pg.returncode == 0, pg.stderr
    source = {"flag": "--database-url", "environment": "TOLLWAY_DATABASE_URL", "config": "database_url in tollway.yaml"}[how]
    assert f"ledger: {url} ({source})" in pg.stderr
    lite = tollway("report", "--json", "--since", SINCE, "--until", UNTIL, "--ledger", str(path), cwd=tmp_path)
    assert rounded(orjson.loads(pg.stdout)) == rounded(orjson.loads(lite.stdout))


@pytest.mark.parametrize("command", [
    ["usage", "--json"],
    ["usage", "--json", "--since", "1d"],
    ["report", "--json", "--since", "3d"],
    ["audit", "residency", "--allowed", "us", "--json"],
    ["audit", "residency", "--allowed", "us", "--key", "k1", "--json"],
])
def test_each_reader_gives_the_same_answer_from_both_stores(ledgers, tmp_path: Path, command: list[str]) -> None:
    url, path = ledgers
    pg = tollway(*command, "--database-url", url, cwd=tmp_path)
    lite = tollway(*command, "--ledger", str(path), cwd=tmp_path)
    assert pg.returncode == lite.returncode, pg.stderr + lite.stderr
    pg_data, lite_data = orjson.loads(pg.stdout), orjson.loads(lite.stdout)
    for data in (pg_data, lite_data):
        if isinstance(data, dict):
            data.pop("since", None)  # "3d" is measured from each command's own start
    assert pg_data and rounded(pg_data) == rounded(lite_data)


def test_reconcile_reads_the_postgresql_ledger(ledgers, tmp_path: Path) -> None:
    url, path = ledgers
    invoice = tmp_path / "invoice.csv"
    day = (NOW - timedelta(days=1)).date().isoformat()
    invoice.write_text(f"date,model,cost\n{day},ds-flash-model,1.00\n")
    pg = tollway("reconcile", str(invoice), "--json", "--tz", "Asia/Kolkata", "--database-url", url, cwd=tmp_path)
    lite = tollway("reconcile", str(invoice), "--json", "--tz", "Asia/Kolkata", "--ledger", str(path), cwd=tmp_path)
    assert pg.returncode == lite.returncode and f"ledger: {url} (--database-url)" in pg.stderr
    assert orjson.loads(pg.stdout) == orjson.loads(lite.stdout)
    assert orjson.loads(pg.stdout)["ledger_total_usd"] != "0"


def test_observer_history_from_postgresql_equals_the_file(ledgers) -> None:
    url, path = ledgers
    until = NOW - timedelta(minutes=7)
    settings = ObserveSettings.model_validate({"dashboard": {"window_h": 5}})
    pg = load_history(path.with_name("absent.db"), settings, until, url)
    lite = load_history(path, settings, until)
    assert pg.source == url and pg.window_rows == lite.window_rows > 0
    assert pg.hourly._hours == lite.hourly._hours and pg.hourly.first_hour == lite.hourly.first_hour
    assert pg.live.snapshot(until.timestamp()) == lite.live.snapshot(until.timestamp())


def test_plan_and_replay_hourly_traffic_comes_from_the_rollups(ledgers) -> None:
    url, path = ledgers
    since, until = datetime.fromisoformat(SINCE), datetime.fromisoformat(UNTIL)
    assert PostgresTrafficReader(url).hourly_buckets(since, until) == sorted(
        SqliteTrafficReader(path).hourly_buckets(since, until), key=lambda b: (b.hour, b.provider, b.model))


def test_an_unreachable_postgresql_ledger_is_a_clear_error_without_the_password(tmp_path: Path) -> None:
    result = tollway("usage", "--database-url", "postgresql://tollway:s3cret-pw@127.0.0.1:9/tollway", cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert "cannot connect to PostgreSQL at postgresql://tollway:***@127.0.0.1:9/tollway" in result.stderr
    assert "s3cret-pw" not in result.stderr


def test_a_ledger_from_before_the_rollups_is_named_with_what_to_do(postgres_url: str, tmp_path: Path) -> None:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE requests (id TEXT, ts TIMESTAMPTZ)")
    result = tollway("usage", "--database-url", postgres_url, cwd=tmp_path)
    assert result.returncode == 1
    assert "has no hourly roll-ups yet: start this version's `tollway serve` once" in result.stderr


"""The ledger writer facing rows a store cannot hold or refuses, and a database that goes away: `tollway
serve` as users start it, requests over raw sockets, real SQLite files and a real PostgreSQL.

The promise under test: every request's row is written (escaped if its text needs it) or, if the store
refuses it, quarantined with the reason; no row holds back the rows after it; SIGTERM exits 0 with
nothing lost; and while accounting is stopped, /readyz, /metrics and the alerts say so."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest

from tests.gateway.support import PROVIDER_KEYS, emulator_config
from tests.ledger.support import (
    POISON,
    postgres_table,
    raw_chat,
    refuse_poison_postgres,
    refuse_poison_sqlite,
    sqlite_table,
    wait_until,
)
from tests.observe.support import labels, scrape

pytestmark = pytest.mark.slow

# Sent in this order: good rows around a row with undecodable header bytes, one with a NUL in its text,
# and one the store refuses. Only the refused one is missing from the ledger.
HOSTILE = [(b"good-1", "chat"), (b"id\xff\xfe", "chat"), (b"nul-model", "ch\x00at"), (b"poisoned", POISON),
           (b"good-2", "chat"), (b"good-3", "chat")]


def send_hostile(port: int) -> None:
    for request_id, model in HOSTILE:
        raw_chat(port, request_id, model)


def assert_written_and_quarantined(rows: list[dict], quarantined: list[dict]) -> None:
    ids = Counter(row["id"] for row in rows)
    assert len(rows) == len(HOSTILE) - 1, f"every request but the refused one has its row: {sorted(ids)}"
    assert {"good-1", "good-2", "good-3", "nul-model"} <= set(ids) and max(ids.values()) == 1
    assert "poisoned" not in ids
    nul = next(row for row in rows if row["id"] == "nul-model")
    assert nul["requested_model"] == "ch\\u0000at", "NUL is stored as its \\u escape"
    assert [entry["request_id"] for entry in quarantined] == ["poisoned"]
    assert orjson.loads(quarantined[0]["row_json"])["requested_model"] == POISON, "the whole row is kept"


def test_sqlite_writes_every_row_after_a_hostile_one_and_quarantines_the_refused_one(emulator, gateway_factory) -> None:
    gw = gateway_factory(emulator_config(emulator), env=PROVIDER_KEYS)
    refuse_poison_sqlite(gw.ledger)
    send_hostile(gw.port)
    gw.row("good-3")  # written while the gateway runs: the writer got past every bad row
    metrics = wait_until(lambda: (m := scrape(gw.url)).get(("tollway_ledger_rows_quarantined_total", ())) and m)
    assert metrics[("tollway_ledger_rows_quarantined_total", ())] == 1
    assert metrics[("tollway_ledger_accounting_stopped", ())] == 0
    assert gw.terminate() == 0
    quarantined = sqlite_table(gw.ledger, "quarantine")
    assert_written_and_quarantined(gw.rows(), quarantined)
    assert "poisoned row refused by the test" in quarantined[0]["reason"]
    assert "IntegrityError" in quarantined[0]["reason"]
    assert "refused the row of request poisoned" in gw.log_text()


def test_sigterm_with_hostile_rows_still_queued_exits_0_and_every_row_is_written_or_quarantined(
        emulator, gateway_factory) -> None:
    config = {**emulator_config(emulator), "ledger": {"flush_interval_s": 60}}  # nothing is written before SIGTERM
    gw = gateway_factory(config, env=PROVIDER_KEYS)
    refuse_poison_sqlite(gw.ledger)
    send_hostile(gw.port)
    assert gw.rows() == []
    assert gw.terminate() == 0
    assert_written_and_quarantined(gw.rows(), sqlite_table(gw.ledger, "quarantine"))


def test_postgres_writes_every_row_after_a_hostile_one_and_quarantines_the_refused_one(
        emulator, gateway_factory, postgres_url: str) -> None:
    gw = gateway_factory(emulator_config(emulator), env=PROVIDER_KEYS, extra_args=("--database-url", postgres_url))
    refuse_poison_postgres(postgres_url)
    send_hostile(gw.port)
    wait_until(lambda: any(r["id"] == "good-3" for r in postgres_table(postgres_url, "requests")))
    assert gw.terminate() == 0
    quarantined = postgres_table(postgres_url, "quarantine")
    assert_written_and_quarantined(postgres_table(postgres_url, "requests"), quarantined)
    assert 'violates check constraint "refuse_poison"' in quarantined[0]["reason"]
    assert not (gw.ledger.parent / (gw.ledger.name + ".spool.jsonl")).exists(), "no outage was assumed"


def test_rows_spooled_across_a_sigterm_with_postgres_down_are_written_once_by_the_next_start(
        emulator, gateway_factory, postgres_factory, tmp_path: Path) -> None:
    server = postgres_factory()
    url = server.create_database()
    ledger = tmp_path / "shared-ledger.db"
    args = ("--database-url", url, "--ledger", str(ledger))
    first = gateway_factory(emulator_config(emulator), env=PROVIDER_KEYS, extra_args=args)
    refuse_poison_postgres(url)
    for n in range(3):
        assert raw_chat(first.port, f"before-{n}".encode()) == 200
    wait_until(lambda: len(postgres_table(url, "requests")) == 3)
    server.kill()
    for n in range(5):
        assert raw_chat(first.port, f"during-{n}".encode()) == 200
    raw_chat(first.port, b"poisoned", POISON)
    assert first.terminate() == 0, first.log_text()[-3000:]
    spool = ledger.with_name(ledger.name + ".spool.jsonl")
    assert len(spool.read_bytes().splitlines()) == 6, "every row of the outage is in the spool"

    server.start()
    second = gateway_factory(emulator_config(emulator), env=PROVIDER_KEYS, extra_args=args)
    wait_until(lambda: len(postgres_table(url, "requests")) >= 8 and not list(tmp_path.glob(spool.name + "*")))
    ids = Counter(row["id"] for row in postgres_table(url, "requests"))
    assert ids == Counter([f"before-{n}" for n in range(3)] + [f"during-{n}" for n in range(5)]), "exactly once"
    assert [q["request_id"] for q in postgres_table(url, "quarantine")] == ["poisoned"], \
        "the spooled row PostgreSQL refuses is quarantined; the replay goes on"
    assert second.terminate() == 0
    assert len(postgres_table(url, "requests")) == 8


def test_readyz_metrics_and_an_alert_say_so_while_accounting_is_stopped(
        emulator, gateway_factory, postgres_factory, tmp_path: Path) -> None:
    server = postgres_factory()
    url = server.create_database()
    ledger = tmp_path / "stopped-ledger.db"
    ledger.with_name(ledger.name + ".spool.jsonl").mkdir()  # the spool cannot be written either
    gw = gateway_factory(emulator_config(emulator), env=PROVIDER_KEYS,
                         extra_args=("--database-url", url, "--ledger", str(ledger)))
    assert httpx.get(f"{gw.url}/readyz").status_code == 200
    server.kill()
    assert raw_chat(gw.port, b"unaccounted") == 200

    stopped = wait_until(lambda: (r := httpx.get(f"{gw.url}/readyz")).status_code == 503 and r)
    assert stopped.json()["status"] == "accounting_stopped"
    assert "cannot be spooled" in stopped.json()["reason"]
    metrics = wait_until(lambda: (m := scrape(gw.url))
                         .get(("tollway_alerts_total", labels(kind="ledger_stopped", severity="critical"))) and m)
    assert metrics[("tollway_ledger_accounting_stopped", ())] == 1
    assert metrics[("tollway_ledger_rows_unwritten", ())] == 1

    server.start()
    wait_until(lambda: httpx.get(f"{gw.url}/readyz").status_code == 200)
    assert [row["id"] for row in postgres_table(url, "requests")] == ["unaccounted"]
    metrics = wait_until(lambda: (m := scrape(gw.url))
                         .get(("tollway_alerts_total", labels(kind="ledger_recovered", severity="info"))) and m)
    assert metrics[("tollway_ledger_accounting_stopped", ())] == 0
    assert metrics[("tollway_ledger_rows_unwritten", ())] == 0
    assert gw.terminate() == 0
    assert "accounting stopped" in gw.log_text()

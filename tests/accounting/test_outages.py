"""Redis and PostgreSQL killed (SIGKILL) and restarted while two replicas take load: every request is
accounted for, in the ledger and in the shared spend."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tests.accounting.support import (
    Admin,
    budget_config,
    exact_nano_sum,
    send_load,
    wait_for,
    wait_for_rows,
    wait_for_settled,
)

pytestmark = pytest.mark.slow

LOAD, SPREAD_S = 120, 3.0


def outage(kill, start, after_s: float = 0.8, for_s: float = 1.0) -> threading.Thread:
    """Kill a server `after_s` into the load and start it again `for_s` later, in the background."""
    def run() -> None:
        time.sleep(after_s)
        kill()
        time.sleep(for_s)
        start()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_redis_killed_mid_load_fails_closed_then_every_settle_lands(emulator_factory, replicas, redis_factory,
                                                                    postgres_url) -> None:
    server = redis_factory()
    emu = emulator_factory(None, ttft_ms=30, tpot_ms=2)
    a, b = replicas(budget_config(emu), server.url, postgres_url)
    key_id, secret = Admin(a).create_key(name="closed", daily_usd="100")
    thread = outage(server.kill, server.start)
    outcomes = asyncio.run(send_load([a, b], secret, LOAD, SPREAD_S, prefix="closed"))
    thread.join()
    codes = {o.code for o in outcomes if o.status != 200}
    assert codes == {"limits_unavailable"}, codes
    assert 0 < sum(o.status == 503 for o in outcomes) < LOAD, "refused during the outage only"
    rows = wait_for_rows(postgres_url, key_id, LOAD)
    assert {r["id"] for r in rows} == {o.request_id for o in outcomes}, "every request has its ledger row"
    refused = [r for r in rows if r["http_status"] == 503]
    assert all("Redis at" in r["error"] and "on_redis_failure: closed" in r["error"] for r in refused)
    spent, _ = wait_for_settled(server.url, key_id)
    assert spent == exact_nano_sum(rows) > 0, "settles Redis missed were replayed"


def test_redis_killed_mid_load_fails_open_then_reconciles(emulator_factory, replicas, redis_factory,
                                                          postgres_url) -> None:
    server = redis_factory()
    emu = emulator_factory(None, ttft_ms=30, tpot_ms=2)
    a, b = replicas(budget_config(emu, on_redis_failure="open"), server.url, postgres_url)
    key_id, secret = Admin(a).create_key(name="open", daily_usd="100")
    thread = outage(server.kill, server.start)
    outcomes = asyncio.run(send_load([a, b], secret, LOAD, SPREAD_S, prefix="open"))
    thread.join()
    assert all(o.status == 200 and not o.code for o in outcomes), {(o.status, o.code) for o in outcomes}
    rows = wait_for_rows(postgres_url, key_id, LOAD)
    assert {r["id"] for r in rows} == {o.request_id for o in outcomes}
    wait_for(lambda: any(e["event"] == "redis_recovered" for e in Admin(a).events() + Admin(b).events()))
    events = [e["event"] for e in Admin(a).events() + Admin(b).events()]
    assert "redis_unavailable" in events
    spent, _ = wait_for_settled(server.url, key_id)
    assert spent == exact_nano_sum(rows) > 0, "spend counted locally during the outage reached Redis"


def test_postgres_killed_mid_load_loses_no_ledger_row(emulator_factory, replicas, redis_url,
                                                      postgres_factory) -> None:
    server = postgres_factory()
    database_url = server.create_database()
    emu = emulator_factory(None, ttft_ms=30, tpot_ms=2)
    a, b = replicas(budget_config(emu), redis_url, database_url)
    key_id, secret = Admin(a).create_key(name="pg", daily_usd="100")
    thread = outage(server.kill, server.start)
    outcomes = asyncio.run(send_load([a, b], secret, LOAD, SPREAD_S, prefix="pg"))
    thread.join()
    assert all(o.status == 200 and not o.code for o in outcomes), "keys are served from memory meanwhile"
    rows = wait_for_rows(database_url, key_id, LOAD, timeout=20)
    assert sorted(r["id"] for r in rows) == sorted(o.request_id for o in outcomes), "spooled rows were written"
    assert all(not (gw.ledger.parent / (gw.ledger.name + ".spool.jsonl")).exists() for gw in (a, b))
    spent, _ = wait_for_settled(redis_url, key_id)
    assert spent == exact_nano_sum(rows)
    assert "spooling rows" in a.log_text() + b.log_text(), "the outage was noticed and said so"

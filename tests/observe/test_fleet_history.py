"""With a PostgreSQL ledger, a replica's dashboard starts from the whole fleet's past: a replica started
after another served requests shows those requests (real gateways, a real emulator, a real PostgreSQL)."""

from __future__ import annotations

import time

import httpx
import psycopg

from tests.gateway.support import PROVIDER_KEYS
from tests.observe.support import ADMIN_KEY, observed_config

ENV = {**PROVIDER_KEYS, "TOLLWAY_ADMIN_KEY": ADMIN_KEY}


def dashboard(url: str) -> dict:
    deadline = time.monotonic() + 15
    while True:
        data = httpx.get(f"{url}/dashboard/data.json", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()
        if data["history_loaded"]:
            return data
        assert time.monotonic() < deadline, "the history never loaded"
        time.sleep(0.1)


def test_a_new_replica_starts_from_the_fleets_past(emulator, gateway_factory, postgres_url: str) -> None:
    config = observed_config(emulator)
    first = gateway_factory(config, env=ENV, extra_args=("--database-url", postgres_url))
    for n in range(3):
        answer = httpx.post(f"{first.url}/v1/chat/completions", timeout=20,
                            json={"model": "chat", "messages": [{"role": "user", "content": f"hello {n}"}]})
        assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 15
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        while conn.execute("SELECT count(*) FROM requests").fetchone()[0] < 3:
            assert time.monotonic() < deadline, "the rows never reached PostgreSQL"
            time.sleep(0.1)

    second = gateway_factory(config, env=ENV, extra_args=("--database-url", postgres_url))
    seen = dashboard(second.url)
    assert seen["totals"]["requests"] == 3, "the second replica served nothing: these are the first one's"
    assert seen["totals"]["cost_usd"] == dashboard(first.url)["totals"]["cost_usd"] != "0"
    assert f"from {postgres_url}" in second.log.read_text(), "the log names the ledger the history came from"

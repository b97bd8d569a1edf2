"""Helpers of the ledger tests: raw-socket requests and ledger readers for the fault tests (bytes no HTTP
library would send), varied traffic for the roll-up tests, a config naming a ledger for the location tests."""

from __future__ import annotations

import random
import socket
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import psycopg
import psycopg.rows

from tollway.ledger.schema import LedgerRow

POISON = "poison"  # the model name the test's store refuses (a trigger or CHECK constraint installed by the test)


def raw_chat(port: int, request_id: bytes, model: str = "chat") -> int:
    """POST one chat request on its own connection, the x-request-id header as raw bytes; the status."""
    body = orjson.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"x-request-id: " + request_id + b"\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(head + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def refuse_poison_sqlite(ledger: Path) -> None:
    """Make SQLite refuse rows for model POISON, as a store refuses a value it cannot take."""
    conn = sqlite3.connect(str(ledger))
    conn.execute(f"CREATE TRIGGER refuse_poison BEFORE INSERT ON requests WHEN NEW.requested_model = '{POISON}' "
                 "BEGIN SELECT RAISE(ABORT, 'poisoned row refused by the test'); END")
    conn.commit()
    conn.close()


def refuse_poison_postgres(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE requests ADD CONSTRAINT refuse_poison CHECK (requested_model <> '{POISON}')")


def sqlite_table(ledger: Path, table: str) -> list[dict]:
    conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table}")]
    finally:
        conn.close()


def postgres_table(url: str, table: str) -> list[dict]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return list(conn.execute(f"SELECT * FROM {table}"))


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(interval)
    return value


# Traffic for the roll-up tests: a fixed half past the hour, so windows cut hours in the middle.
NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)


def traffic(count: int, seed: int, days_back: int = 2, prefix: str = "r") -> list[LedgerRow]:
    """Varied rows over the last `days_back` days: fallbacks, failures, shadow copies, unpriced and estimated
    rows, hedges, costs with many decimal places."""
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        ts = NOW - timedelta(minutes=rng.randrange(days_back * 24 * 60))
        deployment = rng.choice(["ds-flash", "ds-pro", "qwen-max", ""])
        provider = {"ds-flash": "deepseek", "ds-pro": "deepseek", "qwen-max": "qwen", "": ""}[deployment]
        first = rng.choice(["ds-flash", deployment])
        attempts = []
        if first != deployment:
            attempts.append({"deployment": first, "provider": "deepseek", "outcome": "failover"})
        if rng.random() < 0.2:
            attempts.append({"deployment": "qwen-max", "provider": "qwen", "outcome": "cancelled"})
        if rng.random() < 0.1:
            attempts.append({"deployment": "ds-pro", "provider": "deepseek", "outcome": "skipped"})
        if deployment:
            attempts.append({"deployment": deployment, "provider": provider, "outcome": "ok"})
        status = "ok" if deployment else rng.choice(["error", "client_error"])
        rows.append(LedgerRow(
            id=f"{prefix}{n}", ts=ts.isoformat(), endpoint="chat", requested_model=rng.choice(["chat", "code"]),
            status=status, http_status=200 if status == "ok" else 502, key_id=rng.choice(["k1", "k2", ""]),
            route_group=rng.choice(["chat", "code"]), deployment=deployment, provider=provider,
            upstream_model=deployment and f"{deployment}-model", attempts=attempts,
            prompt_tokens=rng.randrange(5000), cached_tokens=rng.randrange(100), completion_tokens=rng.randrange(900),
            reasoning_tokens=rng.randrange(50), usage_source=rng.choice(["reported", "estimated", ""]),
            cost_usd=str(Decimal(rng.randrange(10**9)) / Decimal(10**13)), ttft_ms=rng.random() * 900,
            latency_ms=rng.random() * 4000, shadow=int(rng.random() < 0.1), priced=int(rng.random() > 0.05)))
    return rows


def config_naming(ledger: Path, **extra) -> dict:
    """A gateway config (one provider, one deployment) whose ledger.path is `ledger`."""
    return {"providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "jurisdiction": "us"}},
            "deployments": {"d": {"provider": "p", "model": "m"}}, "route_groups": {"g": {"deployments": ["d"]}},
            "ledger": {"path": str(ledger)}, **extra}


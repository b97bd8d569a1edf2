"""Helpers for the plan tests: real SQLite ledgers (the gateway's own schema) with rows the tests can count
by hand, and the replay tests' candidate configs and known rows."""

from __future__ import annotations

import sqlite3
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable

import orjson
import yaml

from tollway.ledger.schema import CREATE_TABLE_SQL, LEDGER_COLUMNS, LedgerRow

MONDAY = datetime(2026, 10, 5, tzinfo=timezone.utc)


def write_ledger(path: Path, rows: Iterable[LedgerRow]) -> Path:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(CREATE_TABLE_SQL)
        columns = [c for c in LEDGER_COLUMNS]
        placeholders = ", ".join("?" for _ in columns)
        values = []
        for row in rows:
            data = asdict(row)
            data["attempts"] = orjson.dumps(data["attempts"]).decode()
            values.append(tuple(data[c] for c in columns))
        conn.executemany(f"INSERT INTO requests ({', '.join(columns)}) VALUES ({placeholders})", values)
        conn.commit()
    finally:
        conn.close()
    return path


def request(n: int, ts: datetime, prompt: int = 1000, cached: int = 400, cache_write: int = 50,
            completion: int = 200, provider: str = "deepseek", model: str = "deepseek-flash",
            status: str = "ok", shadow: int = 0) -> LedgerRow:
    return LedgerRow(id=f"req-{n}", ts=ts.isoformat(), endpoint="chat", requested_model=model, status=status,
                     http_status=200 if status == "ok" else 500, provider=provider, upstream_model=model,
                     prompt_tokens=prompt, cached_tokens=cached, cache_write_tokens=cache_write,
                     completion_tokens=completion, usage_source="reported", cost_usd="0.001", shadow=shadow)


def busy_weekdays(days: int = 28, start: datetime = MONDAY) -> list[LedgerRow]:
    """Every day: 3 requests an hour from 08:00 to 17:59 UTC, 1 an hour otherwise (44 a day)."""
    rows = []
    for day in range(days):
        for hour in range(24):
            for i in range(3 if 8 <= hour < 18 else 1):
                ts = start + timedelta(days=day, hours=hour, minutes=5 + i * 10)
                rows.append(request(len(rows), ts))
    return rows


# Replay: candidate configs with explicit prices, and rows as the gateway logs them

DAY1 = datetime(2026, 10, 5, 9, 0, tzinfo=timezone.utc)
DAY2 = DAY1 + timedelta(days=1)
PROVIDERS = {
    # api_key_env names a variable nobody sets: replay sends nothing, so it must not need the key
    "deepseek": {"kind": "deepseek", "base_url": "http://127.0.0.1:9/v1", "api_key_env": "TOLLWAY_TEST_UNSET_KEY",
                 "jurisdiction": "cn"},
    "qwen": {"kind": "qwen", "base_url": "http://127.0.0.1:9/v1", "jurisdiction": "sg"},
}
CHEAP = {"provider": "deepseek", "model": "cheap-model", "context_window": 10_000, "capabilities": ["tools", "json"],
         "price": {"input": "0.10", "output": "0.40", "cached_input": "0.01"}}
DEAR = {"provider": "qwen", "model": "dear-model", "context_window": 100_000,
        "capabilities": ["vision", "tools", "json"],
        "price": {"input": "1", "output": "2", "cached_input": "0.5", "cache_write": "1.25"}}


def candidate_file(tmp_path: Path, groups: dict, deployments: dict | None = None, name: str = "candidate.yaml") -> Path:
    path = tmp_path / name
    deployments = deployments or {"cheap": CHEAP, "dear": DEAR}
    path.write_text(yaml.safe_dump({"providers": PROVIDERS, "deployments": deployments, "route_groups": groups}))
    return path


def logged(ident: str, ts: datetime, *, model: str = "chat", prompt: int = 1000, cached: int = 0, cache_write: int = 0,
           completion: int = 200, cost: str = "0.001", needs: tuple[str, ...] = (), max_tokens: int | None = None,
           residency: list[str] | None = None, features: dict | None = None, deployment: str = "dear",
           status: str = "ok", shadow: int = 0, ttft_ms: float | None = None, streamed: int = 0, priced: int = 1
           ) -> LedgerRow:
    """A ledger row as the gateway writes it (request_features included unless `features` says otherwise)."""
    if features is None:
        features = {"needs": sorted(needs), "max_tokens": max_tokens, "prompt_tokens_estimate": prompt,
                    "residency": residency}
    return LedgerRow(id=ident, ts=ts.isoformat(), endpoint="chat", requested_model=model, status=status,
                     http_status=200 if status == "ok" else 502, route_group="chat", deployment=deployment,
                     provider="qwen", upstream_model="dear-model", prompt_tokens=prompt, cached_tokens=cached,
                     cache_write_tokens=cache_write, completion_tokens=completion, usage_source="reported",
                     cost_usd=cost, shadow=shadow, ttft_ms=ttft_ms, latency_ms=(ttft_ms or 0) + 500,
                     streamed=streamed, priced=priced, request_features=orjson.dumps(features).decode())


def known_rows() -> list[LedgerRow]:
    """Five rows on two days; two of them never count (a failure, a shadow copy) unless failures are asked for."""
    return [
        logged("r1", DAY1, prompt=1000, cached=400, completion=200, cost="0.0009"),
        logged("r2", DAY1 + timedelta(hours=1), model="gpt-4o-mini", prompt=2000, cache_write=100, completion=500,
               cost="0.003"),
        logged("r3", DAY2, prompt=500, completion=100, needs=("vision",), cost="0.0007"),
        logged("r4", DAY2 + timedelta(hours=1), prompt=300, completion=0, cost="0.0003", status="error"),
        logged("r5", DAY2 + timedelta(hours=2), prompt=1000, completion=1000, cost="0.5", shadow=1),
    ]

"""Write real SQLite ledgers (the gateway's own schema) with rows the tests can count by hand."""

from __future__ import annotations

import sqlite3
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable

import orjson

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
